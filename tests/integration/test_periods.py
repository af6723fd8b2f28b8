"""Several reference periods per node, each with its own budget within the budget and the
coordinator caps their population shares (a person across periods), and pathways: one
arrival cohort's indicator followed across periods."""

from __future__ import annotations

import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from common.errors import ConfigError, QueryError
from coordinator.client import Dialer, NodeFailure, Session
from coordinator.config import NodeAddress
from coordinator.flags import Status
from coordinator.rows import POOLED
from coordinator.run import run_pathway, run_query
from fedstats import synth
from indicators.spec import Query
from node.config import load_config
from node.server import NodeServer, build_server
from node.service import NodeService
from protos import node_pb2 as pb
from tests.support.nodes import ServeFn, coordinator_for
from tests.support.pki import pki, query_request, sign_request

CITY = "amsterdam"


def two_period_config(tmp_path: Path, extra: str = "", rho_cap: float = 1e12) -> Path:
    facts = synth.city_facts(CITY)
    later = synth.generate(CITY, 20_000, seed=3)
    synth.write(synth.earlier(synth.generate(CITY, 20_000, seed=4), CITY, 1), tmp_path / "y24.csv")
    synth.write(later, tmp_path / "y25.csv")
    config = tmp_path / "node.toml"
    config.write_text(
        textwrap.dedent(f"""
            [node]
            id = "{facts.id}"
            geo = "{facts.geo}"
            country = "{facts.country}"
            state_dir = "state"

            [[datasets]]
            path = "y25.csv"
            time_period = "2025"
            rho_budget = 3.0

            [[datasets]]
            path = "y24.csv"
            time_period = "2024"
            rho_budget = 1.0

            [privacy]
            rho_budget = 1e9
            max_rho_per_query = 1.0
            """)
        + extra
        + synth.variables_toml(CITY)
        + pki().node_trust_toml(facts.id, rho_cap=rho_cap)
    )
    return config


def test_each_period_has_its_own_data_and_budget(tmp_path: Path, serve: ServeFn) -> None:
    node = serve(two_period_config(tmp_path))
    service = node.service
    assert list(service.periods) == ["2024", "2025"]  # oldest first
    assert service.default_period == "2025"
    query = Query(("employment_rate",), "c_birth", (), "NAT", rho=0.5)
    config = coordinator_for(tmp_path, [(CITY, node.address)])

    outcomes = run_pathway(config, query, ["2024", "2025"])
    latest = run_query(config, Query(("employment_rate",), "c_birth", (), "NAT", rho=0.25))

    assert [o.answers[CITY].time_period for o in outcomes] == ["2024", "2025"]
    assert latest.answers[CITY].time_period == "2025"  # no period: the latest
    assert service.budget("2024").spent == pytest.approx(0.5)
    assert service.budget("2024").total == pytest.approx(1.0)
    assert service.budget("2025").spent == pytest.approx(0.75)
    assert service.budget("2025").total == pytest.approx(3.0)
    periods = {r.time_period for o in outcomes for r in o.rows if r.node == CITY}
    assert periods == {"2024", "2025"}


