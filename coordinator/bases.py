"""The base of the disclosure rules: an indicator's denominator, from its released margins.

A table's denominator margins (`node.margins`) and the sum of its own outcome cells are two
independent noisy measurements of the same count, so the base is their inverse-variance
combination: never noisier than either (a wide income table's cell sum is about 20 times
noisier than its margin). A node that releases no margins (fedstats 0.1) leaves the cell
sum alone. The unknown-outcome margin gives the item non-response share of each cell.
Everything here is post-processing of noisy values.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from coordinator.estimates import Cell, Layout
from privacy.disclosure import Noisy
from privacy.estimators import Cells
from protos import node_pb2 as pb

__all__ = ["Base", "Margin", "base_of", "positions_of", "read_margins"]

UNKNOWN = ("UNK",)


@dataclass(frozen=True)
class Margin:
    """One released margin: a noisy count per population cell."""

    codes: tuple[str, ...]
    observations: bool
    values: npt.NDArray[np.float64]
    sigma: float


def read_margins(table: pb.Table) -> tuple[Margin, ...]:
    """A wire table's margins."""
    return tuple(
        Margin(tuple(m.codes), m.observations, np.asarray(m.counts, dtype=np.float64), m.sigma)
        for m in table.margins
    )


@dataclass(frozen=True)
class Base:
    """What the disclosure rules read for one value.

    Attributes:
        count: The denominator's (weighted) count.
        observations: Its number of observations (surveys), else None.
        unknown_share: Share of the population cell with an unknown outcome, if released.
    """

    count: Noisy
    observations: Noisy | None
    unknown_share: float | None


@functools.cache
def positions_of(codes: tuple[str, ...]) -> dict[str, int]:
    """Each code's position in a code list (cached: income has 403 codes)."""
    return {c: i for i, c in enumerate(codes)}


def _combined(parts: list[tuple[float, float]]) -> tuple[float, float]:
    """Inverse-variance combination of (value, variance) measurements of one count."""
    usable = [(v, var) for v, var in parts if var > 0 and math.isfinite(v)]
    if not usable:
        return parts[0]
    weight = sum(1.0 / var for _, var in usable)
    return sum(v / var for v, var in usable) / weight, 1.0 / weight


def _measure(
    cells: Cells,
    layout: Layout,
    margins: list[tuple[Margin, ...]],
    groups: list[int],
    cell: Cell,
    codes: tuple[str, ...],
    observations: bool,
) -> tuple[float, float] | None:
    """One count summed over the stacked tables: value and noise variance."""
    where = positions_of(layout.spec.outcome.codes)
    positions = [where[c] for c in codes if c in where]
    population = layout.flat_cells(groups, cell)
    value = variance = 0.0
    sums: list[tuple[float, float]] = []
    if positions:  # each stacked table's own slice: linear in the stacked cells
        single = Layout(layout.spec, 1).mask(groups, cell, positions)
        counts, noise = (
            (cells.samples, cells.sample_noise_variance)
            if observations
            else (cells.values, cells.noise_variance)
        )
        n = layout.spec.n_cells
        sums = [
            (
                float(counts[k * n : (k + 1) * n][single].sum()),
                float(noise[k * n : (k + 1) * n][single].sum()),
            )
            for k in range(layout.tile)
        ]
    for k in range(layout.tile):
        parts = [sums[k]] if sums else []
        for m in margins[k] if k < len(margins) else ():
            if m.codes == codes and m.observations == observations:
                parts.append((float(m.values[population].sum()), population.size * m.sigma**2))
        if not parts:
            return None
        v, var = _combined(parts)
        value, variance = value + v, variance + var
    return value, variance


def base_of(
    cells: Cells,
    layout: Layout,
    margins: list[tuple[Margin, ...]],
    groups: list[int],
    cell: Cell,
    denominator: tuple[str, ...],
    survey: bool,
) -> Base:
    """The rules' base for a value of ``groups`` in ``cell`` dividing by ``denominator``.

    Args:
        cells: The stacked tables' cells.
        layout: Their layout.
        margins: Each stacked table's margins (empty for a node that releases none).
        groups: Positions of the group codes that make up the group.
        cell: Positions of the breakdown codes.
        denominator: The outcome codes the indicator divides by.
        survey: Whether the tables have observation counts.
    """
    count = _measure(cells, layout, margins, groups, cell, denominator, False)
    assert count is not None  # the denominator's own cells are always there
    observed = _measure(cells, layout, margins, groups, cell, denominator, True) if survey else None
    unknown = None
    every = layout.spec.outcome.codes
    if all(any(m.codes == UNKNOWN for m in copy) for copy in margins) and margins:
        known = _measure(cells, layout, margins, groups, cell, every, False)
        missing = _measure(cells, layout, margins, groups, cell, UNKNOWN, False)
        if known is not None and missing is not None:
            total = max(known[0], 0.0) + max(missing[0], 0.0)
            unknown = min(max(missing[0], 0.0) / total, 1.0) if total > 0 else None
    return Base(
        Noisy(count[0], math.sqrt(count[1])),
        None if observed is None else Noisy(observed[0], math.sqrt(observed[1])),
        unknown,
    )
