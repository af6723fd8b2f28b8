"""Trust (DESIGN section 5): every refusal has the right status and reason, is in the
audit log when the node's code sees it, and spends nothing."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.errors import ERROR_METADATA_KEY, ConfigError
from coordinator.client import Dialer, QuerySigner
from coordinator.config import NodeAddress
from coordinator.run import prepare
from fedstats.certs import init_ca, issue
from node.audit import read_entries, verify_log
from node.config import load_config
from node.server import build_server
from node.service import NodeService
from protos import node_pb2 as pb
from protos import node_pb2_grpc as pb_grpc
from security.certificates import TlsFiles
from security.signing import load_private_key, parse_public_key
from tests.support.cities import SyntheticCities
from tests.support.nodes import RunningNode, ServeFn, coordinator_for
from tests.support.pki import COORDINATOR, pki, sign_request

GRANT_LIMITS = """
indicators = ["employment_rate", "activity_rate"]
group_dims = ["citizen"]
breakdowns = ["sex", "age"]
max_cells = 12
"""


def request(query_id: str, indicator: str = "employment_rate", rho: float = 0.2) -> pb.QueryRequest:
    return pb.QueryRequest(
        query_id=query_id,
        spec=pb.QuerySpec(indicators=[indicator], group_dim="citizen", comparator="NAT", rho=rho),
    )


@dataclass
class Node:
    running: RunningNode

    @property
    def ledger(self) -> Path:
        return self.running.service.ledger.path

    def spent(self) -> float:
        return self.running.service.budget().spent

    def last_audit(self) -> tuple[str, str, str]:
        entry = read_entries(self.ledger)[-1]
        return entry.event, entry.reason, entry.coordinator

    def refused(
        self, signed: pb.SignedQuery, channel: grpc.Channel | None = None
    ) -> tuple[grpc.StatusCode, str]:
        """Send a request that must be refused; return its status and reason."""
        before = self.spent()
        with channel or self.running.channel() as ch, pytest.raises(grpc.RpcError) as info:
            pb_grpc.NodeServiceStub(ch).RunQuery(signed, timeout=30)
        error = info.value
        assert isinstance(error, grpc.Call)
        raw = dict(error.trailing_metadata() or ()).get(ERROR_METADATA_KEY)
        reason = pb.ErrorDetail.FromString(raw).reason if isinstance(raw, bytes) else ""
        assert self.spent() == before, "a refused query must spend nothing"
        assert "Traceback" not in (error.details() or "")
        return error.code(), reason


@pytest.fixture
def node(tmp_path: Path, serve: ServeFn, cities: SyntheticCities) -> Iterator[Node]:
    config = tmp_path / "vienna.toml"
    text = cities.node_toml("vienna", rho_budget=5.0, max_rho=1.0)
    config.write_text(text.replace("rho_cap = 1000000000000.0", "rho_cap = 0.5" + GRANT_LIMITS))
    yield Node(serve(config))


def test_a_good_query_is_released_and_logged(node: Node) -> None:
    result = node.running.ask(request("good"))
    assert result.rho_charged == pytest.approx(0.2)
    event, reason, coordinator = node.last_audit()
    assert (event, reason, coordinator) == ("release", "", COORDINATOR)


def audit_count(node: Node) -> int:
    return len(read_entries(node.ledger))


def test_no_client_certificate_fails_the_handshake_and_writes_nothing(node: Node) -> None:
    """gRPC's own mutual TLS refuses it in C-core: no reason, no audit entry (docs/tls.md)."""
    before = audit_count(node)
    ca = pki().directory / "ca.pem"
    credentials = grpc.ssl_channel_credentials(ca.read_bytes())
    channel = grpc.secure_channel(
        node.running.address, credentials, options=[("grpc.ssl_target_name_override", "vienna")]
    )
    code, reason = node.refused(sign_request(request("no-cert"), "vienna"), channel)
    assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "")
    assert audit_count(node) == before


def impostor(tmp_path: Path, name: str, **issue_args: object) -> Dialer:
    """A coordinator certificate for the right identity from a CA of its own."""
    other = tmp_path / name
    init_ca(other, name=name)
    files = issue(other, "coordinator", COORDINATOR, **issue_args)  # type: ignore[arg-type]
    # trusts the federation CA (so it accepts the node) but presents its own certificate
    return Dialer(TlsFiles(pki().directory / "ca.pem", files["cert"], files["key"]))


