"""Combining node tables into benchmark rows: rates, intervals, gaps, pooled values, flags.

Everything here is post-processing of released noisy tables: nothing reads a true count.
Pooled rows (``node = "*"``) put every answering node's cells side by side, so a pooled
rate is the ratio of summed noisy tables, with the variance of every node's noise.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from common.errors import FedstatsError, Reason
from coordinator.across import Estimated, Key, gap_bounds, node_estimates, settle
from coordinator.bases import Base, Margin, Stacked, base_of, positions_of
from coordinator.estimates import Cell, Layout, is_share
from coordinator.flags import (
    DEVIATES,
    NONE,
    NOT_APPLICABLE,
    Flags,
    Status,
)
from coordinator.pooling import (
    CITY_MEAN,
    POPULATION,
    STANDARDISED,
    Pooling,
    finite,
    pooled_linear,
)
from coordinator.results import NodeTables
from coordinator.rows import POOLED, TOTAL, BenchmarkRow, row_of
from indicators.catalogue import BELOW_LINE, MEDIAN_RATIO, RATIO, Indicator
from indicators.spec import (
    DERIVED_GROUPS,
    NATIVE_GROUP,
    Dim,
    Plan,
    TableSpec,
    denominator_codes,
    parse_comparator,
)
from indicators.variables import AGE
from privacy.disclosure import FLAG_CODES, DisclosureRules
from privacy.estimators import Cells, Estimate, rate_interval

__all__ = [
    "Pooling",
    "benchmark_rows",
    "comparator_cell",
    "comparator_group",
    "gap_interval",
    "groups_of",
    "pool_members",
    "pooled_rows",
    "poverty_lines",
]

BINNED_NOISE_LIMIT = 0.1
STANDARD_MARGIN = ("sex", AGE)  # the breakdowns a standardised pooled row sums over
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class _Source:
    """Where rows come from: one node's cells, or every answering node's side by side."""

    node: str
    geo: str
    period: str
    cells: Cells
    rules: DisclosureRules
    margins: list[tuple[Margin, ...]]  # each stacked table's denominator margins
    extra_flags: Flags = NONE
    lines: list[float] | None = None  # poverty line of each stacked table
    aggregate: str = ""  # pooled rows: how the nodes are aggregated
    line_source: str = ""  # where a single node's poverty line comes from
    described: Mapping[str, str] = field(default_factory=dict)  # fields every row has
    _stacked: dict[int, Stacked] = field(default_factory=dict, repr=False, compare=False)

    @functools.cached_property
    def survey(self) -> bool:
        """Whether any stacked table is a survey's (its cells have a design effect)."""
        return bool(np.any(self.cells.deff > 0))

    def stacked(self, tiles: int) -> Stacked:
        """The stacked tables' margins side by side (made once per source)."""
        if tiles not in self._stacked:
            self._stacked[tiles] = Stacked.of(self.margins, tiles)
        return self._stacked[tiles]


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


@overload
def comparator_cell(
    spec: TableSpec, comparator: str, group: str, cell: tuple[int, ...]
) -> tuple[str, tuple[int, ...]]: ...
@overload
def comparator_cell(
    spec: TableSpec, comparator: str, group: str, cell: Cell
) -> tuple[str, Cell]: ...
def comparator_cell(spec: TableSpec, comparator: str, group: str, cell: Cell) -> tuple[str, Cell]:
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
    return 100.0 * (min(max(x, 0.0), 1.0) if share else max(x, 0.0))


