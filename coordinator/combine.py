"""Combining node tables into benchmark rows: rates, intervals, gaps, pooled values, flags.

Everything here is post-processing of released noisy tables: nothing reads a true count.
Pooled rows (``node = "*"``) put every answering node's cells side by side, so a pooled
rate is the ratio of summed noisy tables, with the variance of every node's noise.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from common.errors import FedstatsError, Reason
from coordinator.estimates import POVERTY_SHARE, Layout, group_estimate, is_share, median_of_all
from coordinator.flags import CONFIDENTIAL, DEVIATES, NONE, UNAVAILABLE, UNRELIABLE, Flags
from indicators.catalogue import BELOW_LINE, RATIO, Indicator
from indicators.spec import DERIVED_GROUPS, NATIVE_GROUP, Plan, TableSpec, parse_comparator
from privacy.disclosure import DisclosureRules
from privacy.estimators import Cells, Estimate, Linear
from protos import node_pb2 as pb

__all__ = [
    "POOLED",
    "TOTAL",
    "BenchmarkRow",
    "NodeTables",
    "benchmark_rows",
    "comparator_cell",
    "comparator_group",
    "groups_of",
    "pooled_rows",
    "poverty_lines",
    "read_result",
]

POOLED = "*"
BINNED_NOISE_LIMIT = 0.1
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
    cell_flags: dict[str, list[Flags]]
    poverty_line: float | None = None
    deviations: dict[str, str] = field(default_factory=dict)

    def deviates(self, spec: TableSpec) -> bool:
        """Whether the node's definition of a variable the table reads deviates."""
        return any(v in self.deviations for v in spec.variables())


@dataclass(frozen=True)
class BenchmarkRow:
    """One row of benchmark.csv, an immutable value; rates in percent, None where not published.

    ``comparator`` names the comparator group: ``TOTAL``, or the group dimension's native
    group (``NAT`` for country of birth and citizenship, ``NB_NBP`` for migration
    background, ``NAP`` for reason and years of residence), or a cohort comparator
    ``DIM=CODE``: the same group in the same breakdown cell but for DIM set to CODE.
    """

    node: str
    geo: str
    time_period: str
    indicator: str
    group_dim: str
    group: str
    breakdown: Mapping[str, str]
    comparator: str
    unit: str
    flags: Flags = NONE
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
    node_flags: list[Flags] | None  # the node's own population-cell flags, if one node
    extra_flags: Flags = NONE
    lines: list[float] | None = None  # poverty line of each stacked table


def read_result(result: pb.QueryResult, plan: Plan) -> NodeTables:
    """Check a node's answer against the local plan and read its cells.

    Raises:
        FedstatsError: When the node's tables do not match the plan (reason
            ``PROTOCOL_MISMATCH``): the node runs another catalogue version.
    """
    by_key = {t.key: t for t in result.tables}
    cells: dict[str, Cells] = {}
    flags: dict[str, list[Flags]] = {}
    if set(by_key) != {spec.key for spec in plan.tables}:
        raise FedstatsError(
            f"node {result.node_id} answered with other tables than it was asked for",
            reason=Reason.PROTOCOL_MISMATCH,
            hint="node and coordinator must run the same fedstats catalogue version",
        )
    for spec in plan.tables:
        table = by_key.get(spec.key)
        if table is None or len(table.counts) != spec.n_cells:
            raise FedstatsError(
                f"node {result.node_id} answered with tables that do not match the query",
                reason=Reason.PROTOCOL_MISMATCH,
                hint="node and coordinator must run the same fedstats catalogue version",
            )
        samples = list(table.sample_counts) if table.sample_counts else None
        cells[spec.key] = Cells.of(
            table.counts, table.sigma, samples, table.sample_sigma, result.design_effect or 1.0
        )
        try:
            flags[spec.key] = [Flags(f) for f in table.cell_flags]
        except ValueError as exc:
            raise FedstatsError(
                f"node {result.node_id} answered with unknown cell flags ({exc})",
                reason=Reason.PROTOCOL_MISMATCH,
                hint="node and coordinator must run the same fedstats catalogue version",
            ) from None
    d = result.disclosure
    return NodeTables(
        node_id=result.node_id,
        geo=result.geo,
        time_period=result.time_period,
        source=result.source,
        rules=DisclosureRules(d.min_count, d.unreliable_below, d.max_cv),
        cells=cells,
        cell_flags=flags,
        poverty_line=result.poverty_line or None,
        deviations=dict(result.deviations),
    )


