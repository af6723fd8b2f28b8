"""Pooled rows under each aggregate (``--pooled``) against pandas on the same microdata.

At a huge budget the noise is nil, so the coordinator's pooled values must equal the
population-weighted, city-mean and ESP-standardised rates pandas computes from the
microdata made here; at a small budget the city mean's standard error must be the one its
nodes' own variances give.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from common.errors import QueryError
from coordinator.combine import benchmark_rows
from coordinator.kinds import kind_of
from coordinator.pooling import CITY_MEAN, POPULATION, STANDARDISED, Pooling
from coordinator.rows import POOLED, BenchmarkRow
from indicators.spec import Query, TableSpec, compile_query
from tests.support.tables import noisy_node, true_table

CITIES = {"a": (9000, 0.15, 0.0), "b": (3000, 0.45, 0.05), "c": (1500, 0.30, -0.08)}
# 2013 ESP persons per 100,000 in the bands of ages 20-64 (Eurostat KS-RA-13-028)
ESP_BANDS = {"Y20-24": 6000, "Y25-34": 12500, "Y35-44": 14000, "Y45-54": 14000, "Y55-64": 12500}
GROUPS = ("NAT", "EU27_2020_FOR", "NEU27_2020_FOR")


def _city(seed: int, persons: int, foreign: float, shift: float) -> pd.DataFrame:
    """Persons aged 20-64 whose employment depends on group, sex, age and the city."""
    rng = np.random.default_rng(seed)
    ages = rng.choice(list(ESP_BANDS), persons, p=[0.1, 0.3 - shift, 0.25, 0.2, 0.15 + shift])
    group = rng.choice(GROUPS, persons, p=[1 - foreign, foreign / 3, 2 * foreign / 3])
    sex = rng.choice(["M", "F"], persons)
    p_emp = (
        0.78
        - 0.12 * (group != "NAT")
        - 0.06 * (sex == "F")
        - 0.2 * (ages == "Y20-24")
        - 0.15 * (ages == "Y55-64")
        + shift
    )
    u = rng.random(persons)
    wstatus = np.where(u < p_emp, "EMP", np.where(u < p_emp + 0.06, "UNE", "INAC"))
    return pd.DataFrame({"citizen": group, "sex": sex, "age": ages, "wstatus": wstatus})


def _frames() -> dict[str, pd.DataFrame]:
    return {name: _city(i, *spec) for i, (name, spec) in enumerate(CITIES.items())}


def _rows(spec_rho: float, pooling: Pooling) -> tuple[list[BenchmarkRow], TableSpec]:
    plan = compile_query(Query(("employment_rate",), "citizen", ("sex", "age"), "NAT", 0.5), None)
    spec = plan.tables[0]
    answers = {
        name: noisy_node(name, spec, true_table(frame, spec), spec_rho)
        for name, frame in _frames().items()
    }
    return benchmark_rows(plan, list(CITIES), answers, pooled=pooling), spec


def _rates(frame: pd.DataFrame, by: list[str]) -> pd.Series:
    return frame.assign(emp=frame.wstatus == "EMP").groupby(by)["emp"].mean()


def _pooled(rows: list[BenchmarkRow]) -> dict[tuple[str, str, str], BenchmarkRow]:
    return {(r.group, r.breakdown["sex"], r.breakdown["age"]): r for r in rows if r.node == POOLED}


def test_population_and_city_mean_pools_equal_pandas_at_a_huge_budget() -> None:
    frames = _frames()
    everyone = pd.concat(frames.values())
    by = ["citizen", "sex", "age"]
    truth = {POPULATION: _rates(everyone, by)}
    truth[CITY_MEAN] = pd.concat([_rates(f, by) for f in frames.values()], axis=1).mean(axis=1)
    for aggregate, expected in truth.items():
        rows, _ = _rows(1e7, Pooling(aggregate=aggregate))
        pooled = _pooled(rows)
        assert {r.aggregate for r in pooled.values()} == {aggregate}
        for key, value in expected.items():
            row = pooled[(str(key[0]), str(key[1]), str(key[2]))]  # type: ignore[index]
            assert row.value == pytest.approx(100 * value, abs=1e-3), (aggregate, key)
            assert row.value is not None and row.ci_low is not None and row.ci_high is not None
            assert row.ci_low <= row.value <= row.ci_high
        gap = pooled[("NEU27_2020_FOR", "F", "Y35-44")].gap
        assert gap == pytest.approx(
            100 * (expected[("NEU27_2020_FOR", "F", "Y35-44")] - expected[("NAT", "F", "Y35-44")]),
            abs=1e-3,
        )


def test_the_standardised_pool_weights_pooled_age_sex_rates_by_the_2013_esp() -> None:
    everyone = pd.concat(_frames().values())
    cell_rates = _rates(everyone, ["citizen", "sex", "age"]).rename("rate").reset_index()
    cell_rates["w"] = cell_rates.age.map(ESP_BANDS) / (2 * sum(ESP_BANDS.values()))
    expected = (cell_rates.rate * cell_rates.w).groupby(cell_rates.citizen).sum()
    rows, _ = _rows(1e7, Pooling(aggregate=STANDARDISED))
    pooled = _pooled(rows)
    assert set(pooled) == {(g, "T", "Y20-64") for g in (*GROUPS, "STLS", "UNK", "FOR", "TOTAL")}
    for group in GROUPS:
        row = pooled[(group, "T", "Y20-64")]
        assert row.aggregate == STANDARDISED
        assert row.value == pytest.approx(100 * expected[group], abs=1e-3)
    gap = pooled[("NEU27_2020_FOR", "T", "Y20-64")].gap
    assert gap == pytest.approx(100 * (expected["NEU27_2020_FOR"] - expected["NAT"]), abs=1e-3)
    # the cities' own rows keep their age x sex cells
    assert all(r.breakdown["sex"] in ("M", "F") for r in rows if r.node != POOLED)


def test_the_city_mean_standard_error_comes_from_each_nodes_own_variance() -> None:
    rows, _ = _rows(0.05, Pooling(aggregate=CITY_MEAN))
    key = ("NAT", "M", "Y35-44")
    own = [
        r.estimate.se
        for r in rows
        if r.node != POOLED and r.estimate is not None
        and (r.group, r.breakdown["sex"], r.breakdown["age"]) == key
    ]  # fmt: skip
    pooled = _pooled(rows)[key].estimate
    assert len(own) == 3 and pooled is not None
    assert pooled.se == pytest.approx(math.sqrt(sum(se**2 for se in own)) / 3, rel=1e-9)


def test_standardising_needs_sex_and_age_and_never_standardises_a_median() -> None:
    query = Query(("employment_rate",), "citizen", ("sex",), "NAT", 0.5)
    with pytest.raises(QueryError, match="no age breakdown"):
        kind_of(query, Pooling(aggregate=STANDARDISED))
    plan = compile_query(
        Query(("median_income_ratio",), "citizen", ("sex", "age"), "NAT", 0.5), None
    )
    spec = plan.tables[0]
    empty = np.full(spec.n_cells, 50, dtype=np.int64)
    answers = {n: noisy_node(n, spec, empty, 1e6) for n in CITIES}
    rows = benchmark_rows(plan, list(CITIES), answers, pooled=Pooling(aggregate=STANDARDISED))
    assert {r.status for r in rows if r.node == POOLED} == {"not_applicable"}


def test_pool_coverage_and_aggregate_names_are_checked() -> None:
    with pytest.raises(QueryError, match="not a share"):
        Pooling(min_coverage=1.5)
    with pytest.raises(QueryError, match="unknown pooled aggregate"):
        Pooling(aggregate="median")


def test_pooled_rows_say_why_they_are_missing_deviations_apart_from_silence() -> None:
    """Enough nodes answered but too few share the harmonised definition: not applicable
    (their definitions differ), not "no answer"; too few answering at all: no answer."""
    import dataclasses

    from coordinator.flags import Status
    from coordinator.publish.report.findings import absent

    plan = compile_query(Query(("employment_rate",), "citizen", (), "NAT", 0.5), None)
    spec = plan.tables[0]
    answers = {
        name: noisy_node(name, spec, true_table(frame, spec), 1e7)
        for name, frame in _frames().items()
    }
    for name in ("b", "c"):  # two of three count labour status otherwise: `d`
        answers[name] = dataclasses.replace(
            answers[name], deviations={"wstatus": "registered job-seekers"}
        )
    rows = benchmark_rows(plan, list(CITIES), answers, pooled=Pooling())
    assert {r.status for r in rows if r.node == POOLED} == {Status.NOT_APPLICABLE}
    pooled_row = next(r for r in rows if r.node == POOLED)
    assert "harmonised definition" in absent(pooled_row)  # the report says why, in words
    with_d = benchmark_rows(plan, list(CITIES), answers, pooled=Pooling(deviations=True))
    pooled_with_d = {r.status for r in with_d if r.node == POOLED}
    assert Status.PUBLISHED in pooled_with_d and Status.NOT_APPLICABLE not in pooled_with_d
    silent = benchmark_rows(plan, list(CITIES), {"a": answers["a"]}, pooled=Pooling())
    assert {r.status for r in silent if r.node == POOLED} == {Status.NO_ANSWER}
    assert "too few cities answered" in absent(next(r for r in silent if r.node == POOLED))
