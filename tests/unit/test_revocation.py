"""security.revocation: the CRL a party loads, and the renewal warnings it gives."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from cryptography import x509

from common.errors import ConfigError
from fedstats.certs import init_ca, issue
from fedstats.certs_lifecycle import revoke
from node.revoked import AuditThrottle
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


def test_a_list_renamed_over_the_old_one_is_reread_even_with_its_size_and_times(
    tmp_path: Path,
) -> None:
    init_ca(tmp_path)
    gone = _party(tmp_path, "gone")
    crl = revoke(tmp_path)
    crl.write_bytes(crl.read_bytes() + b"\n" * 1000)  # PEM ignores what follows its block
    old = os.stat(crl)
    revocations = RevocationList(crl, tmp_path / "ca.pem")
    newer = revoke(tmp_path, gone.cert).read_bytes()
    # the newer list, as long as the old file and with its times, renamed over it
    replacement = tmp_path / "crl.pem.new"
    replacement.write_bytes(newer + b"\n" * (old.st_size - len(newer)))
    os.utime(replacement, ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(replacement, crl)
    assert (os.stat(crl).st_size, os.stat(crl).st_mtime_ns) == (old.st_size, old.st_mtime_ns)
    load = x509.load_pem_x509_certificate
    assert revocations.revoked(load(gone.cert.read_bytes())) is not None


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


def test_an_older_list_is_refused_and_a_restart_remembers_the_newest(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    init_ca(ca)
    gone = _party(ca, "gone")
    load = x509.load_pem_x509_certificate
    old = revoke(ca).read_bytes()  # CRL number 1: nothing revoked yet
    revoke(ca, gone.cert)  # number 2
    seen = tmp_path / "state" / "crl-seen.json"
    revocations = RevocationList(ca / "crl.pem", ca / "ca.pem", seen)
    assert revocations.revoked(load(gone.cert.read_bytes())) is not None
    assert '"crl_number": 2' in seen.read_text()
    newest = (ca / "crl.pem").read_bytes()

    (ca / "crl.pem").write_bytes(old)  # an attacker drops the older list in place
    with pytest.raises(ConfigError, match=r"goes backwards: it is CRL number 1 .* number 2"):
        revocations.revoked(load(gone.cert.read_bytes()))
    with pytest.raises(ConfigError, match=f"crl.pem goes backwards.*recorded in {seen}"):
        RevocationList(ca / "crl.pem", ca / "ca.pem", seen)  # a restart does not forget
    with pytest.raises(ConfigError, match="goes backwards"):  # nor with a fresh list object
        RevocationList(ca / "crl.pem", ca / "ca.pem", seen).current()

    (ca / "crl.pem").write_bytes(newest)  # the newest list back: enforced again
    assert revocations.revoked(load(gone.cert.read_bytes())) is not None
    # a higher number whose thisUpdate lies before the newest accepted is refused too
    revoke(ca, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    with pytest.raises(ConfigError, match="goes backwards: it is CRL number 3"):
        revocations.current()
    revoke(ca)  # number 4, now: accepted and recorded
    assert revocations.revoked(load(gone.cert.read_bytes())) is not None
    assert '"crl_number": 4' in seen.read_text()


def test_a_new_ca_starts_a_new_sequence_and_a_damaged_record_is_refused(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    init_ca(first)
    init_ca(second)
    seen = tmp_path / "crl-seen.json"
    for _ in range(3):
        revoke(first)
    RevocationList(first / "crl.pem", first / "ca.pem", seen)
    revoke(second)  # number 1 of another CA: not compared with the first CA's 3
    RevocationList(second / "crl.pem", second / "ca.pem", seen)
    assert '"crl_number": 1' in seen.read_text()
    seen.write_text("{not json")
    with pytest.raises(ConfigError, match="not a record of the newest revocation list"):
        RevocationList(second / "crl.pem", second / "ca.pem", seen)


def test_refusals_of_a_revoked_serial_are_audited_once_per_interval_with_a_count() -> None:
    now = [1000.0]
    throttle = AuditThrottle(interval=60.0, clock=lambda: now[0])
    assert throttle.admit(7) == 0  # the first refusal: an entry
    assert [throttle.admit(7) for _ in range(500)] == [None] * 500  # counted, not written
    assert throttle.admit(8) == 0  # another serial has its own entry
    now[0] += 59.9
    assert throttle.admit(7) is None
    now[0] += 0.2  # a minute after the last entry: the next one reports the 501 in between
    assert throttle.admit(7) == 501
    assert throttle.admit(7) is None
    now[0] += 600
    assert throttle.admit(7) == 1 and throttle.admit(8) == 0
    # growth bound: an hour of a call every 100 ms writes one entry per minute
    throttle, now[0] = AuditThrottle(clock=lambda: now[0]), 0.0
    written = 0
    for _ in range(36_000):
        now[0] += 0.1
        written += throttle.admit(1) is not None
    assert written == 60
