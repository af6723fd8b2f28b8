"""A city's gap against the other cities: the difference, its uncertainty and a verdict.

The Key comparison compares each city's gap with the unweighted mean of the city gaps
(`compare_to_mean`): each city counts once, so the reference lies among the cities' own
gaps. A population-weighted pooled gap can lie outside every city's gap when one city is
much larger (the composition effect, `composition`); `gap_versus_pooled` still measures a
city against it, accounting for the city's cells being part of the pooled cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from coordinator.combine import pool_members, poverty_lines
from coordinator.estimates import Layout, group_estimate
from coordinator.publish.outcome import Outcome
from coordinator.publish.report.blocks import CityGaps, Place, gap_se
from coordinator.rows import BenchmarkRow
from indicators.catalogue import BELOW_LINE, Indicator
from indicators.spec import TableSpec
from privacy.estimators import Cells, Estimate

__all__ = [
    "Comparison",
    "Composition",
    "compare_to_mean",
    "composition",
    "gap_versus_pooled",
    "verdict",
]


def _gap_gradient(
    cells: Cells, spec: TableSpec, indicator: Indicator, place: Place, lines: list[float] | None
) -> tuple[float, npt.NDArray[np.float64]]:
    """The gap (group minus comparator) at ``place`` on ``cells`` and its gradient."""
    layout = Layout(spec, len(cells.values) // spec.n_cells)
    gap = group_estimate(cells, layout, indicator, list(place.members), place.cell, lines)
    versus = group_estimate(cells, layout, indicator, list(place.versus), place.versus_cell, lines)
    gap = gap - versus
    return gap.value, gap.grad


def gap_versus_pooled(
    outcome: Outcome, row: BenchmarkRow, place: Place, deviations: bool = False
) -> Estimate | None:
    """A city's gap minus the pooled gap (proportions), with its standard error.

    The city's cells are part of the pooled cells, so the two gaps are correlated: the
    difference's gradient is the city's gap gradient, placed in the city's block of the
    pooled cells, minus the pooled gap's gradient; its variance sums each cell's variance
    times the squared gradient. None when the city's gap is not published.

    Args:
        outcome: The row's query.
        row: The city's row.
        place: Where the row sits in its table (``Block.place``).
        deviations: Whether the pooled value includes nodes whose definitions differ.
    """
    if row.gap is None or row.node not in outcome.answers:
        return None
    indicator, spec = outcome.plan.indicator(row.indicator)
    having = {n: a for n, a in outcome.answers.items() if spec.key in a.cells}
    lines = None
    if indicator.kind == BELOW_LINE:
        by_node = poverty_lines(outcome.plan, having)
        having = {n: a for n, a in having.items() if n in by_node}
    order = pool_members(spec, list(having), having, deviations)
    if row.node not in order:
        return None
    if indicator.kind == BELOW_LINE:
        lines = [by_node[n] for n in order]
    parts = [outcome.answers[n].cells[spec.key] for n in order]
    pooled = Cells.concat(parts)
    pooled_gap, gradient = _gap_gradient(pooled, spec, indicator, place, lines)
    city = order.index(row.node)
    city_lines = None if lines is None else [lines[city]]
    city_gap, city_gradient = _gap_gradient(parts[city], spec, indicator, place, city_lines)
    start = city * spec.n_cells
    gradient = -gradient
    gradient[start : start + spec.n_cells] += city_gradient
    if not (math.isfinite(city_gap) and math.isfinite(pooled_gap)):
        return None
    return Estimate(city_gap - pooled_gap, math.sqrt(float(np.sum(gradient**2 * pooled.variance))))


@dataclass(frozen=True)
class Comparison:
    """A city's gap next to the unweighted mean of the city gaps.

    Attributes:
        row: The city's row.
        pooled: The pooled row of the same group and breakdown cell (shown beside it).
        difference: City gap minus the mean of city gaps, in percentage points.
        verdict: What ``verdict`` says, or why there is none (``not published``, ``no
            other city``).
        mean_gap: The unweighted mean of the published city gaps, in points.
        cities: How many cities' gaps the mean averages.
    """

    row: BenchmarkRow
    pooled: BenchmarkRow | None
    difference: Estimate | None
    verdict: str
    mean_gap: float | None = None
    cities: int = 0


def verdict(
    gap: float, gap_interval: tuple[float, float], reference: float, diff: tuple[float, float]
) -> str:
    """How a city's gap compares with a reference gap, from the 95% interval of their difference.

    ``larger`` and ``smaller`` are measured in the reference gap's direction: for a negative
    reference (an employment deficit), a city gap further below zero is larger.
    ``opposite direction`` needs the city's own gap to be clearly of the other sign.
    """
    low, high = diff
    if low <= 0 <= high:
        return "not clearly different"
    if gap * reference < 0 and not gap_interval[0] <= 0 <= gap_interval[1]:
        return "opposite direction"
    direction = -1.0 if reference < 0 else 1.0
    return "larger" if direction * (low + high) > 0 else "smaller"


def compare_to_mean(row: BenchmarkRow, gaps: CityGaps, pooled: BenchmarkRow | None) -> Comparison:
    """A city's gap against the unweighted mean of the published city gaps.

    The difference ``g_i - mean(g)`` is ``(1 - 1/K) g_i - (1/K) sum_{j != i} g_j``; the
    cities' noise and samples are independent, so its variance is
    ``(1 - 1/K)^2 se_i^2 + sum_{j != i} se_j^2 / K^2``, each ``se`` read from the row's 95%
    gap interval. The sums are the cell's (`CityGaps`), made once for every city of it.

    Args:
        row: The city's row.
        gaps: Every city's gap of the same group and breakdown cell (this one included).
        pooled: The pooled row of the same group and cell, shown beside the comparison.
    """
    if row.gap is None or row.gap_ci_low is None or row.gap_ci_high is None:
        return Comparison(row, pooled, None, "not published")
    k, mean = gaps.k, gaps.mean
    assert mean is not None  # the row's own gap is published
    if k < 2:
        return Comparison(row, pooled, None, "no other city", mean, k)
    own = gap_se(row) ** 2
    others = max(gaps.variance - own, 0.0)
    se = math.sqrt((1 - 1 / k) ** 2 * own + others / k**2)
    diff = Estimate(row.gap - mean, se)
    gap_interval = (row.gap_ci_low, row.gap_ci_high)
    return Comparison(
        row, pooled, diff, verdict(row.gap, gap_interval, mean, diff.interval()), mean, k
    )


@dataclass(frozen=True)
class Composition:
    """Why a population-weighted pooled gap differs from the mean of the city gaps.

    Attributes:
        pooled_gap: The pooled gap, in points.
        mean_gap: The unweighted mean of the city gaps, in points.
        largest: The city with the largest share of the group's pooled denominator.
        share: That share, in percent.
    """

    pooled_gap: float
    mean_gap: float
    largest: str
    share: float


def composition(pooled: BenchmarkRow | None, cities: list[BenchmarkRow]) -> Composition | None:
    """The composition effect of a population-weighted pooled gap, or None when none is shown."""
    if pooled is None or pooled.gap is None or pooled.aggregate != "population":
        return None
    shown = [r for r in cities if r.gap is not None]
    sized = [r for r in shown if r.denominator is not None and r.denominator > 0]
    if not shown or not sized:
        return None
    total = sum(r.denominator for r in sized if r.denominator is not None)
    largest = max(sized, key=lambda r: r.denominator or 0.0)
    mean = sum(r.gap for r in shown if r.gap is not None) / len(shown)
    return Composition(pooled.gap, mean, largest.node, 100 * (largest.denominator or 0) / total)
