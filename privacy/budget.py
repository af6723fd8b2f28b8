"""Typed zCDP budgets: exact integer micro-rho for the ledger, (epsilon, delta) for people.

The ledger stores budgets as integers of micro-rho so that sums are exact. A charge is
rounded up and a budget rounded down, so rounding never lets a node spend more than it
was given.
"""

from __future__ import annotations

import math
from functools import cache, lru_cache

from opendp.combinators import make_zCDP_to_approxDP
from opendp.domains import atom_domain
from opendp.measurements import make_gaussian
from opendp.metrics import absolute_distance
from opendp.mod import Measurement, PrivacyProfile, enable_features

# OpenDP's modules by name, not its prelude: the prelude also imports its scikit-learn,
# Polars and numpy extras, some 20 ms of every `fedstats query`'s start.

__all__ = [
    "DEFAULT_DELTA",
    "MICRO",
    "epsilon_for",
    "from_micro",
    "split_rho",
    "to_micro",
    "zcdp_profile",
]

MICRO = 1_000_000
DEFAULT_DELTA = 1e-9  # delta quoted when a zCDP budget is reported as (epsilon, delta)

enable_features("contrib")


def to_micro(rho: float, *, round_up: bool = True) -> int:
    """Convert rho to integer micro-rho, rounding up (charges) or down (budgets).

    A positive charge is never rounded to zero: the smallest charge is one micro-rho.
    The 1e-6 slack absorbs float error in values such as ``0.3 * MICRO``.
    """
    scaled = rho * MICRO
    if not round_up:
        return math.floor(scaled + 1e-6)
    return max(math.ceil(scaled - 1e-6), 1 if rho > 0 else 0)


def from_micro(micro: int) -> float:
    """Convert integer micro-rho back to rho."""
    return micro / MICRO


def split_rho(rho: float, weights: list[float]) -> list[float]:
    """Split a rho across releases in proportion to weights; the parts sum to at most rho."""
    total = sum(weights)
    parts = [rho * w / total for w in weights]
    while sum(parts) > rho:  # float rounding must never overspend
        parts = [math.nextafter(p, 0.0) for p in parts]
    return parts


_CERTIFIED = 1e-10
"""How far from OpenDP's own inversion a reported epsilon may be, relative (`epsilon_for`)."""


@lru_cache(maxsize=1024)
def epsilon_for(rho: float, delta: float = DEFAULT_DELTA) -> float:
    """Epsilon of a rho-zCDP guarantee at the given delta, by OpenDP's conversion.

    The conversion is OpenDP's (`zcdp_profile`). OpenDP's profile gives delta for an epsilon
    in about 0.1 ms, but its epsilon for a delta (a bisection over that) took 2-5 ms: a node
    reports the budget spent and left with every answer, and both change with every query,
    so that search cost a node more CPU than its noise. The epsilon is therefore the optimum
    of the same bound (Canonne, Kamath and Steinke 2020, `_cks_epsilon`), moved up by
    `_CERTIFIED` of itself and checked by OpenDP's profile: it must meet ``delta`` there,
    and the value `_CERTIFIED` below the optimum must not. The profile checked is that of a
    budget of at least ``rho`` (`_covering_profile`: a few ulps more at most, so a check it
    passes holds for ``rho`` too), made in half the time of `zcdp_profile`'s. One that
    fails either check is OpenDP's own search's, on `zcdp_profile`. Either way the number is
    OpenDP's to within twice `_CERTIFIED` of itself. Where OpenDP's numerics overflow
    (budgets far beyond any meaningful privacy, used in tests), the standard bound
    ``rho + 2 sqrt(rho ln(1/delta))`` (Bun and Steinke 2016, Prop. 1.3) is returned.
    """
    if rho <= 0:
        return 0.0
    if rho > 1e3:
        return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))
    if 0.0 < delta < 1.0 and math.isfinite(rho):  # else OpenDP's own answer or its error
        optimum = _cks_epsilon(rho, delta)
        above, below = optimum * (1.0 + _CERTIFIED), optimum * (1.0 - _CERTIFIED)
        profile = _covering_profile(rho)
        if optimum > 0 and profile.delta(above) <= delta < profile.delta(below):
            return above
    return float(zcdp_profile(rho).epsilon(delta))


def zcdp_profile(rho: float) -> PrivacyProfile:
    """OpenDP's (epsilon, delta) profile of a rho-zCDP guarantee.

    Its conversion runs on a Gaussian measurement whose privacy map at sensitivity 1 is
    exactly ``rho``.
    """
    scale = 1.0 / math.sqrt(2.0 * rho)
    meas = make_gaussian(atom_domain(T=float, nan=False), absolute_distance(T=float), scale=scale)
    profile = make_zCDP_to_approxDP(meas).map(1.0)
    assert isinstance(profile, PrivacyProfile)  # OpenDP's map is typed Any
    return profile


@cache
def _unit_gaussian() -> Measurement:
    """OpenDP's Gaussian of scale 1 under zCDP, as (epsilon, delta): one measurement for all."""
    meas = make_gaussian(atom_domain(T=float, nan=False), absolute_distance(T=float), scale=1.0)
    return make_zCDP_to_approxDP(meas)


def _covering_profile(rho: float) -> PrivacyProfile:
    """OpenDP's profile of a rho'-zCDP guarantee, rho <= rho' <= rho (1 + 1e-15) for a normal rho.

    The Gaussian of scale 1 at input distance ``d`` is ``d**2 / 2``-zCDP; OpenDP's map
    rounds that up, and ``d`` is the float above ``sqrt(2 rho)``, so rho' is never below
    rho (`tests/unit/test_privacy.py` checks both bounds). Mapping one measurement takes
    about 0.09 ms; building one per rho, as `zcdp_profile` does, about 0.19 ms.
    """
    profile = _unit_gaussian().map(_covering_distance(rho))
    assert isinstance(profile, PrivacyProfile)  # OpenDP's map is typed Any
    return profile


def _covering_distance(rho: float) -> float:
    """The float above ``sqrt(2 rho)``: the unit Gaussian's input distance covering ``rho``."""
    return math.nextafter(math.sqrt(2.0 * rho), math.inf)


def _cks_epsilon(rho: float, delta: float) -> float:
    """The smallest epsilon of the zCDP-to-(epsilon, delta) bound OpenDP's conversion uses.

    The minimum over alpha > 1 of
    ``alpha rho + (ln(1/delta) - ln alpha) / (alpha - 1) + ln(1 - 1/alpha)``. Its
    derivative in alpha is ``rho + (ln alpha - ln(1/delta)) / (alpha - 1)^2``, so the
    optimal alpha solves ``rho (alpha - 1)^2 + ln alpha = ln(1/delta)``: found by bisection
    between 1 (where the left side is smaller) and ``1 + sqrt(ln(1/delta) / rho)`` (where
    it is larger) until the two ends are neighbouring floats.
    """
    log_inv = math.log(1.0 / delta)
    low, high = 1.0, 1.0 + math.sqrt(log_inv / rho)
    while (mid := (low + high) / 2) not in (low, high):
        if rho * (mid - 1.0) ** 2 + math.log(mid) < log_inv:
            low = mid
        else:
            high = mid
    return high * rho + (log_inv - math.log(high)) / (high - 1.0) + math.log1p(-1.0 / high)
