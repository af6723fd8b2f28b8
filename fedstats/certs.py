"""``fedstats certs``: a federation CA and the certificates and signing keys of its parties.

Certificates are ECDSA P-256 with the identity in a URI SAN (``fedstats://node/<id>``)
and the bare id as a DNS SAN, which coordinators use as the TLS server name. Every
party also gets an Ed25519 signing key: coordinators sign queries, nodes sign results.
Private keys are written with mode 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.errors import FedstatsError
from security.certificates import identity_uri
from security.signing import public_key_text, write_private_key

__all__ = [
    "CA_DAYS",
    "LEAF_DAYS",
    "check_id",
    "init_ca",
    "issue",
    "leaf_certificate",
    "load_ca",
    "party_files",
    "san_names",
    "write_key",
]

CA_DAYS = 5 * 365
LEAF_DAYS = 397  # the CA/Browser Forum's ceiling for server certificates
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def party_files(directory: Path, role: str, ident: str) -> dict[str, Path]:
    """Where ``issue`` writes a party's files."""
    stem = directory / f"{role}-{ident}"
    return {
        "cert": stem.with_suffix(".pem"),
        "key": stem.with_suffix(".key"),
        "sign_key": Path(f"{stem}.sign.key"),
        "sign_pub": Path(f"{stem}.sign.pub"),
    }


def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    """Write a private key as PEM with mode 0600."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(pem)


def init_ca(directory: Path, name: str = "fedstats federation", days: int = CA_DAYS) -> Path:
    """Create the federation CA (``ca.pem``, ``ca.key``) in ``directory``.

    Raises:
        FedstatsError: When a CA already exists there (it is never overwritten).
    """
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "ca.pem", directory / "ca.key"
    if cert_path.exists() or key_path.exists():
        raise FedstatsError(
            f"{directory} already holds a CA", field="--dir", hint="use another directory"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_key(key, key_path)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path


def san_names(role: str, ident: str, hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    """A party's SANs: its identity URI, its id as a DNS name, then the extra hosts."""
    names: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(identity_uri(role, ident)),
        x509.DNSName(ident),
    ]
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def leaf_certificate(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    public: ec.EllipticCurvePublicKey,
    role: str,
    ident: str,
    hosts: tuple[str, ...],
    days: int,
    start: dt.datetime,
) -> x509.Certificate:
    """A party's certificate for ``public``, signed by the CA (``issue`` and ``sign``)."""
    ca_cert, ca_key = ca
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{role} {ident}")]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - dt.timedelta(minutes=5))
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(san_names(role, ident, hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The CA certificate and key in ``directory``.

    Raises:
        FedstatsError: When there is no CA there.
    """
    try:
        ca_cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    except FileNotFoundError:
        raise FedstatsError(
            f"no CA in {directory}", field="--dir", hint="run `fedstats certs init-ca` first"
        ) from None
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    return ca_cert, ca_key


def check_id(role: str, ident: str) -> None:
    """Refuse an unknown role or an id that is not usable.

    Raises:
        FedstatsError: Naming the option and the rule.
    """
    if role not in ("node", "coordinator"):
        raise FedstatsError(f"unknown role {role!r}", hint="use --node ID or --coordinator ID")
    if not _ID.match(ident):
        raise FedstatsError(
            f"{ident!r} is not a usable id",
            field=f"--{role}",
            hint="use lower-case letters, digits and '-', as in the node config's [node] id",
        )


def issue(
    directory: Path,
    role: str,
    ident: str,
    hosts: tuple[str, ...] = (),
    days: int = LEAF_DAYS,
    now: dt.datetime | None = None,
) -> dict[str, Path]:
    """Issue a party's TLS certificate and Ed25519 signing key with the CA in ``directory``.

    Args:
        directory: Holds ``ca.pem`` and ``ca.key``; the new files are written there.
        role: ``node`` or ``coordinator``.
        ident: The party's id (lower-case letters, digits and '-').
        hosts: Extra DNS names or IP addresses the party is reached at.
        days: Lifetime of the certificate.
        now: Start of validity (for tests).

    Raises:
        FedstatsError: For a bad id or role, or a missing CA.
    """
    check_id(role, ident)
    ca_cert, ca_key = load_ca(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = leaf_certificate(
        (ca_cert, ca_key),
        key.public_key(),
        role,
        ident,
        hosts,
        days,
        now or dt.datetime.now(dt.UTC),
    )
    files = party_files(directory, role, ident)
    write_key(key, files["key"])
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    signing = Ed25519PrivateKey.generate()
    write_private_key(signing, files["sign_key"])
    files["sign_pub"].write_text(public_key_text(signing.public_key()) + "\n")
    return files