def comparator_group(spec: TableSpec, comparator: str) -> str:
    """What rows name as comparator.

    ``TOTAL``, the dimension's native group, or the cohort comparator ``DIM=CODE`` itself.
    """
    if comparator == TOTAL or parse_comparator(comparator) is not None:
        return comparator
    native = NATIVE_GROUP.get(spec.dims[0].name)
    if native is None:
        raise FedstatsError(
            f"{spec.dims[0].name} has no native group to compare with",
            reason=Reason.MALFORMED_QUERY,
            field="comparator",
            hint="use --comparator TOTAL",
        )
    return native


def comparator_cell(
    spec: TableSpec, comparator: str, group: str, cell: tuple[int, ...]
) -> tuple[str, tuple[int, ...]]:
    """The group and breakdown cell a row of ``group`` in ``cell`` is compared with.

    Args:
        spec: The row's table.
        comparator: The row's comparator, as `comparator_group` names it.
        group: The row's group.
        cell: Positions of the row's breakdown codes.
    """
    cohort = parse_comparator(comparator)
    if cohort is None:
        return comparator, cell
    dim, code = cohort
    names = [d.name for d in spec.dims[1:]]
    if dim not in names or code not in spec.dims[1 + names.index(dim)].codes:
        raise FedstatsError(
            f"comparator {comparator!r} is not a breakdown code of the table",
            reason=Reason.MALFORMED_QUERY,
            field="comparator",
        )
    k = names.index(dim)
    at = list(cell)
    at[k] = spec.dims[1 + k].codes.index(code)
    return group, tuple(at)


def groups_of(spec: TableSpec) -> list[tuple[str, list[int]]]:
    """Published groups: each code, the derived groups, and TOTAL, as code positions."""
    dim = spec.dims[0]
    out = [(code, [i]) for i, code in enumerate(dim.codes)]
    for name, members in DERIVED_GROUPS.get(dim.name, {}).items():
        out.append((name, [dim.codes.index(m) for m in members]))
    out.append((TOTAL, list(range(len(dim.codes)))))
    return out