def test_a_pathway_asks_each_node_over_one_channel(
    tmp_path: Path, serve: ServeFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = serve(two_period_config(tmp_path))
    config = coordinator_for(tmp_path, [(CITY, node.address)])
    opened: list[str] = []
    dial = Dialer.aio_channel

    def counted(dialer: Dialer, address: NodeAddress) -> object:
        opened.append(address.id)
        return dial(dialer, address)

    monkeypatch.setattr(Dialer, "aio_channel", counted)
    query = Query(("employment_rate",), "c_birth", (), "NAT", rho=0.2)

    outcomes = run_pathway(config, query, ["2024", "2025"])

    assert [o.answers[CITY].time_period for o in outcomes] == ["2024", "2025"]
    assert opened == [CITY]  # one channel (one TLS handshake) for both periods
    run_query(config, query)
    assert opened == [CITY, CITY]  # a query of its own opens its own


def _connections_to(port: int) -> int:
    """Established TCP connections (in this network namespace) whose far end is ``port``.

    gRPC's sockets are IPv6 with IPv4-mapped addresses: both tables are read.
    """
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            far, state = line.split()[2:4]
            count += int(far.rsplit(":", 1)[1], 16) == port and state == "01"  # ESTABLISHED
    return count


def test_a_node_back_from_a_restart_is_reached_at_once_and_by_a_retry(
    tmp_path: Path, serve: ServeFn
) -> None:
    # gRPC backs a failed channel off for about a second, failing every call meanwhile:
    # without a new channel both calls below would report the node down (seen before).
    node = serve(two_period_config(tmp_path))
    config = coordinator_for(tmp_path, [(CITY, node.address)])
    address, port = config.nodes[0], int(node.address.rsplit(":", 1)[1])
    tls = node.service.config.tls
    with Session(Dialer(config.tls)) as session:
        assert isinstance(session.describe_all(config.nodes, 10)[CITY], pb.NodeDescription)
        node.stop()
        for _ in range(4):  # each call on a new channel: the failed ones are closed
            assert isinstance(session.describe_all(config.nodes, 10)[CITY], NodeFailure)
        back = build_server(node.service, node.address, tls=tls)
        try:  # the next period of a pathway: at once
            assert isinstance(session.describe_all(config.nodes, 10)[CITY], pb.NodeDescription)
            time.sleep(2.5)  # a failed channel left open would have reconnected by now
            assert _connections_to(port) == 1
        finally:
            back.stop(grace=None)
        # a query's retry (after 0.2 s) reaches a node back within that time
        assert isinstance(session.describe_all(config.nodes, 10)[CITY], NodeFailure)
        started: list[NodeServer | BaseException] = []

        def restart() -> None:
            try:
                started.append(build_server(node.service, node.address, tls=tls))
            except BaseException as exc:  # the port taken meanwhile: said below
                started.append(exc)

        timer = threading.Timer(0.05, restart)
        timer.start()
        try:
            request = sign_request(query_request("after-restart", rho=0.2), CITY)
            reply = session.ask(address, request, timeout=10, retries=2)
        finally:
            timer.join()
            for server in started:
                if isinstance(server, NodeServer):
                    server.stop(grace=None)
    assert all(isinstance(s, NodeServer) for s in started), started
    assert reply.failure is None and reply.result is not None
    assert node.service.budget("2025").spent == pytest.approx(0.2)


def test_a_pathway_with_a_bad_period_asks_no_node_for_any(tmp_path: Path, serve: ServeFn) -> None:
    node = serve(two_period_config(tmp_path))
    config = coordinator_for(tmp_path, [(CITY, node.address)])
    query = Query(("employment_rate",), "c_birth", (), "NAT", rho=0.2)
    with pytest.raises(QueryError, match="not a reference period"):
        run_pathway(config, query, ["2024", "20x4"])
    assert node.service.budget("2024").spent == 0.0  # the good period was not asked first


def test_a_pathway_follows_an_arrival_cohort(tmp_path: Path, serve: ServeFn) -> None:
    node = serve(two_period_config(tmp_path))
    config = coordinator_for(tmp_path, [(CITY, node.address)])
    query = Query(("employment_rate",), "c_birth", ("arrival_cohort",), "NAT", rho=1.0)

    outcomes = run_pathway(config, query, ["2024", "2025"])

    def cohort(period_outcome: int) -> float:
        rows = outcomes[period_outcome].rows
        (row,) = [
            r for r in rows
            if r.node == CITY and r.group == "NEU27_2020_FOR"
            and r.breakdown == {"arrival_cohort": "Y2015-2019"}
        ]  # fmt: skip
        assert row.value is not None
        return row.value

    # the 2015-2019 arrivals have one more year in the country in 2025: more are employed
    assert cohort(1) > cohort(0)


def test_unknown_periods_are_refused_without_spending(tmp_path: Path, serve: ServeFn) -> None:
    node = serve(two_period_config(tmp_path))
    config = coordinator_for(tmp_path, [(CITY, node.address)])
    query = Query(("employment_rate",), "c_birth", (), "NAT", rho=0.5, time_period="2019")
    outcome = run_query(config, query)
    assert outcome.failures[CITY].reason == "PERIOD_NOT_SERVED"
    assert {r.status for r in outcome.rows if r.node != POOLED} == {Status.NO_ANSWER}
    with pytest.raises(QueryError) as info:
        node.service.run_query("direct", query)
    assert info.value.reason == "PERIOD_NOT_SERVED" and "2024, 2025" in str(info.value)
    assert node.service.budget("2024").spent == node.service.budget("2025").spent == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace('time_period = "2024"', 'time_period = "2025"'), "same time_period"),
        (lambda t: t + '\n[dataset]\npath = "y25.csv"\ntime_period = "2025"\n', "either"),
        (lambda t: t.replace("rho_budget = 1.0", "rho_budget = -1.0"), "positive"),
        (lambda t: t.replace("rho_budget = 3.0", "rho_budgte = 3.0"), "rho_budgte"),
    ],
)
def test_bad_period_configs_name_the_key(tmp_path: Path, change: object, message: str) -> None:
    config = two_period_config(tmp_path)
    assert callable(change)
    config.write_text(change(config.read_text()))
    with pytest.raises(ConfigError) as info:
        NodeService(load_config(config))
    assert message in str(info.value) and str(config) in str(info.value)


@pytest.mark.parametrize("separate", [False, True], ids=["one-population", "two-populations"])
def test_the_periods_of_one_population_share_one_coordinator_cap(
    tmp_path: Path, serve: ServeFn, separate: bool
) -> None:
    """2024 and 2025 hold the same persons: one cap of 1.0 covers both, unless
    `population` says the datasets hold different people."""
    config = two_period_config(tmp_path, rho_cap=1.0)
    if separate:
        text = config.read_text()
        config.write_text(
            text.replace('time_period = "2024"\n', 'time_period = "2024"\npopulation = "other"\n')
        )
    node = serve(config)
    coordinator = coordinator_for(tmp_path, [(CITY, node.address)])
    ask = Query(("employment_rate",), "c_birth", (), "NAT", rho=0.6)
    first = run_query(coordinator, replace(ask, time_period="2024"))
    second = run_query(coordinator, replace(ask, time_period="2025"))
    assert not first.failures
    if separate:
        assert not second.failures
        assert node.service.budget("2025").spent == pytest.approx(0.6)
    else:
        assert second.failures[CITY].reason == "COORDINATOR_CAP_EXCEEDED"
        assert node.service.budget("2025").spent == 0
