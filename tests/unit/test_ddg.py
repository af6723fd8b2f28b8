"""Distributed discrete Gaussian: KLS21's accounting, OpenDP's map at n = 1, pooled noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from privacy import ddg
from privacy.gaussian import make_measurement
from tests.support.secagg import make_party


@pytest.mark.parametrize(("sensitivity", "sigma"), [(1, 0.8), (1, 3.0), (3, 10.0), (2, 41.5)])
def test_one_node_is_the_discrete_gaussian_of_opendp(sensitivity: int, sigma: float) -> None:
    ours = ddg.rho_of(sensitivity, sigma, n=1, dim=100)
    theirs = float(make_measurement(sigma).map(sensitivity))
    assert ours == pytest.approx(theirs, rel=1e-9)


def test_tau_in_closed_form() -> None:
    # n = 2: tau = 10 exp(-pi^2 sigma^2); n = 1: a single discrete Gaussian, tau = 0.
    assert ddg.tau(0.7, 2) == pytest.approx(10 * math.exp(-(math.pi**2) * 0.49), rel=1e-12)
    assert ddg.tau(0.7, 1) == 0.0
    # As 1/2 <= k/(k+1) < 1: 10 (n-1) exp(-2 pi^2 s^2) < tau <= 10 (n-1) exp(-pi^2 s^2).
    for sigma, n in [(0.5, 10), (1.0, 300), (2.0, 50)]:
        low = 10 * (n - 1) * math.exp(-2 * math.pi**2 * sigma**2)
        assert low < ddg.tau(sigma, n) <= 10 * (n - 1) * math.exp(-(math.pi**2) * sigma**2)
    # tau grows with n and falls with sigma.
    assert ddg.tau(1.0, 10) < ddg.tau(1.0, 100) and ddg.tau(2.0, 100) < ddg.tau(1.0, 100)


def test_with_negligible_tau_n_shares_are_one_gaussian_of_n_times_the_variance() -> None:
    # Theorem 1's leading term: D^2 / (2 n sigma^2), the continuous Gaussian's rate.
    assert ddg.rho_of(1, 5.0, n=100, dim=10_000) == pytest.approx(1 / (2 * 100 * 25), rel=1e-12)


def test_tiny_shares_give_no_useful_guarantee() -> None:
    # The example: a share of variance below 0.01 at t = 300 (sigma = 0.09).
    assert ddg.rho_of(1, 0.09, n=300, dim=1000) > 100


@pytest.mark.parametrize(("rho", "threshold", "dim"), [(0.02, 7, 1000), (0.5, 300, 12_896)])
def test_plans_spend_what_is_asked_with_one_release_of_noise(
    rho: float, threshold: int, dim: int
) -> None:
    plan = ddg.plan_shares(1.0, rho, threshold, dim)
    assert rho * (1 - 1e-6) <= plan.rho <= rho
    assert plan.sigma >= ddg.MIN_SHARE_SIGMA
    assert ddg.tau(plan.sigma, threshold) * dim < 1e-30
    central = 1.0 / math.sqrt(2 * rho)  # one node's noise for the whole release
    assert ddg.pooled_sd(plan, threshold) == pytest.approx(central, rel=1e-6)


def test_the_secure_sum_carries_the_promised_noise() -> None:
    """Statistical: pooled error mean 0 and SD as promised (6 standard errors: < 1e-8)."""
    count, threshold, dim = 10, 7, 3000
    plan = ddg.plan_shares(1.0, 0.02, threshold, dim)
    rng = np.random.default_rng(5)
    tables = {f"n{i:02d}": rng.integers(0, 5000, size=dim, dtype=np.int64) for i in range(count)}
    party = make_party(count, threshold, dim)
    total = party.run({n: ddg.noisy_share(t, plan) for n, t in tables.items()})
    error = total / plan.gamma - sum(tables.values())
    sd = ddg.pooled_sd(plan, count)
    assert abs(error.mean()) < 6 * sd / math.sqrt(dim)
    assert abs(error.var() / sd**2 - 1) < 6 * math.sqrt(2 / dim)


def test_counts_too_large_for_the_ring_are_refused() -> None:
    plan = ddg.plan_shares(1.0, 0.5, 7, 3)
    limit = ddg.HEADROOM // plan.gamma
    assert len(ddg.noisy_share(np.array([limit, 0, -limit], dtype=np.int64), plan)) == 3
    with pytest.raises(ValueError, match="no room in Z/2\\^64"):
        ddg.noisy_share(np.array([limit + 1, 0, 0], dtype=np.int64), plan)