def test_a_certificate_from_another_ca_fails_the_handshake(node: Node, tmp_path: Path) -> None:
    before = audit_count(node)
    channel = impostor(tmp_path, "other-ca").channel(NodeAddress("vienna", node.running.address))
    code, reason = node.refused(sign_request(request("other-ca"), "vienna"), channel)
    assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "")
    assert audit_count(node) == before


@pytest.mark.parametrize(
    "start",
    [dt.datetime(2020, 1, 1, tzinfo=dt.UTC), dt.datetime.now(dt.UTC) + dt.timedelta(days=30)],
    ids=["expired", "not-yet-valid"],
)
def test_expired_or_future_client_certificates_fail_the_handshake(
    node: Node, start: dt.datetime
) -> None:
    """Issued by the federation CA itself, for the right coordinator, but not valid now."""
    before = audit_count(node)
    files = issue(pki().directory, "coordinator", "test-coordinator-x", days=10, now=start)
    dialer = Dialer(TlsFiles(pki().directory / "ca.pem", files["cert"], files["key"]))
    channel = dialer.channel(NodeAddress("vienna", node.running.address))
    code, got = node.refused(sign_request(request("old"), "vienna"), channel)
    assert (code, got) == (grpc.StatusCode.UNAVAILABLE, "")
    assert audit_count(node) == before


def test_describe_and_budget_are_for_listed_coordinators_only(node: Node) -> None:
    with node.running.channel() as channel:
        stub = pb_grpc.NodeServiceStub(channel)
        assert stub.Describe(pb.DescribeRequest(), timeout=10).node_id == "vienna"
        assert stub.GetBudget(pb.BudgetRequest(), timeout=10).rho_total == 5.0
    rogue = Dialer(pki().tls("coordinator", "rogue"))
    with rogue.channel(NodeAddress("vienna", node.running.address)) as channel:
        with pytest.raises(grpc.RpcError) as info:
            pb_grpc.NodeServiceStub(channel).Describe(pb.DescribeRequest(), timeout=10)
        assert isinstance(info.value, grpc.Call)
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert node.last_audit() == ("refusal", "UNKNOWN_COORDINATOR", "rogue")


def test_insecure_describe_and_budget_need_the_same_signed_identity(node: Node) -> None:
    """--insecure (loopback): no TLS peer, so the caller's signed identity names it."""
    server = build_server(node.running.service, "127.0.0.1:0", tls=None)
    key = load_private_key(pki().files("coordinator", COORDINATOR)["sign_key"], "test")
    rogue = load_private_key(pki().files("coordinator", "rogue")["sign_key"], "test")
    stale = QuerySigner(COORDINATOR, key).identity_for("vienna")
    before = audit_count(node)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.NodeServiceStub(channel)
            for call, message in (
                (stub.Describe, pb.DescribeRequest()),
                (stub.GetBudget, pb.BudgetRequest()),
            ):
                with pytest.raises(grpc.RpcError) as info:
                    call(message, timeout=10)
                assert isinstance(info.value, grpc.Call)
                assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert audit_count(node) == before  # nobody: nothing written
            identity = [QuerySigner(COORDINATOR, key).identity_for("vienna")]
            assert stub.Describe(pb.DescribeRequest(), timeout=10, metadata=identity).node_id
            assert stub.GetBudget(pb.BudgetRequest(), timeout=10, metadata=identity).rho_total
            for wrong in (
                [QuerySigner(COORDINATOR, key).identity_for("oslo")],  # another audience
                [QuerySigner(COORDINATOR, rogue).identity_for("vienna")],  # unlisted key
                [(stale[0], stale[1][:-1] + bytes([stale[1][-1] ^ 1]))],  # altered
            ):
                with pytest.raises(grpc.RpcError) as info:
                    stub.Describe(pb.DescribeRequest(), timeout=10, metadata=wrong)
                assert isinstance(info.value, grpc.Call)
                assert info.value.code() in {
                    grpc.StatusCode.UNAUTHENTICATED,
                    grpc.StatusCode.PERMISSION_DENIED,
                }
    finally:
        server.stop(grace=None)


def test_unknown_coordinator_is_refused_and_logged(node: Node) -> None:
    dialer = Dialer(pki().tls("coordinator", "rogue"))
    channel = dialer.channel(NodeAddress("vienna", node.running.address))
    signed = sign_request(request("rogue-1"), "vienna", coordinator="rogue")
    code, reason = node.refused(signed, channel)
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "UNKNOWN_COORDINATOR")
    assert node.last_audit() == ("refusal", "UNKNOWN_COORDINATOR", "rogue")


