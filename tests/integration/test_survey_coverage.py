"""Intervals with survey weights cover: repeated samples of the simPop population, with
non-EU citizens over-sampled, each released through the node's table engine and noise and
estimated as the coordinator does; 95% intervals must cover the population's employment
rate in 93-97% of the samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from indicators.spec import Query, compile_query
from indicators.variables import AGE_MISSING, CATEGORICAL
from node.engine import compute_table, sensitivity
from node.harmonise import Harmonised
from privacy.budget import split_rho
from privacy.estimators import Cells, ratio
from privacy.gaussian import release
from tests.support.reference import require_simpop

CITIZEN = {"AT": "NAT", "EU": "EU27_2020_FOR", "Other": "NEU27_2020_FOR"}
STATUS = {1: "EMP", 2: "EMP", 3: "UNE", 4: "INAC", 5: "INAC", 6: "INAC", 7: "INAC"}
SAMPLING = {"NAT": 0.01, "EU27_2020_FOR": 0.06, "NEU27_2020_FOR": 0.06}  # over-sampling


def population() -> pd.DataFrame:
    df = pd.read_csv(require_simpop())
    df = df[df.age.between(20, 64) & df.citizenship.isin(list(CITIZEN)) & df.ecoStat.notna()]
    return df.assign(group=df.citizenship.map(CITIZEN), status=df.ecoStat.map(STATUS))


def coded(sample: pd.DataFrame, weights: np.ndarray) -> Harmonised:
    codes = {
        "citizen": sample.group.map(CATEGORICAL["citizen"].index).to_numpy(np.int8),
        "wstatus": sample.status.map(CATEGORICAL["wstatus"].index).to_numpy(np.int8),
    }
    age = sample.age.to_numpy().astype(np.uint8)
    assert not (age == AGE_MISSING).any()
    return Harmonised(len(sample), codes, age, weights, {})


@pytest.mark.slow
def test_weighted_survey_intervals_cover_the_population_rate() -> None:
    people = population()
    truth = people.assign(emp=people.status == "EMP").groupby("group").emp.mean()
    truth["TOTAL"] = (people.status == "EMP").mean()
    spec = compile_query(Query(("employment_rate",), "citizen", (), "NAT", 1.0)).tables[0]
    max_weight = 1 / min(SAMPLING.values())
    delta = sensitivity(max_weight)
    rho_counts, rho_samples = split_rho(1.0, [0.8, 0.2])
    rng = np.random.default_rng(2024)
    rate = people.group.map(SAMPLING).to_numpy()
    citizen_codes = spec.dims[0].codes
    hits = dict.fromkeys(truth.index, 0)
    # 2,000 releases: at the nominal 95% the binomial SD of a coverage is 0.0049, so the
    # band 92.5-97.5% is 5 SD wide on each side (a false failure about once in 10^6 runs
    # over the four groups), while a coverage below 92.5% or above 97.5% still fails.
    reps = 2_000
    for _ in range(reps):
        chosen = rng.random(len(people)) < rate
        sample = people[chosen]
        data = coded(sample, 1 / rate[chosen])
        true = compute_table(data, spec)
        assert true.samples is not None
        noisy = release(true.counts, delta, rho_counts)
        samples = release(true.samples, 1, rho_samples)
        cells = Cells.of(noisy.values, noisy.sigma, samples.values, samples.sigma)
        shape = spec.shape
        for group in truth.index:
            members = (
                range(len(citizen_codes)) if group == "TOTAL" else [citizen_codes.index(group)]
            )
            num = np.zeros(shape, bool)
            den = np.zeros(shape, bool)
            for g in members:
                num[g, 0] = True  # EMP
                den[g, :] = True
            low, high = ratio(cells, num.ravel(), den.ravel()).interval()
            hits[group] += low <= truth[group] <= high
    for group, hit in hits.items():
        assert 0.925 <= hit / reps <= 0.975, (group, hit / reps)
