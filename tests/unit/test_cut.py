"""Cutting at public edges (`node.cut`): exactly `numpy.searchsorted`, on the hard values."""

from __future__ import annotations

import numpy as np
import pytest

from indicators.variables import CATEGORICAL
from node.cut import cut

INCOME = CATEGORICAL["income"].edges[1:]  # what `node.harmonise` cuts at


def hard_values(edges: tuple[float, ...], seed: int) -> np.ndarray:
    """Every edge, its neighbouring floats, both zeros, the infinities, tiny and huge values."""
    bounds = np.asarray([e for e in edges if np.isfinite(e)], dtype=np.float64)
    near = np.concatenate([bounds, np.nextafter(bounds, np.inf), np.nextafter(bounds, -np.inf)])
    special = [0.0, -0.0, np.inf, -np.inf, 5e-324, -5e-324, 1e308, -1e308, 1.0, -1.0]
    rng = np.random.default_rng(seed)
    spread = np.concatenate(
        [rng.lognormal(10, 2, 20_000), -rng.lognormal(3, 3, 2_000), rng.normal(0, 1e3, 2_000)]
    )
    return np.concatenate([near, -near, special, spread, np.round(spread, 2)])


@pytest.mark.parametrize(
    "edges",
    [
        INCOME,
        (0.0,),
        (-np.inf, -5.0, 0.0, 1e-300, 1.0, 1.0, 2.0, np.inf),  # a repeated and infinite edges
        tuple(np.linspace(0.0, 1.0, 2_001)),  # many edges in one run of leading bits
    ],
    ids=["income", "one", "repeated_and_infinite", "dense"],
)
def test_cut_is_searchsorted_right(edges: tuple[float, ...]) -> None:
    values = hard_values(edges, seed=len(edges))
    expected = np.searchsorted(np.asarray(edges), values, side="right")
    assert np.array_equal(cut(values, edges), expected)


def test_cut_takes_a_strided_view_and_nothing() -> None:
    values = hard_values(INCOME, seed=1)
    assert np.array_equal(cut(values[::3], INCOME), np.searchsorted(INCOME, values[::3], "right"))
    assert cut(np.zeros(0), INCOME).shape == (0,)
