"""Ed25519 signatures: coordinators sign queries, nodes sign results and audit entries.

Public keys travel as text, ``ed25519:<base64 of the 32 raw bytes>``, so they fit in a
TOML config; a key's id is the hex SHA-256 of its raw bytes.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common.errors import ConfigError

__all__ = [
    "DESCRIPTION_DOMAIN",
    "IDENTITY_METADATA_KEY",
    "PUBLIC_PREFIX",
    "find_signer",
    "key_id",
    "load_private_key",
    "parse_public_key",
    "public_key_text",
    "sign",
    "verify",
    "write_private_key",
]

PUBLIC_PREFIX = "ed25519:"

DESCRIPTION_DOMAIN = b"fedstats-describe-v1\0"
"""Prefixed to a NodeDescription's bytes before the node signs them, so that a signed
description can never pass for a signed result (the same key signs both)."""

IDENTITY_METADATA_KEY = "fedstats-identity-bin"
"""gRPC binary metadata: a caller's signed identity (a SignedQuery of a QueryRequest with
no spec), for Describe and GetBudget on a node that has no TLS peer to go by."""


def write_private_key(key: Ed25519PrivateKey, path: Path) -> None:
    """Write a private key as unencrypted PKCS#8 PEM, readable by the owner only (0600)."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.chmod(path, 0o600)


def load_private_key(path: Path, where: str) -> Ed25519PrivateKey:
    """Read an Ed25519 private key; ``where`` names the config key for errors."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such key file {path}", field=where) from None
    except ValueError as exc:
        raise ConfigError(
            f"{where}: {path} is not a PEM private key ({exc})", field=where
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(
            f"{where}: {path} is not an Ed25519 key",
            field=where,
            hint="make one with `fedstats certs issue`",
        )
    return key


def public_key_text(key: Ed25519PublicKey) -> str:
    """The text form of a public key, ``ed25519:<base64>``."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PUBLIC_PREFIX + base64.b64encode(raw).decode()


def parse_public_key(text: str, where: str) -> Ed25519PublicKey:
    """Parse ``ed25519:<base64>``; ``where`` names the config key for errors."""
    if not text.startswith(PUBLIC_PREFIX):
        raise ConfigError(
            f"{where}: a public key must look like 'ed25519:<base64>'",
            field=where,
            hint="copy it from the .sign.pub file written by `fedstats certs issue`",
        )
    try:
        raw = base64.b64decode(text[len(PUBLIC_PREFIX) :], validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise ConfigError(f"{where}: not a valid Ed25519 public key", field=where) from None


def key_id(key: Ed25519PublicKey) -> str:
    """Hex SHA-256 of the raw public key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    """Ed25519 signature of the exact bytes."""
    return key.sign(data)


def verify(key: Ed25519PublicKey, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is the key's signature of exactly ``data``."""
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def find_signer(keys: dict[str, Ed25519PublicKey], data: bytes, signature: bytes) -> str | None:
    """The name of the key that signed ``data``, or None when no key did."""
    for name, key in keys.items():
        if verify(key, data, signature):
            return name
    return None
