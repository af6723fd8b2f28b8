"""A party's key files from its config: ``[tls]`` and ``[signing]``, read once for all.

Node and coordinator configs take the same two tables, with paths relative to the config
file::

    [tls]                       # mutual TLS; without it a party talks plaintext (loopback)
    ca = "pki/ca.pem"           # the federation CA
    cert = "pki/node-vienna.pem"
    key = "pki/node-vienna.key"
    crl = "pki/crl.pem"         # optional: the federation's revocation list, enforced
    renew_days = 30             # optional: warn this many days before the cert expires

    [signing]                   # Ed25519 key that signs what the party sends
    key = "pki/node-vienna.sign.key"
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.errors import ConfigError
from common.tomlfile import Section
from security.certificates import RENEW_DAYS, TlsFiles
from security.signing import parse_public_key

__all__ = ["KeyFiles", "parse_key_files", "public_key"]

TLS_KEYS = ("ca", "cert", "key")


@dataclass(frozen=True)
class KeyFiles:
    """The files of ``[tls]`` and ``[signing]``; None where the table is absent."""

    tls: TlsFiles | None
    signing_key: Path | None


def parse_key_files(top: Section) -> KeyFiles:
    """Read ``[tls]`` and ``[signing]`` of a config's top level (both optional).

    Raises:
        ConfigError: Naming the file and the key: an unknown or missing key, a path that
            is not a string or is empty.
    """
    base = top.file.parent
    tls = None
    if "tls" in top.table:
        sec = top.sub("tls")
        sec.check_keys({*TLS_KEYS, "crl", "renew_days"})
        crl = base / _path(sec, "crl") if "crl" in sec.table else None
        renew_days = sec.get("renew_days", int, RENEW_DAYS)
        if renew_days < 0:
            raise sec.error("renew_days", "must be 0 or more", hint="e.g. renew_days = 30")
        ca, cert, key = (base / _path(sec, k) for k in TLS_KEYS)
        tls = TlsFiles(ca, cert, key, crl, renew_days)
    signing = None
    if "signing" in top.table:
        sec = top.sub("signing")
        sec.check_keys({"key"})
        signing = base / _path(sec, "key")
    return KeyFiles(tls, signing)


def _path(sec: Section, name: str) -> str:
    return sec.text(name, hint="a file name, relative to the config file")


def public_key(sec: Section, name: str) -> Ed25519PublicKey:
    """The ``ed25519:<base64>`` public key under ``name`` (another party's, e.g. a grant's).

    Raises:
        ConfigError: Naming the file and the key when it is missing or not such a key.
    """
    text: str = sec.get(name, str)
    try:
        return parse_public_key(text, sec.key(name))
    except ConfigError as exc:
        message = exc.message.removeprefix(f"{sec.key(name)}: ")
        raise sec.error(name, message, hint=exc.hint) from None
