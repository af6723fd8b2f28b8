"""Coverage of every published interval, at group sizes 20 to 5,000, register and survey.

Independent of the code under test up to the coordinator's estimators: the microdata are
made here, true tables are counted with numpy (`tests.support.tables.true_table`), the
truths are computed with pandas from the microdata (for the survey: the finite population
the samples are drawn from), and the noise is the discrete Gaussian sampled in numpy from
its exact pmf at the node's own scale (`privacy.gaussian.sigma_for`) and budget split
(the demo's rho per query over the demo's four tables; 10% of a table's rho for its
margins, 20% of the cells' rho for a survey's observation counts). Each replicate is then
read by `coordinator.combine._estimate`, the function that decides a benchmark row's
value, interval and suppression, and gaps as `_rows_for` forms them.

The survey is a Poisson sample of a simulated population with non-EU citizens
over-sampled (weight 14 against 21 for nationals, clipped at 21 as in the demo's Athens).
Within a group every person has the same inclusion probability, so the sample count of
each table cell is binomial given the population cell: drawing those counts is drawing the
sample and tabulating it.
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from coordinator.bases import Margin, positions_of
from coordinator.combine import _estimate, _Source, gap_interval
from coordinator.estimates import Layout
from coordinator.flags import Status
from fedstats.demo import DEMO_INDICATORS, RHO_PER_QUERY
from indicators.spec import Plan, Query, TableSpec, compile_query, margin_codes
from indicators.variables import CATEGORICAL
from node.engine import sensitivity
from privacy.budget import split_rho
from privacy.disclosure import NAMED_RULES, DisclosureRules
from privacy.estimators import Cells
from privacy.gaussian import sigma_for as node_sigma
from tests.support.tables import true_table

SIZES = (20, 50, 150, 500, 2_000, 5_000)
INDICATORS = ("employment_rate", "median_income_ratio", "arop_rate")
GROUP, NATIVE = "NEU27_2020_FOR", "NAT"
OTHERS = {"NAT": 20_000, "EU27_2020_FOR": 2_000}  # the rest of the population, fixed
EMPLOYMENT = {"NAT": (0.75, 0.05), "EU27_2020_FOR": (0.70, 0.07), GROUP: (0.55, 0.10)}
MEDIAN = {"NAT": 20_000.0, "EU27_2020_FOR": 19_000.0, GROUP: 14_000.0}
WEIGHTS = {"NAT": 21.0, "EU27_2020_FOR": 14.0, GROUP: 14.0}  # survey: 1 / inclusion prob.
MAX_WEIGHT = 21.0
REPS = int(os.environ.get("COVERAGE_REPS", 2_000))
LOWEST, HIGHEST, NOMINAL = 0.93, 0.975, 0.95
RISK = 5e-5  # the most a check may fail falsely each way (1e-4 in all)
SUMMED_RISK = 5e-3  # the most the whole test may


@functools.cache
def sigma_for(delta: int, rho: float) -> float:
    """The node's own scale (cached: OpenDP's privacy map is checked once per scale)."""
    return node_sigma(delta, rho)


def population(sizes: dict[str, int], rng: np.random.Generator) -> pd.DataFrame:
    """Persons aged 20-64: citizenship, labour status and equivalised income."""
    parts = []
    for group, size in sizes.items():
        emp, une = EMPLOYMENT[group]
        status = rng.choice(["EMP", "UNE", "INAC"], size=size, p=[emp, une, 1 - emp - une])
        income = MEDIAN[group] * np.exp(0.6 * rng.standard_normal(size))
        parts.append(pd.DataFrame({"citizen": group, "wstatus": status, "money": income}))
    people = pd.concat(parts, ignore_index=True)
    edges = np.asarray(CATEGORICAL["income"].edges[1:])
    bins = np.searchsorted(edges, people.money.to_numpy(), side="right")
    return people.assign(income=np.asarray(CATEGORICAL["income"].codes)[bins])


def truths(people: pd.DataFrame, line: float) -> dict[str, float]:
    """Every checked value of the population, by pandas."""
    by = people.groupby("citizen")
    employed = by.wstatus.apply(lambda s: (s == "EMP").mean())
    median = by.money.median() / people.money.median()
    poor = by.money.apply(lambda s: (s < line).mean())
    return {
        "rate": employed[GROUP],
        "rate gap": employed[GROUP] - employed[NATIVE],
        "median ratio": median[GROUP],
        "median ratio gap": median[GROUP] - median[NATIVE],
        "AROP": poor[GROUP],
        "AROP gap": poor[GROUP] - poor[NATIVE],
    }


class Noise:
    """The discrete Gaussian sampled from its exact pmf (support +- 12 sigma)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.pmfs: dict[float, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}

    def __call__(self, counts: npt.NDArray[np.int64], sigma: float) -> npt.NDArray[np.float64]:
        if sigma not in self.pmfs:
            k = np.arange(-math.ceil(12 * sigma) - 1, math.ceil(12 * sigma) + 2)
            p = np.exp(-(k.astype(np.float64) ** 2) / (2 * sigma**2))
            self.pmfs[sigma] = (k, np.cumsum(p / p.sum()))
        support, cdf = self.pmfs[sigma]
        draw = np.searchsorted(cdf, self.rng.random(counts.shape), side="right")
        return (counts + support[np.minimum(draw, len(support) - 1)]).astype(np.float64)


