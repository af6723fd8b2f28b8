"""The report's structured view of a query's rows: one block per indicator.

A block indexes its rows for display (by node, breakdown cell and group) and knows,
from the plan, where each row's gap is read in its table: the positions of the group's
codes, of its breakdown cell and of its comparator (``Place``). Statistics over the
released cells use those positions, never positions looked up from a row's labels.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from coordinator.combine import comparator_cell, comparator_group, groups_of
from coordinator.publish.outcome import Outcome
from coordinator.publish.report.charts import Dot
from coordinator.publish.report.labels import group_label
from coordinator.rows import POOLED, TOTAL, BenchmarkRow
from indicators.catalogue import CATALOGUE
from indicators.spec import TableSpec
from privacy.estimators import Z95

__all__ = ["Block", "CityGaps", "Place", "gap_se", "table_places"]


@dataclass(frozen=True)
class Place:
    """Where a row's value and gap are read in its table, as the plan's code positions.

    Attributes:
        members: Positions of the group's codes in the group dimension (several for a
            derived group or ``TOTAL``).
        cell: Positions of the breakdown codes.
        versus: Positions of the comparator group's codes.
        versus_cell: The comparator's breakdown cell (another one for a cohort comparator).
    """

    members: tuple[int, ...]
    cell: tuple[int, ...]
    versus: tuple[int, ...]
    versus_cell: tuple[int, ...]


def table_places(spec: TableSpec, comparator: str) -> dict[tuple[str, tuple[str, ...]], Place]:
    """Every group and breakdown cell of a table, by group code and breakdown codes.

    The same enumeration of the plan that the rows were combined from: every breakdown
    cell, every published group (``coordinator.combine.groups_of``).

    Args:
        spec: The indicator's table.
        comparator: What the rows name as comparator (``comparator_group``).
    """
    members = {group: tuple(positions) for group, positions in groups_of(spec)}
    dims = spec.dims[1:]
    places: dict[tuple[str, tuple[str, ...]], Place] = {}
    for cell in itertools.product(*[range(len(d.codes)) for d in dims]):
        codes = tuple(d.codes[i] for d, i in zip(dims, cell, strict=True))
        for group, positions in members.items():
            versus, at = comparator_cell(spec, comparator, group, cell)
            places[(group, codes)] = Place(positions, cell, members[versus], at)
    return places


def gap_se(row: BenchmarkRow) -> float:
    """A row's gap standard error, read from its 95% gap interval."""
    assert row.gap_ci_low is not None and row.gap_ci_high is not None
    return (row.gap_ci_high - row.gap_ci_low) / (2 * Z95)


@dataclass(frozen=True)
class CityGaps:
    """The published city gaps of one group and breakdown cell, summed once for all cities.

    Attributes:
        cities: Every city's row of the group and cell.
        k: How many of them have a published gap (and interval).
        mean: The unweighted mean of those gaps, in points (None when there are none).
        variance: The sum of their squared standard errors.
    """

    cities: list[BenchmarkRow]
    k: int
    mean: float | None
    variance: float

    @classmethod
    def of(cls, cities: list[BenchmarkRow]) -> CityGaps:
        """Sum the published gaps of the cities' rows."""
        shown = [r for r in cities if r.gap is not None and r.gap_ci_low is not None]
        gaps = [r.gap for r in shown if r.gap is not None]
        mean = sum(gaps) / len(shown) if shown else None
        return cls(cities, len(shown), mean, math.fsum(gap_se(r) ** 2 for r in shown))

    @cached_property
    def extremes(self) -> list[BenchmarkRow]:
        """The cities with the smallest and the largest published gap (none if no gap is)."""
        published = [r for r in self.cities if r.gap is not None]
        if not published:
            return []
        return [min(published, key=_gap_of), max(published, key=_gap_of)]


def _gap_of(row: BenchmarkRow) -> float:
    return row.gap if row.gap is not None else math.nan