def _estimate(
    source: _Source,
    layout: Layout,
    indicator: Indicator,
    groups: list[int],
    cell: Cell,
) -> Estimated:
    linear = pooled_linear(
        source.aggregate, source.cells, layout, indicator, groups, cell, source.lines
    )
    denominator = denominator_codes(indicator, layout.spec)
    outcome = layout.spec.outcome.codes
    where = positions_of(outcome)
    counted = layout.mask(groups, cell, [where[c] for c in denominator])
    survey = source.survey
    base = base_of(
        source.cells, layout, source.stacked(layout.tile), groups, cell, denominator, survey
    )
    cells, own = source.cells, layout.population(groups, cell)
    if survey and indicator.kind != RATIO:
        cells = _by_mean_weight(source, layout, groups, cell, denominator, base)
    estimate = Estimate(
        linear.value,
        linear.se(cells),
        base.count.value,
        base.observations.value if base.observations else base.count.value,
    )
    defined = finite(linear) and math.isfinite(estimate.se)
    rate = indicator.kind == RATIO and source.aggregate in ("", POPULATION)
    interval = (math.nan, math.nan)
    if defined and rate:
        numerator = [i for i, c in enumerate(outcome) if c in indicator.numerator]
        num = layout.mask(groups, cell, numerator)
        interval = rate_interval(cells, num, counted, layout.tile)
    elif defined:
        interval = estimate.interval()
    noisy = indicator.kind != RATIO and _noise_dominated(source, layout, groups, cell)
    flag, status, interval = settle(
        source.rules, estimate, base, interval, defined=defined, noisy=noisy, rate=rate
    )
    return Estimated(
        linear.value, estimate, flag, status, interval, base.unknown_share,
        is_share(indicator) and indicator.kind == RATIO, linear, cells.variance, own,
    )  # fmt: skip


def _by_mean_weight(
    source: _Source,
    layout: Layout,
    groups: list[int],
    cell: Cell,
    denominator: tuple[str, ...],
    base: Base,
) -> Cells:
    """The cells with each stacked table's population cell read at its mean weight.

    The mean weight is the denominator's noisy weighted count over its noisy number of
    observations (the released margins, low-noise), per stacked table; where either is
    not positive the cells' own per-cell variance stays (the rules suppress such a
    value anyway).
    """
    cells = source.cells
    population = layout.population(groups, cell)
    weights = np.full(cells.values.shape, np.nan)  # nan: the cell keeps its own variance
    one = Layout(layout.spec, 1)
    for k in range(layout.tile):
        if layout.tile > 1:
            margins: list[tuple[Margin, ...]] = [
                source.margins[k] if k < len(source.margins) else ()
            ]
            base = base_of(
                layout.part(cells, k), one, Stacked.of(margins, 1), groups, cell, denominator, True
            )
        if base.observations is None or base.observations.value <= 0 or base.count.value <= 0:
            continue
        weights[layout.at(k)] = base.count.value / base.observations.value
    return cells.with_mean_weight(population & ~np.isnan(weights), weights)


def gap_interval(est: Estimated, comp: Estimated, cells: Cells) -> tuple[float, float, float]:
    """A gap between two estimates on the same cells: value and 95% interval (MOVER).

    Each term's own interval (a rate's score interval, else ``value +- z se``) goes into
    `coordinator.across.gap_bounds` with the two estimates' delta-method correlation, the
    cells' variances as each estimate reads its own population.
    """
    assert est.linear is not None and comp.linear is not None
    assert est.variance is not None and comp.variance is not None
    assert est.own is not None
    cells = Cells(cells.values, np.where(est.own, est.variance, comp.variance), cells.samples)
    se1, se2 = est.linear.se(cells), comp.linear.se(cells)
    covariance = est.linear.covariance(comp.linear, cells)

    def f(x: float) -> npt.NDArray[np.float64]:
        return np.array([x], dtype=np.float64)

    gap, low, high = gap_bounds(
        (f(est.value), f(est.interval[0]), f(est.interval[1])),
        (f(comp.value), f(comp.interval[0]), f(comp.interval[1])),
        (f(se1), f(se2)), f(covariance), est.share,
    )  # fmt: skip
    return float(gap[0]), float(low[0]), float(high[0])


def _noise_dominated(source: _Source, layout: Layout, groups: list[int], cell: Cell) -> bool:
    """Whether a binned distribution is too noisy for its median or poverty share.

    Its bins each carry DP noise; when that noise on the group's total over all bins exceeds
    ``BINNED_NOISE_LIMIT`` of that total, the interpolated distribution (and so any
    median or share read from it) is dominated by noise and is not published. A mean of
    cities needs every city's own distribution to pass.
    """
    cells = source.cells
    population = layout.population(groups, cell)
    tables = range(layout.tile) if source.aggregate == CITY_MEAN else [None]
    for k in tables:  # each stacked table's own slice, or every cell at once
        at = slice(None) if k is None else layout.at(k)
        part = population[at]
        total = float(cells.values[at][part].sum())
        error = math.sqrt(float(cells.noise_variance[at][part].sum()))
        if total <= 0 or error > BINNED_NOISE_LIMIT * total:
            return True
    return False


