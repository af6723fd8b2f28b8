"""Secure pooled queries through real node servers: the sum, drop-outs, left-out nodes, charges.

Four to five nodes over mutual TLS from the production factory; each test is one round.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.combine import POOLED, BenchmarkRow
from coordinator.run import run_query
from coordinator.secure_run import run_secure_query
from indicators.spec import Query
from tests.support.cities import ServeCityFn
from tests.support.nodes import RunningNode, coordinator_for

CITIES = ("vienna", "graz", "linz", "salzburg")
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
        se = (mine.ci_high - mine.ci_low) / 3.92  # the secure pool's own standard error
        assert se < 0.1, key  # percentage points: the noise is tiny at this budget
        assert abs(mine.value - row.value) <= 6 * se + 1e-9, key
    assert compared >= len(want) / 2
    # every node charged the secure attempt and the plain query, each in full
    for node in nodes:
        assert node.service.budget().spent == pytest.approx(2 * HUGE)