def test_a_node_certificate_cannot_act_as_coordinator(node: Node) -> None:
    dialer = Dialer(pki().tls("node", "tyrol"))
    channel = dialer.channel(NodeAddress("vienna", node.running.address))
    code, reason = node.refused(sign_request(request("node-as-coord"), "vienna"), channel)
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_A_COORDINATOR")
    assert node.last_audit()[:2] == ("refusal", "NOT_A_COORDINATOR")


def test_signed_by_someone_else_than_the_tls_peer(node: Node) -> None:
    signed = sign_request(request("forged"), "vienna", coordinator="rogue")
    code, reason = node.refused(signed)
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "BAD_SIGNATURE")
    assert node.last_audit() == ("refusal", "BAD_SIGNATURE", COORDINATOR)


def test_indicator_outside_the_grant(node: Node) -> None:
    code, reason = node.refused(sign_request(request("u", "unemployment_rate"), "vienna"))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "INDICATOR_NOT_ALLOWED")
    assert node.last_audit()[:2] == ("refusal", "INDICATOR_NOT_ALLOWED")


@pytest.mark.parametrize(
    ("breakdown", "reason"), [("yearesid", "DIMENSION_NOT_ALLOWED"), ("age", "TABLE_TOO_FINE")]
)
def test_breakdowns_and_table_size_outside_the_grant(
    node: Node, breakdown: str, reason: str
) -> None:
    """The grant allows sex and age, tables of 12 population cells: citizen by sex has 10,
    citizen by age 25; yearesid is not granted."""
    allowed = request("by-sex")
    allowed.spec.breakdowns.append("sex")
    assert node.running.ask(allowed).rho_charged == pytest.approx(0.2)
    refused = request(f"by-{breakdown}")
    refused.spec.breakdowns.append(breakdown)
    code, got = node.refused(sign_request(refused, "vienna"))
    assert (code, got) == (grpc.StatusCode.PERMISSION_DENIED, reason)
    assert node.last_audit()[:2] == ("refusal", reason)


def test_a_grant_of_no_cells_is_a_config_error(tmp_path: Path, cities: SyntheticCities) -> None:
    config = tmp_path / "vienna.toml"
    text = cities.node_toml("vienna")
    config.write_text(text.replace("rho_cap = 1000000000000.0", "rho_cap = 1.0\nmax_cells = 0"))
    with pytest.raises(ConfigError, match=r"coordinators\[0\]\.max_cells: must be at least 1"):
        load_config(config)


def test_rho_cap_of_the_coordinator(node: Node) -> None:
    node.running.ask(request("cap-1", rho=0.3))
    code, reason = node.refused(sign_request(request("cap-2", rho=0.25), "vienna"))
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "COORDINATOR_CAP_EXCEEDED")
    assert node.last_audit()[:2] == ("refusal", "COORDINATOR_CAP_EXCEEDED")
    assert node.spent() == pytest.approx(0.3)


def test_query_signed_for_another_node(node: Node) -> None:
    code, reason = node.refused(sign_request(request("elsewhere"), "tyrol"))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "WRONG_AUDIENCE")
    assert node.last_audit()[:2] == ("refusal", "WRONG_AUDIENCE")


@pytest.mark.parametrize("minutes", [-10, 10, 1])
def test_stale_or_future_timestamp(node: Node, minutes: int) -> None:
    """Stale beyond the window; future beyond 30 s of clock skew (1 minute is refused)."""
    req = request("stale")
    req.issued_at_ms = int((time.time() + 60 * minutes) * 1000)
    code, reason = node.refused(sign_request(req, "vienna"))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "STALE_QUERY")
    assert node.last_audit()[:2] == ("refusal", "STALE_QUERY")


def test_reused_id_with_different_bytes(node: Node) -> None:
    node.running.ask(request("same-id"))
    code, reason = node.refused(sign_request(request("same-id"), "vienna"))  # a new timestamp
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "QUERY_ID_REUSED")
    assert node.last_audit()[:2] == ("refusal", "QUERY_ID_REUSED")


def flip(data: bytes, bit: int) -> bytes:
    changed = bytearray(data)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


@pytest.mark.slow
@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_any_single_bit_flip_of_a_signed_envelope_is_refused(
    node: Node, data: st.DataObject
) -> None:
    signed = sign_request(request("flip"), "vienna")
    content = signed.request + signed.signature
    bit = data.draw(st.integers(0, 8 * len(content) - 1))
    flipped = flip(content, bit)
    tampered = pb.SignedQuery(
        request=flipped[: len(signed.request)], signature=flipped[len(signed.request) :]
    )
    code, reason = node.refused(tampered)
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "BAD_SIGNATURE")
    assert node.last_audit()[:2] == ("refusal", "BAD_SIGNATURE")