def _pairs(spec: TableSpec, comparator: str, aggregate: str) -> dict[Key, Key]:
    """Each row's group and breakdown cell, in row order, with what it is compared with."""
    return {
        (group, cell): comparator_cell(spec, comparator, group, cell)
        for cell in _cells(spec, aggregate)
        for group, _ in groups_of(spec)
    }


def _rows_for(
    source: _Source, spec: TableSpec, indicator: Indicator, plan: Plan
) -> list[BenchmarkRow]:
    """Rows of one indicator for one source, estimated one group and cell at a time."""
    layout = Layout(spec, len(source.cells.values) // spec.n_cells)
    members = dict(groups_of(spec))
    pairs = _pairs(spec, comparator_group(spec, plan.query.comparator), source.aggregate)
    compared = set(pairs.values())
    kept: dict[Key, Estimated] = {}  # comparator estimates only: a pooled one is wide

    def estimate(key: Key) -> Estimated:
        found = kept.get(key)
        if found is None:
            found = _estimate(source, layout, indicator, members[key[0]], key[1])
            if key in compared:
                kept[key] = found
        return found

    share = is_share(indicator)

    def numbers(_: int, key: Key, versus: Key, fields: dict[str, Any]) -> str:
        est, comp = estimate(key), estimate(versus)
        comp_shown = comp.status == Status.PUBLISHED
        fields["status"] = est.status
        fields["comparator_value"] = _published(comp.value, share) if comp_shown else None
        fields["unknown_share"] = _pct(est.unknown_share)
        if est.status == Status.PUBLISHED:
            fields.update(_estimate_fields(est, share))
            if versus != key and comp_shown:
                fields.update(_gap_fields(gap_interval(est, comp, source.cells), share))
        return est.flag

    return _rows(source, indicator, plan, pairs, numbers)


NodeFields = Callable[[str, str], Mapping[str, str] | None]
"""The fields every row of a node's indicator has (by node id and indicator name), or None."""


def _undescribed(node: str, indicator: str) -> None:
    """No fields given as rows are made (`describe_rows` adds them after)."""
    return None


Numbers = Callable[[int, Key, Key, dict[str, Any]], str]
"""Sets a row's status and numeric fields in its fields and returns its flag, from the
position of its pair in the rows' order, its group and cell and its comparator's."""


def _rows(
    source: _Source, indicator: Indicator, plan: Plan, pairs: dict[Key, Key], numbers: Numbers
) -> list[BenchmarkRow]:
    """Rows of one indicator for one source: every breakdown cell and group."""
    rows: list[BenchmarkRow] = []
    _, spec = plan.indicator(indicator.name)
    breakdown_dims = spec.dims[1:]
    breakdowns: dict[Cell, dict[str, str]] = {}
    flags: dict[str, Flags] = {}
    template = _template(source, indicator, plan)
    for at, (key, versus) in enumerate(pairs.items()):
        group, cell = key
        fields = template.copy()
        flag = numbers(at, key, versus, fields)
        breakdown = breakdowns.get(cell)
        if breakdown is None:
            breakdown = breakdowns[cell] = _breakdown(breakdown_dims, cell, indicator)
        flagged = flags.get(flag)
        if flagged is None:
            flagged = flags[flag] = Flags(flag) | source.extra_flags
        fields["group"] = group
        fields["breakdown"] = breakdown
        fields["flags"] = flagged
        rows.append(row_of(fields))
    return rows


def _template(source: _Source, indicator: Indicator, plan: Plan) -> dict[str, Any]:
    """The fields every row of one indicator for one source shares; each row amends them."""
    _, spec = plan.indicator(indicator.name)
    line = source.lines[0] if source.lines and len(set(source.lines)) == 1 else None
    below = indicator.kind == BELOW_LINE
    common = BenchmarkRow(
        node=source.node,
        geo=source.geo,
        time_period=source.period,
        indicator=indicator.name,
        group_dim=plan.query.group_dim,
        group="",
        breakdown={},
        comparator=comparator_group(spec, plan.query.comparator),
        unit=indicator.unit,
        poverty_line=line if below else None,
        poverty_line_source=source.line_source if below else "",
        aggregate=source.aggregate,
    )
    if source.described:
        common = common.amended_by(source.described)
    return common.__dict__


def _cells(spec: TableSpec, aggregate: str) -> list[Cell]:
    """The breakdown cells rows are given for: all, or the age x sex margins if standardised."""
    dims = spec.dims[1:]
    margin = STANDARD_MARGIN if aggregate == STANDARDISED else ()
    return list(
        itertools.product(*[[None] if d.name in margin else range(len(d.codes)) for d in dims])
    )


def _breakdown(dims: tuple[Dim, ...], cell: Cell, indicator: Indicator) -> dict[str, str]:
    """A row's breakdown codes; a margin is ``T`` for sex and the indicator's age range."""
    total = {"sex": "T", AGE: indicator.population.code}
    return {
        d.name: total[d.name] if i is None else d.codes[i] for d, i in zip(dims, cell, strict=True)
    }


def _estimate_fields(est: Estimated, share: bool) -> dict[str, Any]:
    """A published row's value, interval and denominator."""
    low, high = est.interval
    value = est.estimate
    return {
        "value": _published(value.value, share),
        "ci_low": _published(low, share),
        "ci_high": _published(high, share),
        "denominator": value.denominator if math.isfinite(value.denominator) else None,
        "estimate": value,
    }


def _gap_fields(gap: tuple[float, float, float], share: bool) -> dict[str, Any]:
    """A row's gap and interval; a gap of two shares stays inside [-100, 100] points."""
    value, low, high = gap
    limit = 1.0 if share else math.inf

    def bounded(x: float) -> float | None:
        return _pct(min(max(x, -limit), limit))

    return {"gap": bounded(value), "gap_ci_low": bounded(low), "gap_ci_high": bounded(high)}


def _missing_rows(
    node: str,
    geo: str,
    period: str,
    spec: TableSpec,
    indicator: Indicator,
    plan: Plan,
    flagged: Flags,
    status: Status,
    aggregate: str = POPULATION,
) -> list[BenchmarkRow]:
    """Rows without values: the node did not answer, or does not provide what is needed."""
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
            flags=flagged | (NOT_APPLICABLE if status == Status.NOT_APPLICABLE else ""),
            status=status,
            aggregate=aggregate if node == POOLED else "",
        )
        for cell in itertools.product(*[d.codes for d in breakdown_dims])
        for group, _ in groups_of(spec)
    ]


