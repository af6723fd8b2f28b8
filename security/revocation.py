"""The federation's certificate revocation list, renewal warnings and the peer pre-flight.

gRPC's Python API has no revocation hook, so each party enforces the CRL (``[tls] crl``)
itself: the node checks the client certificate that gRPC verified (node.revoked), and the
coordinator reads the node's certificate in a TLS handshake of its own before it asks the
node anything (`peer_certificate`). The CRL must be signed by the federation CA; it is
re-read whenever its file changes, so a revocation takes effect without a restart. A
list older than one already accepted (lower CRL number or thisUpdate) is refused
(`security.crl_seen`): it would un-revoke certificates.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from common.errors import ConfigError
from security.certificates import TlsFiles
from security.crl_seen import check_forward, crl_mark, read_seen, record_seen

__all__ = ["CRL_WARN_DAYS", "RevocationList", "peer_certificate", "renewal_warnings"]

CRL_WARN_DAYS = 7
"""Warn this many days before the list's next update (it is re-issued monthly)."""


@dataclass(frozen=True)
class _Loaded:
    stamp: tuple[int, ...]
    crl: x509.CertificateRevocationList


class RevocationList:
    """The CRL at ``path``, checked against the CA at ``ca``; re-read when the file changes.

    Args:
        path: The CRL (``[tls] crl``).
        ca: The federation CA's certificate.
        seen: Where the newest list accepted is recorded (`security.crl_seen.CRL_SEEN_FILE`
            in the party's state directory); None keeps it in memory only.

    Raises:
        ConfigError: (at construction and on a changed file) a CRL that is not PEM, not
            issued by the federation CA, whose signature does not verify, that has no CRL
            number, or that is older than one already accepted (here or in ``seen``).
    """

    def __init__(self, path: Path, ca: Path, seen: Path | None = None) -> None:
        self.path = path
        self.ca = x509.load_pem_x509_certificate(ca.read_bytes())
        self.seen = seen
        self._lock = threading.Lock()
        self._highest = read_seen(seen, self.ca) if seen is not None else None
        self._loaded = self._load()

    def _load(self) -> _Loaded:
        try:
            stat = os.stat(self.path)
            crl = x509.load_pem_x509_crl(self.path.read_bytes())
        except FileNotFoundError:
            raise ConfigError(
                f"tls.crl: no such file {self.path}", field="tls.crl",
                hint="copy the CA's crl.pem there (`fedstats certs revoke --dir CA` writes it)",
            ) from None  # fmt: skip
        except ValueError as exc:
            message = f"tls.crl: {self.path} is not a PEM CRL ({exc})"
            raise ConfigError(message, field="tls.crl") from None
        public = self.ca.public_key()
        if crl.issuer != self.ca.subject or not (
            isinstance(public, ec.EllipticCurvePublicKey) and crl.is_signature_valid(public)
        ):
            raise ConfigError(
                f"tls.crl: {self.path} is not signed by the federation CA in tls.ca",
                field="tls.crl",
                hint="use the crl.pem that `fedstats certs revoke` wrote with this CA",
            )
        mark = crl_mark(crl, self.path)
        check_forward(self.path, mark, self._highest, self.seen)
        if self._highest is None or mark > self._highest:
            if self.seen is not None:
                record_seen(self.seen, self.ca, mark, self.path)
            self._highest = mark
        return _Loaded(_stamp(stat), crl)

    def current(self) -> x509.CertificateRevocationList:
        """The CRL, re-read when its file changed since it was last read.

        Raises:
            ConfigError: The file went missing or no longer holds a CRL of the CA.
        """
        with self._lock:
            try:
                stat = os.stat(self.path)
            except OSError as exc:
                raise ConfigError(
                    f"tls.crl: {self.path} cannot be read ({exc})", field="tls.crl"
                ) from None
            if _stamp(stat) != self._loaded.stamp:
                self._loaded = self._load()
            return self._loaded.crl

    def revoked(self, cert: x509.Certificate) -> dt.datetime | None:
        """When ``cert`` was revoked, or None when it is not on the list."""
        if cert.issuer != self.ca.subject:
            return None
        entry = self.current().get_revoked_certificate_by_serial_number(cert.serial_number)
        return None if entry is None else entry.revocation_date_utc


