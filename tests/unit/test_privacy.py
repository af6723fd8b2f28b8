"""The Gaussian mechanism against OpenDP's privacy map, and its noise, statistically."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from privacy import budget
from privacy.budget import epsilon_for, from_micro, split_rho, to_micro, zcdp_profile
from privacy.estimators import Cells, difference, difference_interval, ratio
from privacy.gaussian import (
    SCALE_BITS,
    closed_form_sigma,
    make_measurement,
    on_grid,
    release,
    release_each,
    sigma_for,
)

GRID = 2.0 ** (1 - SCALE_BITS)  # the grid's largest relative step


@pytest.mark.parametrize("sensitivity", [1, 2, 7, 2001])
@pytest.mark.parametrize("rho", [1e-4, 0.01, 0.25, 0.5, 1.0, 3.7, 1e6])
def test_the_closed_form_scale_on_the_grid_agrees_with_opendp_privacy_map(
    sensitivity: int, rho: float
) -> None:
    sigma = sigma_for(sensitivity, rho)
    assert sigma >= sensitivity / math.sqrt(2 * rho)
    assert sigma == pytest.approx(sensitivity / math.sqrt(2 * rho), rel=2 * GRID)
    assert on_grid(sigma) == sigma
    spent = make_measurement(sigma).map(sensitivity)
    assert spent <= rho
    assert spent == pytest.approx(rho, rel=4 * GRID)  # no budget wasted beyond the grid


@pytest.mark.parametrize(
    "sigma", [34.92151478847891, 6.720648654552654, 1.0, 0.1, 3.0, 1e-300, 1e300, 2.0**-1000]
)
def test_the_scale_grid_rounds_up_to_its_nearest_point(sigma: float) -> None:
    up = on_grid(sigma)
    mantissa, exponent = math.frexp(up)
    assert up >= sigma
    assert up <= sigma * (1 + GRID)
    assert math.ldexp(mantissa, SCALE_BITS).is_integer()  # at most SCALE_BITS significant bits
    assert math.ldexp(math.ldexp(mantissa, SCALE_BITS) - 1, exponent - SCALE_BITS) < sigma
    assert on_grid(up) == up


def test_a_smaller_scale_would_overspend() -> None:
    sigma = closed_form_sigma(1, 0.5)
    assert make_measurement(sigma * 0.99).map(1) > 0.5


@pytest.mark.slow
def test_noise_has_the_promised_standard_deviation() -> None:
    """A 10% error in the scale moves the sample SD far outside these bounds."""
    rho = 0.02  # sigma = 5
    out = release(np.zeros(200_000, dtype=np.int64), 1, rho)
    assert out.sigma == pytest.approx(5.0)
    sd = float(np.std(out.values))
    assert abs(sd / out.sigma - 1) < 0.02, sd  # SE of the ratio is ~0.16%
    assert abs(float(np.mean(out.values))) < 0.1  # unbiased: SE ~0.011
    assert out.values.dtype == np.int64


def test_vectors_released_in_one_invocation_are_each_their_own_release() -> None:
    """`release_each`: the same scale and charge as `release`, every entry its own draw."""
    vectors = [np.zeros(20_000, dtype=np.int64), np.full(3, 1000, dtype=np.int64),
               np.full(20_000, 50, dtype=np.int64)]  # fmt: skip
    parts = release_each(vectors, 2, 0.08)  # sigma = 5
    alone = release(vectors[1], 2, 0.08)
    assert [p.values.size for p in parts] == [20_000, 3, 20_000]
    for part in parts:
        assert (part.sigma, part.rho, part.sensitivity) == (alone.sigma, alone.rho, 2)
        assert part.values.dtype == np.int64
    for part, true in ((parts[0], 0), (parts[2], 50)):  # centred on its own vector
        assert abs(float(np.mean(part.values)) - true) < 0.2  # SE ~0.035
        assert abs(float(np.std(part.values)) / part.sigma - 1) < 0.05
    assert np.all(np.abs(parts[1].values - 1000) < 60)  # 12 sigma
    assert not np.array_equal(parts[0].values[:1000], parts[2].values[:1000] - 50)
    assert release_each([], 1, 0.1) == []


@pytest.mark.slow
def test_noise_scales_with_sensitivity() -> None:
    out = release(np.zeros(100_000, dtype=np.int64), 11, 0.5)  # sigma = 11
    assert abs(float(np.std(out.values)) / 11.0 - 1) < 0.02


@pytest.mark.slow
def test_intervals_cover_the_true_rate_95_percent_of_the_time() -> None:
    """2,000 independent releases of a register table; 95% intervals must cover 93-97%."""
    true = np.array([300, 40, 160, 520, 30, 150], dtype=np.int64)  # 2 groups x (EMP, UNE, INAC)
    num0 = np.array([1, 0, 0, 0, 0, 0], bool)
    den0 = np.array([1, 1, 1, 0, 0, 0], bool)
    num1 = np.array([0, 0, 0, 1, 0, 0], bool)
    den1 = np.array([0, 0, 0, 1, 1, 1], bool)
    rate0, rate1 = 300 / 500, 520 / 700
    rho = 0.005  # sigma = 10 on cells of 30..520: the noise matters
    hits = gap_hits = 0
    reps = 2000
    for _ in range(reps):
        out = release(true, 1, rho)
        cells = Cells.of(out.values, out.sigma)
        low, high = ratio(cells, num0, den0).interval()
        hits += low <= rate0 <= high
        g_low, g_high = difference(cells, (num0, den0), (num1, den1)).interval()
        gap_hits += g_low <= rate0 - rate1 <= g_high
    assert 0.93 <= hits / reps <= 0.97, hits / reps
    assert 0.93 <= gap_hits / reps <= 0.97, gap_hits / reps


def test_gap_against_total_accounts_for_shared_cells() -> None:
    """A group inside TOTAL: the gap's variance is smaller than the sum of variances."""
    cells = Cells.of([300, 200, 500, 100], sigma=10.0)
    group = (np.array([1, 0, 0, 0], bool), np.array([1, 1, 0, 0], bool))
    total = (np.array([1, 0, 1, 0], bool), np.array([1, 1, 1, 1], bool))
    gap = difference(cells, group, total)
    naive = math.hypot(ratio(cells, *group).se, ratio(cells, *total).se)
    assert gap.value == pytest.approx(0.6 - 800 / 1100)
    assert gap.se < naive


