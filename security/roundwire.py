"""The wire form of secure rounds: envelopes as protobuf, the query hash every party binds.

Both the node and the coordinator read and write round messages through these helpers,
so the two sides agree on one byte form and one query hash.
"""

from __future__ import annotations

import hashlib
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from indicators.spec import Query
from protos import node_pb2 as pb
from security.roundkeys import Envelope, RoundError

__all__ = ["envelope_of", "envelopes_of", "participants_of", "query_sha256", "wire_of"]


def query_sha256(query: Query) -> str:
    """SHA-256 of the query's canonical record: the same on every node of a round."""
    record = json.dumps(query.to_record(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(record.encode()).hexdigest()


def wire_of(envelope: Envelope) -> pb.RoundEnvelope:
    """A round envelope as its protobuf message."""
    return pb.RoundEnvelope(
        round_id=envelope.round_id,
        query_sha256=envelope.query_sha256,
        step=envelope.step,
        sender=envelope.sender,
        body=envelope.body,
        signature=envelope.signature,
    )


def envelope_of(message: pb.RoundEnvelope) -> Envelope:
    """A protobuf round envelope back as the signed dataclass (verified by its reader)."""
    return Envelope(
        message.round_id,
        message.query_sha256,
        message.step,
        message.sender,
        message.body,
        bytes(message.signature),
    )


def envelopes_of(messages: list[pb.RoundEnvelope]) -> list[Envelope]:
    """Every envelope of a repeated field."""
    return [envelope_of(m) for m in messages]


def participants_of(secure: pb.SecureRound) -> dict[str, Ed25519PublicKey]:
    """The identity keys a signed round description vouches for, by node id.

    Raises:
        RoundError: A node listed twice or a key that is not a raw Ed25519 key.
    """
    keys: dict[str, Ed25519PublicKey] = {}
    for p in secure.participants:
        if p.node_id in keys:
            raise RoundError(f"the round lists {p.node_id} twice")
        try:
            keys[p.node_id] = Ed25519PublicKey.from_public_bytes(bytes(p.public_key))
        except ValueError:
            raise RoundError(f"the round's key of {p.node_id} is not an Ed25519 key") from None
    return keys