def _stamp(stat: os.stat_result) -> tuple[int, ...]:
    """What tells that the CRL file changed since it was read.

    A file renamed over it (a new inode, as `fedstats certs revoke` writes it) shows even
    within one tick of the file system's clock, when size and times may all be the same.
    """
    return (stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size)


def peer_certificate(
    address: str, server_name: str, tls: TlsFiles, timeout: float = 10.0
) -> x509.Certificate:
    """The certificate a TLS server presents, after a full mutual-TLS handshake.

    The handshake checks the chain against the federation CA and the server name (the
    node id, its certificate's DNS SAN); nothing else is sent on the connection.

    Raises:
        OSError: The server cannot be reached or the handshake fails (``ssl.SSLError``).
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca))
    context.load_cert_chain(str(tls.cert), str(tls.key))
    context.set_alpn_protocols(["h2"])
    host, _, port = address.rpartition(":")
    with (
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as sock,
        context.wrap_socket(sock, server_hostname=server_name) as conn,
    ):
        der = conn.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError(f"{address} presented no certificate")
    return x509.load_der_x509_certificate(der)


def renewal_warnings(
    tls: TlsFiles, now: dt.datetime | None = None, seen: Path | None = None
) -> list[str]:
    """What an operator must renew soon: certificate, CA or revocation list.

    The certificate and the CA within ``renew_days``, the CRL within `CRL_WARN_DAYS`. Also
    says when the party's own certificate is on the CRL, and, given the party's record of
    the newest list it accepted (``seen``, only read here), when the list goes backwards.
    Unreadable files are left to the checks that read them for serving.
    """
    now = now or dt.datetime.now(dt.UTC)
    soon = now + dt.timedelta(days=tls.renew_days)
    warnings = []
    for name, path in (("tls.cert", tls.cert), ("tls.ca", tls.ca)):
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError):
            continue
        end = cert.not_valid_after_utc
        if end <= soon:
            left = (end - now).total_seconds() / 86400
            state = "expired" if left < 0 else f"expires in {left:.0f} days"
            warnings.append(
                f"{name}: {path.name} {state} ({end:%Y-%m-%d}); renew it: "
                + ("`fedstats certs request`, then `fedstats certs sign` at the CA"
                   if name == "tls.cert" else "make a new CA and re-issue every party")
            )  # fmt: skip
    if tls.crl is not None:
        warnings += _crl_warnings(tls, now, now + dt.timedelta(days=CRL_WARN_DAYS), seen)
    return warnings


def _crl_warnings(
    tls: TlsFiles, now: dt.datetime, soon: dt.datetime, seen: Path | None
) -> list[str]:
    assert tls.crl is not None
    try:
        revocations = RevocationList(tls.crl, tls.ca)  # in memory: a check records nothing
        crl = revocations.current()
        if seen is not None:
            check_forward(tls.crl, crl_mark(crl, tls.crl), read_seen(seen, revocations.ca), seen)
        own = x509.load_pem_x509_certificate(tls.cert.read_bytes())
    except (OSError, ValueError, ConfigError) as exc:
        return [f"tls.crl: cannot be checked ({exc})"]
    warnings = []
    when = revocations.revoked(own)
    if when is not None:
        warnings.append(
            f"tls.cert: {tls.cert.name} was REVOKED on {when:%Y-%m-%d}: peers refuse it; "
            "request and sign a new certificate"
        )
    end = crl.next_update_utc
    if end is not None and end <= soon:
        state = "is out of date" if end < now else f"must be re-issued by {end:%Y-%m-%d}"
        warnings.append(
            f"tls.crl: {tls.crl.name} {state}; run `fedstats certs revoke --dir CA` "
            "(without --cert it re-issues the list) and copy it to every party"
        )
    return warnings
