"""security.revocation: the CRL a party loads, and the renewal warnings it gives."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509

from common.errors import ConfigError
from fedstats.certs import init_ca, issue
from fedstats.certs_lifecycle import revoke
from security.certificates import TlsFiles
from security.revocation import RevocationList, renewal_warnings


def _party(ca: Path, ident: str, days: int = 397) -> TlsFiles:
    files = issue(ca, "node", ident, days=days)
    return TlsFiles(ca / "ca.pem", files["cert"], files["key"], ca / "crl.pem")


def test_a_revoked_certificate_is_found_and_the_list_is_reread_on_change(tmp_path: Path) -> None:
    init_ca(tmp_path)
    kept, gone = _party(tmp_path, "kept"), _party(tmp_path, "gone")
    revoke(tmp_path)
    revocations = RevocationList(tmp_path / "crl.pem", tmp_path / "ca.pem")
    load = x509.load_pem_x509_certificate
    assert revocations.revoked(load(gone.cert.read_bytes())) is None
    revoke(tmp_path, gone.cert, reason="superseded")
    assert revocations.revoked(load(gone.cert.read_bytes())) is not None  # no restart
    assert revocations.revoked(load(kept.cert.read_bytes())) is None
    entry = next(iter(revocations.current()))
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.name == (
        "superseded"
    )
    revoke(tmp_path, gone.cert)  # twice: listed once
    assert len(list(revocations.current())) == 1


def test_a_list_of_another_ca_or_no_list_is_refused(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    init_ca(ours)
    init_ca(theirs)
    with pytest.raises(ConfigError, match="no such file"):
        RevocationList(ours / "crl.pem", ours / "ca.pem")
    with pytest.raises(ConfigError, match="not signed by the federation CA"):
        RevocationList(revoke(theirs), ours / "ca.pem")
    (ours / "crl.pem").write_text("garbage\n")
    with pytest.raises(ConfigError, match="not a PEM CRL"):
        RevocationList(ours / "crl.pem", ours / "ca.pem")


def test_renewal_warnings_name_what_to_renew_and_when(tmp_path: Path) -> None:
    init_ca(tmp_path)
    now = dt.datetime.now(dt.UTC)
    fresh, expiring = _party(tmp_path, "fresh"), _party(tmp_path, "expiring", days=10)
    revoke(tmp_path, days=30)
    assert renewal_warnings(fresh) == []
    (warning,) = renewal_warnings(expiring)
    assert warning.startswith("tls.cert: node-expiring.pem expires in 10 days")
    assert "certs request" in warning
    soon = renewal_warnings(fresh, now + dt.timedelta(days=24))
    assert soon and soon[0].startswith("tls.crl: crl.pem must be re-issued by")
    later = renewal_warnings(fresh, now + dt.timedelta(days=31))
    assert any("tls.crl: crl.pem is out of date" in w for w in later)
    assert renewal_warnings(replace_days(expiring, 9)) == []
    revoke(tmp_path, fresh.cert)
    assert any("REVOKED" in w for w in renewal_warnings(fresh))


def replace_days(tls: TlsFiles, days: int) -> TlsFiles:
    return TlsFiles(tls.ca, tls.cert, tls.key, tls.crl, renew_days=days)