@dataclass(frozen=True)
class Design:
    """A register (no weights) or the over-sampled survey, with its noise scales."""

    name: str
    survey: bool
    rules: DisclosureRules
    delta: int
    sigma_cells: float
    sigma_samples: float
    rho_margins: float


def design(survey: bool) -> Design:
    """The node's budget split of one demo table's rho (`node.service._release`)."""
    rho_table = RHO_PER_QUERY / len(compile_query(demo_query()).tables)
    rho_cells, rho_margins = split_rho(rho_table, [0.9, 0.1])
    if not survey:
        return Design("register", False, NAMED_RULES["register"], 1,
                      sigma_for(1, rho_cells), 0.0, rho_margins)  # fmt: skip
    rho_counts, rho_samples = split_rho(rho_cells, [0.8, 0.2])
    delta = sensitivity(MAX_WEIGHT)
    return Design("survey", True, NAMED_RULES["eu-silc"], delta,
                  sigma_for(delta, rho_counts), sigma_for(1, rho_samples), rho_margins)  # fmt: skip


def demo_query() -> Query:
    return Query(DEMO_INDICATORS, "citizen", (), NATIVE, RHO_PER_QUERY)


def released(
    spec: TableSpec,
    counts: npt.NDArray[np.int64],
    samples: npt.NDArray[np.int64] | None,
    d: Design,
    noise: Noise,
) -> tuple[Cells, tuple[Margin, ...]]:
    """One table's noisy cells and margins, as a node releases them."""
    sets = margin_codes(spec)
    where = positions_of(spec.outcome.codes)
    sources = [(counts, False, d.delta)] + ([] if samples is None else [(samples, True, 1)])
    rhos = split_rho(d.rho_margins, [1.0] * (len(sets) * len(sources)))
    margins, i = [], 0
    for true, observed, delta in sources:
        by_outcome = true.reshape(-1, len(where))
        for chosen in sets:
            columns = [where[c] for c in chosen if c in where]
            sigma = sigma_for(delta, rhos[i])
            i += 1
            totals = by_outcome[:, columns].sum(axis=1).astype(np.int64)
            margins.append(Margin(tuple(chosen), observed, noise(totals, sigma), sigma))
    values = noise(counts, d.sigma_cells)
    if samples is None:
        return Cells.of(values, d.sigma_cells), tuple(margins)
    cells = Cells.of(values, d.sigma_cells, noise(samples, d.sigma_samples), d.sigma_samples)
    return cells, tuple(margins)


def checked(
    plan: Plan, tables: dict[str, tuple[Cells, tuple[Margin, ...]]], d: Design, line: float
) -> dict[str, tuple[float, float] | None]:
    """The published interval of each checked value, None when it is not published."""
    out: dict[str, tuple[float, float] | None] = {}
    for name, label in zip(INDICATORS, ("rate", "median ratio", "AROP"), strict=True):
        indicator, spec = plan.indicator(name)
        cells, margins = tables[spec.key]
        source = _Source("x", "X", "2024", cells, d.rules, [margins], lines=[line])
        layout = Layout(spec, 1)
        codes = spec.dims[0].codes
        est = _estimate(source, layout, indicator, [codes.index(GROUP)], ())
        comp = _estimate(source, layout, indicator, [codes.index(NATIVE)], ())
        published = est.status == Status.PUBLISHED
        out[label] = est.interval if published else None
        if published and comp.status == Status.PUBLISHED:
            _, low, high = gap_interval(est, comp, cells)
            out[f"{label} gap"] = (low, high)
        else:
            out[f"{label} gap"] = None
    return out


