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
    comparator: str
    unit: str
    flags: str = ""
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    comparator_value: float | None = None
    gap: float | None = None
    gap_ci_low: float | None = None
    gap_ci_high: float | None = None
    denominator: float | None = None
    estimate: Estimate | None = field(default=None, repr=False)


@dataclass(frozen=True)
class _Source:
    """Where rows come from: one node's cells, or every answering node's side by side."""

    node: str
    geo: str
    period: str
    cells: Cells
    rules: DisclosureRules
    node_flags: list[str] | None  # the node's own population-cell flags, if one node
    extra_flags: str = ""


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


def _tiled(
    spec: TableSpec, indicator: Indicator, groups: list[int], cell: tuple[int, ...], tile: int
) -> _Selection:
    """The selection of one group and breakdown cell, repeated for ``tile`` stacked tables."""
    s = _selection(spec, indicator, groups, cell)
    return _Selection(np.tile(s.num, tile), np.tile(s.den, tile), np.tile(s.population, tile))


def _population_flag(
    source: _Source, spec: TableSpec, groups: list[int], cell: tuple[int, ...], sel: _Selection
) -> str:
    """The node's own flag for a single code; otherwise the rules on the noisy sums."""
    if source.node_flags is not None and len(groups) == 1:
        index = np.ravel_multi_index((groups[0], *cell), spec.shape[:-1])
        return source.node_flags[int(index)]
    cells = source.cells
    return source.rules.cell_flag(
        float(cells.values[sel.population].sum()), float(cells.samples[sel.population].sum())
    )


def _rows_for(
    source: _Source, spec: TableSpec, indicator: Indicator, plan: Plan
) -> list[BenchmarkRow]:
    """Rows of one indicator for one source: every breakdown cell and group."""
    rows: list[BenchmarkRow] = []
    cells, rules, comparator = source.cells, source.rules, plan.query.comparator
    tile = len(cells.values) // spec.n_cells
    breakdown_dims = spec.dims[1:]
    groups = _groups(spec)
    comparator_members = dict(groups)[comparator]
    for cell in itertools.product(*[range(len(d.codes)) for d in breakdown_dims]):
        comp_sel = _tiled(spec, indicator, comparator_members, cell, tile)
        comp = ratio(cells, comp_sel.num, comp_sel.den)
        comp_flag = _population_flag(source, spec, comparator_members, cell, comp_sel)
        comp_hidden = rules.estimate_flag(comp_flag, comp.value, comp.se) == CONFIDENTIAL
        for group, members in groups:
            sel = _tiled(spec, indicator, members, cell, tile)
            est = ratio(cells, sel.num, sel.den)
            flag = rules.estimate_flag(
                _population_flag(source, spec, members, cell, sel), est.value, est.se
            )
            row = BenchmarkRow(
                node=source.node,
                geo=source.geo,
                time_period=source.period,
                indicator=indicator.name,
                group_dim=plan.query.group_dim,
                group=group,
                breakdown={d.name: d.codes[i] for d, i in zip(breakdown_dims, cell, strict=True)},
                comparator=comparator,
                unit=indicator.unit,
                flags="".join(sorted(set(flag + source.extra_flags))),
                comparator_value=None if comp_hidden else _clip_pct(comp.value),
            )
            if flag != CONFIDENTIAL:
                _publish(row, est)
                if group != comparator and not comp_hidden:
                    _publish_gap(
                        row, difference(cells, (sel.num, sel.den), (comp_sel.num, comp_sel.den))
                    )
            rows.append(row)
    return rows


def _publish(row: BenchmarkRow, est: Estimate) -> None:
    low, high = est.interval()
    row.value, row.ci_low, row.ci_high = _clip_pct(est.value), _clip_pct(low), _clip_pct(high)
    row.denominator = est.denominator if math.isfinite(est.denominator) else None
    row.estimate = est


def _publish_gap(row: BenchmarkRow, gap: Estimate) -> None:
    low, high = gap.interval()
    row.gap, row.gap_ci_low, row.gap_ci_high = _pct(gap.value), _pct(low), _pct(high)


def _unavailable_rows(
    node: str, geo: str, period: str, spec: TableSpec, indicator: Indicator, plan: Plan
) -> list[BenchmarkRow]:
    breakdown_dims = spec.dims[1:]
    return [
        BenchmarkRow(
            node=node,
            geo=geo,
            time_period=period,
            indicator=indicator.name,
            group_dim=plan.query.group_dim,
            group=group,
            breakdown={d.name: c for d, c in zip(breakdown_dims, cell, strict=True)},
            comparator=plan.query.comparator,
            unit=indicator.unit,
            flags=UNAVAILABLE,
        )
        for cell in itertools.product(*[d.codes for d in breakdown_dims])
        for group, _ in _groups(spec)
    ]


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
                source = _Source(
                    node_id, a.geo, a.time_period, a.cells[spec.key], a.rules,
                    a.cell_flags[spec.key],
                )  # fmt: skip
                rows += _rows_for(source, spec, indicator, plan)
            else:
                geo = (geos or {}).get(node_id, "")
                rows += _unavailable_rows(node_id, geo, pooled_period, spec, indicator, plan)
        if answers:
            pooled = Cells.concat([answers[n].cells[spec.key] for n in node_order if n in answers])
            source = _Source(
                POOLED, POOLED, pooled_period, pooled, pooled_rules, None, pooled_extra
            )
            rows += _rows_for(source, spec, indicator, plan)
    return rows
