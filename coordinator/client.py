"""Concurrent fan-out of one query to every node: signed, over mutual TLS, with retries.

The coordinator signs a separate request for each node (the audience is part of the
signed bytes) once, and a retry resends exactly those bytes, so a node that already
answered returns its stored answer and charges nothing again. Every result must carry
a valid signature of the node's key from the coordinator's config. A node that is down,
refuses, or answers with a bad signature becomes a NodeFailure, never an exception that
stops the other nodes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import DecodeError

from common.errors import ERROR_METADATA_KEY, FedstatsError, Reason
from coordinator.config import NodeAddress
from coordinator.identity import checked_description
from indicators.spec import Query
from protos import node_pb2 as pb
from protos import node_pb2_grpc as pb_grpc
from security.certificates import TlsFiles
from security.revocation import RevocationList, peer_certificate
from security.signing import IDENTITY_METADATA_KEY, key_id, sign, verify

__all__ = [
    "Dialer",
    "NodeFailure",
    "NodeReply",
    "ProgressFn",
    "QuerySigner",
    "ask_node",
    "describe_all",
    "describe_node",
    "failure_of",
    "fan_out",
]

_RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
}
ProgressFn = Callable[[str, str], None]
"""Called as ``progress(node_id, state)``; state is ``waiting``, ``answered`` or ``failed``."""


@dataclass(frozen=True)
class NodeFailure:
    """Why a node gave no answer.

    Attributes:
        status: gRPC status name, e.g. ``UNAVAILABLE``.
        reason: fedstats' machine-readable reason (for a bare transport status, the
            catalogue's reason of that name).
        message: What the node (or the transport) said.
        hint: How to fix it, when known.
    """

    status: str
    reason: Reason
    message: str
    hint: str = ""

    @classmethod
    def of(cls, reason: Reason, message: str, hint: str = "") -> NodeFailure:
        """A failure found on the coordinator's side, with its reason's catalogued status."""
        return cls(reason.status, reason, message, hint)


@dataclass(frozen=True)
class NodeReply:
    """A node's verified answer, or its failure.

    Attributes:
        node_id: The node.
        result: The parsed result (only when its signature verified).
        signed: The node's signed result bytes, kept for provenance.
        request: The signed request the coordinator sent.
        failure: Why there is no result.
    """

    node_id: str
    result: pb.QueryResult | None = None
    signed: pb.SignedResult | None = None
    request: pb.SignedQuery | None = None
    failure: NodeFailure | None = None


@dataclass(frozen=True)
class QuerySigner:
    """The coordinator's identity and key: signs one request per node."""

    coordinator_id: str
    key: Ed25519PrivateKey

    def sign_for(
        self, node_id: str, query_id: str, query: Query, secure: pb.SecureRound | None = None
    ) -> pb.SignedQuery:
        """A request addressed to one node, signed now (with a secure round's description)."""
        request = pb.QueryRequest(
            query_id=query_id,
            spec=query.to_wire(),
            issuer=self.coordinator_id,
            audience=node_id,
            issued_at_ms=int(time.time() * 1000),
            secure=secure,
        ).SerializeToString()
        return pb.SignedQuery(request=request, signature=sign(self.key, request))

    def identity_for(self, node_id: str) -> tuple[str, bytes]:
        """Signed-identity metadata for Describe and GetBudget: a request with no query.

        A node served with ``--insecure`` has no TLS peer to identify the caller; it
        checks this signature, audience and time as it checks a query's.
        """
        request = pb.QueryRequest(
            issuer=self.coordinator_id, audience=node_id, issued_at_ms=int(time.time() * 1000)
        ).SerializeToString()
        signed = pb.SignedQuery(request=request, signature=sign(self.key, request))
        return IDENTITY_METADATA_KEY, signed.SerializeToString()


