"""Combining node tables into benchmark rows: rates, intervals, gaps, pooled values, flags.

Everything here is post-processing of released noisy tables: nothing reads a true count.
Pooled rows (``node = "*"``) put every answering node's cells side by side, so a pooled
rate is the ratio of summed noisy tables, with the variance of every node's noise.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from coordinator.client import NodeFailure
from indicators.catalogue import Indicator
from indicators.errors import FedstatsError
from indicators.spec import DERIVED_GROUPS, Plan, TableSpec
from privacy.disclosure import CONFIDENTIAL, DisclosureRules
from privacy.estimators import Cells, Estimate, difference, ratio
from protos import node_pb2 as pb

__all__ = ["POOLED", "BenchmarkRow", "NodeTables", "benchmark_rows", "read_result"]

POOLED = "*"
UNAVAILABLE = "n"
TOTAL = "TOTAL"
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class NodeTables:
    """One node's released tables, keyed by table spec key."""

    node_id: str
    geo: str
    time_period: str
    source: str
    rules: DisclosureRules
    cells: dict[str, Cells]
    cell_flags: dict[str, list[str]]


@dataclass
class BenchmarkRow:
    """One row of benchmark.csv; rates in percent, None where not published."""

    node: str
    geo: str
    time_period: str
    indicator: str
    group_dim: str
    group: str
    breakdown: dict[str, str]
    value: float | None
    ci_low: float | None
    ci_high: float | None
    comparator: str
    comparator_value: float | None
    gap: float | None
    gap_ci_low: float | None
    gap_ci_high: float | None
    denominator: float | None
    flags: str
    unit: str
    estimate: Estimate | None = field(default=None, repr=False)


def read_result(result: pb.QueryResult, plan: Plan) -> NodeTables:
    """Check a node's answer against the local plan and read its cells.

    Raises:
        FedstatsError: When the node's tables do not match the plan (reason
            ``PROTOCOL_MISMATCH``): the node runs another catalogue version.
    """
    by_key = {t.key: t for t in result.tables}
    cells: dict[str, Cells] = {}
    flags: dict[str, list[str]] = {}
    for spec in plan.tables:
        table = by_key.get(spec.key)
        if table is None or len(table.counts) != spec.n_cells:
            raise FedstatsError(
                f"node {result.node_id} answered with tables that do not match the query",
                reason="PROTOCOL_MISMATCH",
                hint="node and coordinator must run the same fedstats catalogue version",
            )
        samples = list(table.sample_counts) if table.sample_counts else None
        cells[spec.key] = Cells.of(
            table.counts, table.sigma, samples, table.sample_sigma, result.design_effect or 1.0
        )
        flags[spec.key] = list(table.cell_flags)
    d = result.disclosure
    return NodeTables(
        node_id=result.node_id,
        geo=result.geo,
        time_period=result.time_period,
        source=result.source,
        rules=DisclosureRules(d.min_count, d.unreliable_below, d.max_cv),
        cells=cells,
        cell_flags=flags,
    )


def _groups(spec: TableSpec) -> list[tuple[str, list[int]]]:
    """Published groups: each code, the derived groups, and TOTAL, as code positions."""
    dim = spec.dims[0]
    out = [(code, [i]) for i, code in enumerate(dim.codes)]
    for name, members in DERIVED_GROUPS.get(dim.name, {}).items():
        out.append((name, [dim.codes.index(m) for m in members]))
    out.append((TOTAL, list(range(len(dim.codes)))))
    return out


def _mask(spec: TableSpec, groups: list[int], cell: tuple[int, ...], outcomes: list[int]) -> Mask:
    mask = np.zeros(spec.shape, dtype=bool)
    mask[np.ix_(groups, *[[i] for i in cell], outcomes)] = True
    return mask.ravel()


@dataclass(frozen=True)
class _Selection:
    """Numerator and denominator masks of one group in one breakdown cell."""

    num: Mask
    den: Mask
    population: Mask  # every outcome: the population cell, for disclosure counts


def _selection(
    spec: TableSpec, indicator: Indicator, groups: list[int], cell: tuple[int, ...]
) -> _Selection:
    codes = spec.outcome.codes
    num = [i for i, c in enumerate(codes) if c in indicator.numerator]
    den = [i for i, c in enumerate(codes) if c in indicator.denominator]
    return _Selection(
        _mask(spec, groups, cell, num),
        _mask(spec, groups, cell, den),
        _mask(spec, groups, cell, list(range(len(codes)))),
    )


