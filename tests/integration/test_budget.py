"""The privacy budget over real gRPC: refusals, idempotent retries, restarts, concurrency.

Every node here is a real server on 127.0.0.1:0 serving a synthetic city (`fedstats.synth`),
with real OpenDP noise and a real SQLite ledger under tmp_path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

from common.errors import ERROR_METADATA_KEY
from coordinator.flags import Status
from coordinator.rows import POOLED
from coordinator.run import run_query
from indicators.spec import Query
from node.config import load_config
from node.server import build_server
from node.service import NodeService
from privacy.budget import DEFAULT_DELTA, epsilon_for
from privacy.gaussian import SCALE_BITS, make_measurement
from protos import node_pb2 as pb
from protos import node_pb2_grpc as pb_grpc
from tests.support.cities import ServeCityFn
from tests.support.nodes import RunningNode, coordinator_for
from tests.support.pki import COORDINATOR, sign_request
from tests.support.pki import query_request as request


def run(node: RunningNode, req: pb.QueryRequest | pb.SignedQuery) -> pb.QueryResult:
    return node.ask(req)


def budget(node: RunningNode) -> pb.BudgetStatus:
    status: pb.BudgetStatus = node.stub().GetBudget(pb.BudgetRequest(), timeout=30)
    return status


def refusal(node: RunningNode, req: pb.QueryRequest) -> tuple[grpc.StatusCode, pb.ErrorDetail]:
    """Send a query that must be refused; return its status and decoded ErrorDetail."""
    with pytest.raises(grpc.RpcError) as info:
        node.stub().RunQuery(sign_request(req, node.node_id), timeout=30)
    error = info.value
    assert isinstance(error, grpc.Call)
    assert "Traceback" not in (error.details() or "")
    raw = dict(error.trailing_metadata() or ())[ERROR_METADATA_KEY]
    assert isinstance(raw, bytes)
    detail = pb.ErrorDetail.FromString(raw)
    assert "Traceback" not in detail.message + detail.hint
    return error.code(), detail


def counts(result: pb.QueryResult) -> list[tuple[str, list[int], list[int]]]:
    return [(t.key, list(t.counts), list(t.sample_counts)) for t in result.tables]


def ledger_ids(node: RunningNode) -> set[str]:
    return {e.query_id for e in node.service.ledger.entries()}


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- refusals ---------------------------------------------------------------------------


def test_query_past_remaining_budget_is_refused_and_charges_nothing(
    serve_city: ServeCityFn,
) -> None:
    node = serve_city(rho_budget=1.0)
    run(node, request("spend", breakdowns=("sex",), rho=0.5))
    assert budget(node).rho_spent == pytest.approx(0.5)

    code, detail = refusal(node, request("too-much", rho=0.6))

    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert detail.reason == "BUDGET_EXCEEDED"
    assert detail.field == "rho"
    assert "0.6" in detail.message  # what was asked
    assert "only 0.5 of 1 is left" in detail.message  # and what is left
    assert detail.hint
    status = budget(node)
    assert status.rho_spent == pytest.approx(0.5)
    assert status.rho_remaining == pytest.approx(0.5)
    assert ledger_ids(node) == {"spend"}
    # each rho figure also as epsilon at the stated delta (OpenDP's conversion)
    assert status.delta == DEFAULT_DELTA
    assert status.epsilon_total == pytest.approx(epsilon_for(1.0))
    assert status.epsilon_spent == status.epsilon_remaining == pytest.approx(epsilon_for(0.5))
    assert status.epsilon_per_query == pytest.approx(epsilon_for(status.max_rho_per_query))


def test_query_past_per_query_cap_is_refused_and_charges_nothing(serve_city: ServeCityFn) -> None:
    node = serve_city(rho_budget=10.0, max_rho=0.5)

    code, detail = refusal(node, request("over-cap", rho=0.6))

    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert detail.reason == "QUERY_CAP_EXCEEDED"
    assert detail.field == "rho"
    assert "0.6" in detail.message and "cap 0.5" in detail.message
    status = budget(node)
    assert status.rho_spent == 0
    assert status.rho_remaining == pytest.approx(10.0)
    assert ledger_ids(node) == set()
    # The cap itself is allowed.
    assert run(node, request("at-cap", rho=0.5)).rho_charged == pytest.approx(0.5)


# --- idempotency and the answer cache ---------------------------------------------------


def test_retried_query_id_returns_the_stored_answer_free(serve_city: ServeCityFn) -> None:
    node = serve_city(rho_budget=5.0)
    req = sign_request(request("q-1", breakdowns=("sex",), rho=0.5), node.node_id)
    first = run(node, req)  # a retry resends exactly the signed bytes
    assert not first.cached
    assert first.rho_charged == pytest.approx(0.5)
    spent = budget(node).rho_spent

    again = run(node, req)

    assert again.cached
    assert again.rho_charged == 0
    assert again.query_id == "q-1"
    assert counts(again) == counts(first)
    assert [list(t.cell_flags) for t in again.tables] == [list(t.cell_flags) for t in first.tables]
    assert budget(node).rho_spent == spent == pytest.approx(0.5)
    assert again.budget.rho_spent == pytest.approx(0.5)


def test_identical_query_under_a_new_id_returns_the_same_numbers_free(
    serve_city: ServeCityFn,
) -> None:
    node = serve_city(rho_budget=5.0)
    first = run(node, request("q-1", rho=0.5))

    same = run(node, request("q-2", rho=0.5))
    # Same canonical spec: employment and unemployment rates read the same table, and the
    # comparator is post-processing, so averaging such answers would gain nothing either.
    same_table = run(node, request("q-3", indicators=("unemployment_rate",), comparator="TOTAL"))

    for answer in (same, same_table):
        assert answer.cached
        assert answer.rho_charged == 0
        assert counts(answer) == counts(first)
    assert same.query_id == "q-2"
    assert budget(node).rho_spent == pytest.approx(0.5)


def test_same_id_with_a_different_spec_is_refused_and_charges_nothing(
    serve_city: ServeCityFn,
) -> None:
    node = serve_city(rho_budget=5.0)
    run(node, request("q-1", rho=0.5))

    for changed in (
        request("q-1", breakdowns=("sex",), rho=0.5),
        request("q-1", rho=0.25),
    ):
        code, detail = refusal(node, changed)
        assert code == grpc.StatusCode.ALREADY_EXISTS
        assert detail.reason == "QUERY_ID_REUSED"
        assert detail.field == "query_id"
        assert "'q-1'" in detail.message
    assert budget(node).rho_spent == pytest.approx(0.5)
    assert ledger_ids(node) == {"q-1"}


def test_same_spec_with_a_different_rho_is_a_new_charge(serve_city: ServeCityFn) -> None:
    node = serve_city(rho_budget=5.0)
    first = run(node, request("q-1", rho=0.5))

    other = run(node, request("q-2", rho=0.25))

    assert not other.cached
    assert other.rho_charged == pytest.approx(0.25)
    assert [t.key for t in other.tables] == [t.key for t in first.tables]
    assert other.tables[0].sigma > first.tables[0].sigma  # less rho, more noise
    assert budget(node).rho_spent == pytest.approx(0.75)


# --- durability -------------------------------------------------------------------------


def test_ledger_survives_a_node_restart(serve_city: ServeCityFn) -> None:
    node = serve_city(rho_budget=2.0)
    req = sign_request(request("before-restart", breakdowns=("sex",), rho=0.7), node.node_id)
    first = run(node, req)
    node.stop()

    config = load_config(node.config_path)
    service = NodeService(config)  # a new process would do exactly this
    assert service.ledger.path == node.service.ledger.path
    server = build_server(service, "127.0.0.1:0", tls=config.tls)
    restarted = RunningNode(service, server, f"127.0.0.1:{server.port}", node.config_path)
    try:
        status = budget(restarted)
        assert status.rho_spent == pytest.approx(0.7)
        assert status.rho_remaining == pytest.approx(1.3)

        again = run(restarted, req)
        assert again.cached
        assert again.rho_charged == 0
        assert counts(again) == counts(first)
        assert budget(restarted).rho_spent == pytest.approx(0.7)
    finally:
        restarted.stop()


REPO = Path(__file__).resolve().parents[2]

# A node process that dies between reserving a query's charge and committing its answer.
CRASH_AFTER_RESERVE = """
import os, sys
from pathlib import Path
from indicators.spec import Query, compile_query
from node.ledger import Ledger
from node.ledger import Request
from coordinator.flags import Status
ledger = Ledger(Path(sys.argv[1]), sys.argv[2], 2.0, 2.0)
plan = compile_query(Query(("employment_rate",), "citizen", (), "NAT", rho=0.5))
ledger.reserve(Request("crashed", plan.spec_hash(), 0.5, sys.argv[3], sys.argv[4], 1e12))
os._exit(0)
"""


def crash_after_reserve(node: RunningNode) -> pb.SignedQuery:
    """A process reserves the charge of a signed query and dies; returns that query."""
    ledger = node.service.ledger
    signed = sign_request(request("crashed", rho=0.5), node.node_id)
    digest = hashlib.sha256(signed.request).hexdigest()
    subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_RESERVE, str(ledger.path), ledger.dataset, COORDINATOR,
         digest],
        cwd=REPO,
        check=True,
        timeout=60,
    )  # fmt: skip
    (entry,) = ledger.entries()
    assert (entry.query_id, entry.state, entry.rho) == ("crashed", "reserved", 0.5)
    return signed


def test_reservation_of_a_crashed_process_is_adopted_by_the_retry(serve_city: ServeCityFn) -> None:
    node = serve_city(rho_budget=2.0)
    signed = crash_after_reserve(node)
    assert budget(node).rho_spent == pytest.approx(0.5)  # the charge stays: nothing released

    answer = run(node, signed)

    assert not answer.cached  # released now, once
    assert budget(node).rho_spent == pytest.approx(0.5)  # and not charged a second time
    again = run(node, signed)
    assert again.cached and again.rho_charged == 0
    assert counts(again) == counts(answer)


def test_reservation_of_a_crashed_pid_1_process_is_adopted_after_a_restart(
    serve_city: ServeCityFn,
) -> None:
    node = serve_city(rho_budget=2.0)
    signed = crash_after_reserve(node)
    # The crashed node ran as PID 1 in a container that has since been restarted: on
    # every host some process is PID 1 again.
    with sqlite3.connect(node.service.ledger.path) as db:
        db.execute("UPDATE releases SET owner = '1:' || substr(owner, instr(owner, ':') + 1)")

    answer = run(node, signed)

    assert not answer.cached
    assert budget(node).rho_spent == pytest.approx(0.5)


# --- exactly to the budget --------------------------------------------------------------


@pytest.mark.parametrize(
    "third_rho",
    [
        0.5,
        0.25,
        1e-6,
        1e-13,
    ],
)
def test_budget_can_be_spent_exactly_and_then_nothing_more(
    serve_city: ServeCityFn, third_rho: float
) -> None:
    node = serve_city(rho_budget=1.0, max_rho=1.0)
    run(node, request("half-1", rho=0.5))
    run(node, request("half-2", breakdowns=("sex",), rho=0.5))
    status = budget(node)
    assert status.rho_spent == pytest.approx(1.0)
    assert status.rho_remaining == 0

    code, detail = refusal(node, request("third", breakdowns=("age",), rho=third_rho))

    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert detail.reason == "BUDGET_EXCEEDED"
    assert "only 0 of 1 is left" in detail.message
    assert budget(node).rho_spent == pytest.approx(1.0)
    assert ledger_ids(node) == {"half-1", "half-2"}


# --- the coordinator's side -------------------------------------------------------------


def test_coordinator_flags_a_node_without_budget_and_keeps_the_others(
    tmp_path: Path, serve_city: ServeCityFn
) -> None:
    rich = serve_city("vienna", rho_budget=5.0)
    poor = serve_city("tyrol", rho_budget=0.5)
    # Spend Tyrol's whole budget on another spec (the same spec would be answered from
    # the cache, free).
    run(poor, request("earlier", breakdowns=("sex",), rho=0.5))
    config = coordinator_for(tmp_path, [("vienna", rich.address), ("tyrol", poor.address)])

    outcome = run_query(config, Query(("employment_rate",), "citizen", (), "NAT", rho=0.5))

    assert set(outcome.failures) == {"tyrol"}
    failure = outcome.failures["tyrol"]
    assert failure.status == "RESOURCE_EXHAUSTED"
    assert failure.reason == "BUDGET_EXCEEDED"
    assert "left" in failure.message
    assert outcome.rho_charged == {"vienna": pytest.approx(0.5)}

    tyrol = [r for r in outcome.rows if r.node == "tyrol"]
    vienna = [r for r in outcome.rows if r.node == "vienna"]
    assert tyrol and vienna
    assert all(r.status == Status.NO_ANSWER and r.value is None for r in tyrol)
    assert any(r.value is not None for r in vienna)
    assert all(r.status != Status.NO_ANSWER for r in vienna)
    # pooled over Vienna alone: half the nodes, the default minimum coverage
    assert all(r.status != Status.NO_ANSWER for r in outcome.rows if r.node == POOLED)
    assert budget(poor).rho_spent == pytest.approx(0.5)
    assert budget(rich).rho_spent == pytest.approx(0.5)


def test_coordinator_survives_an_address_where_nothing_listens(
    tmp_path: Path, serve_city: ServeCityFn
) -> None:
    live = serve_city("vienna", rho_budget=5.0)
    dead = f"127.0.0.1:{free_port()}"
    config = coordinator_for(tmp_path, [("vienna", live.address), ("nowhere", dead)])
    config = dataclasses.replace(config, timeout_seconds=0.5)

    started = time.monotonic()
    outcome = run_query(config, Query(("employment_rate",), "citizen", (), "NAT", rho=0.5))

    assert time.monotonic() - started < 10
    assert set(outcome.failures) == {"nowhere"}
    assert outcome.failures["nowhere"].status in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
    nowhere = [r for r in outcome.rows if r.node == "nowhere"]
    assert nowhere and all(r.status == Status.NO_ANSWER and r.value is None for r in nowhere)
    assert any(r.value is not None for r in outcome.rows if r.node == "vienna")

    # With no node answering at all, there are still rows, all without answer, and no pool.
    alone = dataclasses.replace(config, nodes=config.nodes[1:])
    outcome = run_query(alone, Query(("employment_rate",), "citizen", (), "NAT", rho=0.5))
    assert set(outcome.failures) == {"nowhere"}
    assert outcome.rows and all(
        r.status == Status.NO_ANSWER and r.node == "nowhere" for r in outcome.rows
    )


# --- the ledger file and concurrency ----------------------------------------------------


def test_ledger_file_is_in_wal_mode_with_full_sync(tmp_path: Path, serve_city: ServeCityFn) -> None:
    node = serve_city(rho_budget=5.0)
    run(node, request("q-1", rho=0.5))
    path = node.service.ledger.path
    assert path.is_file()
    assert path.parent == tmp_path / "state-vienna"

    with sqlite3.connect(path) as db:  # a fresh connection: journal_mode lives in the file
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # synchronous is per connection: check the connections the ledger itself opens.
    with node.service.ledger._connect() as db:
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_concurrent_queries_never_overspend(serve_city: ServeCityFn) -> None:
    node = serve_city(rho_budget=1.0)
    specs = [
        (indicators, breakdowns)
        for indicators in (("employment_rate",), ("attainment_low",))
        for breakdowns in ((), ("sex",), ("age",), ("sex", "age"))
    ]
    assert len(specs) == 8  # distinct specs: no answer can come from the cache
    barrier = threading.Barrier(len(specs))
    outcomes: dict[int, str] = {}

    def ask(i: int) -> None:
        indicators, breakdowns = specs[i]
        req = request(f"c-{i}", indicators=indicators, breakdowns=breakdowns, rho=0.3)
        with node.channel() as channel:
            stub = pb_grpc.NodeServiceStub(channel)
            signed = sign_request(req, node.node_id)
            barrier.wait()
            try:
                result = pb.QueryResult.FromString(stub.RunQuery(signed, timeout=60).result)
                outcomes[i] = "ok" if result.rho_charged == pytest.approx(0.3) else "free?"
            except grpc.RpcError as error:
                assert isinstance(error, grpc.Call)
                raw = dict(error.trailing_metadata() or ())[ERROR_METADATA_KEY]
                assert isinstance(raw, bytes)
                outcomes[i] = pb.ErrorDetail.FromString(raw).reason

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(specs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(outcomes) == len(specs)
    assert sorted(outcomes.values()) == ["BUDGET_EXCEEDED"] * 5 + ["ok"] * 3
    state = node.service.ledger.state()
    assert state.spent == pytest.approx(0.9)
    assert math.isclose(budget(node).rho_spent, 0.9)
    entries = node.service.ledger.entries()
    assert len(entries) == 3
    assert {e.state for e in entries} == {"committed"}


# --- the rho split of a table: cells, sample counts and denominator margins --------------


@pytest.mark.parametrize("city", ["vienna", "athens"])
def test_a_table_s_rho_splits_exactly_among_cells_samples_and_margins(
    serve_city: ServeCityFn, city: str
) -> None:
    node = serve_city(city, city)
    req = request("split", indicators=("unemployment_rate", "median_income_ratio"), rho=0.5)
    result = run(node, sign_request(req, node.node_id))
    assert result.rho_charged == pytest.approx(0.5)
    spent = 0.0
    for table in result.tables:
        releases = [(table.sigma, table.sensitivity, table.rho)]
        if table.sample_counts:
            releases.append((table.sample_sigma, 1, table.sample_rho))
        releases += [(m.sigma, m.sensitivity, m.rho) for m in table.margins]
        for sigma, sensitivity, rho in releases:  # each release's rho is OpenDP's own map
            assert make_measurement(sigma).map(int(sensitivity)) == rho
        spent += sum(rho for *_, rho in releases)
        population_cells = len(table.counts) // len(table.dims[-1].codes)
        assert {len(m.counts) for m in table.margins} == {population_cells}
        assert ("UNK",) in {tuple(m.codes) for m in table.margins}
        assert any(m.observations for m in table.margins) == bool(table.sample_counts)
    grid = 2.0 ** (3 - SCALE_BITS)  # each scale rounded up the grid and a step at most more
    assert 0.5 * (1 - grid) <= spent <= 0.5  # the query's rho to the grid, never more
