"""Pooled estimates over many stacked node tables equal the same sums taken node by node.

The pooled paths read each stacked table in its own slice (linear in the nodes); these
tests rebuild the same estimates one node at a time, on the whole stacked vector with
each node's mask, as the row-by-row definition reads, and require the same numbers bit
for bit (values and every gradient entry), on real noisy releases of different tables.
"""

from __future__ import annotations

import numpy as np
import pytest

from coordinator.estimates import Layout, group_estimate
from coordinator.pooling import CITY_MEAN, pooled_linear
from indicators.catalogue import BELOW_LINE
from indicators.spec import Query, TableSpec, compile_query
from indicators.variables import CATEGORICAL
from privacy.estimators import Cells, Linear, below_linear, total_linear
from privacy.gaussian import release

NODES = 7


def _stacked(indicator: str, seed: int) -> tuple[TableSpec, Cells, list[Cells]]:
    """One table spec and NODES real noisy releases of different tables, side by side."""
    plan = compile_query(Query((indicator,), "citizen", ("sex", "age"), "NAT", 0.5), None)
    spec = plan.tables[0]
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(NODES):
        noisy = release(rng.poisson(4.0 * (1 + k % 3), spec.n_cells), 1, 0.5)
        parts.append(Cells.of(noisy.values.astype(np.float64), noisy.sigma))
    return spec, Cells.concat(parts), parts


def _node_mask(layout: Layout, k: int) -> np.ndarray:
    mask = np.zeros(layout.spec.n_cells * layout.tile, dtype=bool)
    mask[layout.at(k)] = True
    return mask


def _assert_same(a: Linear, b: Linear) -> None:
    assert a.value == b.value or (np.isnan(a.value) and np.isnan(b.value))
    np.testing.assert_array_equal(a.grad, b.grad)
    assert dict(a.errors) == dict(b.errors)


@pytest.mark.parametrize("cell", [(0, 1), (1, 3), (None, 2)])
def test_the_pooled_count_below_each_nodes_own_line_sums_the_nodes_one_by_one(
    cell: tuple[int | None, ...],
) -> None:
    spec, cells, _ = _stacked("arop_rate", seed=3)
    plan = compile_query(Query(("arop_rate",), "citizen", ("sex", "age"), "NAT", 0.5), None)
    indicator, _ = plan.indicator("arop_rate")
    assert indicator.kind == BELOW_LINE
    layout = Layout(spec, NODES)
    lines = [9000.0 + 1700.0 * k for k in range(NODES)]
    groups = [1, 2]
    population = layout.population(groups, cell)
    bins, edges = layout.bin_of_cell(), CATEGORICAL[spec.outcome.name].edges
    below = Linear(0.0, np.zeros(cells.values.shape))
    for k, line in enumerate(lines):  # node by node, each with its own mask
        below = below + below_linear(cells, population & _node_mask(layout, k), bins, edges, line)
    expected = below.over(total_linear(cells, population))
    _assert_same(group_estimate(cells, layout, indicator, groups, cell, lines), expected)


@pytest.mark.parametrize("indicator_name", ["employment_rate", "median_income_ratio"])
def test_the_city_mean_is_the_mean_of_each_nodes_own_estimate(indicator_name: str) -> None:
    spec, cells, parts = _stacked(indicator_name, seed=5)
    plan = compile_query(Query((indicator_name,), "citizen", ("sex", "age"), "NAT", 0.5), None)
    indicator, _ = plan.indicator(indicator_name)
    layout, single = Layout(spec, NODES), Layout(spec, 1)
    groups, cell = [0], (1, 2)
    total = Linear(0.0, np.zeros(cells.values.shape))
    for k, part in enumerate(parts):  # node by node, each on its own released table
        own = group_estimate(part, single, indicator, groups, cell)
        grad = np.zeros(cells.values.shape)
        grad[layout.at(k)] = own.grad
        total = total + Linear(own.value, grad, {f"{k}:{e}": v for e, v in own.errors.items()})
    expected = total.scaled(1.0 / NODES)
    _assert_same(pooled_linear(CITY_MEAN, cells, layout, indicator, groups, cell, None), expected)