class Block:
    """The rows of one indicator of one query, indexed by node, breakdown cell and group."""

    def __init__(self, outcome: Outcome, indicator: str) -> None:
        self.outcome, self.indicator = outcome, indicator
        query = outcome.plan.query
        self.group_dim, self.comparator = query.group_dim, query.comparator
        self.title = CATALOGUE[indicator].title
        self.rows = [r for r in outcome.rows if r.indicator == indicator]
        self._index = {(r.node, tuple(r.breakdown.values()), r.group): r for r in self.rows}
        self.lines = list(dict.fromkeys((r.node, tuple(r.breakdown.values())) for r in self.rows))
        skip = {self.comparator, TOTAL, "UNK"}
        self.groups = [g for g in dict.fromkeys(r.group for r in self.rows) if g not in skip]
        # Made once per row (see findings), by id(row), each with its row: chart lines of
        # rows drawn again and again (by their emphasis too), comparisons with the mean of
        # the city gaps, the pooled rows' gap texts.
        self.dots: dict[tuple[int, bool, bool], tuple[BenchmarkRow, Dot]] = {}
        self.comparisons: dict[int, Any] = {}  # findings.compare's (compare imports blocks)
        self.gap_texts: dict[int, tuple[BenchmarkRow, str]] = {}

    def row(self, node: str, cell: tuple[str, ...], group: str) -> BenchmarkRow | None:
        """The row of a node, breakdown cell and group, or None."""
        return self._index.get((node, cell, group))

    @cached_property
    def _city_gaps(self) -> dict[tuple[tuple[str, ...], str], CityGaps]:
        """Per breakdown cell and group: every city's row and their gaps, summed once."""
        groups = list(dict.fromkeys(r.group for r in self.rows))
        cities: dict[tuple[tuple[str, ...], str], list[BenchmarkRow]] = defaultdict(list)
        for node, cell in self.lines:
            if node == POOLED:
                continue
            for group in groups:
                if (row := self._index.get((node, cell, group))) is not None:
                    cities[(cell, group)].append(row)
        return {key: CityGaps.of(rows) for key, rows in cities.items()}

    @cached_property
    def _cells_of(self) -> dict[str, list[tuple[str, ...]]]:
        cells: dict[str, list[tuple[str, ...]]] = defaultdict(list)
        for node, cell in self.lines:
            cells[node].append(cell)
        return cells

    def cells_of(self, node: str) -> list[tuple[str, ...]]:
        """The breakdown cells of a node's rows, in the rows' order."""
        return self._cells_of.get(node, [])

    @cached_property
    def rank(self) -> dict[str, int]:
        """Each node's position in the rows' order (its first line)."""
        rank: dict[str, int] = {}
        for node, _ in self.lines:
            rank.setdefault(node, len(rank))
        return rank

    @cached_property
    def geos(self) -> dict[str, str]:
        """Each node's geo code (of its first row)."""
        geos: dict[str, str] = {}
        for row in self.rows:
            geos.setdefault(row.node, row.geo)
        return geos

    def city_gaps(self, row: BenchmarkRow) -> CityGaps:
        """The city rows of the row's group and breakdown cell, with their summed gaps."""
        gaps = self._city_gaps.get((tuple(row.breakdown.values()), row.group))
        return gaps if gaps is not None else CityGaps.of([])

    def pooled(self, row: BenchmarkRow) -> BenchmarkRow | None:
        """The pooled row of the same group and breakdown cell, or None."""
        return self.row(POOLED, tuple(row.breakdown.values()), row.group)

    @cached_property
    def _places(self) -> dict[tuple[str, tuple[str, ...]], Place]:
        _, spec = self.outcome.plan.indicator(self.indicator)
        return table_places(spec, comparator_group(spec, self.comparator))

    def place(self, row: BenchmarkRow) -> Place | None:
        """Where the row sits in the plan's table (None for a code the plan does not have)."""
        return self._places.get((row.group, tuple(row.breakdown.values())))

    def label(self, group: str) -> str:
        """A group's label in words."""
        return group_label(self.group_dim, group)