def poverty_lines(plan: Plan, answers: dict[str, NodeTables]) -> dict[str, float]:
    """The poverty line of each answering node that has one.

    The query's line if it gives one; else the node's national line (60% of its country's
    median equivalised income of all persons). A node without one gets none: its AROP
    rate is not computed, never from a line pooled across countries.
    """
    if plan.query.poverty_line is not None:
        return dict.fromkeys(answers, plan.query.poverty_line)
    return {n: a.poverty_line for n, a in answers.items() if a.poverty_line is not None}


def _line_source(plan: Plan, answer: NodeTables) -> str:
    """Where a node's poverty line comes from: the query, or the node (its stated source)."""
    if plan.query.poverty_line is not None:
        return "given with the query"
    return answer.poverty_line_source or "the node's national line"


def _pooled_refusal(
    indicator: Indicator, members: list[str], answers: dict[str, NodeTables], n_nodes: int,
    pooling: Pooling,
) -> Status | None:  # fmt: skip
    """Why no pooled value is given, as the pooled rows' status; None when it is."""
    if not members and answers:
        return Status.NOT_APPLICABLE  # every answering node's definition differs
    if len(members) < pooling.min_coverage * n_nodes:
        if len(answers) < pooling.min_coverage * n_nodes:
            return Status.NO_ANSWER  # too few nodes answered to pool
        return Status.NOT_APPLICABLE  # enough answered, too few with the harmonised definition
    if len({answers[n].time_period for n in members}) > 1:
        return Status.NOT_APPLICABLE  # never across reference periods
    if indicator.kind != RATIO and len({answers[n].country for n in members}) > 1:
        return Status.NOT_APPLICABLE  # no median or poverty rate across countries
    if indicator.kind == MEDIAN_RATIO and pooling.aggregate == STANDARDISED:
        return Status.NOT_APPLICABLE  # a median is not age-sex standardised
    return None


