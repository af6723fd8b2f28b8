"""A certificate's life in a real federation: keys made where they live (`certs request`),
signed at the CA (`certs sign`), renewal warnings, and revocation (`certs revoke`) that the
running node and the coordinator both enforce before anything costs budget."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from common.errors import ConfigError, Reason
from coordinator.client import Dialer
from coordinator.config import CoordinatorConfig, NodeAddress
from coordinator.run import run_query
from fedstats.certs_lifecycle import revoke
from fedstats.cli import main
from indicators.spec import Query
from node.audit import read_entries
from protos.node_pb2 import DescribeRequest
from protos.node_pb2_grpc import NodeServiceStub
from security.certificates import TlsFiles
from security.signing import parse_public_key
from tests.support.cities import ServeCityFn, SyntheticCities
from tests.support.nodes import ServeFn, coordinator_for
from tests.support.pki import pki
from tests.support.tcp import Relay

QUERY = Query(("employment_rate",), "citizen", rho=0.01)
NODE = "vienna"
BOSS = "boss"


def _cli(*argv: str | Path) -> int:
    return main([str(a) for a in argv])


def _enrol(ca: Path, host: Path, role: str, ident: str, *extra: str) -> dict[str, Path]:
    """`certs request` on the party's host, `certs sign` at the CA."""
    assert _cli("certs", "request", f"--{role}", ident, "--out", host, "--signing-key") == 0
    stem = host / f"{role}-{ident}"
    assert (
        _cli("certs", "sign", "--dir", ca, "--csr", f"{stem}.csr", f"--{role}", ident, *extra) == 0
    )
    return {
        "cert": Path(f"{stem}.pem"),
        "key": Path(f"{stem}.key"),
        "sign_key": Path(f"{stem}.sign.key"),
        "sign_pub": Path(f"{stem}.sign.pub"),
    }


def _node_toml(cities: SyntheticCities, ca: Path, node: dict[str, Path], boss_pub: str) -> str:
    base = cities.node_toml(NODE, persons=3_000)
    base = base[: base.index("\n[tls]")]  # the session PKI's trust, replaced by this CA's
    return base + (
        f'\n[tls]\nca = "{ca / "ca.pem"}"\ncert = "{node["cert"]}"\nkey = "{node["key"]}"\n'
        f'crl = "{ca / "crl.pem"}"\n\n[signing]\nkey = "{node["sign_key"]}"\n\n'
        f'[[coordinators]]\nid = "{BOSS}"\npublic_key = "{boss_pub}"\nrho_cap = 1e9\n'
    )