def test_survey_cells_add_sampling_variance() -> None:
    no_sampling = ratio(Cells.of([600, 400], 1.0), np.array([1, 0], bool), np.ones(2, bool))
    sampled = Cells.of([600, 400], 1.0, samples=[60, 40])
    with_sampling = ratio(sampled, np.array([1, 0], bool), np.ones(2, bool))
    # binomial variance of a proportion 0.6 from 100 observations
    assert with_sampling.se**2 - no_sampling.se**2 == pytest.approx(0.6 * 0.4 / 100, rel=1e-6)


def test_micro_rho_rounding_never_overspends() -> None:
    assert to_micro(0.1) == 100_000
    assert to_micro(1e-7) == 1  # charges round up
    assert to_micro(1e-7, round_up=False) == 0  # budgets round down
    assert from_micro(to_micro(0.3)) == pytest.approx(0.3)
    parts = split_rho(1.0, [1, 1, 1])
    assert sum(parts) <= 1.0 and min(parts) > 0.333


def test_epsilon_conversion_is_opendp_and_monotone() -> None:
    eps = [epsilon_for(r) for r in (0.01, 0.1, 0.5, 1.0, 5.0, 2e3)]
    assert eps == sorted(eps)
    # OpenDP's conversion is tighter than the classic bound rho + 2 sqrt(rho ln 1/delta)
    assert epsilon_for(0.5) < 0.5 + 2 * math.sqrt(0.5 * math.log(1e9))
    assert epsilon_for(0.0) == 0.0


@pytest.mark.parametrize("delta", [1e-12, 1e-9, 1e-6, 1e-3])
def test_epsilon_is_opendps_conversion_to_within_its_certificate(delta: float) -> None:
    for rho in (1e-7, 1e-5, 1e-3, 0.0123, 0.1, 0.5, 1.0, 3.7, 10.0, 99.0, 999.0):
        profile = zcdp_profile(rho)
        ours, theirs = epsilon_for(rho, delta), float(profile.epsilon(delta))
        assert profile.delta(ours) <= delta  # a guarantee OpenDP's conversion stands behind
        assert abs(ours - theirs) <= 2.5e-10 * theirs, (rho, ours, theirs)
        if delta <= 1e-6:  # the optimum passes its check here: OpenDP's search is not run
            assert ours == budget._cks_epsilon(rho, delta) * (1.0 + budget._CERTIFIED)


