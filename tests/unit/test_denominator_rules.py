"""Disclosure rules on the indicator's own denominator margins (DESIGN sections 3 and 4).

The probability that a 5-person group is published is computed exactly from the discrete
Gaussian noise, and checked empirically by running the coordinator's pure functions on
real OpenDP noise.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from coordinator.bases import Margin, base_of
from coordinator.estimates import Layout
from fedstats.demo import DEMO_INDICATORS, RHO_PER_QUERY
from indicators.catalogue import CATALOGUE
from indicators.spec import Query, compile_query, denominator_codes, margin_codes
from privacy.budget import split_rho
from privacy.disclosure import NAMED_RULES, DisclosureRules, Noisy
from privacy.estimators import Cells
from privacy.gaussian import release, sigma_for

MARGIN_SHARE = 0.1  # the node's default [privacy] margin_rho_share
SAMPLE_SHARE = 0.2  # and sample_rho_share


def _demo_plan() -> tuple[float, dict[str, object]]:
    plan = compile_query(Query(DEMO_INDICATORS, "citizen", (), "NAT", RHO_PER_QUERY))
    return RHO_PER_QUERY / len(plan.tables), {t.outcome.name: t for t in plan.tables}


def _dg_pmf(sigma: float) -> tuple[npt.NDArray[np.float64], int]:
    """The discrete Gaussian's probabilities on -R..R (R = 14 sigma) and R."""
    reach = math.ceil(14 * sigma) + 1
    x = np.arange(-reach, reach + 1, dtype=np.float64)
    p = np.exp(-(x**2) / (2 * sigma**2))
    return p / p.sum(), reach


def _sum_pmf(sigma: float, k: int) -> tuple[npt.NDArray[np.float64], int]:
    """The pmf of the sum of ``k`` independent discrete Gaussians (by FFT), and its offset."""
    p, reach = _dg_pmf(sigma)
    size = k * (len(p) - 1) + 1
    n = 1 << (size - 1).bit_length()
    out = np.fft.irfft(np.fft.rfft(p, n) ** k, n)[:size]
    out = np.clip(out, 0.0, None)
    return out / out.sum(), k * reach


def _publish_probability(
    true: int, cells: int, cell_sigma: float, margin_sigma: float, threshold: float
) -> float:
    """P(the inverse-variance base of a cell sum and a margin clears the safety threshold)."""
    p1, off1 = _sum_pmf(cell_sigma, cells)
    p2, off2 = _dg_pmf(margin_sigma)
    v1, v2 = cells * cell_sigma**2, margin_sigma**2
    w1, w2 = (1 / v1) / (1 / v1 + 1 / v2), (1 / v2) / (1 / v1 + 1 / v2)
    sd = math.sqrt(1 / (1 / v1 + 1 / v2))
    rules = DisclosureRules(min_count=threshold)
    x1 = true + np.arange(len(p1)) - off1
    total = 0.0
    for x2, q in zip(true + np.arange(len(p2)) - off2, p2, strict=True):
        value = w1 * x1 + w2 * x2
        passes = value >= max(threshold, threshold / 2 + 2.3263478740408408 * sd + 0.5)
        total += q * float(p1[passes].sum())
    assert rules.passes(Noisy(1e9, sd), threshold)
    return total


@pytest.mark.parametrize("outcome", ["wstatus", "income"])
def test_a_five_person_register_group_is_published_at_most_1_percent_of_the_time(
    outcome: str,
) -> None:
    table_rho, tables = _demo_plan()
    spec = tables[outcome]
    rho_cells, rho_margins = split_rho(table_rho, [1 - MARGIN_SHARE, MARGIN_SHARE])
    n_margins = len(margin_codes(spec))  # type: ignore[arg-type]
    cell_sigma = sigma_for(1, rho_cells)
    margin_sigma = sigma_for(1, split_rho(rho_margins, [1.0] * n_margins)[0])
    n_cells = len(spec.outcome.codes)  # type: ignore[attr-defined]
    p = _publish_probability(5, n_cells, cell_sigma, margin_sigma, 10.0)
    assert p <= 0.01
    assert p > 0.005  # the margin is not needlessly wide: a 5-person group is near 1%


def test_a_five_observation_survey_group_is_published_at_most_1_percent_under_eu_silc() -> None:
    table_rho, tables = _demo_plan()
    spec = tables["wstatus"]
    rho_cells, rho_margins = split_rho(table_rho, [1 - MARGIN_SHARE, MARGIN_SHARE])
    sample_sigma = sigma_for(1, split_rho(rho_cells, [1 - SAMPLE_SHARE, SAMPLE_SHARE])[1])
    n_margins = 2 * len(margin_codes(spec))  # type: ignore[arg-type]
    margin_sigma = sigma_for(1, split_rho(rho_margins, [1.0] * n_margins)[0])
    limit = NAMED_RULES["eu-silc"].min_count
    # half EU-SILC's 20 observations: 10
    assert _publish_probability(10, 3, sample_sigma, margin_sigma, limit) <= 0.01
    assert _publish_probability(5, 3, sample_sigma, margin_sigma, limit) <= 0.01