def test_csr_issued_certificates_serve_and_revoked_ones_are_refused_by_node_and_coordinator(
    tmp_path: Path,
    cities: SyntheticCities,
    serve: ServeFn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ca = tmp_path / "ca"
    assert _cli("certs", "init-ca", "--dir", ca) == 0
    node = _enrol(ca, tmp_path / "node-host", "node", NODE, "--days", "20")
    boss = _enrol(ca, tmp_path / "boss-host", "coordinator", BOSS)
    assert node["key"].stat().st_mode & 0o777 == 0o600
    assert not (ca / f"node-{NODE}.key").exists()  # the CA never held the node's key
    assert _cli("certs", "revoke", "--dir", ca) == 0  # an empty list, for every party

    config_path = tmp_path / "vienna.toml"
    config_path.write_text(_node_toml(cities, ca, node, boss["sign_pub"].read_text().strip()))
    capsys.readouterr()
    assert _cli("node", "check", "--config", config_path) == 0
    assert re.search(
        r"WARNING: tls.cert: node-vienna.pem expires in 2\d days", capsys.readouterr().out
    )

    running = serve(config_path)
    coordinator = CoordinatorConfig(
        file=tmp_path / "boss.toml",
        id=BOSS,
        state_dir=tmp_path / "boss-state",
        timeout_seconds=30,
        nodes=(
            NodeAddress(
                NODE, running.address, parse_public_key(node["sign_pub"].read_text().strip(), "t")
            ),
        ),
        tls=TlsFiles(ca / "ca.pem", boss["cert"], boss["key"], ca / "crl.pem"),
        signing_key=boss["sign_key"],
    )
    ledger = running.service.ledger

    # end to end over mutual TLS with certificates from CSRs
    first = run_query(coordinator, QUERY)
    assert NODE in first.answers, first.failures
    spent = ledger.state().spent
    assert spent > 0

    # the coordinator's certificate revoked: the running node re-reads the list and refuses
    older = (ca / "crl.pem").read_bytes()
    assert _cli("certs", "revoke", "--dir", ca, "--cert", boss["cert"]) == 0
    refused = run_query(coordinator, replace(QUERY, rho=0.02))
    failure = refused.failures[NODE]
    assert (failure.reason, failure.status) == (Reason.CERTIFICATE_REVOKED, "PERMISSION_DENIED")
    assert "revoked" in failure.message
    last = read_entries(ledger.path)[-1]
    assert (last.reason, last.coordinator, last.micro_rho) == ("CERTIFICATE_REVOKED", BOSS, 0)
    assert ledger.state().spent == spent

    # the revoked coordinator keeps calling: each call is refused, but within a minute of
    # its last audit entry none is written (the log cannot be grown without bound)
    entries, size = len(read_entries(ledger.path)), ledger.path.stat().st_size
    assert coordinator.tls is not None
    channel = Dialer(coordinator.tls).channel(coordinator.nodes[0])
    try:
        stub = NodeServiceStub(channel)
        for _ in range(40):
            with pytest.raises(grpc.RpcError) as refusal:
                stub.DescribeSigned(DescribeRequest(), timeout=30)
            assert refusal.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        channel.close()
    assert len(read_entries(ledger.path)) == entries
    assert ledger.path.stat().st_size == size

    # the older list dropped back in place does not un-revoke: node and coordinator both
    # refuse a list that goes backwards (and name the numbers), and nothing is spent
    newest = (ca / "crl.pem").read_bytes()
    (ca / "crl.pem").write_bytes(older)
    assert coordinator.tls is not None
    blind = replace(coordinator, tls=replace(coordinator.tls, crl=None))  # the node decides
    failure = run_query(blind, replace(QUERY, rho=0.02)).failures[NODE]
    assert (failure.reason, failure.status) == (Reason.INVALID_CONFIG, "FAILED_PRECONDITION")
    assert "goes backwards: it is CRL number 1" in failure.message, failure.message
    assert "but CRL number 2" in failure.message
    with pytest.raises(ConfigError, match="goes backwards: it is CRL number 1"):
        run_query(coordinator, replace(QUERY, rho=0.02))  # the coordinator will not start
    assert ledger.state().spent == spent
    assert '"crl_number": 2' in (running.service.config.state_dir / "crl-seen.json").read_text()
    capsys.readouterr()
    assert _cli("node", "check", "--config", config_path) == 0
    checked = capsys.readouterr().out
    assert "WARNING: tls.crl: cannot be checked (tls.crl: " in checked
    assert "goes backwards: it is CRL number 1" in checked
    (ca / "crl.pem").write_bytes(newest)

    # renewal: a new key and CSR on the coordinator's host, signed; served again
    renewed = _enrol(ca, tmp_path / "boss-host-2027", "coordinator", BOSS)
    tls = TlsFiles(ca / "ca.pem", renewed["cert"], renewed["key"], ca / "crl.pem")
    coordinator = replace(coordinator, tls=tls)
    assert NODE in run_query(coordinator, QUERY).answers  # the same query: the stored answer

    # the node's certificate revoked: the coordinator refuses it before asking anything
    entries = len(read_entries(ledger.path))
    assert _cli("certs", "revoke", "--dir", ca, "--cert", node["cert"]) == 0
    refused = run_query(coordinator, replace(QUERY, rho=0.03))
    failure = refused.failures[NODE]
    assert (failure.reason, failure.status) == (Reason.CERTIFICATE_REVOKED, "PERMISSION_DENIED")
    assert "not asked" in failure.message
    assert len(read_entries(ledger.path)) == entries and ledger.state().spent == spent
    capsys.readouterr()
    assert _cli("node", "check", "--config", config_path) == 0
    assert "was REVOKED" in capsys.readouterr().out

    # a list that becomes unreadable: the node refuses every caller rather than guess
    (ca / "crl.pem").write_text("not a revocation list\n")
    blind = replace(coordinator, tls=replace(tls, crl=None))  # does not check the node
    failure = run_query(blind, replace(QUERY, rho=0.04)).failures[NODE]
    assert (failure.reason, failure.status) == (Reason.INVALID_CONFIG, "FAILED_PRECONDITION")
    assert ledger.state().spent == spent


def test_the_ca_signs_only_the_identity_it_expects(tmp_path: Path) -> None:
    ca, host = tmp_path / "ca", tmp_path / "host"
    assert _cli("certs", "init-ca", "--dir", ca) == 0
    assert _cli("certs", "request", "--node", NODE, "--out", host, "--host", "10.0.0.7") == 0
    csr = host / f"node-{NODE}.csr"
    assert _cli("certs", "sign", "--dir", ca, "--csr", csr, "--node", "graz") == 2
    assert _cli("certs", "sign", "--dir", ca, "--csr", csr, "--coordinator", NODE) == 2
    assert not csr.with_suffix(".pem").exists()
    assert _cli("certs", "request", "--node", NODE, "--out", host) == 2  # never overwrites
    assert _cli("certs", "sign", "--dir", ca, "--csr", csr, "--node", NODE) == 0
    assert (ca / "issued.csv").read_text().count(",node,vienna,") == 1
    foreign = tmp_path / "other-ca"
    assert _cli("certs", "init-ca", "--dir", foreign) == 0
    assert _cli("certs", "revoke", "--dir", foreign, "--cert", csr.with_suffix(".pem")) == 2


def test_a_revocation_check_that_cannot_complete_fails_closed(
    tmp_path: Path, serve_city: ServeCityFn
) -> None:
    """The coordinator's pre-flight handshake is cut (the relay drops it); gRPC's own
    connection would work. The node is reported as not answering and is never asked."""
    node = serve_city("vienna")
    ca = tmp_path / "ca"
    ca.mkdir()
    for name in ("ca.pem", "ca.key"):  # the session CA, to sign a list of its own here
        shutil.copy(pki().directory / name, ca / name)
    crl = revoke(ca)
    relay = Relay(int(node.address.rsplit(":", 1)[1]), drop_first=1)
    try:
        config = coordinator_for(tmp_path, [("vienna", relay.address)])
        assert config.tls is not None
        config = replace(config, tls=replace(config.tls, crl=crl))
        spent = node.service.ledger.state().spent
        outcome = run_query(config, replace(QUERY, rho=0.05))
        failure = outcome.failures["vienna"]
        assert (failure.reason, failure.status) == (Reason.UNAVAILABLE, "UNAVAILABLE")
        assert "checks its certificate against the revocation list failed" in failure.message
        assert relay.connections == 1  # the pre-flight only: Describe was never sent
        assert node.service.ledger.state().spent == spent and not outcome.answers
        # the check completes (the relay now passes every connection): served as before
        assert "vienna" in run_query(config, replace(QUERY, rho=0.05)).answers
    finally:
        relay.close()
