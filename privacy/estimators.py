"""Rates, gaps and their confidence intervals from noisy cells (delta method).

An estimate is a ratio of two sums of cells, ``r = (a . x) / (b . x)``, where ``x`` is a
vector of noisy cells (one node's table, or several nodes' tables side by side) and
``a``, ``b`` are 0/1 selectors. Its linearised variance is ``sum_i g_i^2 v_i`` with the
gradient ``g = (a - r b) / (b . x)`` and ``v_i`` each cell's variance: the DP noise
variance, plus for survey cells the sampling variance of a weighted total,
``deff * x_i^2 / n_i`` (``n_i`` the noisy sample count). A gap between two ratios on the
same cells uses the difference of gradients, so shared cells (a group inside ``TOTAL``,
a node inside the pooled value) are accounted for exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "Z95",
    "Cells",
    "Estimate",
    "difference",
    "ratio",
]

Z95 = 1.959963984540054
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Cells:
    """Noisy cells with the variance of each.

    Attributes:
        values: Noisy cell totals.
        variance: Variance of each cell's error (noise plus sampling).
        samples: Noisy unweighted counts of each cell (equal to ``values`` for registers).
    """

    values: FloatArray
    variance: FloatArray
    samples: FloatArray

    @classmethod
    def of(
        cls,
        values: npt.ArrayLike,
        sigma: float,
        samples: npt.ArrayLike | None = None,
        sample_sigma: float = 0.0,
        design_effect: float = 1.0,
    ) -> Cells:
        """Cells of one release: noise variance, plus sampling variance for surveys."""
        x = np.asarray(values, dtype=np.float64)
        var = np.full(x.shape, sigma**2)
        if samples is None:
            return cls(x, var, x)
        n = np.asarray(samples, dtype=np.float64)
        total = np.maximum(x, 0.0)
        var = var + design_effect * total**2 / np.maximum(n, 1.0)
        return cls(x, var, n)

    @staticmethod
    def concat(parts: list[Cells]) -> Cells:
        """Cells of several releases side by side."""
        return Cells(
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.variance for p in parts]),
            np.concatenate([p.samples for p in parts]),
        )


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error.

    Attributes:
        value: The estimate (a proportion for rates, a difference for gaps).
        se: Standard error from the linearised variance.
        denominator: Noisy denominator total (for rates).
        samples: Noisy sample count of the denominator (for rates).
    """

    value: float
    se: float
    denominator: float = math.nan
    samples: float = math.nan

    def interval(self, z: float = Z95) -> tuple[float, float]:
        """Symmetric normal interval, ``value +- z se``."""
        return self.value - z * self.se, self.value + z * self.se


def _gradient(cells: Cells, num: BoolArray, den: BoolArray) -> tuple[float, float, FloatArray]:
    d = float(cells.values[den].sum())
    if d <= 0:
        return math.nan, d, np.full(cells.values.shape, math.nan)
    r = float(cells.values[num].sum()) / d
    g = (num.astype(np.float64) - r * den.astype(np.float64)) / d
    return r, d, g


def ratio(cells: Cells, num: BoolArray, den: BoolArray) -> Estimate:
    """The ratio of the numerator cells' sum to the denominator cells' sum."""
    r, d, g = _gradient(cells, num, den)
    se = math.sqrt(float(np.sum(g**2 * cells.variance))) if math.isfinite(r) else math.nan
    return Estimate(r, se, d, float(cells.samples[den].sum()))


def difference(
    cells: Cells, first: tuple[BoolArray, BoolArray], second: tuple[BoolArray, BoolArray]
) -> Estimate:
    """The first ratio minus the second, with the covariance of shared cells."""
    r1, _, g1 = _gradient(cells, *first)
    r2, _, g2 = _gradient(cells, *second)
    if not (math.isfinite(r1) and math.isfinite(r2)):
        return Estimate(math.nan, math.nan)
    se = math.sqrt(float(np.sum((g1 - g2) ** 2 * cells.variance)))
    return Estimate(r1 - r2, se)