def _layout_and_cells(
    true: npt.NDArray[np.int64], unknown: npt.NDArray[np.int64], rho: float, reps: int
) -> tuple[Layout, list[Cells], list[tuple[Margin, ...]]]:
    """``reps`` noisy releases of one register wstatus table (2 groups x 3 outcomes)."""
    spec = compile_query(Query(("employment_rate",), "citizen", (), "NAT", rho)).tables[0]
    n_groups = len(spec.dims[0].codes)
    full = np.zeros((n_groups, 4), dtype=np.int64)
    full[0, :3], full[0, 3] = true, unknown
    rho_cells, rho_margins = split_rho(rho, [1 - MARGIN_SHARE, MARGIN_SHARE])
    sets = margin_codes(spec)
    noisy = release(np.tile(full[:, :3].ravel(), reps), 1, rho_cells)
    codes = (*spec.outcome.codes, "UNK")
    margins = []
    for chosen, r in zip(sets, split_rho(rho_margins, [1.0] * len(sets)), strict=True):
        totals = full[:, [codes.index(c) for c in chosen]].sum(axis=1)
        m = release(np.tile(totals, reps), 1, r)
        margins.append((chosen, m.values.reshape(reps, -1).astype(np.float64), m.sigma))
    per = noisy.values.reshape(reps, -1)
    layout = Layout(spec, 1)
    cells = [Cells.of(per[i], noisy.sigma) for i in range(reps)]
    ms = [tuple(Margin(c, False, v[i], s) for c, v, s in margins) for i in range(reps)]
    return layout, cells, ms


@pytest.mark.slow
def test_the_empirical_publication_rate_of_a_five_person_group_agrees_with_the_exact_one() -> None:
    table_rho, _ = _demo_plan()
    reps = 6000
    layout, cells, margins = _layout_and_cells(np.array([3, 1, 1]), np.array(0), table_rho, reps)
    rules = NAMED_RULES["register"]
    den = denominator_codes(CATALOGUE["employment_rate"], layout.spec)
    published = sum(
        not rules.judge(base_of(c, layout, [m], [0], (), den, False).count).suppressed
        for c, m in zip(cells, margins, strict=True)
    )
    rho_cells, rho_margins = split_rho(table_rho, [1 - MARGIN_SHARE, MARGIN_SHARE])
    exact = _publish_probability(
        5, 3, sigma_for(1, rho_cells), sigma_for(1, split_rho(rho_margins, [1.0] * 3)[0]), 10.0
    )
    # binomial(6000, <=1%): 6 standard errors at p = 1% is 0.0077
    assert abs(published / reps - exact) < 0.0077


def test_a_37_observation_denominator_is_flagged_u_under_eu_silc() -> None:
    rules = NAMED_RULES["eu-silc"]
    judged = rules.judge(Noisy(5200.0, 300.0), Noisy(37.0, 3.0))
    assert (judged.flag, judged.suppressed) == ("u", False)
    assert rules.judge(Noisy(9000.0, 300.0), Noisy(80.0, 3.0)).flag == ""


def test_a_group_with_40_percent_unknown_labour_status_is_flagged_under_eu_silc() -> None:
    layout, cells, margins = _layout_and_cells(np.array([300, 40, 260]), np.array(400), 1.0, 1)
    den = denominator_codes(CATALOGUE["employment_rate"], layout.spec)
    base = base_of(cells[0], layout, [margins[0]], [0], (), den, False)
    assert base.unknown_share is not None
    assert base.unknown_share == pytest.approx(0.4, abs=0.03)
    judged = NAMED_RULES["eu-silc"].judge(base.count, Noisy(600.0, 1.0), base.unknown_share)
    assert (judged.flag, judged.suppressed) == ("u", False)
    over_half = NAMED_RULES["eu-silc"].judge(base.count, Noisy(600.0, 1.0), 0.55)
    assert over_half.suppressed


def test_the_base_is_never_noisier_than_the_margin_or_the_cell_sum() -> None:
    layout, cells, margins = _layout_and_cells(np.array([30, 5, 15]), np.array(3), 0.1, 1)
    den = denominator_codes(CATALOGUE["employment_rate"], layout.spec)
    base = base_of(cells[0], layout, [margins[0]], [0], (), den, False)
    cell_sd = math.sqrt(3) * cells[0].noise_variance[0] ** 0.5
    assert base.count.sigma < min(cell_sd, margins[0][0].sigma)
    without = base_of(cells[0], layout, [()], [0], (), den, False)
    assert without.count.sigma == pytest.approx(cell_sd)
    assert without.unknown_share is None
