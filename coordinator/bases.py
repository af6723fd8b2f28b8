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
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from coordinator.estimates import Cell, Layout
from privacy.disclosure import Noisy
from privacy.estimators import Cells, pow2, selections_sums
from protos import node_pb2 as pb

__all__ = [
    "Base",
    "Margin",
    "Stacked",
    "TableBases",
    "base_of",
    "positions_of",
    "read_margins",
    "table_bases",
    "table_measures",
    "unknown_share",
]

UNKNOWN = ("UNK",)
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


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


@dataclass(frozen=True)
class Stacked:
    """Every stacked table's margins, side by side: one array per margin and occurrence.

    Built once per set of stacked tables, so reading a margin for a row costs one numpy
    gather over all tables rather than a Python loop over them.
    """

    tiles: int
    found: dict[tuple[tuple[str, ...], bool], list[tuple[FloatArray, FloatArray, BoolArray]]]
    listed: int  # how many tables the margins were given for

    @classmethod
    def of(cls, margins: Sequence[tuple[Margin, ...]], tiles: int) -> Stacked:
        """Stack each table's margins (a table past the end of ``margins`` has none)."""
        by_key: dict[tuple[tuple[str, ...], bool], list[list[Margin]]] = {}
        for k, copy in enumerate(margins):  # each key's margins per table, in one pass
            for m in copy:
                per_table = by_key.get(_key(m))
                if per_table is None:
                    per_table = by_key[_key(m)] = [[] for _ in range(tiles)]
                if k < tiles:
                    per_table[k].append(m)
        found: dict[tuple[tuple[str, ...], bool], list[tuple[FloatArray, FloatArray, BoolArray]]]
        found = {}
        for key, per_table in by_key.items():
            found[key] = []
            for j in range(max(map(len, per_table))):
                having = [k for k, f in enumerate(per_table) if len(f) > j]
                present = np.zeros(tiles, dtype=bool)
                present[having] = True
                width = per_table[having[0]][j].values.size
                values, sigmas = np.zeros((tiles, width)), np.zeros(tiles)
                values[having] = np.stack([per_table[k][j].values for k in having])
                sigmas[having] = [per_table[k][j].sigma for k in having]
                found[key].append((values, sigmas, present))
        return cls(tiles, found, len(margins))

    def parts(
        self, codes: tuple[str, ...], observations: bool
    ) -> list[tuple[FloatArray, FloatArray, BoolArray]]:
        """The margins of ``codes``: per occurrence, values, noise sigma and presence by table."""
        return self.found.get((codes, observations), [])

    def has(self, codes: tuple[str, ...]) -> BoolArray:
        """Per table: whether it releases a margin of ``codes`` (counts or observations)."""
        found = [p for o in (False, True) for _, _, p in self.parts(codes, o)]
        return np.logical_or.reduce(found) if found else np.zeros(self.tiles, dtype=bool)


def _key(margin: Margin) -> tuple[tuple[str, ...], bool]:
    return margin.codes, margin.observations


@functools.cache
def positions_of(codes: tuple[str, ...]) -> dict[str, int]:
    """Each code's position in a code list (cached: income has 403 codes)."""
    return {c: i for i, c in enumerate(codes)}


def _combined(
    parts: list[tuple[FloatArray, FloatArray, BoolArray]],
) -> tuple[FloatArray, FloatArray]:
    """Inverse-variance combination of measurements of one count, per table.

    Each part is (value, variance, present) over the tables; a table's usable parts are
    those present with a positive variance and a finite value. A table with none keeps
    its first present part.
    """
    weight: FloatArray = np.zeros(parts[0][0].shape)
    total: FloatArray = np.zeros(parts[0][0].shape)
    first_v, first_var = parts[-1][0], parts[-1][1]
    for v, var, present in reversed(parts):  # the first present part, per table
        first_v = np.where(present, v, first_v)
        first_var = np.where(present, var, first_var)
    usable_any = np.zeros(weight.shape, dtype=bool)
    for v, var, present in parts:
        usable = present & (var > 0) & np.isfinite(v)
        safe = np.where(usable, var, 1.0)
        weight = weight + np.where(usable, 1.0 / safe, 0.0)
        total = total + np.where(usable, v / safe, 0.0)
        usable_any |= usable
    safe_weight = np.where(usable_any, weight, 1.0)
    return (
        np.where(usable_any, total / safe_weight, first_v),
        np.where(usable_any, 1.0 / safe_weight, first_var),
    )


