"""A city's gap against the pooled gap: the difference, its uncertainty and a verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from coordinator.combine import BenchmarkRow, pool_members, poverty_lines
from coordinator.estimates import Layout, group_estimate
from coordinator.publish.outcome import Outcome
from coordinator.publish.report.blocks import Place
from indicators.catalogue import BELOW_LINE, Indicator
from indicators.spec import TableSpec
from privacy.estimators import Cells, Estimate

__all__ = ["Comparison", "compare_to_pooled", "gap_versus_pooled", "verdict"]


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
    """A city's gap next to the pooled gap.

    Attributes:
        row: The city's row.
        pooled: The pooled row of the same group and breakdown cell.
        difference: City gap minus pooled gap, in percentage points.
        verdict: What ``verdict`` says, or why there is none (``not published``, ``no
            pooled gap``).
    """

    row: BenchmarkRow
    pooled: BenchmarkRow | None
    difference: Estimate | None
    verdict: str


def verdict(
    gap: float, gap_interval: tuple[float, float], pooled_gap: float, diff: tuple[float, float]
) -> str:
    """How a city's gap compares with the pooled gap, from the 95% interval of their difference.

    ``larger`` and ``smaller`` are measured in the pooled gap's direction: for a negative
    pooled gap (an employment deficit), a city gap further below zero is larger.
    ``opposite direction`` needs the city's own gap to be clearly of the other sign.
    """
    low, high = diff
    if low <= 0 <= high:
        return "not clearly different"
    if gap * pooled_gap < 0 and not gap_interval[0] <= 0 <= gap_interval[1]:
        return "opposite direction"
    direction = -1.0 if pooled_gap < 0 else 1.0
    return "larger" if direction * (low + high) > 0 else "smaller"


def compare_to_pooled(
    outcome: Outcome, row: BenchmarkRow, pooled: BenchmarkRow | None, place: Place | None
) -> Comparison:
    """Whether a city's gap is larger or smaller than the pooled gap, and how sure."""
    if row.gap is None or row.gap_ci_low is None or row.gap_ci_high is None:
        return Comparison(row, pooled, None, "not published")
    diff = None
    if pooled is not None and pooled.gap is not None and place is not None:
        diff = gap_versus_pooled(outcome, row, place, "d" in pooled.flags)
    if pooled is None or pooled.gap is None or diff is None:
        return Comparison(row, pooled, None, "no pooled gap")
    diff = Estimate(100 * diff.value, 100 * diff.se)
    gap_interval = (row.gap_ci_low, row.gap_ci_high)
    return Comparison(
        row, pooled, diff, verdict(row.gap, gap_interval, pooled.gap, diff.interval())
    )
