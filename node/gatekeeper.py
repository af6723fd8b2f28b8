"""Admission of a signed query: identity, signature, audience, freshness (DESIGN section 5).

The node verifies the signature over the exact request bytes *before* parsing them, with
the keys of the coordinators its policy lists; the key that verifies names the signer.
Over mutual TLS the signer must be the TLS peer. Only then are the bytes parsed and the
audience (this node) and the issue time (within the policy's window) checked.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from common.errors import AccessError, QueryError, Reason
from indicators.spec import Query
from node.policy import CoordinatorGrant, Policy
from protos import node_pb2 as pb
from security.signing import find_signer

__all__ = ["MAX_CLOCK_SKEW_SECONDS", "Admitted", "Gatekeeper", "RequestInfo"]

MAX_CLOCK_SKEW_SECONDS = 30.0
"""How far in the future a query may be dated: clocks differ a little, never by minutes."""


@dataclass
class RequestInfo:
    """What is known of a request so far, for the audit entry of a refusal."""

    request_sha256: str
    query_id: str = ""
    coordinator: str = ""


@dataclass(frozen=True)
class Admitted:
    """A query that passed admission (policy and budget are checked next)."""

    query_id: str
    query: Query
    grant: CoordinatorGrant
    request_sha256: str
    described_sha256: str = ""


class Gatekeeper:
    """Checks signed queries against one node's identity and policy."""

    def __init__(self, node_id: str, policy: Policy, require_peer: bool) -> None:
        self.node_id = node_id
        self.policy = policy
        self.require_peer = require_peer

    def admit(
        self, request: bytes, signature: bytes, peer: str | None, info: RequestInfo
    ) -> Admitted:
        """Verify, then parse, then check; fills ``info`` as facts become known.

        Args:
            request: The exact serialized QueryRequest the coordinator signed.
            signature: Its Ed25519 signature.
            peer: The coordinator id of the TLS peer (None without TLS).
            info: Filled with what is learnt, for the audit log.

        Raises:
            AccessError: Unknown or unauthenticated peer, bad signature, signer not the
                peer, another audience, a stale or future timestamp.
            QueryError: Bytes that do not parse as a query.
        """
        if self.require_peer and peer is None:
            raise AccessError(
                "no client certificate identifies a coordinator",
                reason=Reason.UNAUTHENTICATED,
                hint="connect with a coordinator certificate from the federation CA",
            )
        if peer is not None:
            info.coordinator = peer
            self.policy.grant(peer)  # unknown coordinators stop here
        keys = {c.id: c.public_key for c in self.policy.coordinators.values()}
        signer = find_signer(keys, request, signature)
        if signer is None:
            raise AccessError(
                "the query's signature does not verify with any allowed coordinator's key",
                reason=Reason.BAD_SIGNATURE,
                hint="the request bytes must be sent exactly as signed",
            )
        if peer is not None and signer != peer:
            raise AccessError(
                f"the query is signed by {signer!r} but sent by {peer!r}",
                reason=Reason.SIGNER_NOT_PEER,
            )
        info.coordinator = signer
        envelope = self._parse(request)
        info.query_id = envelope.query_id
        self._check_envelope(envelope, signer)
        return Admitted(
            query_id=envelope.query_id,
            query=Query.from_wire(envelope.spec),
            grant=self.policy.grant(signer),
            request_sha256=hashlib.sha256(request).hexdigest(),
            described_sha256=envelope.described_sha256,
        )

    def identify(self, request: bytes, signature: bytes) -> str:
        """The coordinator a signed identity names (Describe, GetBudget without TLS).

        The same checks as a query's, before the spec: a listed coordinator's signature,
        issuer, audience and time.

        Raises:
            AccessError: Whatever ``admit`` would refuse the envelope for.
        """
        keys = {c.id: c.public_key for c in self.policy.coordinators.values()}
        signer = find_signer(keys, request, signature)
        if signer is None:
            raise AccessError(
                "the caller's signed identity does not verify with any allowed coordinator's key",
                reason=Reason.BAD_SIGNATURE,
            )
        try:
            envelope = pb.QueryRequest.FromString(request)
        except DecodeError:
            raise AccessError(
                "the signed identity is not a QueryRequest", reason=Reason.BAD_SIGNATURE
            ) from None
        self._check_envelope(envelope, signer)
        self.policy.grant(signer)
        return signer

    @staticmethod
    def _parse(request: bytes) -> pb.QueryRequest:
        try:
            return pb.QueryRequest.FromString(request)
        except DecodeError:
            raise QueryError("the signed request is not a QueryRequest", field="request") from None

    def _check_envelope(self, envelope: pb.QueryRequest, signer: str) -> None:
        if envelope.issuer != signer:
            raise AccessError(
                f"the query says it is issued by {envelope.issuer!r} but {signer!r} signed it",
                reason=Reason.SIGNER_NOT_ISSUER,
                field="issuer",
            )
        if envelope.audience != self.node_id:
            raise AccessError(
                f"the query is addressed to {envelope.audience!r}, not to this node",
                reason=Reason.WRONG_AUDIENCE,
                field="audience",
                hint="a coordinator signs a separate query for each node",
            )
        age = (time.time() * 1000 - envelope.issued_at_ms) / 1000
        if age < -MAX_CLOCK_SKEW_SECONDS:
            raise AccessError(
                f"the query is dated {-age:.0f} s in the future of this node's clock, over "
                f"the {MAX_CLOCK_SKEW_SECONDS:g} s of clock skew allowed",
                reason=Reason.STALE_QUERY,
                field="issued_at_ms",
                hint="check both clocks (NTP)",
            )
        skew = abs(age)
        if skew > self.policy.window_seconds:
            raise AccessError(
                f"the query was issued {skew:.0f} s away from this node's clock, outside "
                f"the {self.policy.window_seconds:g} s window",
                reason=Reason.STALE_QUERY,
                field="issued_at_ms",
                hint="check both clocks (NTP); a query is valid for a few minutes only",
            )
