"""Estimates of many nodes at once: each node's own value of a ratio, as arrays over nodes.

A ratio indicator's row of one node reads that node's table alone; a federation of 300
cities has 300 tables of one layout. Stacked as a (nodes, cells) array, every node's
value, standard error, rules' base, score interval and gap for one group and breakdown
cell are a few numpy operations whatever the number of nodes. The arithmetic is the
per-row arithmetic's own (`privacy.estimators.ratio_rows`, `rate_intervals`' terms and
bounds, `difference_intervals`, `coordinator.bases.table_bases`), so each node gets the
numbers its rows get one at a time, bit for bit; so are the flags and statuses:
`settle_columns` applies `settle`'s rules (`privacy.disclosure.RuleColumns`, the scalar
rules' array form) to every node's row at once, and the unit tests hold the two equal on
every edge. The sums of all groups and cells are taken together (`selections_sums`), and
every element-wise step runs once over them all, stacked (groups and cells, nodes):
element-wise arithmetic gives each element the same bits whatever the array's shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, cast

import numpy as np
import numpy.typing as npt

from coordinator.bases import (
    Base,
    Margin,
    Stacked,
    TableBases,
    positions_of,
    table_bases,
)
from coordinator.estimates import Cell, Layout, is_share
from coordinator.flags import UNRELIABLE, Status
from indicators.catalogue import Indicator
from indicators.spec import TableSpec, denominator_codes
from privacy.disclosure import FLAG_CODES, CodeArray, DisclosureRules, RuleColumns
from privacy.estimators import (
    Cells,
    Estimate,
    Linear,
    RateTerms,
    difference_intervals,
    gradient_variance,
    rate_bounds,
    rate_terms,
    ratio_rows,
    selections_sums,
)

__all__ = [
    "BATCH_FLOATS",
    "Column",
    "Estimated",
    "NodeEstimates",
    "gap_bounds",
    "gap_percent",
    "node_estimates",
    "percent",
    "settle",
    "settle_columns",
    "shown",
]

FloatArray = npt.NDArray[np.float64]
Key = tuple[str, Cell]  # a group and a breakdown cell


class Estimated(NamedTuple):
    """One group's estimate in one breakdown cell, with what publication needs.

    Made by the one-source path (pooled rows, medians, poverty rates), one at a time:
    ``linear`` (with ``variance``, each cell's variance as the estimate reads it, and
    ``own``, the cells whose variance it set) is kept for their gaps. Rows across nodes
    are made from published columns (`percent`, `gap_percent`) and make none.
    """

    value: float
    estimate: Estimate
    flag: str
    status: Status
    interval: tuple[float, float]
    unknown_share: float | None = None
    share: bool = False
    linear: Linear | None = None
    variance: FloatArray | None = None
    own: npt.NDArray[np.bool_] | None = None


def settle(
    rules: DisclosureRules,
    estimate: Estimate,
    base: Base,
    interval: tuple[float, float],
    *,
    defined: bool,
    noisy: bool,
    rate: bool,
) -> tuple[str, Status, tuple[float, float]]:
    """A value's flag, status and interval from the rules and its numbers.

    A published value keeps the interval given.

    Args:
        rules: The disclosure rules.
        estimate: The value, its standard error and denominator.
        base: What the rules read (its denominator's noisy margins).
        interval: The value's interval.
        defined: Whether the value and its standard error are defined.
        noisy: Whether noise dominates a binned distribution the value reads.
        rate: Whether the interval is a rate's score interval (nan: noise swamps it).
    """
    judged = rules.judge(base.count, base.observations, base.unknown_share)
    flag = rules.estimate_flag(judged.flag, estimate.value, estimate.se)
    status = Status.SUPPRESSED if judged.suppressed else Status.PUBLISHED
    if noisy:
        flag, status = flag or UNRELIABLE, Status.SUPPRESSED
    if not defined:  # a term has no denominator
        return flag or UNRELIABLE, Status.SUPPRESSED, (math.nan, math.nan)
    if rate and not all(map(math.isfinite, interval)):  # noise swamps the rate
        flag, status = flag or UNRELIABLE, Status.SUPPRESSED
    return flag, status, interval


def settle_columns(
    rules: RuleColumns,
    value: FloatArray,
    se: FloatArray,
    bases: TableBases,
    surveys: npt.NDArray[np.bool_],
    interval: tuple[FloatArray, FloatArray],
    defined: npt.NDArray[np.bool_],
) -> tuple[CodeArray, npt.NDArray[np.bool_]]:
    """`settle` of many rates at once (``noisy=False``, ``rate=True``): flags and withheld.

    Element by element `settle`'s own rules on the arrays (`RuleColumns`; the unit tests
    hold the two equal on every edge).

    Args:
        rules: Each value's disclosure rules.
        value: The values.
        se: Their standard errors.
        bases: What the rules read, per value (`TableBases`).
        surveys: Per value, whether its base has observations.
        interval: Each value's interval (a rate's score interval).
        defined: Whether each value and its standard error are defined.

    Any shape whose last axis is the rules' (values of several groups and cells stacked).

    Returns:
        Each value's flag code (`FLAG_CODES`), and whether it is withheld (status
        ``suppressed``).
    """
    count = (bases.count[0], np.sqrt(bases.count[1]))
    observed = bases.observations
    observations = (
        None if observed is None else (observed[0], np.sqrt(observed[1]), surveys)
    )  # fmt: skip
    unknown = np.where(np.isfinite(bases.unknown), bases.unknown, math.nan)
    judged, withheld = rules.judge(count, observations, unknown)
    codes = rules.estimate_flag(judged, value, se)
    swamped = ~defined | ~(np.isfinite(interval[0]) & np.isfinite(interval[1]))
    settled: CodeArray = np.where(
        swamped & (codes == 0), FLAG_CODES.index(UNRELIABLE), codes
    ).astype(np.int8)
    return settled, withheld | swamped


def gap_bounds(
    first: tuple[FloatArray, FloatArray, FloatArray],
    second: tuple[FloatArray, FloatArray, FloatArray],
    se: tuple[FloatArray, FloatArray],
    covariance: FloatArray,
    share: bool,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """A gap between two estimates on the same cells: value and 95% interval (MOVER).

    Each term's own interval goes into `difference_intervals` with the two estimates'
    delta-method correlation (0 when a standard error is 0); shares are clipped to [0, 1].

    Args:
        first: The estimate's value, low and high bound.
        second: The comparator's.
        se: Their standard errors.
        covariance: Their covariance.
        share: Whether the values are shares.
    """
    se1, se2 = se
    positive = (se1 > 0) & (se2 > 0)
    correlation = np.where(positive, covariance / np.where(positive, se1 * se2, 1.0), 0.0)
    v1, v2 = first[0], second[0]
    if share:
        v1, v2 = np.minimum(np.maximum(v1, 0.0), 1.0), np.minimum(np.maximum(v2, 0.0), 1.0)
    low, high = difference_intervals(
        (v1, first[1], first[2]),
        (v2, second[1], second[2]),
        np.minimum(np.maximum(correlation, -1.0), 1.0),
    )
    return v1 - v2, low, high


@dataclass(frozen=True)
class _Numbers:
    """One group and breakdown cell in every node: the arrays its rows read."""

    value: FloatArray
    se: FloatArray
    grad: FloatArray
    low: FloatArray
    high: FloatArray


Shown = list[float | None]
"""One published column over nodes: each node's number as its row shows it, None where it
shows none (not finite)."""


@dataclass(frozen=True)
class Column:
    """One group and breakdown cell's estimate in every node, as the rows publish it.

    Attributes:
        flags: Each node's flag (`settle`).
        statuses: Each node's status.
        estimates: Each node's estimate where its row is published (kept on the row), else
            None.
        value: The value in percent (`percent`).
        low: The interval's low bound in percent; a published value's interval is the one
            `settle` was given.
        high: Its high bound.
        denominator: The rules' base count.
        unknown_share: The unknown-outcome share in percent.
    """

    flags: list[str]
    statuses: list[Status]
    estimates: list[Estimate | None]
    value: Shown
    low: Shown
    high: Shown
    denominator: Shown
    unknown_share: Shown

    def extend(self, other: Column) -> None:
        """Append another batch's nodes."""
        for name in _COLUMN_FIELDS:
            getattr(self, name).extend(getattr(other, name))


