"""The discrete Gaussian mechanism on integer count vectors, through OpenDP.

The scale is set in closed form, ``sigma = Delta / sqrt(2 rho)``, and then confirmed
against OpenDP's own privacy map: if OpenDP's (conservatively rounded) map says the
measurement would spend more than ``rho``, the scale is nudged up until it does not.
Every draw comes from OpenDP's sampler.
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


def sigma_for(sensitivity: int, rho: float) -> float:
    """The closed-form scale, nudged up until OpenDP's privacy map is within rho."""
    return _calibrated(sensitivity, rho)[1]


@lru_cache(maxsize=4096)
def _calibrated(sensitivity: int, rho: float) -> tuple[Measurement, float, float]:
    """OpenDP's measurement for a (sensitivity, rho) pair, its scale and its privacy map.

    Built once per pair and kept: a node answers many tables at the same few pairs, and
    rebuilding the measurement (and its map) on every table costs more than the noise.
    The measurement is immutable, so sharing it across calls and threads is safe.
    """
    sigma = closed_form_sigma(sensitivity, rho)
    for _ in range(_MAX_NUDGES):
        meas = make_measurement(sigma)
        spent = float(meas.map(sensitivity))
        if spent <= rho:
            return meas, sigma, spent
        sigma = math.nextafter(sigma, math.inf) * (1 + 1e-12)
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