def _pct(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else 100.0 * x


def _clip_pct(x: float) -> float | None:
    return _pct(min(max(x, 0.0), 1.0)) if math.isfinite(x) else None


def _cell_flag(cells: Cells, sel: _Selection, rules: DisclosureRules, node_flag: str | None) -> str:
    if node_flag is not None:
        return node_flag
    return rules.cell_flag(
        float(cells.values[sel.population].sum()), float(cells.samples[sel.population].sum())
    )


def _rows_for(
    where: tuple[str, str, str],
    spec: TableSpec,
    indicator: Indicator,
    plan: Plan,
    cells: Cells,
    rules: DisclosureRules,
    node_flags: list[str] | None,
    extra_flags: str,
) -> list[BenchmarkRow]:
    """Rows of one indicator for one node (or the pool), every breakdown cell and group."""
    node, geo, period = where
    rows: list[BenchmarkRow] = []
    tile = len(cells.values) // spec.n_cells
    breakdown_dims = spec.dims[1:]
    comparator_groups = dict(_groups(spec))[plan.query.comparator]
    for cell in itertools.product(*[range(len(d.codes)) for d in breakdown_dims]):
        breakdown = {d.name: d.codes[i] for d, i in zip(breakdown_dims, cell, strict=True)}

        def select(groups: list[int], cell: tuple[int, ...] = cell) -> _Selection:
            s = _selection(spec, indicator, groups, cell)
            return _Selection(
                np.tile(s.num, tile), np.tile(s.den, tile), np.tile(s.population, tile)
            )

        def flag_of(groups: list[int], sel: _Selection, cell: tuple[int, ...] = cell) -> str:
            node_flag = None
            if node_flags is not None and len(groups) == 1:
                node_flag = node_flags[
                    int(np.ravel_multi_index((groups[0], *cell), spec.shape[:-1]))
                ]
            return _cell_flag(cells, sel, rules, node_flag)

        comp_sel = select(comparator_groups)
        comp = ratio(cells, comp_sel.num, comp_sel.den)
        comp_flag = rules.estimate_flag(flag_of(comparator_groups, comp_sel), comp.value, comp.se)
        for group, members in _groups(spec):
            sel = select(members)
            est = ratio(cells, sel.num, sel.den)
            flag = rules.estimate_flag(flag_of(members, sel), est.value, est.se)
            hidden = flag == CONFIDENTIAL
            comp_hidden = comp_flag == CONFIDENTIAL
            gap = None
            if group != plan.query.comparator and not hidden and not comp_hidden:
                gap = difference(cells, (sel.num, sel.den), (comp_sel.num, comp_sel.den))
            low, high = est.interval()
            gap_low, gap_high = gap.interval() if gap else (math.nan, math.nan)
            rows.append(
                BenchmarkRow(
                    node=node,
                    geo=geo,
                    time_period=period,
                    indicator=indicator.name,
                    group_dim=plan.query.group_dim,
                    group=group,
                    breakdown=breakdown,
                    value=None if hidden else _clip_pct(est.value),
                    ci_low=None if hidden else _clip_pct(low),
                    ci_high=None if hidden else _clip_pct(high),
                    comparator=plan.query.comparator,
                    comparator_value=None if comp_hidden else _clip_pct(comp.value),
                    gap=_pct(gap.value) if gap else None,
                    gap_ci_low=_pct(gap_low) if gap else None,
                    gap_ci_high=_pct(gap_high) if gap else None,
                    denominator=None if hidden else est.denominator,
                    flags="".join(sorted(set(flag + extra_flags))),
                    unit=indicator.unit,
                    estimate=None if hidden else est,
                )
            )
    return rows


def _unavailable_rows(
    where: tuple[str, str, str], spec: TableSpec, indicator: Indicator, plan: Plan
) -> list[BenchmarkRow]:
    node, geo, period = where
    breakdown_dims = spec.dims[1:]
    rows = []
    for cell in itertools.product(*[d.codes for d in breakdown_dims]):
        for group, _ in _groups(spec):
            rows.append(
                BenchmarkRow(
                    node, geo, period, indicator.name, plan.query.group_dim, group,
                    {d.name: c for d, c in zip(breakdown_dims, cell, strict=True)},
                    None, None, None, plan.query.comparator, None, None, None, None, None,
                    UNAVAILABLE, indicator.unit,
                )
            )  # fmt: skip
    return rows


def benchmark_rows(
    plan: Plan,
    node_order: list[str],
    answers: dict[str, NodeTables],
    failures: dict[str, NodeFailure],
    geos: dict[str, str] | None = None,
) -> list[BenchmarkRow]:
    """Every benchmark row of one query: per node, then pooled, per indicator.

    Args:
        plan: The compiled query.
        node_order: Node ids in output order.
        answers: Tables of the nodes that answered.
        failures: Nodes that did not answer (their rows are flagged ``n``).
        geos: Geo codes of nodes known only from configuration (for failed nodes).
    """
    rows: list[BenchmarkRow] = []
    periods = sorted({a.time_period for a in answers.values()})
    pooled_period = "+".join(periods)
    pooled_rules = DisclosureRules.strictest([a.rules for a in answers.values()])
    pooled_extra = UNAVAILABLE if failures else ""
    for name in plan.query.indicators:
        indicator, spec = plan.indicator(name)
        for node_id in node_order:
            if node_id in answers:
                a = answers[node_id]
                rows += _rows_for(
                    (node_id, a.geo, a.time_period), spec, indicator, plan, a.cells[spec.key],
                    a.rules, a.cell_flags[spec.key], "",
                )  # fmt: skip
            else:
                geo = (geos or {}).get(node_id, "")
                rows += _unavailable_rows((node_id, geo, pooled_period), spec, indicator, plan)
        if answers:
            pooled = Cells.concat([answers[n].cells[spec.key] for n in node_order if n in answers])
            rows += _rows_for(
                (POOLED, POOLED, pooled_period), spec, indicator, plan, pooled, pooled_rules,
                None, pooled_extra,
            )  # fmt: skip
    return rows
