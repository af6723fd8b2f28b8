"""Indicator estimates from released cells, each with its gradient (the delta method).

A cell vector holds ``tile`` stacked copies of one table's cells: one node's table
(``tile = 1``) or every answering node's, side by side, for pooled values. Every
estimate is a ``Linear`` (value and gradient over that vector), so a gap, a ratio of two
medians or a city's gap against the pooled gap all get standard errors that account for
the cells they share.

- ``ratio`` indicators: the sum of the numerator's outcome cells over the sum of the
  denominator's.
- ``median_ratio``: the group's median of the binned outcome over the median of the
  whole population in the same breakdown cell (a pooled median is the median of the
  pooled distribution, not an average of medians).
- ``below_line``: the share of the group below the poverty line. Each stacked table may
  have its own line (a node's national line); the line is treated as fixed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from indicators.catalogue import BELOW_LINE, MEDIAN_RATIO, RATIO, Indicator
from indicators.spec import TableSpec
from indicators.variables import CATEGORICAL
from privacy.estimators import (
    Cells,
    Linear,
    below_linear,
    quantile_linear,
    ratio_linear,
    total_linear,
)

__all__ = ["POVERTY_SHARE", "Cell", "Layout", "group_estimate", "is_share", "median_of_all"]

Mask = npt.NDArray[np.bool_]
Cell = tuple[int | None, ...]  # breakdown positions; None: every code of the dimension
POVERTY_SHARE = 0.6  # the at-risk-of-poverty line: 60% of the median
DENSITY_WINDOW = 1  # a median's standard error reads the density over 3 bins


_MASKS: dict[tuple[object, ...], Mask] = {}
_FLAT: dict[tuple[object, ...], npt.NDArray[np.intp]] = {}
_MAX_MASKS = 50_000


@dataclass(frozen=True)
class Layout:
    """Where each table cell sits in a vector of ``tile`` stacked tables."""

    spec: TableSpec
    tile: int

    def mask(self, groups: list[int], cell: Cell, outcomes: list[int]) -> Mask:
        """Cells of the given groups, breakdown cell and outcome codes, in every copy.

        A breakdown position of None takes every code of that dimension (a margin).
        Masks are made once per table and selection and shared (read-only): every node
        and every row of a query asks for the same few.
        """
        key = (self.spec.key, self.tile, tuple(groups), cell, tuple(outcomes))
        mask = _MASKS.get(key)
        if mask is None:
            one = np.zeros(self.spec.shape, dtype=bool)
            one[np.ix_(groups, *self._positions(cell), outcomes)] = True
            mask = np.tile(one.ravel(), self.tile)
            mask.setflags(write=False)
            if len(_MASKS) >= _MAX_MASKS:
                _MASKS.clear()
            _MASKS[key] = mask
        return mask

    def _positions(self, cell: Cell) -> list[list[int]]:
        dims = self.spec.dims[1:]
        return [
            list(range(len(d.codes))) if i is None else [i] for d, i in zip(dims, cell, strict=True)
        ]

    def expand(self, cell: Cell) -> list[tuple[int, ...]]:
        """The concrete breakdown cells a cell with None positions (a margin) covers."""
        return list(itertools.product(*self._positions(cell)))

    def flat_cells(self, groups: list[int], cell: Cell) -> npt.NDArray[np.intp]:
        """Flat positions of the (group, breakdown cell) pairs in a table without its outcome.

        Margins released per denominator cell are read there.
        """
        key = (self.spec.key, tuple(groups), cell)
        found = _FLAT.get(key)
        if found is None:
            shape = self.spec.shape[:-1]
            found = np.array(
                [np.ravel_multi_index((g, *c), shape) for g in groups for c in self.expand(cell)],
                dtype=np.intp,
            )
            found.setflags(write=False)
            if len(_FLAT) >= _MAX_MASKS:
                _FLAT.clear()
            _FLAT[key] = found
        return found

    def population(self, groups: list[int], cell: Cell) -> Mask:
        """Every outcome of the groups in the breakdown cell: the population cell."""
        return self.mask(groups, cell, list(range(len(self.spec.outcome.codes))))

    def everyone(self) -> Mask:
        """Every cell of every copy."""
        return np.ones(self.spec.n_cells * self.tile, dtype=bool)

    def at(self, k: int) -> slice:
        """The ``k``-th stacked table's slice of the cell vector."""
        return slice(k * self.spec.n_cells, (k + 1) * self.spec.n_cells)

    def part(self, cells: Cells, k: int) -> Cells:
        """The cells of the ``k``-th stacked table (views, not copies)."""
        at = self.at(k)
        return Cells(
            cells.values[at], cells.variance[at], cells.samples[at],
            cells.noise_variance[at], cells.deff[at], cells.sample_noise_variance[at],
        )  # fmt: skip

    def bin_of_cell(self) -> npt.NDArray[np.intp]:
        """The outcome position of every cell (the outcome is the last dimension)."""
        n_outcomes = len(self.spec.outcome.codes)
        return np.tile(np.arange(self.spec.n_cells) % n_outcomes, self.tile).astype(np.intp)