def test_the_covering_profile_is_of_a_budget_at_least_rho_and_at_most_a_few_ulps_more() -> None:
    from opendp.domains import atom_domain
    from opendp.measurements import make_gaussian
    from opendp.metrics import absolute_distance

    gaussian = make_gaussian(atom_domain(T=float, nan=False), absolute_distance(T=float), scale=1.0)
    rng = random.Random(14)
    rhos = [1e-7, 1e-6, 0.0123, 0.5, 1.0, 3.7, 999.0, *(rng.uniform(1e-6, 1e3) for _ in range(300))]
    for rho in rhos:
        covered = float(gaussian.map(budget._covering_distance(rho)))
        assert rho <= covered <= rho * (1.0 + 1e-15), rho
        # the profile epsilon_for checks is that Gaussian's, converted by OpenDP
        assert budget._covering_profile(rho).delta(1.0) == pytest.approx(
            float(zcdp_profile(covered).delta(1.0)), rel=1e-12
        )


@pytest.mark.parametrize("off", [1.01, 0.99])  # the check below fails, or the one above
def test_epsilon_falls_back_to_opendps_search_when_the_optimum_fails_its_check(
    monkeypatch: pytest.MonkeyPatch, off: float
) -> None:
    epsilon_for.cache_clear()
    cks = budget._cks_epsilon
    monkeypatch.setattr(budget, "_cks_epsilon", lambda rho, delta: off * cks(rho, delta))
    try:
        assert epsilon_for(0.5, 1e-9) == float(zcdp_profile(0.5).epsilon(1e-9))
    finally:
        epsilon_for.cache_clear()


@pytest.mark.parametrize("delta", [0.0, 1.0, 2.0, math.nan])
def test_epsilon_at_a_delta_outside_zero_to_one_is_opendps_own(delta: float) -> None:
    try:
        theirs: float | str = float(zcdp_profile(0.5).epsilon(delta))
    except Exception as exc:  # OpenDP refuses it: so does epsilon_for, the same way
        theirs = type(exc).__name__
    try:
        ours: float | str = epsilon_for(0.5, delta)
    except Exception as exc:
        ours = type(exc).__name__
    assert ours == theirs


def test_a_gap_of_symmetric_intervals_is_the_wald_gap() -> None:
    """MOVER with ``value +- z se`` terms is exactly ``gap +- z sqrt(var1 + var2 - 2 cov)``."""
    z, (a, sa), (b, sb), r = 1.96, (0.6, 0.03), (0.7, 0.02), 0.4
    low, high = difference_interval((a, a - z * sa, a + z * sa), (b, b - z * sb, b + z * sb), r)
    se = math.sqrt(sa**2 + sb**2 - 2 * r * sa * sb)
    assert (low, high) == pytest.approx((a - b - z * se, a - b + z * se))


def test_a_gap_keeps_the_asymmetry_of_a_score_interval() -> None:
    """A rate near 100% has a long lower tail; its gap's interval reaches further down."""
    low, high = difference_interval((0.95, 0.75, 0.99), (0.70, 0.66, 0.74), 0.0)
    assert 0.25 - low > high - 0.25
    assert (low, high) == pytest.approx(
        (0.25 - math.hypot(0.20, 0.04), 0.25 + math.hypot(0.04, 0.04))
    )


def test_a_binned_distribution_reads_sampling_variance_at_its_mean_weight() -> None:
    """``deff w x`` per cell, ``w`` the population's mean weight, not each cell's ``x / n``."""
    cells = Cells.of([100.0, 300.0, 50.0], 2.0, [1.0, 20.0, 5.0], 1.0, 1.5)
    mask = np.array([True, True, False])
    smoothed = cells.with_mean_weight(mask, 14.0)
    assert smoothed.variance[:2] == pytest.approx(4.0 + 1.5 * 14.0 * np.array([100.0, 300.0]))
    assert smoothed.variance[2] == cells.variance[2]  # outside the population: unchanged
    assert cells.variance[0] == pytest.approx(4.0 + 1.5 * 100.0**2 / 1.0)  # the erratic form


def test_a_budget_that_is_not_a_number_is_refused_by_opendp_not_looped_on() -> None:
    with pytest.raises(Exception, match="finite"):
        epsilon_for(math.nan)