@dataclass(frozen=True)
class Dialer:
    """Opens channels to nodes: mutual TLS with the federation CA, or plaintext.

    With ``revocations`` (``[tls] crl``), `describe_node` first reads each node's
    certificate in a handshake of its own and refuses a revoked one before any call.
    """

    tls: TlsFiles | None
    revocations: RevocationList | None = None

    def revoked(self, node: NodeAddress, timeout: float) -> NodeFailure | None:
        """A failure when the node's certificate is on the CRL.

        None when it is not revoked, or when the handshake failed (the call then reports it).
        """
        if self.tls is None or self.revocations is None:
            return None
        try:
            cert = peer_certificate(node.address, node.id, self.tls, timeout)
        except OSError:
            return None
        when = self.revocations.revoked(cert)
        if when is None:
            return None
        return NodeFailure.of(
            Reason.CERTIFICATE_REVOKED,
            f"node {node.id!r} presents a certificate (serial {cert.serial_number:x}) revoked "
            f"on {when:%Y-%m-%d %H:%M} UTC; it was not asked",
            "the node must request a new certificate and have the CA sign it",
        )

    def channel(self, node: NodeAddress) -> grpc.Channel:
        """A channel whose TLS server name is the node's id (its certificate's DNS SAN)."""
        if self.tls is None:
            return grpc.insecure_channel(node.address)
        ca, cert, key = self.tls.read()
        credentials = grpc.ssl_channel_credentials(ca, private_key=key, certificate_chain=cert)
        options = [("grpc.ssl_target_name_override", node.id)]
        return grpc.secure_channel(node.address, credentials, options=options)


def reason_of(detail: pb.ErrorDetail) -> Reason:
    """The catalogued reason of a node's ErrorDetail.

    The enum first; its name where the enum is unset (a 0.1 node) or newer than this
    coordinator's catalogue; ``UNKNOWN`` when neither is catalogued here.
    """
    names = [detail.reason]
    if detail.code in pb.Reason.values() and detail.code != pb.REASON_UNSPECIFIED:
        names.insert(0, pb.Reason.Name(detail.code).removeprefix("REASON_"))
    for name in names:
        if name in Reason.__members__:
            return Reason[name]
    return Reason.UNKNOWN


def failure_of(error: grpc.RpcError, node: NodeAddress, tls: bool) -> NodeFailure:
    """A failed call as a NodeFailure: the node's ErrorDetail, or the transport status."""
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    metadata: dict[str, str | bytes] = {}
    if isinstance(error, grpc.Call):
        metadata = dict(error.trailing_metadata() or ())
    raw = metadata.get(ERROR_METADATA_KEY)
    if isinstance(raw, bytes):
        detail = pb.ErrorDetail.FromString(raw)
        return NodeFailure(code.name, reason_of(detail), detail.message, detail.hint)
    details = (error.details() if isinstance(error, grpc.Call) else None) or code.name
    hint = ""
    if code == grpc.StatusCode.UNAVAILABLE and tls:
        hint = (
            f"the node is down, or the TLS handshake failed: its certificate must come from "
            f"this federation's CA, be valid now and be issued for node {node.id!r}, and it "
            "must accept ours"
        )
    return NodeFailure(code.name, Reason.for_transport(code.name), details, hint)


def _verified(node: NodeAddress, signed: pb.SignedResult) -> pb.QueryResult | NodeFailure:
    if node.public_key is None:
        return NodeFailure.of(
            Reason.NO_NODE_KEY, f"no public key configured for node {node.id!r}",
            "add public_key to its [[nodes]] entry (the node's .sign.pub file)",
        )  # fmt: skip
    if signed.key_id != key_id(node.public_key) or not verify(
        node.public_key, signed.result, signed.signature
    ):
        return NodeFailure.of(
            Reason.BAD_RESULT_SIGNATURE,
            f"the result of node {node.id!r} is not signed by its configured key",
            "check the node's public_key in the coordinator config",
        )  # fmt: skip
    try:
        return pb.QueryResult.FromString(signed.result)
    except DecodeError:
        message = f"node {node.id!r} sent an unreadable result"
        return NodeFailure.of(Reason.MALFORMED_RESULT, message)