_STATUSES = (Status.PUBLISHED, Status.SUPPRESSED)  # by whether withheld

_COLUMN_FIELDS = (
    "flags", "statuses", "estimates", "value", "low", "high", "denominator", "unknown_share"
)  # fmt: skip


@dataclass(frozen=True)
class NodeEstimates:
    """Every node's estimates of one ratio indicator, and the gaps between them.

    Column by column: a row of node ``k`` reads element ``k`` of each list (nodes in the
    order given).

    Attributes:
        columns: Each group and breakdown cell's estimates.
        gaps: Each (group and cell, comparator group and cell) pair's gap, low and high
            bound in percentage points, as the rows publish them (`gap_percent`).
    """

    columns: dict[Key, Column]
    gaps: dict[tuple[Key, Key], tuple[Shown, Shown, Shown]]

    def extend(self, other: NodeEstimates) -> None:
        """Append another batch's nodes."""
        for key, column in other.columns.items():
            if key in self.columns:
                self.columns[key].extend(column)
            else:
                self.columns[key] = column
        for pair, (gap, low, high) in other.gaps.items():
            if pair in self.gaps:
                for mine, theirs in zip(self.gaps[pair], (gap, low, high), strict=True):
                    mine.extend(theirs)
            else:
                self.gaps[pair] = (gap, low, high)


