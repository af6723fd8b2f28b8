"""A certificate's life after ``fedstats certs issue``: request, sign, revoke.

- ``request`` runs where the key will live (the node's host): it makes the private key
  (mode 0600) and a certificate signing request; only the CSR leaves the host.
- ``sign`` runs at the CA: the operator names the party they expect, and the CSR must
  ask for exactly that identity (one ``fedstats://`` URI SAN, the id as a DNS SAN, other
  DNS names or IP addresses as hosts) with a P-256 key and a valid self-signature.
- ``revoke`` adds a certificate to the CA's revocation list ``crl.pem`` (signed by the
  CA, valid for ``CRL_DAYS``); without a certificate it re-issues the list as it is, which
  must be done before the list's next update. Parties load it with ``[tls] crl``.

Every certificate the CA signs is listed in ``issued.csv`` beside ``ca.pem``.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from common.durable import write_durably
from common.errors import FedstatsError
from fedstats.certs import (
    LEAF_DAYS,
    check_id,
    leaf_certificate,
    load_ca,
    party_files,
    san_names,
    write_key,
)
from security.certificates import SCHEME, parse_identity
from security.signing import public_key_text, write_private_key

__all__ = ["CRL_DAYS", "request", "revoke", "sign"]

CRL_DAYS = 30
REASONS = {r.name: r for r in x509.ReasonFlags if r.name != "unspecified"} | {
    "unspecified": x509.ReasonFlags.unspecified
}


def request(
    directory: Path,
    role: str,
    ident: str,
    hosts: tuple[str, ...] = (),
    *,
    signing_key: bool = False,
) -> dict[str, Path]:
    """Make a party's TLS key and CSR in ``directory`` (and its signing key on request).

    Raises:
        FedstatsError: A bad role or id, or files already there (never overwritten: a
            renewal goes to a new directory, and the config moves to it after signing).
    """
    check_id(role, ident)
    files = party_files(directory, role, ident)
    out = {"key": files["key"], "csr": files["cert"].with_suffix(".csr")}
    if signing_key:
        out |= {"sign_key": files["sign_key"], "sign_pub": files["sign_pub"]}
    taken = [str(p) for p in out.values() if p.exists()]
    if taken:
        raise FedstatsError(
            f"{', '.join(taken)} already exist(s)", field="--out",
            hint="request into a new directory, e.g. pki/2027, and point [tls] at it once "
            "the CA has signed",
        )  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{role} {ident}")]))
        .add_extension(x509.SubjectAlternativeName(san_names(role, ident, hosts)), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_key(key, out["key"])
    out["csr"].write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    if signing_key:
        signer = Ed25519PrivateKey.generate()
        write_private_key(signer, out["sign_key"])
        out["sign_pub"].write_text(public_key_text(signer.public_key()) + "\n")
    return out


def sign(
    ca_dir: Path,
    csr_file: Path,
    role: str,
    ident: str,
    *,
    days: int = LEAF_DAYS,
    out: Path | None = None,
    now: dt.datetime | None = None,
) -> Path:
    """Sign a CSR at the CA, for the party the CA operator expects.

    Returns:
        The certificate written (``out``, or the CSR's name with ``.pem``).

    Raises:
        FedstatsError: A CSR that does not parse or verify, asks for another identity or
            another key type, or carries URI SANs beyond its identity.
    """
    check_id(role, ident)
    ca = load_ca(ca_dir)
    try:
        csr = x509.load_pem_x509_csr(csr_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise FedstatsError(f"{csr_file}: not a PEM CSR ({exc})", field="--csr") from None
    hosts = _checked_hosts(csr, csr_file, role, ident)
    public = csr.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
        raise FedstatsError(
            f"{csr_file}: the key is not ECDSA P-256", field="--csr",
            hint="make the request with `fedstats certs request`",
        )  # fmt: skip
    start = now or dt.datetime.now(dt.UTC)
    cert = leaf_certificate(ca, public, role, ident, hosts, days, start)
    target = out or csr_file.with_suffix(".pem")
    target.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _record_issued(ca_dir, cert, role, ident)
    return target


def _checked_hosts(
    csr: x509.CertificateSigningRequest, csr_file: Path, role: str, ident: str
) -> tuple[str, ...]:
    """The extra hosts of a CSR that asks for exactly ``role``/``ident``."""
    expected = f"{SCHEME}{role}/{ident}"

    def refuse(problem: str) -> FedstatsError:
        return FedstatsError(
            f"{csr_file}: {problem}; it was not signed", field="--csr",
            hint=f"ask the party for a new request: `fedstats certs request --{role} {ident}`",
        )  # fmt: skip

    if not csr.is_signature_valid:
        raise refuse("the request's signature does not verify")
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise refuse("the request names no identity (no SAN)") from None
    names = san.get_values_for_type(x509.UniformResourceIdentifier)
    if names != [expected]:
        asked = ", ".join(names) or "no identity"
        raise refuse(f"the request asks for {asked}, not {expected} alone")
    if parse_identity(names[0]) != (role, ident):
        raise refuse(f"{names[0]} is not a fedstats identity")
    dns = san.get_values_for_type(x509.DNSName)
    if ident not in dns:
        raise refuse(f"the request lacks the DNS name {ident!r}")
    others = [str(n.value) for n in san if not isinstance(n, x509.UniformResourceIdentifier)]
    return tuple(h for h in others if h != ident)


def _record_issued(ca_dir: Path, cert: x509.Certificate, role: str, ident: str) -> None:
    path = ca_dir / "issued.csv"
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        if new:
            writer.writerow(["serial", "role", "id", "not_after"])
        writer.writerow(
            [f"{cert.serial_number:x}", role, ident, cert.not_valid_after_utc.isoformat()]
        )


def revoke(
    ca_dir: Path,
    cert_file: Path | None = None,
    *,
    reason: str = "key_compromise",
    days: int = CRL_DAYS,
    now: dt.datetime | None = None,
) -> Path:
    """Add ``cert_file`` to the CA's ``crl.pem`` and re-issue it (without one: re-issue).

    Raises:
        FedstatsError: No CA, a certificate not issued by this CA, or an unknown reason.
    """
    ca_cert, ca_key = load_ca(ca_dir)
    if reason not in REASONS:
        raise FedstatsError(
            f"unknown revocation reason {reason!r}", field="--reason",
            hint=f"one of {', '.join(sorted(REASONS))}",
        )  # fmt: skip
    crl_path = ca_dir / "crl.pem"
    entries, number = _existing(crl_path)
    when = now or dt.datetime.now(dt.UTC)
    if cert_file is not None:
        cert = _issued_here(cert_file, ca_cert)
        if cert.serial_number not in {e.serial_number for e in entries}:
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(cert.serial_number)
                .revocation_date(when)
                .add_extension(x509.CRLReason(REASONS[reason]), critical=False)
                .build()
            )
            entries.append(entry)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(when - dt.timedelta(minutes=5))
        .next_update(when + dt.timedelta(days=days))
        .add_extension(x509.CRLNumber(number + 1), critical=False)
    )
    for entry in entries:
        builder = builder.add_revoked_certificate(entry)
    crl = builder.sign(ca_key, hashes.SHA256())
    write_durably(crl_path, crl.public_bytes(serialization.Encoding.PEM))
    return crl_path


def _existing(crl_path: Path) -> tuple[list[x509.RevokedCertificate], int]:
    if not crl_path.exists():
        return [], 0
    crl = x509.load_pem_x509_crl(crl_path.read_bytes())
    try:
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        number = 0
    return list(crl), number


def _issued_here(cert_file: Path, ca_cert: x509.Certificate) -> x509.Certificate:
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise FedstatsError(f"{cert_file}: not a PEM certificate ({exc})", field="--cert") from None
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        raise FedstatsError(
            f"{cert_file}: not issued by the CA in this directory",
            field="--cert",
            hint="revoke with the CA that issued it",
        ) from None
    return cert
