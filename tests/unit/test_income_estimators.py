"""Medians and shares below a line read from binned noisy counts: gradients and intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from privacy.estimators import Cells, below_linear, quantile_linear
from privacy.gaussian import release

EDGES = (-math.inf, 0.0, 10.0, 20.0, 30.0, 40.0, 50.0)


def numeric_gradient(values: np.ndarray, f: object) -> np.ndarray:
    assert callable(f)
    base = f(values)
    out = np.zeros(len(values))
    for j in range(len(values)):
        moved = values.copy()
        moved[j] += 1e-6
        out[j] = (f(moved) - base) / 1e-6
    return out


@pytest.mark.parametrize("q", [0.25, 0.5, 0.9])
def test_quantile_gradient_matches_finite_differences(q: float) -> None:
    x = np.array([3.0, 8.0, 30.0, 42.0, 20.0, 9.0, 2.0])
    mask, bins = np.ones(7, bool), np.arange(7)

    def value(v: np.ndarray) -> float:
        return quantile_linear(Cells.of(v, 1.0), mask, bins, EDGES, q).value

    est = quantile_linear(Cells.of(x, 1.0), mask, bins, EDGES, q)
    assert np.allclose(est.grad, numeric_gradient(x, value), atol=1e-4)


def test_share_below_a_line_interpolates_inside_its_bin() -> None:
    x = np.array([0.0, 10.0, 20.0, 30.0, 40.0, 0.0, 0.0])
    below = below_linear(Cells.of(x, 1.0), np.ones(7, bool), np.arange(7), EDGES, 25.0)
    assert below.value == pytest.approx(10 + 20 + 0.5 * 30)
    assert list(below.grad) == [1.0, 1.0, 1.0, 0.5, 0.0, 0.0, 0.0]


@pytest.mark.slow
def test_median_interval_covers_the_true_median() -> None:
    """Repeated noisy releases of one binned distribution: 95% intervals cover 93-97%."""
    counts = np.array([0, 40, 120, 160, 100, 60, 20], dtype=np.int64)
    true = quantile_linear(Cells.of(counts, 0.0), np.ones(7, bool), np.arange(7), EDGES).value
    hits, reps = 0, 1500
    for _ in range(reps):
        out = release(counts, 1, 0.01)  # sigma ~ 7 on bins of 20..160
        cells = Cells.of(out.values, out.sigma)
        est = quantile_linear(cells, np.ones(7, bool), np.arange(7), EDGES)
        se = est.se(cells)
        hits += abs(est.value - true) <= 1.96 * se
    assert 0.93 <= hits / reps <= 0.97, hits / reps