def shown(x: FloatArray) -> Shown:
    """Each number as a row holds it: None where not finite."""
    out: Shown = _with_none(x).tolist()
    return out


def _shown_rows(x: FloatArray) -> list[Shown]:
    """`shown` of each row of a 2-D array."""
    out: list[Shown] = _with_none(x).tolist()
    return out


def _with_none(x: FloatArray) -> npt.NDArray[np.object_]:
    """The numbers as Python floats in an object array, None where not finite."""
    out = x.astype(object)
    out[~np.isfinite(x)] = None
    return out


def percent(x: FloatArray, share: bool) -> Shown:
    """Proportions in percent as rows publish them (`coordinator.combine`'s ``_published``).

    Element by element the scalar rule's own operations: None where not finite, below 0 is
    0, a share above 1 is 1 (Python's ``max(x, 0.0)`` and ``min(x, 1.0)``: -0.0 stays),
    times 100.
    """
    return shown(_percent_array(x, share))


def _percent_array(x: FloatArray, share: bool) -> FloatArray:
    """`percent` before `shown` (nan where not finite), element-wise on any shape."""
    clipped = np.where(x < 0.0, 0.0, x)
    if share:
        clipped = np.where(clipped > 1.0, 1.0, clipped)
    out: FloatArray = np.where(np.isfinite(x), 100.0 * clipped, math.nan)
    return out


def gap_percent(x: FloatArray, share: bool) -> Shown:
    """Gaps in percentage points as rows publish them: a gap of two shares in [-1, 1]."""
    return shown(_gap_array(x, share))


def _gap_array(x: FloatArray, share: bool) -> FloatArray:
    """`gap_percent` before `shown`, element-wise on any shape."""
    if share:
        x = np.where(x < -1.0, -1.0, x)
        x = np.where(x > 1.0, 1.0, x)
    out: FloatArray = 100.0 * x
    return out


BATCH_FLOATS = 8_000_000
"""At most this many gradient entries (64 MB) are held at once: nodes are estimated in
batches of as many as fit (all 300 of a 120-cell table; fewer of a wide one)."""


