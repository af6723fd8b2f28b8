"""Keys and signed messages of one secure-aggregation round.

Every round has fresh X25519 key pairs per node: one (``c``) only encrypts the Shamir
shares a node sends its peers through the coordinator, the other (``s``) agrees the pair
mask seeds. Shared secrets go through HKDF-SHA256 with the round's context (round id and
query hash) as salt, so no seed or key serves two rounds or two queries.

Every message is an envelope signed with the sender's Ed25519 identity key over the
round id, the query hash, the step and the canonical JSON body. ``Verifier`` checks the
signature against the key pinned for the named sender (a message re-signed by anyone
else is refused), the round and query binding, the step, and refuses a second message
of the same sender and step (a replay).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from security.signing import sign, verify

__all__ = [
    "Envelope",
    "RoundError",
    "RoundKeys",
    "Verifier",
    "b64",
    "open_share",
    "pair_seed",
    "private_bytes",
    "public_bytes",
    "round_context",
    "seal",
    "seal_share",
    "unb64",
]

_DOMAIN = b"fedstats secagg v1\x00"


class RoundError(Exception):
    """A round message or step that an honest party must refuse."""


def b64(raw: bytes) -> str:
    """Bytes as base64 text (for JSON bodies)."""
    return base64.b64encode(raw).decode("ascii")


def unb64(text: str) -> bytes:
    """Base64 text back to bytes."""
    return base64.b64decode(text.encode("ascii"), validate=True)


def round_context(round_id: str, query_sha256: str) -> bytes:
    """The 32 bytes every key derivation and signature of the round is bound to."""
    return hashlib.sha256(_DOMAIN + f"{round_id}\x00{query_sha256}".encode()).digest()


def public_bytes(key: X25519PublicKey) -> bytes:
    """Raw 32-byte X25519 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def private_bytes(key: X25519PrivateKey) -> bytes:
    """Raw 32-byte X25519 private key (only ever Shamir-shared, never sent whole)."""
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


@dataclass
class RoundKeys:
    """A node's fresh X25519 key pairs for one round."""

    c: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)
    s: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)


def _hkdf(secret: bytes, context: bytes, label: str, a: str, b: str) -> bytes:
    first, second = sorted((a, b))
    info = f"{label}\x00{first}\x00{second}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=context, info=info).derive(secret)


def pair_seed(mine: X25519PrivateKey, theirs: bytes, context: bytes, me: str, peer: str) -> bytes:
    """The 256-bit pair mask seed of ``me`` and ``peer`` (the same from either side)."""
    shared = mine.exchange(X25519PublicKey.from_public_bytes(theirs))
    return _hkdf(shared, context, "mask", me, peer)


def _share_key(mine: X25519PrivateKey, theirs: bytes, context: bytes, a: str, b: str) -> bytes:
    shared = mine.exchange(X25519PublicKey.from_public_bytes(theirs))
    return _hkdf(shared, context, "shares", a, b)


def seal_share(
    mine: X25519PrivateKey, theirs: bytes, context: bytes, sender: str, to: str, plain: bytes
) -> bytes:
    """AES-GCM encryption of a share bundle for ``to``, bound to round, sender and recipient."""
    nonce = os.urandom(12)
    aad = context + f"\x00{sender}\x00{to}".encode()
    key = _share_key(mine, theirs, context, sender, to)
    return nonce + AESGCM(key).encrypt(nonce, plain, aad)


def open_share(
    mine: X25519PrivateKey, theirs: bytes, context: bytes, sender: str, to: str, sealed: bytes
) -> bytes:
    """Decrypt a share bundle; refuses one not made for this round, sender and recipient."""
    aad = context + f"\x00{sender}\x00{to}".encode()
    key = _share_key(mine, theirs, context, sender, to)
    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], aad)
    except Exception as exc:  # cryptography raises InvalidTag
        raise RoundError(f"the share bundle from {sender} does not open") from exc


@dataclass(frozen=True)
class Envelope:
    """A signed round message.

    Attributes:
        round_id: The round.
        query_sha256: Hash of the query the round answers.
        step: The protocol step (advertise, shares, masked, unmask).
        sender: The signing node's id.
        body: Canonical JSON of the step's content.
        signature: Ed25519 signature of ``signed_bytes()``.
    """

    round_id: str
    query_sha256: str
    step: str
    sender: str
    body: str
    signature: bytes

    def signed_bytes(self) -> bytes:
        """What the signature covers."""
        head = json.dumps([self.round_id, self.query_sha256, self.step, self.sender])
        return _DOMAIN + head.encode() + b"\x00" + self.body.encode()

    def content(self) -> dict[str, Any]:
        """The body as a dict."""
        value = json.loads(self.body)
        if not isinstance(value, dict):
            raise RoundError(f"the {self.step} message of {self.sender} has no object body")
        return value


def seal(
    identity: Ed25519PrivateKey,
    round_id: str,
    query_sha256: str,
    step: str,
    sender: str,
    content: dict[str, Any],
) -> Envelope:
    """Sign a step's content as ``sender`` for the round and query."""
    body = json.dumps(content, sort_keys=True, separators=(",", ":"))
    unsigned = Envelope(round_id, query_sha256, step, sender, body, b"")
    return Envelope(
        round_id, query_sha256, step, sender, body, sign(identity, unsigned.signed_bytes())
    )


@dataclass
class Verifier:
    """Checks the messages of one round against pinned identity keys.

    Attributes:
        round_id: The round this party takes part in.
        query_sha256: The query it answers.
        identities: Each node id's pinned Ed25519 public key.
        seen: (sender, step) pairs already accepted.
    """

    round_id: str
    query_sha256: str
    identities: dict[str, Ed25519PublicKey]
    seen: set[tuple[str, str]] = field(default_factory=set)

    def accept(self, envelope: Envelope, step: str, slot: str = "") -> dict[str, Any]:
        """The content of a valid, first message of ``step``; refuses anything else.

        Args:
            envelope: The message.
            step: The step expected.
            slot: For steps with one message per recipient, the body key naming it
                (a sender may send one message per step and slot).
        """
        if (envelope.round_id, envelope.query_sha256) != (self.round_id, self.query_sha256):
            raise RoundError(f"a message of {envelope.sender} belongs to another round or query")
        if envelope.step != step:
            raise RoundError(f"expected a {step} message, got {envelope.step}")
        key = self.identities.get(envelope.sender)
        if key is None:
            raise RoundError(f"{envelope.sender} is not a pinned participant")
        if not verify(key, envelope.signed_bytes(), envelope.signature):
            raise RoundError(f"the {step} message is not signed by {envelope.sender}'s key")
        content = envelope.content()
        key_seen = (envelope.sender, f"{step}/{content.get(slot, '')}" if slot else step)
        if key_seen in self.seen:
            raise RoundError(f"a second {step} message of {envelope.sender} (replay) is refused")
        self.seen.add(key_seen)
        return content
