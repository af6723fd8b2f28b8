"""Estimates of many nodes at once: each node's own value of a ratio, as arrays over nodes.

A ratio indicator's row of one node reads that node's table alone; a federation of 300
cities has 300 tables of one layout. Stacked as a (nodes, cells) array, every node's
value, standard error, rules' base, score interval and gap for one group and breakdown
cell are a few numpy operations whatever the number of nodes. The arithmetic is the
per-row arithmetic's own (`privacy.estimators.ratio_rows`, `rate_intervals`,
`difference_intervals`, `coordinator.bases.table_bases`), so each node gets the numbers
its rows get one at a time, bit for bit; the disclosure rules and flags are then read per
row by `settle`, the one place that turns numbers into a flag and a status.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from coordinator.bases import Base, Margin, Stacked, positions_of, table_bases
from coordinator.estimates import Cell, Layout, is_share
from coordinator.flags import UNRELIABLE, Status
from indicators.catalogue import Indicator
from indicators.spec import TableSpec, denominator_codes
from privacy.disclosure import DisclosureRules
from privacy.estimators import (
    Cells,
    Estimate,
    Linear,
    difference_intervals,
    gradient_variance,
    rate_intervals,
    ratio_rows,
)

__all__ = ["BATCH_FLOATS", "Estimated", "NodeEstimates", "gap_bounds", "node_estimates", "settle"]

FloatArray = npt.NDArray[np.float64]
Key = tuple[str, Cell]  # a group and a breakdown cell


@dataclass(frozen=True)
class Estimated:
    """One group's estimate in one breakdown cell, with what publication needs.

    ``linear`` (with ``variance``, each cell's variance as the estimate reads it, and
    ``own``, the cells whose variance it set) is kept by estimates made one at a time,
    for their gaps; estimates made across nodes have their gaps made with them.
    """

    value: float
    estimate: Estimate
    flag: str
    status: Status
    interval: tuple[float, float]
    unknown_share: float | None = None
    share: bool = False
    linear: Linear | None = field(default=None, repr=False)
    variance: FloatArray | None = field(default=None, repr=False)
    own: npt.NDArray[np.bool_] | None = field(default=None, repr=False)


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


@dataclass(frozen=True)
class NodeEstimates:
    """Every node's estimates of one ratio indicator, and the gaps between them.

    Attributes:
        estimates: Per node (in the order given), each group and breakdown cell's estimate.
        gaps: Per node, each (group and cell, comparator group and cell) pair's gap value,
            low and high bound.
    """

    estimates: list[dict[Key, Estimated]]
    gaps: list[dict[tuple[Key, Key], tuple[float, float, float]]]


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
    found = NodeEstimates([], [])
    for at in range(0, len(cells), step):
        part = slice(at, at + step)
        batch = _batch(spec, indicator, cells[part], margins[part], rules[part], members, pairs)
        found.estimates.extend(batch.estimates)
        found.gaps.extend(batch.gaps)
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
    survey = [bool(np.any(c.deff > 0)) for c in cells]
    share = is_share(indicator)
    numbers: dict[Key, _Numbers] = {}
    estimates: list[dict[Key, Estimated]] = [{} for _ in range(n)]
    keys = list(dict.fromkeys([*pairs, *pairs.values()]))
    for key in keys:
        group, cell = key
        groups = members[group]
        num, den = one.mask(groups, cell, numerator), one.mask(groups, cell, ratio_den)
        counted = one.mask(groups, cell, counted_at)
        r, _, grad = ratio_rows(stacked.values, num, den)
        var = gradient_variance(grad, stacked.variance)
        se = np.where(np.isfinite(r), np.sqrt(np.where(np.isfinite(r), var, 0.0)), math.nan)
        low, high = rate_intervals(stacked, num, counted)
        defined = np.isfinite(r) & np.all(np.isfinite(grad), axis=-1) & np.isfinite(se)
        bases = table_bases(stacked, layout, margin_stack, groups, cell, denominator, any(survey))
        numbers[key] = _Numbers(r, se, grad, low, high)
        values, ses, lows, highs = r.tolist(), se.tolist(), low.tolist(), high.tolist()
        defs = defined.tolist()
        for k, base in enumerate(bases.each()):
            if not survey[k] and base.observations is not None:
                base = Base(base.count, None, base.unknown_share)
            observed = base.observations.value if base.observations else base.count.value
            estimate = Estimate(values[k], ses[k], base.count.value, observed)
            flag, status, interval = settle(
                rules[k], estimate, base, (lows[k], highs[k]),
                defined=defs[k], noisy=False, rate=True,
            )  # fmt: skip
            estimates[k][key] = Estimated(
                values[k], estimate, flag, status, interval, base.unknown_share, share
            )
    gaps: list[dict[tuple[Key, Key], tuple[float, float, float]]] = [{} for _ in range(n)]
    for key, versus in pairs.items():
        if key == versus:
            continue
        a, b = numbers[key], numbers[versus]
        covariance = np.sum(a.grad * b.grad * stacked.variance, axis=-1)
        gap, low, high = gap_bounds(
            (a.value, a.low, a.high), (b.value, b.low, b.high), (a.se, b.se), covariance, share
        )
        for k, triple in enumerate(zip(gap.tolist(), low.tolist(), high.tolist(), strict=True)):
            gaps[k][(key, versus)] = triple
    return NodeEstimates(estimates, gaps)