Measured = tuple[FloatArray, FloatArray, BoolArray]
"""A count's value and noise variance per table, and whether each table knows it."""
Part = tuple[FloatArray, FloatArray, BoolArray]
"""One measurement of a count per table: value, noise variance, whether the table has it."""


def table_measures(
    cells: Cells,
    layout: Layout,
    margins: Stacked,
    groups: list[int],
    cell: Cell,
    codes: tuple[str, ...],
    observations: bool,
) -> Measured:
    """One count in each stacked table: its value, noise variance and whether it is known.

    The table's own cells summed, combined with every released margin of the same codes;
    a table with neither (no such cells and no such margin) does not know it.
    """
    value, variance, known = _selections_measures(
        cells, layout, margins, [(groups, cell)], codes, observations
    )
    return value[0], variance[0], known


def _selections_measures(
    cells: Cells,
    layout: Layout,
    margins: Stacked,
    selections: Sequence[tuple[list[int], Cell]],
    codes: tuple[str, ...],
    observations: bool,
) -> Measured:
    """`table_measures` of each selection (groups, cell): arrays (selections, tables).

    Each selection's measurements (its own cells' sum, then each margin's), stacked, and
    combined once (element-wise). How many measurements there are and which tables have
    each depend on ``codes`` and ``observations`` alone, so whether a table knows the
    count does too: (tables,).
    """
    where = positions_of(layout.spec.outcome.codes)
    positions = [where[c] for c in codes if c in where]
    populations = [layout.flat_cells(groups, cell) for groups, cell in selections]
    shape = (layout.tile, layout.spec.n_cells)
    parts: list[Part] = []
    if positions:  # each stacked table's own slice: linear in the stacked cells
        one = Layout(layout.spec, 1)
        own = [np.flatnonzero(one.mask(g, c, positions)) for g, c in selections]
        counts, noise = (
            (cells.samples, cells.sample_noise_variance)
            if observations
            else (cells.values, cells.noise_variance)
        )
        every = np.ones(layout.tile, dtype=bool)
        parts.append(
            (
                selections_sums(counts.reshape(shape), own),
                selections_sums(noise.reshape(shape), own),
                every,
            )
        )
    for values, sigmas, present in margins.parts(codes, observations):
        noise_sq = pow2(sigmas)
        variances = np.stack([population.size * noise_sq for population in populations])
        parts.append((selections_sums(values, populations), variances, present))
    if not parts:
        shape = (len(selections), layout.tile)
        return np.zeros(shape), np.zeros(shape), np.zeros(layout.tile, dtype=bool)
    return (*_combined(parts), np.logical_or.reduce([p[2] for p in parts]))


def _measure(
    cells: Cells,
    layout: Layout,
    margins: Stacked,
    groups: list[int],
    cell: Cell,
    codes: tuple[str, ...],
    observations: bool,
) -> tuple[float, float] | None:
    """One count summed over the stacked tables: value and noise variance.

    None when some table does not know it.
    """
    values, variances, known = table_measures(
        cells, layout, margins, groups, cell, codes, observations
    )
    if not np.all(known):
        return None
    value = variance = 0.0
    for v, var in zip(values.tolist(), variances.tolist(), strict=True):
        value, variance = value + v, variance + var
    return value, variance