def node_estimates(
    spec: TableSpec,
    indicator: Indicator,
    cells: Sequence[Cells],
    margins: Sequence[tuple[Margin, ...]],
    rules: Sequence[DisclosureRules],
    members: dict[str, list[int]],
    pairs: dict[Key, Key],
) -> NodeEstimates:
    """Each node's own estimates of a ratio indicator, all nodes at once (in batches).

    Args:
        spec: The indicator's table.
        indicator: A ``ratio`` indicator.
        cells: Each node's cells of the table (one table each).
        margins: Each node's released margins of the table.
        rules: Each node's disclosure rules.
        members: Each published group's code positions.
        pairs: Each row's group and cell, with the group and cell it is compared with.
    """
    keys = len({*pairs, *pairs.values()})
    step = max(1, BATCH_FLOATS // max(1, keys * spec.n_cells))
    found = NodeEstimates({}, {})
    for at in range(0, len(cells), step):
        part = slice(at, at + step)
        found.extend(
            _batch(spec, indicator, cells[part], margins[part], rules[part], members, pairs)
        )
    return found


def _batch(
    spec: TableSpec,
    indicator: Indicator,
    cells: Sequence[Cells],
    margins: Sequence[tuple[Margin, ...]],
    rules: Sequence[DisclosureRules],
    members: dict[str, list[int]],
    pairs: dict[Key, Key],
) -> NodeEstimates:
    """One batch of nodes' estimates (see `node_estimates`)."""
    n = len(cells)
    stacked = Cells.stack(cells)
    layout, one = Layout(spec, n), Layout(spec, 1)
    margin_stack = Stacked.of(margins, n)
    outcome = spec.outcome.codes
    where = positions_of(outcome)
    numerator = [i for i, c in enumerate(outcome) if c in indicator.numerator]
    ratio_den = [i for i, c in enumerate(outcome) if c in indicator.denominator]
    denominator = denominator_codes(indicator, spec)
    counted_at = [where[c] for c in denominator]
    surveys = np.any(stacked.deff > 0, axis=-1)  # per node: any cell with a design effect
    judging = RuleColumns.of(rules)
    share = is_share(indicator)
    keys = list(dict.fromkeys([*pairs, *pairs.values()]))
    at = {key: i for i, key in enumerate(keys)}
    # each group and cell's sums (one numpy pass over every node each); then every
    # element-wise step once over all of them, stacked (keys, nodes)
    masks = [
        (one.mask(members[g], c, numerator), one.mask(members[g], c, ratio_den),
         one.mask(members[g], c, counted_at))
        for g, c in keys
    ]  # fmt: skip
    at_num, at_den, at_counted = (
        [np.flatnonzero(m[j]) for m in masks] for j in range(3)
    )  # fmt: skip
    values, noise = stacked.values, stacked.noise_variance
    num_sums = selections_sums(values, at_num)
    den_sums, counted_sums = selections_sums(values, at_den), selections_sums(values, at_counted)
    noise_num, noise_counted = selections_sums(noise, at_num), selections_sums(noise, at_counted)
    ratios, variances, terms = [], [], []
    grads = np.empty((len(keys), *values.shape))  # written in place: no array per step
    scratch = np.empty(values.shape)
    for i, (num, den, counted) in enumerate(masks):
        r, _, grad = ratio_rows(values, num, den, (den_sums[i], num_sums[i]), grads[i])
        ratios.append(r)
        variances.append(gradient_variance(grad, stacked.variance, scratch))
        sums = (counted_sums[i], num_sums[i], noise_num[i], noise_counted[i])
        terms.append(rate_terms(stacked, num, counted, sums))
    r, var = np.stack(ratios), np.stack(variances)
    low, high = rate_bounds(cast(RateTerms, tuple(np.stack(t) for t in zip(*terms, strict=True))))
    se = np.where(np.isfinite(r), np.sqrt(np.where(np.isfinite(r), var, 0.0)), math.nan)
    # Defined: a finite rate with a finite standard error. Every gradient entry is then
    # finite too: a non-finite entry's term of the variance (its square times a cell's
    # variance) is inf or nan whatever that variance, and so is any sum holding it.
    defined = np.isfinite(r) & np.isfinite(se)
    selections = [(members[group], cell) for group, cell in keys]
    bases = table_bases(stacked, layout, margin_stack, selections, denominator, bool(surveys.any()))
    count, observations = bases.count, bases.observations
    codes, withheld = settle_columns(judging, r, se, bases, surveys, (low, high), defined)
    samples = count[0] if observations is None else np.where(surveys, observations[0], count[0])
    shown_columns = zip(
        _shown_rows(_percent_array(r, share)), _shown_rows(_percent_array(low, share)),
        _shown_rows(_percent_array(high, share)), _shown_rows(count[0]),
        _shown_rows(100.0 * bases.unknown), strict=True,
    )  # fmt: skip
    shown_at = ~withheld  # a published row keeps its estimate: made for those alone
    made = Estimate.many(
        r[shown_at].tolist(), se[shown_at].tolist(), count[0][shown_at].tolist(),
        samples[shown_at].tolist(),
    )  # fmt: skip
    estimates: list[list[Estimate | None]] = [[None] * n for _ in keys]
    for (i, k), estimate in zip(np.argwhere(shown_at).tolist(), made, strict=True):
        estimates[i][k] = estimate
    flags, statuses = codes.tolist(), withheld.tolist()
    columns: dict[Key, Column] = {}
    for i, (key, (value, lows, highs, denominator_shown, unknown_shown)) in enumerate(
        zip(keys, shown_columns, strict=True)
    ):
        columns[key] = Column(
            list(map(FLAG_CODES.__getitem__, flags[i])),
            list(map(_STATUSES.__getitem__, statuses[i])),
            estimates[i], value, lows, highs, denominator_shown, unknown_shown,
        )  # fmt: skip
    compared = [(key, versus) for key, versus in pairs.items() if key != versus]
    gaps: dict[tuple[Key, Key], tuple[Shown, Shown, Shown]] = {}
    if not compared:
        return NodeEstimates(columns, gaps)
    first = [at[key] for key, _ in compared]
    second = [at[versus] for _, versus in compared]
    covariance = np.empty((len(compared), n))
    for j, (a, b) in enumerate(zip(first, second, strict=True)):  # a pair at a time, in place
        terms = np.multiply(
            np.multiply(grads[a], grads[b], out=scratch), stacked.variance, out=scratch
        )
        covariance[j] = np.sum(terms, axis=-1)
    gap, gap_low, gap_high = gap_bounds(
        (r[first], low[first], high[first]), (r[second], low[second], high[second]),
        (se[first], se[second]), covariance, share,
    )  # fmt: skip
    shown_gaps = zip(
        _shown_rows(_gap_array(gap, share)), _shown_rows(_gap_array(gap_low, share)),
        _shown_rows(_gap_array(gap_high, share)), strict=True,
    )  # fmt: skip
    for pair, (g, lo, hi) in zip(compared, shown_gaps, strict=True):
        gaps[pair] = (g, lo, hi)
    return NodeEstimates(columns, gaps)