def benchmark_rows(
    plan: Plan,
    node_order: list[str],
    answers: dict[str, NodeTables],
    geos: dict[str, str] | None = None,
    *,
    periods: dict[str, str] | None = None,
    pooled: bool | Pooling = True,
    flagged: Flags = NONE,
    not_provided: frozenset[str] = frozenset(),
    described: NodeFields | None = None,
) -> list[BenchmarkRow]:
    """Every benchmark row of one query: per node, then pooled, per indicator.

    Args:
        plan: The compiled query.
        node_order: Node ids in output order; those without answers get rows without
            values, with status ``no_answer`` or ``not_provided``.
        answers: Tables of the nodes that answered.
        geos: Geo codes of nodes known only from configuration (for failed nodes).
        periods: Latest periods failed nodes described (their rows' period when the
            query names none).
        pooled: Whether (and how) to give pooled rows.
        flagged: Flags every row carries.
        not_provided: Nodes that were not asked because they provide none of the
            query's variables.
        described: The fields every row of an answering node's indicator has
            (`coordinator.rowmeta.RowMeta.node_fields`): its rows are made with them.
    """
    pooling = pooled if isinstance(pooled, Pooling) else Pooling(enabled=pooled)
    rows: list[BenchmarkRow] = []
    for name in plan.query.indicators:
        indicator, spec = plan.indicator(name)
        # the nodes that answered this indicator's table
        having = {n: a for n, a in answers.items() if spec.key in a.cells}
        lines: dict[str, float] = {}
        if indicator.kind == BELOW_LINE:
            lines = poverty_lines(plan, having)
            having = {n: a for n, a in having.items() if n in lines}
        given = described or _undescribed
        sources = {
            node_id: _node_source(plan, spec, node_id, a, lines, flagged, given(node_id, name))
            for node_id in node_order
            if (a := having.get(node_id)) is not None
        }
        across = _across(spec, indicator, plan, sources)
        for node_id in node_order:
            if node_id in sources:
                rows += (
                    across(sources[node_id])
                    if across
                    else _rows_for(sources[node_id], spec, indicator, plan)
                )
                continue
            known = answers.get(node_id)
            geo = known.geo if known else (geos or {}).get(node_id, "")
            status = Status.NOT_PROVIDED if known or node_id in not_provided else Status.NO_ANSWER
            period = known.time_period if known else _silent_period(plan, node_id, periods)
            rows += _missing_rows(node_id, geo, period, spec, indicator, plan, flagged, status)
        if pooling.enabled and answers:
            rows += _pooled_rows(plan, spec, indicator, node_order, having, lines, pooling, flagged)
    return rows


def _node_source(
    plan: Plan, spec: TableSpec, node_id: str, a: NodeTables, lines: dict[str, float],
    flagged: Flags, fields: Mapping[str, str] | None = None,
) -> _Source:  # fmt: skip
    """One answering node's rows' source: its table of the indicator.

    ``fields`` are what every row of it has (`benchmark_rows`' ``described``).
    """
    return _Source(
        node_id, a.geo, a.time_period, a.cells[spec.key], a.rules,
        [a.margins.get(spec.key, ())], flagged | (DEVIATES if a.deviates(spec) else ""),
        lines=[lines[node_id]] if lines else None,
        line_source=_line_source(plan, a) if lines else "",
        described=fields or {},
    )  # fmt: skip


