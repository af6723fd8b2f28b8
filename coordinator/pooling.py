"""How pooled rows aggregate the nodes (DESIGN section 6: ``--pooled``).

- ``population``: the indicator of the summed tables, as if the cities were one population;
  large cities dominate it and it moves with the cities' mix (the composition effect).
- ``city_mean``: the unweighted mean of the cities' own values; each city counts once.
- ``standardised``: direct age-sex standardisation: the pooled rate in each age x sex
  cell, weighted by the 2013 European Standard Population (``indicators.standard``), so
  differences in the cities' age and sex structure do not move it. It reads the query's own
  ``sex`` and ``age`` breakdown cells: a query without both is refused before any node is
  asked (planning hidden breakdowns would cut every city's own cells into age-sex cells
  and multiply the noise on the city rows), and its pooled rows are the ``sex = T``,
  ``age = <the indicator's age range>`` margins.

All three are linear in the stacked noisy cells (`privacy.estimators.Linear`), so their
standard errors come from each node's own cell variances by the delta method; the nodes'
noise draws and samples are independent, so no covariance enters across nodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from common.errors import QueryError
from coordinator.estimates import Cell, Layout, group_estimate
from indicators.catalogue import MEDIAN_RATIO, Indicator
from indicators.spec import Plan, TableSpec
from indicators.standard import band_weight
from indicators.variables import AGE
from privacy.estimators import Cells, Linear

__all__ = [
    "AGGREGATES",
    "CITY_MEAN",
    "POPULATION",
    "STANDARDISED",
    "Pooling",
    "check_pooling",
    "pooled_linear",
    "standard_weights",
]

POPULATION = "population"
CITY_MEAN = "city_mean"
STANDARDISED = "standardised"
AGGREGATES = {"population": POPULATION, "city-mean": CITY_MEAN, "standardised": STANDARDISED}
STANDARD_DIMS = ("sex", AGE)


@dataclass(frozen=True)
class Pooling:
    """How pooled rows are made (DESIGN section 6).

    Attributes:
        enabled: Whether to give pooled rows at all.
        min_coverage: The share of the query's nodes that must be pooled.
        deviations: Whether nodes whose definitions differ (``d``) are pooled.
        aggregate: ``population``, ``city_mean`` or ``standardised``.
    """

    enabled: bool = True
    min_coverage: float = 0.5
    deviations: bool = False
    aggregate: str = POPULATION

    def __post_init__(self) -> None:
        if self.aggregate not in AGGREGATES.values():
            raise QueryError(
                f"unknown pooled aggregate {self.aggregate!r}",
                field="--pooled",
                hint="use population, city-mean or standardised",
            )
        if not 0.0 <= self.min_coverage <= 1.0:
            raise QueryError(
                f"pool coverage {self.min_coverage} is not a share",
                field="--pool-min-coverage",
                hint="give a share between 0 and 1, e.g. 0.5",
            )


def check_pooling(pooling: Pooling, plan: Plan) -> None:
    """Refuse, before any node is asked, a pooling the query cannot support.

    Raises:
        QueryError: ``standardised`` without both ``sex`` and ``age`` breakdowns.
    """
    if pooling.enabled and pooling.aggregate == STANDARDISED:
        missing = [d for d in STANDARD_DIMS if d not in plan.query.breakdowns]
        if missing:
            raise QueryError(
                "--pooled standardised weights age x sex cells, and the query has no "
                f"{' or '.join(missing)} breakdown",
                field="--pooled",
                hint="add --by sex,age (pooled rows are then the standardised sex=T margins)",
            )


def standard_weights(spec: TableSpec) -> list[tuple[dict[int, int], float]]:
    """Each age x sex cell of a table (as breakdown positions) with its ESP weight.

    Weights sum to one; the standard population is the same for both sexes.
    """
    names = [d.name for d in spec.dims[1:]]
    sex, age = names.index("sex"), names.index(AGE)
    sexes = spec.dims[1 + sex].codes
    bands = spec.dims[1 + age].bands
    total = sum(band_weight(low, high) for low, high in bands) * len(sexes)
    return [
        ({sex: s, age: a}, band_weight(low, high) / total)
        for s in range(len(sexes))
        for a, (low, high) in enumerate(bands)
    ]


def _city_mean(
    cells: Cells, layout: Layout, indicator: Indicator, groups: list[int], cell: Cell,
    lines: list[float] | None,
) -> Linear:  # fmt: skip
    """The unweighted mean of each stacked table's own value; nan if any is not defined.

    Each table's own gradient fills its own slice of one vector (the slices never
    overlap): the cost stays linear in the stacked cells however many tables there are.
    """
    single = Layout(layout.spec, 1)
    value, grad, errors = 0.0, np.zeros(cells.values.shape), {}
    for k in range(layout.tile):
        own = group_estimate(
            layout.part(cells, k), single, indicator, groups, cell,
            [lines[k]] if lines is not None else None,
        )  # fmt: skip
        value += own.value
        grad[layout.at(k)] += own.grad
        errors.update({f"{k}:{key}": e for key, e in own.errors.items()})  # each city's bins
    return Linear(value, grad, errors).scaled(1.0 / layout.tile)


def _standardised(
    cells: Cells, layout: Layout, indicator: Indicator, groups: list[int], cell: Cell,
    lines: list[float] | None,
) -> Linear:  # fmt: skip
    """The ESP-weighted sum of the pooled value in each age x sex cell of ``cell``."""
    total = Linear(0.0, np.zeros(cells.values.shape))
    for positions, weight in standard_weights(layout.spec):
        at = tuple(positions.get(i, p) for i, p in enumerate(cell))
        part = group_estimate(cells, layout, indicator, groups, at, lines)
        total = total + part.scaled(weight)
    return total


def pooled_linear(
    aggregate: str, cells: Cells, layout: Layout, indicator: Indicator, groups: list[int],
    cell: Cell, lines: list[float] | None,
) -> Linear:  # fmt: skip
    """A node's or pooled value of ``groups`` in ``cell`` under the named aggregate.

    Raises:
        ValueError: ``standardised`` for a median ratio (a median is not standardised).
    """
    if aggregate == CITY_MEAN:
        return _city_mean(cells, layout, indicator, groups, cell, lines)
    if aggregate == STANDARDISED:
        if indicator.kind == MEDIAN_RATIO:
            raise ValueError("a median ratio is not age-sex standardised")
        return _standardised(cells, layout, indicator, groups, cell, lines)
    return group_estimate(cells, layout, indicator, groups, cell, lines)


def finite(linear: Linear) -> bool:
    """Whether a value and its gradient are defined (every term's denominator positive)."""
    return math.isfinite(linear.value) and bool(np.all(np.isfinite(linear.grad)))
