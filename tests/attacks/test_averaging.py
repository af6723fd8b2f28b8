"""Averaging and differencing against a real node service (real ledger, real noise), in
process: retries, reordered specs and concurrent identical queries get identical noisy
answers and are charged once; every different release is charged."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from indicators.spec import Query
from node.config import load_config
from node.service import NodeService, QueryAnswer
from tests.support.cities import SyntheticCities


@pytest.fixture
def service(tmp_path: Path, cities: SyntheticCities) -> NodeService:
    config = tmp_path / "vienna.toml"
    config.write_text(cities.node_toml("vienna", persons=400, rho_budget=10.0, max_rho=1.0))
    return NodeService(load_config(config))


def by_key(answer: QueryAnswer) -> dict[str, list[int]]:
    return {t.key: list(t.counts) for t in answer.tables}


def test_retries_reordered_specs_and_concurrent_copies_gain_nothing(service: NodeService) -> None:
    query = Query(("employment_rate", "activity_rate", "unemployment_rate"), "citizen", rho=0.3)
    first = service.run_query("q1", query)
    assert first.rho_charged == pytest.approx(0.3) and not first.cached
    retry = service.run_query("q1", query)
    swapped = service.run_query("q2", Query(tuple(reversed(query.indicators)), "citizen", rho=0.3))
    with ThreadPoolExecutor(8) as pool:
        copies = list(pool.map(lambda i: service.run_query(f"c{i}", query), range(8)))
    for again in (retry, swapped, *copies):
        assert by_key(again) == by_key(first)  # the same noisy values: nothing to average
        assert again.rho_charged == 0.0 and again.cached
    assert service.budget().spent == pytest.approx(0.3)


def test_differencing_queries_are_each_charged(service: NodeService) -> None:
    """Every release that differs (a breakdown added, another group, another rho) is a
    fresh draw, charged in full: differencing costs what it releases."""
    asked = [
        Query(("employment_rate",), "citizen", rho=0.2),
        Query(("employment_rate",), "citizen", ("sex",), rho=0.2),
        Query(("employment_rate",), "citizen", ("age",), rho=0.2),
        Query(("employment_rate",), "citizen", rho=0.25),
    ]
    charged = [service.run_query(f"d{i}", q).rho_charged for i, q in enumerate(asked)]
    assert charged == pytest.approx([0.2, 0.2, 0.2, 0.25])
    assert service.budget().spent == pytest.approx(0.85)
