"""Indicators of education, housing and job quality: catalogue entries, compiled tables,
and the engine's counts against a direct pandas computation on random data (derived
outcomes recomputed in pandas from their definitions, not through `indicators.derived`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from indicators.catalogue import CATALOGUE, RATIO
from indicators.derived import DERIVED
from indicators.spec import GROUP_DIMS, Query, compile_query
from indicators.variables import AGE_MISSING, CATEGORICAL, UNK
from node.derive import apply_rule
from node.engine import compute_table
from node.harmonise import Harmonised

NEW = (
    "early_leavers",
    "neet_rate",
    "tertiary_30_34",
    "owner_share",
    "self_employment_share",
    "overqualification_rate",
)
EUROSTAT = {
    "early_leavers": "edat_lfse_02",
    "neet_rate": "edat_lfse_28",
    "tertiary_30_34": "edat_lfs_9912",
    "owner_share": "ilc_lvho15",
    "self_employment_share": "lfsa_esgan",
    "overqualification_rate": "lfsa_eoqgan",
}
AGES = {
    "early_leavers": (18, 24),
    "neet_rate": (15, 29),
    "tertiary_30_34": (30, 34),
    "owner_share": (18, 120),
    "self_employment_share": (20, 64),
    "overqualification_rate": (20, 64),
}
BASE = (
    "sex", "c_birth", "citizen", "mig_background", "reason", "yearesid", "wstatus",
    "isced11", "in_educ", "tenure", "stapro", "isco08",
)  # fmt: skip


def test_catalogue_entries() -> None:
    for name in NEW:
        indicator = CATALOGUE[name]
        assert indicator.kind == RATIO and indicator.unit == "PC"
        assert EUROSTAT[name] in indicator.definition
        population = indicator.population
        assert (population.age_min, population.age_max) == AGES[name]
        bands = [(b.low, b.high) for b in population.bands]
        covered = [age for low, high in bands for age in range(low, high + 1)]
        assert covered == list(range(population.age_min, population.age_max + 1))
        assert indicator.numerator < indicator.denominator
        assert UNK not in indicator.denominator
    assert CATALOGUE["neet_rate"].population.code == "Y15-29"
    assert [b.code for b in CATALOGUE["neet_rate"].population.bands] == [
        "Y15-19", "Y20-24", "Y25-29",
    ]  # fmt: skip


def random_data(n: int, weighted: bool, seed: int = 5) -> Harmonised:
    rng = np.random.default_rng(seed)
    codes: dict[str, np.ndarray] = {
        name: rng.integers(0, len(CATEGORICAL[name].codes), n).astype(np.int8) for name in BASE
    }
    for name, derivation in DERIVED.items():
        codes[name] = apply_rule(
            derivation.rule,
            [codes[i] for i in derivation.inputs],
            [CATEGORICAL[i].codes for i in derivation.inputs],
            name,
        )
    age = rng.integers(0, 100, n).astype(np.uint8)
    age[rng.random(n) < 0.02] = AGE_MISSING
    weights = rng.lognormal(4, 1, n).clip(max=500.0) if weighted else None
    return Harmonised(n, codes, age, weights, {})


def pandas_outcomes(data: Harmonised) -> pd.DataFrame:
    """Every variable as codes (text), the derived outcomes straight from their definitions."""
    frame = pd.DataFrame(
        {name: np.asarray(CATEGORICAL[name].codes, dtype=object)[data.codes[name]] for name in BASE}
    )

    def known(*names: str) -> pd.Series:
        result: pd.Series = (frame[list(names)] != UNK).all(axis=1)
        return result

    low_not_studying = (frame.isced11 == "ED0-2") & (frame.in_educ == "N")
    frame["elet"] = np.where(known("isced11", "in_educ"), np.where(low_not_studying, "Y", "N"), UNK)
    idle = frame.wstatus.isin(["UNE", "INAC"]) & (frame.in_educ == "N")
    frame["neet"] = np.where(known("wstatus", "in_educ"), np.where(idle, "Y", "N"), UNK)
    employed_graduate = (frame.wstatus == "EMP") & (frame.isced11 == "ED5-8")
    high_skill = frame.isco08.isin(["OC1", "OC2", "OC3"])
    low_skill = frame.isco08.isin([f"OC{i}" for i in range(4, 10)])
    frame["overqual"] = np.select(
        [
            frame.wstatus == UNK,
            frame.wstatus != "EMP",
            frame.isced11 == UNK,
            frame.isced11 != "ED5-8",
            employed_graduate & high_skill,
            employed_graduate & low_skill,
            employed_graduate & (frame.isco08 == "OC0"),
        ],
        [UNK, "NAP", UNK, "NAP", "MATCH", "OVQ", "NAP"],
        UNK,
    )
    frame["age"] = data.age.astype(int)
    frame["w"] = 1.0 if data.weights is None else data.weights
    return frame


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", NEW)
def test_engine_counts_the_new_indicators_like_pandas(name: str, weighted: bool) -> None:
    data = random_data(60_000, weighted)
    frame = pandas_outcomes(data)
    indicator = CATALOGUE[name]
    for group, by in [("c_birth", ()), ("mig_background", ("sex", "age")), ("reason", ("age",))]:
        plan = compile_query(Query((name,), group, by, "TOTAL", 1.0))
        spec = plan.tables[0]
        assert spec.outcome.name == indicator.outcome
        got = compute_table(data, spec)
        pop = indicator.population
        rows = frame[frame.age.between(pop.age_min, pop.age_max)]
        rows = rows[rows[indicator.outcome] != UNK]
        for b in by:
            if b != "age":
                rows = rows[rows[b] != UNK]
        if "age" in by:
            ages = next(d for d in spec.dims if d.name == "age")
            band = np.searchsorted([low for low, _ in ages.bands], rows.age, side="right") - 1
            rows = rows.assign(age=np.asarray(ages.codes)[band])
        keys = [group, *by, indicator.outcome]
        expected = rows.groupby(keys).w.sum()
        dense = np.zeros(spec.shape)
        for key, value in expected.items():
            assert isinstance(key, tuple)
            index = tuple(d.codes.index(k) for d, k in zip(spec.all_dims, key, strict=True))
            dense[index] = value
        if weighted:
            assert np.array_equal(got.counts, np.rint(dense.ravel()).astype(np.int64))
            assert got.samples is not None and int(got.samples.sum()) == len(rows)
        else:
            assert np.array_equal(got.counts, dense.ravel().astype(np.int64))
        # The indicator itself, per group, from the released partition.
        cells = got.counts.reshape(spec.shape)
        cells = cells.reshape(len(spec.dims[0].codes), -1, len(spec.outcome.codes)).sum(axis=1)
        outcome = list(spec.outcome.codes)
        num = [outcome.index(c) for c in indicator.numerator]
        den = [outcome.index(c) for c in indicator.denominator]
        direct_num = rows[rows[indicator.outcome].isin(indicator.numerator)].groupby(group).w.sum()
        direct_den = (
            rows[rows[indicator.outcome].isin(indicator.denominator)].groupby(group).w.sum()
        )
        for i, code in enumerate(spec.dims[0].codes):
            if code in direct_den.index and direct_den[code] > 500:
                rate = cells[i, num].sum() / cells[i, den].sum()
                assert rate == pytest.approx(direct_num.get(code, 0) / direct_den[code], abs=1e-3)


def test_each_new_indicator_reads_one_table_with_one_outcome() -> None:
    plan = compile_query(Query(NEW, "yearesid", ("sex", "age"), "NAT", 1.0))
    assert len(plan.tables) == len(NEW)  # populations or outcomes differ: no sharing
    for name in NEW:
        _, table = plan.indicator(name)
        assert [d.name for d in table.dims] == ["yearesid", "sex", "age"]
        assert UNK not in table.outcome.codes
    shared = compile_query(Query(("self_employment_share", "overqualification_rate",
                                  "employment_rate"), "c_birth", (), "NAT", 1.0))  # fmt: skip
    assert len(shared.tables) == 3
    assert all(dim in GROUP_DIMS for dim in ("mig_background", "reason", "yearesid"))
