"""X.509 checks for the federation's mutual TLS: clear errors before a handshake fails.

Every party's certificate is issued by the federation CA (ECDSA P-256) and names its
identity in a URI SAN, ``fedstats://node/<id>`` or ``fedstats://coordinator/<id>``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from common.errors import ConfigError

__all__ = ["SCHEME", "TlsFiles", "check_party_certificate", "identity_uri", "parse_identity"]

SCHEME = "fedstats://"
ROLES = ("node", "coordinator")
RENEW_DAYS = 30


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one party: the federation CA, its certificate and its private key.

    Attributes:
        crl: The federation's certificate revocation list (PEM), if the party enforces one.
        renew_days: Warn this many days before the certificate expires.
    """

    ca: Path
    cert: Path
    key: Path
    crl: Path | None = None
    renew_days: int = RENEW_DAYS

    def read(self) -> tuple[bytes, bytes, bytes]:
        """The CA, certificate and key bytes."""
        return self.ca.read_bytes(), self.cert.read_bytes(), self.key.read_bytes()


def identity_uri(role: str, ident: str) -> str:
    """The URI SAN of a party, e.g. ``fedstats://node/vienna``."""
    return f"{SCHEME}{role}/{ident}"


def parse_identity(uri: str) -> tuple[str, str] | None:
    """``(role, id)`` of a fedstats URI, or None when it is not one."""
    if not uri.startswith(SCHEME):
        return None
    role, _, ident = uri[len(SCHEME) :].partition("/")
    return (role, ident) if role in ROLES and ident else None


def _load(path: Path, where: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file {path}", field=where) from None


def check_party_certificate(
    files: TlsFiles, role: str, ident: str, where: str, now: dt.datetime | None = None
) -> None:
    """Check a party's own certificate before serving or dialling.

    Raises:
        ConfigError: Naming what is wrong: unreadable files, a certificate not issued by
            the CA, expired or not yet valid, issued for another identity, or not
            matching the private key.
    """
    now = now or dt.datetime.now(dt.UTC)
    try:
        ca = x509.load_pem_x509_certificate(_load(files.ca, f"{where}.ca"))
        cert = x509.load_pem_x509_certificate(_load(files.cert, f"{where}.cert"))
        key = serialization.load_pem_private_key(_load(files.key, f"{where}.key"), None)
    except ValueError as exc:
        raise ConfigError(f"{where}: a TLS file is not valid PEM ({exc})", field=where) from None
    _check_issuer(cert, ca, where)
    _check_validity(cert, now, where)
    _check_validity(ca, now, f"{where}.ca")
    expected = identity_uri(role, ident)
    if expected not in uris(cert):
        holder = ", ".join(uris(cert)) or "no identity"
        raise ConfigError(
            f"{where}.cert: {files.cert.name} is issued for {holder}, not {expected}",
            field=f"{where}.cert",
            hint=f"issue one with `fedstats certs issue --{role} {ident}`",
        )
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise ConfigError(
            f"{where}.key: the private key does not match the certificate", field=where
        )


def uris(cert: x509.Certificate) -> list[str]:
    """URI SANs of a certificate."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def _check_issuer(cert: x509.Certificate, ca: x509.Certificate, where: str) -> None:
    public = ca.public_key()
    ok = cert.issuer == ca.subject and isinstance(public, ec.EllipticCurvePublicKey)
    if ok:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert cert.signature_hash_algorithm is not None
        try:
            public.verify(
                cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
            )
        except InvalidSignature:
            ok = False
    if not ok:
        raise ConfigError(
            f"{where}.cert: the certificate was not issued by the federation CA in {where}.ca",
            field=f"{where}.cert",
            hint="use the CA file of this federation, or re-issue the certificate",
        )


def _check_validity(cert: x509.Certificate, now: dt.datetime, where: str) -> None:
    if now < cert.not_valid_before_utc:
        raise ConfigError(
            f"{where}: certificate not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
            field=where,
            hint="check the clock, or wait",
        )
    if now > cert.not_valid_after_utc:
        raise ConfigError(
            f"{where}: certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
            field=where,
            hint="issue a new one with `fedstats certs issue`",
        )
