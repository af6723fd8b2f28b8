"""The discrete Gaussian mechanism on integer count vectors, through OpenDP.

The scale is set in closed form, ``sigma = Delta / sqrt(2 rho)``, rounded up to the scale
grid (`on_grid`), and then confirmed against OpenDP's own privacy map: if OpenDP's
(conservatively rounded) map says the measurement would spend more than ``rho``, the
scale is moved up the grid until it does not. Every draw comes from OpenDP's sampler.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from opendp.domains import atom_domain, vector_domain
from opendp.measurements import make_gaussian
from opendp.metrics import l2_distance
from opendp.mod import Measurement, enable_features
from opendp.typing import i64

# OpenDP's modules by name, not its prelude (see `privacy.budget`).

__all__ = [
    "GaussianRelease",
    "closed_form_sigma",
    "make_measurement",
    "release",
    "release_each",
    "sigma_for",
]

enable_features("contrib")

_MAX_NUDGES = 64

SCALE_BITS = 24
"""Significant bits of a released scale (`on_grid`).

OpenDP's exact sampler works with the scale as an exact fraction; a float's 53-bit
mantissa makes it a fraction of large integers. Rounded to 16-28 bits the sampler is
faster by about the same amount, at 32 bits by about half of it, at 40 bits not (a
numerator of up to 28 bits has a square that fits a machine word, the likely reason).
`bench/noise_bench.py` measured, at the scales of a
120-cell table: 5-10% less CPU per drawn value (11.5-12.9 against 10.8-11.6 us), and a new
(sensitivity, rho) pair calibrated in 0.17 ms instead of 0.29 (the closed form on the grid
is at once within OpenDP's map; float steps up from it usually took two tries). The scale
grows by less than 2^-23 (1.2e-7) of itself, and the budget spent is OpenDP's map at that
scale: a release is never less private than asked.
"""


@dataclass(frozen=True)
class GaussianRelease:
    """A noisy vector and what it cost.

    Attributes:
        values: Noisy integer counts.
        sigma: Standard deviation of the noise on each entry.
        rho: zCDP spent, by OpenDP's privacy map (at most the rho asked for).
        sensitivity: L2 sensitivity the noise was calibrated to.
    """

    values: npt.NDArray[np.int64]
    sigma: float
    rho: float
    sensitivity: int


def closed_form_sigma(sensitivity: int, rho: float) -> float:
    """Noise scale of the Gaussian mechanism for a rho-zCDP release."""
    if sensitivity < 1 or not rho > 0:
        raise ValueError("sensitivity must be >= 1 and rho > 0")
    return sensitivity / math.sqrt(2.0 * rho)


def make_measurement(sigma: float) -> Measurement:
    """OpenDP's discrete Gaussian on vectors of 64-bit integers under the L2 distance."""
    return make_gaussian(vector_domain(atom_domain(T=i64)), l2_distance(T=i64), scale=sigma)


def on_grid(sigma: float) -> float:
    """The smallest scale of at most `SCALE_BITS` significant bits that is >= ``sigma``.

    For a positive finite ``sigma`` below 2**1023 (a node's scales are below 1e12); the
    grid's point above the largest floats is not a float (`OverflowError`).
    """
    mantissa, exponent = math.frexp(sigma)  # sigma = mantissa * 2**exponent, 0.5 <= mantissa < 1
    return math.ldexp(math.ceil(math.ldexp(mantissa, SCALE_BITS)), exponent - SCALE_BITS)


def sigma_for(sensitivity: int, rho: float) -> float:
    """The closed-form scale on the grid, moved up it until OpenDP's map is within rho."""
    return _calibrated(sensitivity, rho)[1]


@lru_cache(maxsize=4096)
def _calibrated(sensitivity: int, rho: float) -> tuple[Measurement, float, float]:
    """OpenDP's measurement for a (sensitivity, rho) pair, its scale and its privacy map.

    Built once per pair and kept: a node answers many tables at the same few pairs, and
    rebuilding the measurement (and its map) on every table costs more than the noise.
    The measurement is immutable, so sharing it across calls and threads is safe.
    """
    sigma = on_grid(closed_form_sigma(sensitivity, rho))
    for _ in range(_MAX_NUDGES):
        meas = make_measurement(sigma)
        spent = float(meas.map(sensitivity))
        if spent <= rho:
            return meas, sigma, spent
        sigma = on_grid(math.nextafter(sigma, math.inf))  # the next scale up the grid
    raise ArithmeticError(f"no scale fits rho={rho} at sensitivity {sensitivity}")


def release(counts: npt.NDArray[np.int64], sensitivity: int, rho: float) -> GaussianRelease:
    """Add discrete Gaussian noise to every entry of an integer vector.

    Args:
        counts: True integer counts (each person in at most one entry).
        sensitivity: L2 sensitivity: the most one person can change the vector.
        rho: zCDP budget for this release.
    """
    meas, sigma, spent = _calibrated(sensitivity, rho)
    # a contiguous int64 array crosses into OpenDP as one buffer, not value by value
    noisy = np.asarray(meas(np.ascontiguousarray(counts, dtype=np.int64)), dtype=np.int64)
    return GaussianRelease(values=noisy, sigma=sigma, rho=spent, sensitivity=sensitivity)


def release_each(
    vectors: Sequence[npt.NDArray[np.int64]], sensitivity: int, rho: float
) -> list[GaussianRelease]:
    """`release` of each vector at the same sensitivity and rho, in one OpenDP invocation.

    The measurement adds an independent discrete Gaussian draw to every entry, so one
    invocation over the vectors joined end to end gives every entry exactly the noise
    its own vector's release would: each vector is still its own release at ``rho`` (the
    same measurement, scale and privacy map as `release`), and only the per-invocation
    overhead of OpenDP's Python bindings is paid once instead of once per vector.
    """
    if not vectors:
        return []
    meas, sigma, spent = _calibrated(sensitivity, rho)
    joined = np.concatenate([np.asarray(v, dtype=np.int64).ravel() for v in vectors])
    noisy = np.asarray(meas(np.ascontiguousarray(joined)), dtype=np.int64)
    if noisy.shape != joined.shape:
        raise ArithmeticError("OpenDP returned a vector of another length")
    ends = np.cumsum([np.asarray(v).size for v in vectors])[:-1]
    return [
        GaussianRelease(values=part, sigma=sigma, rho=spent, sensitivity=sensitivity)
        for part in np.split(noisy, ends)
    ]