def ask_node(
    node: NodeAddress,
    request: pb.SignedQuery,
    dialer: Dialer,
    timeout: float,
    retries: int = 2,
) -> NodeReply:
    """Send one signed query to one node, retrying transient failures with the same bytes."""
    with dialer.channel(node) as channel:
        stub = pb_grpc.NodeServiceStub(channel)
        for attempt in range(retries + 1):
            try:
                signed = stub.RunQuery(request, timeout=timeout)
            except grpc.RpcError as error:
                code = error.code() if isinstance(error, grpc.Call) else None
                if code not in _RETRYABLE or attempt == retries:
                    failure = failure_of(error, node, dialer.tls is not None)
                    return NodeReply(node.id, request=request, failure=failure)
                time.sleep(0.2 * 2**attempt)
                continue
            checked = _verified(node, signed)
            if isinstance(checked, NodeFailure):
                return NodeReply(node.id, signed=signed, request=request, failure=checked)
            return NodeReply(node.id, result=checked, signed=signed, request=request)
    raise AssertionError("unreachable")


def describe_node(
    node: NodeAddress, dialer: Dialer, timeout: float, signer: QuerySigner | None = None
) -> pb.NodeDescription | NodeFailure:
    """What one node serves (its variables, their deviations), or why it did not say.

    A node whose certificate is revoked is refused before the call (see `Dialer`).
    With a signer, the call carries the coordinator's signed identity (needed by a node
    served with ``--insecure``, which has no TLS peer to go by). The description is signed
    by the node and checked against its configured key (`coordinator.identity`); a node
    of an earlier release, without ``DescribeSigned``, answers its unsigned ``Describe``.
    """
    revoked = dialer.revoked(node, timeout)
    if revoked is not None:
        return revoked
    metadata = [signer.identity_for(node.id)] if signer is not None else None
    with dialer.channel(node) as channel:
        stub = pb_grpc.NodeServiceStub(channel)
        try:
            signed = stub.DescribeSigned(pb.DescribeRequest(), timeout=timeout, metadata=metadata)
            return checked_description(node, signed)
        except FedstatsError as exc:
            return NodeFailure.of(exc.reason, exc.message, exc.hint)
        except grpc.RpcError as error:
            if not isinstance(error, grpc.Call) or error.code() != grpc.StatusCode.UNIMPLEMENTED:
                return failure_of(error, node, dialer.tls is not None)
        try:
            description: pb.NodeDescription = stub.Describe(
                pb.DescribeRequest(), timeout=timeout, metadata=metadata
            )
            return description
        except grpc.RpcError as error:
            return failure_of(error, node, dialer.tls is not None)


def describe_all(
    nodes: tuple[NodeAddress, ...],
    dialer: Dialer,
    timeout: float,
    signer: QuerySigner | None = None,
) -> dict[str, pb.NodeDescription | NodeFailure]:
    """Describe every node concurrently (with the signer's identity, when given)."""
    with ThreadPoolExecutor(max_workers=max(1, min(32, len(nodes)))) as pool:
        futures = {n.id: pool.submit(describe_node, n, dialer, timeout, signer) for n in nodes}
        return {node_id: future.result() for node_id, future in futures.items()}


def fan_out(
    nodes: tuple[NodeAddress, ...],
    query_id: str,
    queries: dict[str, Query],
    signer: QuerySigner,
    dialer: Dialer,
    timeout: float,
    progress: ProgressFn | None = None,
    not_asked: tuple[str, ...] = (),
) -> dict[str, NodeReply]:
    """Ask every node its own query concurrently; every node asked gets an entry.

    Args:
        nodes: The nodes to ask (those without an entry in ``queries`` are skipped).
        query_id: The query's id, the same on every node.
        queries: Each node's query (the indicators it can answer).
        signer: Signs each node's request.
        dialer: Opens the channels.
        timeout: Deadline of each call.
        progress: Told each node's state.
        not_asked: Nodes already known to have failed (reported as failed at once).
    """
    asked = [n for n in nodes if n.id in queries]

    def ask(node: NodeAddress) -> NodeReply:
        request = signer.sign_for(node.id, query_id, queries[node.id])
        reply = ask_node(node, request, dialer, timeout)
        if progress is not None:
            progress(node.id, "answered" if reply.result is not None else "failed")
        return reply

    if progress is not None:
        for node_id in [n.id for n in asked] + list(not_asked):
            progress(node_id, "waiting")
        for node_id in not_asked:
            progress(node_id, "failed")
    with ThreadPoolExecutor(max_workers=max(1, min(32, len(asked) or 1))) as pool:
        futures = {n.id: pool.submit(ask, n) for n in asked}
        return {node_id: future.result() for node_id, future in futures.items()}