def simulate(survey: bool, n: int, rng: np.random.Generator) -> dict[str, tuple[int, int]]:
    """(published, covered) of each checked value over REPS releases."""
    d = design(survey)
    plan = compile_query(Query(INDICATORS, "citizen", (), NATIVE, RHO_PER_QUERY))
    sizes = {**OTHERS, GROUP: n}  # persons, or the survey's expected observations
    people = population(
        {g: round(s * (WEIGHTS[g] if survey else 1)) for g, s in sizes.items()}, rng
    )
    line = 0.6 * float(people.money.median())
    truth = truths(people, line)
    specs = {plan.indicator(i)[1].key: plan.indicator(i)[1] for i in INDICATORS}
    pop = {k: true_table(people, s) for k, s in specs.items()}
    noise = Noise(rng)
    counts = dict.fromkeys(truth, (0, 0))
    for _ in range(REPS):
        tables = {}
        for key, spec in specs.items():
            if survey:
                weight = np.repeat([WEIGHTS.get(c, 1.0) for c in spec.dims[0].codes],
                                   len(spec.outcome.codes))  # fmt: skip
                samples = rng.binomial(pop[key], 1.0 / weight)
                weighted = np.rint(samples * weight).astype(np.int64)
                tables[key] = released(spec, weighted, samples.astype(np.int64), d, noise)
            else:
                tables[key] = released(spec, pop[key], None, d, noise)
        for label, interval in checked(plan, tables, d, line).items():
            shown, hit = counts[label]
            if interval is not None:
                low, high = interval
                counts[label] = (shown + 1, hit + int(low <= truth[label] <= high))
    return counts


def cell(task: tuple[bool, int]) -> dict[str, tuple[int, int]]:
    """One (design, size) cell with its own seed (for a process pool)."""
    survey, n = task
    return simulate(survey, n, np.random.default_rng([2024, survey, n]))


def binomial_pmf(m: int, p: float) -> npt.NDArray[np.float64]:
    """P(Binomial(m, p) = k) for k = 0..m, from log-gamma (exact to rounding)."""
    k = np.arange(m + 1)
    lgamma = np.frompyfunc(math.lgamma, 1, 1)
    log_choose = lgamma(m + 1.0) - lgamma(k + 1.0) - lgamma(m - k + 1.0)
    log_pmf = log_choose.astype(np.float64) + k * math.log(p) + (m - k) * math.log1p(-p)
    pmf: npt.NDArray[np.float64] = np.exp(log_pmf)
    return pmf


def bounds(m: int) -> tuple[int, int, float]:
    """The fewest and most covering intervals a check of ``m`` published ones accepts.

    At least 93% and at most 97.5% of ``m``, widened only as far as needed for a check to
    fail falsely (at a true coverage of 95%) with chance at most ``RISK`` each way: for
    ``m`` = 2,000 the bounds are exactly 93% and 97.5% (tails 4.1e-5 and 5.9e-9); a size
    published a few hundred times is checked against a correspondingly looser bound
    instead of not at all. Returns the bounds and the chance of a false failure.
    """
    pmf = binomial_pmf(m, NOMINAL)
    below, above = np.cumsum(pmf), np.cumsum(pmf[::-1])[::-1]  # P(X <= k), P(X >= k)
    low = math.ceil(LOWEST * m)
    while low > 0 and below[low - 1] > RISK:  # P(X < low) too high: loosen
        low -= 1
    high = math.floor(HIGHEST * m)
    while high < m and above[high + 1] > RISK:  # P(X > high) too high: loosen
        high += 1
    risk = (below[low - 1] if low > 0 else 0.0) + (above[high + 1] if high < m else 0.0)
    return low, high, float(risk)


@pytest.mark.slow
def test_published_intervals_cover() -> None:
    """Every published value and gap covers its truth 93-97.5% of the time, at every size.

    Two processes share the 12 (design, size) cells, ``REPS`` = 2,000 releases each. Each
    (cell, value) published ``m > 0`` times is checked against `bounds`: 93% and 97.5% of
    ``m`` for ``m`` = 2,000, looser where fewer are published (the 20-person register rate
    and its gap, published about 22% of the time, must cover at least 402 of its 444),
    so no published value escapes. A check fails falsely (at a true coverage of 95%)
    with chance at most ``RISK`` = 5e-5 each way (1e-4 in all), 4.1e-5 at ``m`` = 2,000;
    the test sums each check's exact chance and asserts the sum (1.8e-3 over the
    40 checks) is below ``SUMMED_RISK``.
    """
    tasks = [(survey, n) for survey in (False, True) for n in SIZES]
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(cell, tasks))
    lines, failures, summed = [], [], 0.0
    for (survey, n), counts in zip(tasks, results, strict=True):
        for label, (shown, hit) in counts.items():
            rate = hit / shown if shown else math.nan
            lines.append(
                f"{'survey' if survey else 'register':<8} {n:>5} {label:<17} "
                f"published {shown / REPS:6.1%} covered {rate:6.1%}"
            )
            if not shown:
                continue
            low, high, risk = bounds(shown)
            summed += risk
            if not low <= hit <= high:
                failures.append(f"{lines[-1]} (accepted {low}-{high} of {shown})")
    print("\n".join(lines))
    print(f"summed chance of a false failure: {summed:.2g}")
    assert not failures, failures
    assert summed < SUMMED_RISK
