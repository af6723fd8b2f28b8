"""Remove one person: at most one cell of any table changes, by at most Delta.

Through the node's real table engine, in process, on small synthetic data: a register
(unit weights, Delta = 1) and a weighted survey (weights clipped to ``max_weight``,
Delta = max_weight + 1), over every indicator the node serves, every group dimension and
every breakdown (alone and none). The persons removed are a fixed random sample of rows.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from common.errors import FedstatsError
from indicators.spec import BREAKDOWNS, GROUP_DIMS, Query, TableSpec, compile_query
from node.config import load_config
from node.engine import compute_table, require_variables, sensitivity
from node.harmonise import Harmonised
from node.service import NodeService
from tests.support.cities import SyntheticCities

PERSONS = 240
REMOVED = 12  # persons removed, one at a time, per table


def without(data: Harmonised, row: int) -> Harmonised:
    """The data with one person (row) removed."""
    return replace(
        data,
        rows=data.rows - 1,
        codes={k: np.delete(v, row) for k, v in data.codes.items()},
        age=np.delete(data.age, row),
        weights=None if data.weights is None else np.delete(data.weights, row),
    )


def tables(service: NodeService) -> dict[str, TableSpec]:
    """Every distinct table of every indicator x group dimension x breakdown the node serves."""
    found: dict[str, TableSpec] = {}
    for indicator in service.indicators():
        for group in GROUP_DIMS:
            for breakdowns in [(), *[(b,) for b in BREAKDOWNS]]:
                try:
                    plan = compile_query(Query((indicator,), group, breakdowns, rho=1.0))
                    for spec in plan.tables:
                        require_variables(service.data, spec)
                        found[spec.key] = spec
                except FedstatsError:
                    continue  # not a valid combination, or a variable this node lacks
    return found


@pytest.mark.slow
@pytest.mark.parametrize("city", ["vienna", "athens"], ids=["register", "weighted-survey"])
def test_removing_one_person_changes_at_most_one_cell_by_delta(
    tmp_path: Path, cities: SyntheticCities, city: str
) -> None:
    config = tmp_path / f"{city}.toml"
    config.write_text(cities.node_toml(city, persons=PERSONS))
    service = NodeService(load_config(config))
    data = service.data
    delta = service.period().sensitivity
    assert (data.weights is not None) == (city == "athens")
    if data.weights is None:
        assert delta == 1
    else:
        assert delta == sensitivity(service.config.privacy.max_weight) > data.weights.max()
    rows = np.random.default_rng(7).choice(data.rows, size=REMOVED, replace=False)
    specs = tables(service)
    assert len(specs) >= 20, sorted(specs)
    worst = 0
    for spec in specs.values():
        full = compute_table(data, spec)
        for row in rows:
            less = compute_table(without(data, int(row)), spec)
            diff = np.abs(full.counts.astype(np.int64) - less.counts.astype(np.int64))
            assert np.count_nonzero(diff) <= 1, (spec.key, int(row))
            assert diff.max(initial=0) <= delta, (spec.key, int(row), diff.max())
            worst = max(worst, int(diff.max(initial=0)))
            if full.samples is not None and less.samples is not None:
                sdiff = np.abs(full.samples.astype(np.int64) - less.samples.astype(np.int64))
                assert np.count_nonzero(sdiff) <= 1 and sdiff.max(initial=0) <= 1
    print(f"{city}: {len(specs)} tables x {REMOVED} persons; largest change {worst} <= {delta}")