def unknown_share(known: FloatArray, missing: FloatArray) -> FloatArray:
    """The share of a population cell with an unknown outcome (nan where it has none)."""
    total = np.maximum(known, 0.0) + np.maximum(missing, 0.0)
    safe = np.where(total > 0, total, 1.0)
    share: FloatArray = np.where(
        total > 0, np.minimum(np.maximum(missing, 0.0) / safe, 1.0), math.nan
    )
    return share


@dataclass(frozen=True)
class TableBases:
    """`Base` of values in each stacked table, as arrays over the tables (last axis).

    Attributes:
        count: The denominator's count and its noise variance.
        observations: Its number of observations and their noise variance (surveys).
        unknown: The unknown-outcome share (nan where not released).
    """

    count: tuple[FloatArray, FloatArray]
    observations: tuple[FloatArray, FloatArray] | None
    unknown: FloatArray


def table_bases(
    cells: Cells,
    layout: Layout,
    margins: Stacked,
    selections: Sequence[tuple[list[int], Cell]],
    denominator: tuple[str, ...],
    survey: bool,
) -> TableBases:
    """The rules' base in each stacked table on its own (see `base_of`), per selection.

    Args:
        cells: The stacked tables' cells.
        layout: Their layout.
        margins: Their margins.
        selections: Each value's group code positions and breakdown cell.
        denominator: The outcome codes the indicator divides by.
        survey: Whether the tables have observation counts.

    Returns:
        Arrays (selections, tables).
    """

    def measure(
        codes: tuple[str, ...], observations: bool
    ) -> tuple[FloatArray, FloatArray, BoolArray]:
        return _selections_measures(cells, layout, margins, selections, codes, observations)

    count = measure(denominator, False)
    observed = measure(denominator, True) if survey else None
    share = np.full((len(selections), layout.tile), math.nan)
    released = margins.has(UNKNOWN)
    if released.any():
        known = measure(layout.spec.outcome.codes, False)
        missing = measure(UNKNOWN, False)
        share = np.where(
            released & known[2] & missing[2], unknown_share(known[0], missing[0]), math.nan
        )
    return TableBases(count[:2], None if observed is None else (observed[0], observed[1]), share)


def base_of(
    cells: Cells,
    layout: Layout,
    margins: Stacked | Sequence[tuple[Margin, ...]],
    groups: list[int],
    cell: Cell,
    denominator: tuple[str, ...],
    survey: bool,
) -> Base:
    """The rules' base for a value of ``groups`` in ``cell`` dividing by ``denominator``.

    Summed over the stacked tables; the unknown-outcome share only when every table
    releases its margin.

    Args:
        cells: The stacked tables' cells.
        layout: Their layout.
        margins: Each stacked table's margins (`Stacked.of`; none for a node that
            releases none).
        groups: Positions of the group codes that make up the group.
        cell: Positions of the breakdown codes.
        denominator: The outcome codes the indicator divides by.
        survey: Whether the tables have observation counts.
    """
    if not isinstance(margins, Stacked):
        margins = Stacked.of(margins, layout.tile)
    count = _measure(cells, layout, margins, groups, cell, denominator, False)
    assert count is not None  # the denominator's own cells are always there
    observed = _measure(cells, layout, margins, groups, cell, denominator, True) if survey else None
    unknown = None
    every = layout.spec.outcome.codes
    if margins.listed and np.all(margins.has(UNKNOWN)[: margins.listed]):
        known = _measure(cells, layout, margins, groups, cell, every, False)
        missing = _measure(cells, layout, margins, groups, cell, UNKNOWN, False)
        if known is not None and missing is not None:
            share = float(unknown_share(np.array([known[0]]), np.array([missing[0]]))[0])
            unknown = share if math.isfinite(share) else None
    return Base(
        Noisy(count[0], math.sqrt(count[1])),
        None if observed is None else Noisy(observed[0], math.sqrt(observed[1])),
        unknown,
    )