def _pct(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else 100.0 * x


def _published(x: float, share: bool) -> float | None:
    """A proportion in percent; shares are clipped to 0-100, level ratios at 0."""
    if not math.isfinite(x):
        return None
    return _pct(min(max(x, 0.0), 1.0) if share else max(x, 0.0))


def _population_flag(
    source: _Source, layout: Layout, groups: list[int], cell: tuple[int, ...]
) -> str:
    """The node's own flag for a single code; otherwise the rules on the noisy sums."""
    if source.node_flags is not None and len(groups) == 1:
        index = np.ravel_multi_index((groups[0], *cell), layout.spec.shape[:-1])
        return source.node_flags[int(index)]
    population = layout.population(groups, cell)
    cells = source.cells
    return source.rules.cell_flag(
        float(cells.values[population].sum()), float(cells.samples[population].sum())
    )


@dataclass(frozen=True)
class _Estimated:
    """One group's estimate in one breakdown cell, with what publication needs."""

    linear: Linear
    estimate: Estimate
    flag: str


def _estimate(
    source: _Source,
    layout: Layout,
    indicator: Indicator,
    groups: list[int],
    cell: tuple[int, ...],
) -> _Estimated:
    cells = source.cells
    linear = group_estimate(cells, layout, indicator, groups, cell, source.lines)
    counted = layout.population(groups, cell)
    if indicator.kind == RATIO:  # the denominator: only its outcome codes count
        outcome = layout.spec.outcome.codes
        den = [i for i, c in enumerate(outcome) if c in indicator.denominator]
        counted = layout.mask(groups, cell, den)
    estimate = Estimate(
        linear.value,
        linear.se(cells),
        float(cells.values[counted].sum()),
        float(cells.samples[counted].sum()),
    )
    flag = source.rules.estimate_flag(
        _population_flag(source, layout, groups, cell), estimate.value, estimate.se
    )
    if not flag and indicator.kind != RATIO and _noise_dominated(cells, layout, groups, cell):
        flag = UNRELIABLE
    return _Estimated(linear, estimate, flag)


def _noise_dominated(
    cells: Cells, layout: Layout, groups: list[int], cell: tuple[int, ...]
) -> bool:
    """Whether a binned distribution is too noisy for its median or poverty share.

    Its bins each carry noise; when the error of the group's total over all bins exceeds
    ``BINNED_NOISE_LIMIT`` of that total, the interpolated distribution (and so any
    median or share read from it) is unreliable, whatever the delta method says.
    """
    population = layout.population(groups, cell)
    total = float(cells.values[population].sum())
    error = math.sqrt(float(cells.variance[population].sum()))
    return total <= 0 or error > BINNED_NOISE_LIMIT * total


def _rows_for(
    source: _Source, spec: TableSpec, indicator: Indicator, plan: Plan
) -> list[BenchmarkRow]:
    """Rows of one indicator for one source: every breakdown cell and group."""
    rows: list[BenchmarkRow] = []
    comparator = comparator_group(spec, plan.query.comparator)
    layout = Layout(spec, len(source.cells.values) // spec.n_cells)
    share = is_share(indicator)
    breakdown_dims = spec.dims[1:]
    groups = groups_of(spec)
    members_of = dict(groups)
    compared: dict[tuple[str, tuple[int, ...]], _Estimated] = {}  # comparator estimates

    def estimated(group: str, cell: tuple[int, ...]) -> _Estimated:
        return compared.get((group, cell)) or _estimate(
            source, layout, indicator, members_of[group], cell
        )

    for cell in itertools.product(*[range(len(d.codes)) for d in breakdown_dims]):
        for group, _ in groups:
            est = estimated(group, cell)
            versus = comparator_cell(spec, comparator, group, cell)
            if versus not in compared:
                compared[versus] = estimated(*versus)
            comp = compared[versus]
            comp_hidden = comp.flag == CONFIDENTIAL
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
                flags=Flags(est.flag) | source.extra_flags,
                comparator_value=None if comp_hidden else _published(comp.linear.value, share),
            )
            if est.flag != CONFIDENTIAL:
                row = _with_estimate(row, est.estimate, share)
                if versus != (group, cell) and not comp_hidden:
                    gap = est.linear - comp.linear
                    row = _with_gap(row, Estimate(gap.value, gap.se(source.cells)))
            rows.append(row)
    return rows


def _with_estimate(row: BenchmarkRow, est: Estimate, share: bool) -> BenchmarkRow:
    low, high = est.interval()
    return replace(
        row,
        value=_published(est.value, share),
        ci_low=_published(low, share),
        ci_high=_published(high, share),
        denominator=est.denominator if math.isfinite(est.denominator) else None,
        estimate=est,
    )


def _with_gap(row: BenchmarkRow, gap: Estimate) -> BenchmarkRow:
    low, high = gap.interval()
    return replace(row, gap=_pct(gap.value), gap_ci_low=_pct(low), gap_ci_high=_pct(high))


def _unavailable_rows(
    node: str,
    geo: str,
    period: str,
    spec: TableSpec,
    indicator: Indicator,
    plan: Plan,
    flagged: Flags,
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
            comparator=comparator_group(spec, plan.query.comparator),
            unit=indicator.unit,
            flags=Flags(UNAVAILABLE) | flagged,
        )
        for cell in itertools.product(*[d.codes for d in breakdown_dims])
        for group, _ in groups_of(spec)
    ]


def poverty_lines(
    plan: Plan, spec: TableSpec, node_order: list[str], answers: dict[str, NodeTables]
) -> dict[str, float]:
    """The poverty line each answering node's rows use.

    The query's line if it gives one; else the node's configured national line; else
    60% of the median of the pooled distribution of every answering node.
    """
    answering = [n for n in node_order if n in answers]
    if plan.query.poverty_line is not None:
        return dict.fromkeys(answering, plan.query.poverty_line)
    derived = math.nan
    if any(answers[n].poverty_line is None for n in answering):
        pooled = Cells.concat([answers[n].cells[spec.key] for n in answering])
        median = median_of_all(pooled, Layout(spec, len(answering)))
        derived = POVERTY_SHARE * median.value
    return {
        n: line if (line := answers[n].poverty_line) is not None else derived for n in answering
    }


