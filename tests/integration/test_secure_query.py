"""Secure pooled queries through real node servers: the sum, drop-outs, left-out nodes, charges.

Four to five nodes over mutual TLS from the production factory; each test is one round.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import Reason
from coordinator.rows import POOLED, BenchmarkRow
from coordinator.run import run_query
from coordinator.secure_run import run_secure_query
from indicators.spec import Query
from tests.support.cities import ServeCityFn
from tests.support.nodes import RunningNode, coordinator_for
from tests.support.relay import earlier_release

CITIES = ("bregenz", "graz", "linz", "salzburg")  # registers, no deviating definition
HUGE = 1e6  # rho at which both pools' noise is far below a count


def _nodes(serve_city: ServeCityFn, names: tuple[str, ...] = CITIES) -> list[RunningNode]:
    return [serve_city(n) for n in names]


def _by_cell(rows: list[BenchmarkRow]) -> dict[tuple[str, str, str], BenchmarkRow]:
    return {(r.indicator, r.group, str(dict(r.breakdown))): r for r in rows}


def test_a_secure_query_gives_pooled_rows_equal_to_the_plain_sum_at_a_huge_budget(
    tmp_path: Path, serve_city: ServeCityFn
) -> None:
    nodes = _nodes(serve_city)
    config = coordinator_for(tmp_path, [(n.node_id, n.address) for n in nodes])
    query = Query(("employment_rate",), "citizen", ("sex",), "NAT", rho=HUGE)

    secure = run_secure_query(config, query)
    plain = run_query(config, query)

    assert not secure.failures
    assert secure.survivors == tuple(sorted(CITIES))
    assert {r.node for r in secure.rows} == {POOLED}  # no per-node row exists
    pooled = [r for r in plain.rows if r.node == POOLED]
    want, got = _by_cell(pooled), _by_cell(secure.rows)
    assert set(got) == set(want) and len(got) > 4
    compared = 0
    for key, row in want.items():
        mine = got[key]
        if row.value is None and mine.value is None:
            assert row.flags == mine.flags, key  # suppressed in both, e.g. "cd"
            continue
        compared += 1
        assert row.flags == mine.flags, key
        assert mine.ci_low is not None and mine.ci_high is not None
        assert row.value is not None and mine.value is not None
        se = (mine.ci_high - mine.ci_low) / 3.92  # the secure pool's own standard error
        assert se < 0.1, key  # percentage points: the noise is tiny at this budget
        assert abs(mine.value - row.value) <= 6 * se + 1e-9, key
    assert compared >= len(want) / 2
    # every node charged the secure attempt and the plain query, each in full
    for node in nodes:
        assert node.service.budget().spent == pytest.approx(2 * HUGE)


def test_a_node_that_drops_after_masking_is_recovered(
    tmp_path: Path, serve_city: ServeCityFn
) -> None:
    nodes = _nodes(serve_city)
    config = coordinator_for(tmp_path, [(n.node_id, n.address) for n in nodes])
    query = Query(("employment_rate",), "citizen", (), "NAT", rho=HUGE)
    victim = nodes[0]

    def stop_after_masking(node_id: str, step: str) -> None:
        if node_id == victim.node_id and step == "mask":
            victim.stop()

    secure = run_secure_query(config, query, hook=stop_after_masking)

    # its masked vector arrived: it stays in the sum, its self-mask rebuilt from shares
    assert secure.survivors == tuple(sorted(CITIES))
    assert set(secure.failures) == {victim.node_id}
    assert secure.failures[victim.node_id].reason == Reason.UNAVAILABLE
    plain = run_query(coordinator_for(tmp_path, [(n.node_id, n.address) for n in nodes[1:]]), query)
    # the sum holds all four cities: more persons than the three that remain
    three = {r.group: r.denominator for r in plain.rows if r.node == POOLED}
    four = {r.group: r.denominator for r in secure.rows}
    assert four["NAT"] is not None and three["NAT"] is not None
    assert four["NAT"] > three["NAT"] + 100


def test_a_node_that_drops_before_masking_leaves_the_sum_of_the_others(
    tmp_path: Path, serve_city: ServeCityFn
) -> None:
    nodes = _nodes(serve_city)
    config = coordinator_for(tmp_path, [(n.node_id, n.address) for n in nodes])
    query = Query(("employment_rate",), "citizen", (), "NAT", rho=HUGE)
    victim = nodes[0]

    def stop_after_sharing(node_id: str, step: str) -> None:
        if node_id == victim.node_id and step == "share":
            victim.stop()

    secure = run_secure_query(config, query, hook=stop_after_sharing)
    plain = run_query(coordinator_for(tmp_path, [(n.node_id, n.address) for n in nodes[1:]]), query)

    # its pair masks are removed with its mask key rebuilt from the survivors' shares
    assert secure.survivors == tuple(sorted(n.node_id for n in nodes[1:]))
    three = {r.group: r for r in plain.rows if r.node == POOLED}
    for row in secure.rows:
        want = three[row.group]
        if row.value is not None and want.value is not None:
            assert row.denominator == pytest.approx(want.denominator, abs=0.05)
    # the dropped node's charge stands
    assert victim.service.budget().spent == pytest.approx(HUGE)


def test_a_node_not_advertising_secure_aggregation_is_left_out_and_flagged(
    tmp_path: Path, serve_city: ServeCityFn
) -> None:
    nodes = _nodes(serve_city, CITIES[:3])
    with earlier_release(nodes[2]) as address:
        pairs = [(n.node_id, n.address) for n in nodes[:2]] + [(nodes[2].node_id, address)]
        secure = run_secure_query(coordinator_for(tmp_path, pairs), Query(
            ("employment_rate",), "citizen", (), "NAT", rho=0.5
        ))  # fmt: skip

    left_out = nodes[2].node_id
    assert secure.participants == tuple(sorted(n.node_id for n in nodes[:2]))
    assert secure.failures[left_out].reason == Reason.SECURE_ROUND_REFUSED
    assert "does not advertise secure aggregation" in secure.failures[left_out].message
    assert secure.survivors == secure.participants  # the pool holds the other two
    assert nodes[2].service.budget().spent == 0  # never asked


def test_every_secure_attempt_is_charged_and_never_answered_from_a_cache(
    tmp_path: Path, serve_city: ServeCityFn
) -> None:
    nodes = _nodes(serve_city, CITIES[:3])
    config = coordinator_for(tmp_path, [(n.node_id, n.address) for n in nodes])
    query = Query(("employment_rate",), "citizen", (), "NAT", rho=0.25)

    first = run_secure_query(config, query)
    second = run_secure_query(config, query)

    assert first.query_id != second.query_id and first.round_id != second.round_id
    assert first.rho_charged == second.rho_charged == dict.fromkeys(first.participants, 0.25)
    for node in nodes:
        assert node.service.budget().spent == pytest.approx(0.5)
    # two independent noisy sums, not one answer served twice
    assert [r.value for r in first.rows] != [r.value for r in second.rows]


def test_a_node_whose_definition_deviates_is_pooled_only_when_asked(
    tmp_path: Path, serve_city: ServeCityFn
) -> None:
    nodes = _nodes(serve_city, ("vienna", "graz", "linz"))  # vienna's citizenship deviates
    config = coordinator_for(tmp_path, [(n.node_id, n.address) for n in nodes])
    query = Query(("employment_rate",), "citizen", (), "NAT", rho=0.5)

    without = run_secure_query(config, query)
    assert without.survivors == ("graz", "linz")
    assert without.failures["vienna"].reason == Reason.SECURE_ROUND_REFUSED
    assert "deviates" in without.failures["vienna"].message
    assert not any("d" in r.flags for r in without.rows)

    pooled = run_secure_query(config, query, deviations=True)
    assert pooled.survivors == ("graz", "linz", "vienna")
    assert all("d" in r.flags for r in pooled.rows)