def test_the_audit_log_verifies_and_detects_tampering(node: Node) -> None:
    node.running.ask(request("a"))
    node.refused(sign_request(request("b"), "tyrol"))
    public = load_private_key(node.running.service.config.signing_key or Path(), "k").public_key()
    assert verify_log(node.ledger, public).ok
    import sqlite3

    with sqlite3.connect(node.ledger) as db:
        db.execute("UPDATE audit SET reason = 'NOTHING' WHERE seq = 2")
    problems = verify_log(node.ledger, public).problems
    assert any("entry 2" in p for p in problems)


def test_own_certificate_problems_are_clear_errors(tmp_path: Path, cities: SyntheticCities) -> None:
    config = tmp_path / "vienna.toml"
    config.write_text(cities.node_toml("vienna"))
    service = NodeService(load_config(config))
    assert service.config.tls is not None
    expired_dir = tmp_path / "ca"
    init_ca(expired_dir)
    old = issue(expired_dir, "node", "vienna", days=1, now=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    cases = {
        "expired on 2020-01-02": TlsFiles(expired_dir / "ca.pem", old["cert"], old["key"]),
        "not issued by the federation CA": TlsFiles(
            pki().directory / "ca.pem", old["cert"], old["key"]
        ),
        "is issued for fedstats://node/tyrol": pki().tls("node", "tyrol"),
    }
    for expected, files in cases.items():
        with pytest.raises(ConfigError) as info:
            build_server(service, "127.0.0.1:0", tls=files)
        assert expected in str(info.value)
    with pytest.raises(ConfigError, match="not a loopback address"):
        build_server(service, "0.0.0.0:0", tls=None)


def test_a_port_already_served_is_a_config_error(tmp_path: Path, cities: SyntheticCities) -> None:
    """gRPC would share the port (SO_REUSEPORT) and split the connections between nodes."""
    config = tmp_path / "vienna.toml"
    config.write_text(cities.node_toml("vienna"))
    service = NodeService(load_config(config))
    first = build_server(service, "127.0.0.1:0", tls=service.config.tls)
    try:
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{first.port}"):
            build_server(service, f"127.0.0.1:{first.port}", tls=service.config.tls)
    finally:
        first.server.stop(None)


def test_coordinator_checks_its_own_certificate(tmp_path: Path) -> None:
    config = coordinator_for(tmp_path, [("vienna", "10.0.0.1:1")])
    prepare(config)  # valid
    wrong = pki().tls("coordinator", "rogue")
    from dataclasses import replace

    with pytest.raises(ConfigError, match="coordinator/rogue"):
        prepare(replace(config, tls=wrong))
    with pytest.raises(ConfigError, match="refusing plaintext"):
        prepare(replace(config, tls=None))
    with pytest.raises(ConfigError, match="signing"):
        prepare(replace(config, signing_key=None))


def test_health_over_tls_and_on_a_plaintext_health_port(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    config = tmp_path / "vienna.toml"
    config.write_text(cities.node_toml("vienna"))
    service = NodeService(load_config(config))
    server = build_server(
        service, "127.0.0.1:0", tls=service.config.tls, health_address="127.0.0.1:0"
    )
    try:
        running = RunningNode(service, server, f"127.0.0.1:{server.port}", config)
        plain = grpc.insecure_channel(f"127.0.0.1:{server.health_port}")
        for channel in (running.channel(), plain):
            with channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service="fedstats.v1.NodeService"), timeout=10
                )
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with grpc.insecure_channel(f"127.0.0.1:{server.health_port}") as plain:
            with pytest.raises(grpc.RpcError) as info:
                pb_grpc.NodeServiceStub(plain).RunQuery(pb.SignedQuery(), timeout=10)
            assert isinstance(info.value, grpc.Call)
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED  # health only
    finally:
        server.stop()


def test_results_carry_the_nodes_signature(node: Node) -> None:
    with node.running.channel() as channel:
        signed = pb_grpc.NodeServiceStub(channel).RunQuery(
            sign_request(request("sig"), "vienna"), timeout=30
        )
    public = parse_public_key(pki().public_key("node", "vienna"), "test")
    from security.signing import key_id, verify

    assert signed.key_id == key_id(public)
    assert verify(public, signed.result, signed.signature)
    assert not verify(public, flip(signed.result, 3), signed.signature)