def _across(
    spec: TableSpec, indicator: Indicator, plan: Plan, sources: dict[str, _Source]
) -> Callable[[_Source], list[BenchmarkRow]] | None:
    """The rows of each node's source, from every node's ratio estimated at once.

    None for other kinds of indicator (their rows are estimated node by node).
    """
    if indicator.kind != RATIO or not sources:
        return None
    pairs = _pairs(spec, comparator_group(spec, plan.query.comparator), "")
    order = {node: k for k, node in enumerate(sources)}
    found = node_estimates(
        spec, indicator, [s.cells for s in sources.values()],
        [s.margins[0] for s in sources.values()], [s.rules for s in sources.values()],
        dict(groups_of(spec)), pairs,
    )  # fmt: skip

    published = Status.PUBLISHED
    breakdown_dims = spec.dims[1:]
    # each pair's group, breakdown codes (read-only, shared by the cell's rows) and
    # columns, in the rows' order: its own, its comparator's, their gap's
    read = []
    for key, versus in pairs.items():
        est, comp = found.columns[key], found.columns[versus]
        gaps = found.gaps.get((key, versus))
        read.append(
            (
                key[0], _breakdown(breakdown_dims, key[1], indicator), est.flags, est.statuses,
                comp.statuses, comp.value, est.unknown_share, est.value, est.low, est.high,
                est.denominator, est.estimates, *(gaps or (None, None, None)),
            )
        )  # fmt: skip
    flagged: dict[tuple[str, Flags], Flags] = {}  # a flag with a source's extra flags

    def rows(source: _Source) -> list[BenchmarkRow]:
        """One node's rows, each its template with its pair's numbers in the node's column.

        The fields `_rows_for` sets, as it sets them: a row shows its comparator's value
        where the comparator is published, its own numbers and gap where it is.
        """
        k = order[source.node]
        extra = source.extra_flags
        flags = {}
        for flag in FLAG_CODES:  # every flag `settle_columns` gives
            if (flag, extra) not in flagged:
                flagged[flag, extra] = Flags(flag) | extra
            flags[flag] = flagged[flag, extra]
        template = _template(source, indicator, plan)
        out: list[BenchmarkRow] = []
        append, new, assign = out.append, object.__new__, object.__setattr__
        for (
            group, breakdown, est_flags, statuses, comp_statuses, comp_value, unknown, value,
            low, high, denominator, estimates, gap, gap_low, gap_high,
        ) in read:  # fmt: skip
            fields = template.copy()  # a copy and item sets: faster than a dict display
            fields["group"] = group
            fields["breakdown"] = breakdown
            fields["flags"] = flags[est_flags[k]]
            status = fields["status"] = statuses[k]
            comp_shown = comp_statuses[k] == published
            if comp_shown:
                fields["comparator_value"] = comp_value[k]
            fields["unknown_share"] = unknown[k]
            if status == published:
                fields["value"] = value[k]
                fields["ci_low"] = low[k]
                fields["ci_high"] = high[k]
                fields["denominator"] = denominator[k]
                fields["estimate"] = estimates[k]
                if gap is not None and comp_shown:
                    fields["gap"] = gap[k]
                    fields["gap_ci_low"] = gap_low[k]
                    fields["gap_ci_high"] = gap_high[k]
            row = new(BenchmarkRow)
            assign(row, "__dict__", fields)  # as `row_of`
            append(row)
        return out

    return rows


def _silent_period(plan: Plan, node_id: str, periods: dict[str, str] | None) -> str:
    """A node's period without its answer: the query's, else what it described, else blank.

    Never another node's period: a blank says the period is not known.
    """
    return plan.query.time_period or (periods or {}).get(node_id, "")


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
        # The sum carries no denominator margins: the rules read its own cells.
        source = _Source(
            POOLED, POOLED, period, cells[spec.key], rules, [()], extra, lines, "population"
        )
        rows += _rows_for(source, spec, indicator, plan)
    return rows


def pool_members(
    spec: TableSpec, node_order: list[str], having: dict[str, NodeTables], deviations: bool
) -> list[str]:
    """The nodes a pooled value sums: those answering, without ``d`` unless asked."""
    return [n for n in node_order if n in having and (deviations or not having[n].deviates(spec))]


def _pooled_rows(
    plan: Plan, spec: TableSpec, indicator: Indicator, node_order: list[str],
    having: dict[str, NodeTables], lines: dict[str, float], pooling: Pooling, flagged: Flags,
) -> list[BenchmarkRow]:  # fmt: skip
    """The pooled rows of one indicator, or rows saying why there are none."""
    members = pool_members(spec, node_order, having, pooling.deviations)
    refusal = _pooled_refusal(indicator, members, having, len(node_order), pooling)
    period = "+".join(sorted({having[n].time_period for n in members})) or "+".join(
        sorted({a.time_period for a in having.values()})
    )
    if refusal is not None:
        return _missing_rows(
            POOLED, POOLED, period, spec, indicator, plan, flagged, refusal, pooling.aggregate
        )
    extra = flagged | (DEVIATES if any(having[n].deviates(spec) for n in members) else "")
    source = _Source(
        POOLED, POOLED, period,
        Cells.concat([having[n].cells[spec.key] for n in members]),
        DisclosureRules.strictest([having[n].rules for n in members]),
        [having[n].margins.get(spec.key, ()) for n in members], extra,
        lines=[lines[n] for n in members] if lines else None,
        aggregate=pooling.aggregate,
    )  # fmt: skip
    return _rows_for(source, spec, indicator, plan)