def benchmark_rows(
    plan: Plan,
    node_order: list[str],
    answers: dict[str, NodeTables],
    geos: dict[str, str] | None = None,
    *,
    pooled: bool = True,
    flagged: Flags = NONE,
) -> list[BenchmarkRow]:
    """Every benchmark row of one query: per node, then pooled, per indicator.

    Args:
        plan: The compiled query.
        node_order: Node ids in output order; those without answers get rows flagged ``n``.
        answers: Tables of the nodes that answered.
        geos: Geo codes of nodes known only from configuration (for failed nodes).
        pooled: Whether to give pooled rows.
        flagged: Flags every row carries.
    """
    rows: list[BenchmarkRow] = []
    periods = sorted({a.time_period for a in answers.values()})
    pooled_period = "+".join(periods)
    for name in plan.query.indicators:
        indicator, spec = plan.indicator(name)
        # the nodes that answered this indicator's table
        having = {n: a for n, a in answers.items() if spec.key in a.cells}
        answering = [n for n in node_order if n in having]
        lines: dict[str, float] = {}
        if indicator.kind == BELOW_LINE and having:
            lines = poverty_lines(plan, spec, node_order, having)
        for node_id in node_order:
            if node_id in having:
                a = having[node_id]
                source = _Source(
                    node_id, a.geo, a.time_period, a.cells[spec.key], a.rules,
                    a.cell_flags[spec.key], flagged | (DEVIATES if a.deviates(spec) else ""),
                    lines=[lines[node_id]] if lines else None,
                )  # fmt: skip
                rows += _rows_for(source, spec, indicator, plan)
            else:
                known = answers.get(node_id)
                geo = known.geo if known else (geos or {}).get(node_id, "")
                rows += _unavailable_rows(
                    node_id, geo, pooled_period, spec, indicator, plan, flagged
                )
        if pooled and having:
            extra = flagged | (UNAVAILABLE if len(having) < len(node_order) else "")
            if any(having[n].deviates(spec) for n in answering):
                extra |= DEVIATES
            source = _Source(
                POOLED, POOLED, pooled_period,
                Cells.concat([having[n].cells[spec.key] for n in answering]),
                DisclosureRules.strictest([having[n].rules for n in answering]), None, extra,
                lines=[lines[n] for n in answering] if lines else None,
            )  # fmt: skip
            rows += _rows_for(source, spec, indicator, plan)
    return rows


def pooled_rows(
    plan: Plan,
    cells: dict[str, Cells],
    rules: DisclosureRules,
    period: str,
    flagged: Flags = NONE,
    deviating: frozenset[str] = frozenset(),
) -> list[BenchmarkRow]:
    """Pooled rows (``node = "*"``) from one summed table per indicator, and nothing else.

    A secure round releases only the sum of the nodes' tables: the rows are the pooled
    (population-weighted) values of that sum, with intervals from its noise and flags by
    the rules on its noisy cells; no per-node row exists.

    Args:
        plan: The compiled query.
        cells: The summed cells of each table, by table key.
        rules: The disclosure rules to apply (the strictest of the nodes').
        period: The pooled period label.
        flagged: Flags every row carries.
        deviating: Variables whose definition deviates on some node (rows reading
            them are flagged ``d``).
    """
    rows: list[BenchmarkRow] = []
    for name in plan.query.indicators:
        indicator, spec = plan.indicator(name)
        line = plan.query.poverty_line
        lines = [line] if indicator.kind == BELOW_LINE and line is not None else None
        extra = flagged | (DEVIATES if deviating & set(spec.variables()) else "")
        source = _Source(POOLED, POOLED, period, cells[spec.key], rules, None, extra, lines)
        rows += _rows_for(source, spec, indicator, plan)
    return rows