def _edges(spec: TableSpec) -> tuple[float, ...]:
    return CATEGORICAL[spec.outcome.name].edges


def median_of_all(cells: Cells, layout: Layout) -> Linear:
    """The median of the binned outcome over every cell (the whole population)."""
    return quantile_linear(
        cells, layout.everyone(), layout.bin_of_cell(), _edges(layout.spec), window=DENSITY_WINDOW
    )


def group_estimate(
    cells: Cells,
    layout: Layout,
    indicator: Indicator,
    groups: list[int],
    cell: Cell,
    lines: list[float] | None = None,
) -> Linear:
    """The indicator for some group codes in one breakdown cell, as a proportion.

    Args:
        cells: The stacked tables' cells.
        layout: Their layout.
        indicator: The catalogue entry.
        groups: Positions of the group codes that make up the group.
        cell: Positions of the breakdown codes.
        lines: For ``below_line``: the poverty line of each stacked table.
    """
    spec = layout.spec
    outcome = spec.outcome.codes
    if indicator.kind == RATIO:
        num = [i for i, c in enumerate(outcome) if c in indicator.numerator]
        den = [i for i, c in enumerate(outcome) if c in indicator.denominator]
        return ratio_linear(cells, layout.mask(groups, cell, num), layout.mask(groups, cell, den))
    population = layout.population(groups, cell)
    bins, edges = layout.bin_of_cell(), _edges(spec)
    if indicator.kind == MEDIAN_RATIO:
        everyone = layout.population(list(range(len(spec.dims[0].codes))), cell)
        group_median = quantile_linear(cells, population, bins, edges, window=DENSITY_WINDOW)
        overall = quantile_linear(cells, everyone, bins, edges, window=DENSITY_WINDOW)
        return group_median.over(overall)
    if indicator.kind == BELOW_LINE:
        if lines is None or len(lines) != layout.tile:
            raise ValueError("below_line needs one poverty line per stacked table")
        return _below(cells, layout, population, lines).over(total_linear(cells, population))
    raise ValueError(f"unknown indicator kind {indicator.kind!r}")


def _below(cells: Cells, layout: Layout, population: Mask, lines: list[float]) -> Linear:
    """The count below each stacked table's own line, summed over the tables.

    Each table is read in its own slice (its gradient fills only that slice), so the cost
    stays linear in the stacked cells however many tables there are.
    """
    single = Layout(layout.spec, 1)
    bins, edges = single.bin_of_cell(), _edges(layout.spec)
    value, grad = 0.0, np.zeros(cells.values.shape)
    for k, line in enumerate(lines):
        at = layout.at(k)
        own = below_linear(layout.part(cells, k), population[at], bins, edges, line)
        value += own.value
        grad[at] += own.grad
    return Linear(value, grad)


def is_share(indicator: Indicator) -> bool:
    """Whether values are shares (clipped to 0-100%) rather than ratios of levels."""
    return indicator.kind in (RATIO, BELOW_LINE)
