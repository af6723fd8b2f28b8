"""The bincount table engine against a direct pandas computation on the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from indicators.spec import Query, compile_query
from indicators.variables import AGE_MISSING, CATEGORICAL
from node.engine import compute_table, sensitivity
from node.harmonise import Harmonised

BLOCK_ROWS_PLUS = (1 << 16) * 3 + 5  # several blocks and a partial one


def random_data(n: int, weighted: bool, seed: int = 1) -> Harmonised:
    rng = np.random.default_rng(seed)
    codes = {
        name: rng.integers(0, len(CATEGORICAL[name].codes), n).astype(np.int8)
        for name in ("sex", "c_birth", "citizen", "wstatus", "isced11")
    }
    age = rng.integers(0, 100, n).astype(np.uint8)
    age[rng.random(n) < 0.02] = AGE_MISSING
    weights = rng.lognormal(5, 1, n).clip(max=800.0) if weighted else None
    return Harmonised(n, codes, age, weights, {})


def pandas_table(data: Harmonised, group: str, by: tuple[str, ...], lo: int, hi: int) -> pd.Series:
    frame = pd.DataFrame({k: v.astype(int) for k, v in data.codes.items()})
    frame["age"] = data.age.astype(int)
    frame["w"] = 1.0 if data.weights is None else data.weights
    unk = {name: len(CATEGORICAL[name].codes) - 1 for name in CATEGORICAL}
    keep = frame.age.between(lo, hi) & (frame.wstatus != unk["wstatus"])
    for name in by:
        if name != "age":
            keep &= frame[name] != unk[name]
    frame = frame[keep].copy()
    bands = [20, 25, 35, 45, 55, 65]
    frame["band"] = np.searchsorted(bands, frame.age.to_numpy(), side="right") - 1
    keys = [group, *["band" if b == "age" else b for b in by], "wstatus"]
    return frame.groupby(keys)["w"].sum()


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("by", [(), ("sex",), ("sex", "age")])
def test_engine_matches_pandas(weighted: bool, by: tuple[str, ...]) -> None:
    data = random_data(50_000, weighted)
    plan = compile_query(Query(("employment_rate",), "c_birth", by, "NAT", 1.0))
    spec = plan.tables[0]
    got = compute_table(data, spec)
    expected = pandas_table(data, "c_birth", plan.query.breakdowns, 20, 64)
    dense = np.zeros(spec.shape)
    for key, value in expected.items():
        dense[key if isinstance(key, tuple) else (key,)] = value
    if weighted:
        assert np.array_equal(got.counts, np.rint(dense.ravel()).astype(np.int64))
        assert got.samples is not None
        counts = pandas_table(
            Harmonised(data.rows, data.codes, data.age, None, {}),
            "c_birth", plan.query.breakdowns, 20, 64,
        )  # fmt: skip
        assert int(got.samples.sum()) == int(counts.sum())
    else:
        assert np.array_equal(got.counts, dense.ravel().astype(np.int64))
        assert got.samples is None
    assert spec.n_cells == got.counts.size


def test_every_person_in_at_most_one_cell() -> None:
    data = random_data(20_000, weighted=False)
    plan = compile_query(Query(("attainment_low",), "citizen", ("sex", "age"), "NAT", 1.0))
    counts = compute_table(data, plan.tables[0]).counts
    in_population = (
        (data.age >= 25) & (data.age <= 64) & (data.codes["sex"] < 2) & (data.codes["isced11"] < 3)
    )
    assert int(counts.sum()) == int(in_population.sum())


def test_sensitivity() -> None:
    assert sensitivity(None) == 1
    assert sensitivity(2000.0) == 2001
    assert sensitivity(2.5) == 4


@pytest.mark.parametrize("weighted", [False, True])
def test_fallback_cell_index_agrees_with_key_counting(weighted: bool) -> None:
    from node.engine import _by_cell_index

    data = random_data(30_000, weighted, seed=7)
    for by in [(), ("age",), ("sex", "age")]:
        for indicator in ("employment_rate", "attainment_high"):
            spec = compile_query(Query((indicator,), "citizen", by, "NAT", 1.0)).tables[0]
            fast, slow = compute_table(data, spec), _by_cell_index(data, spec)
            assert np.array_equal(fast.counts, slow.counts)
            if weighted:
                assert fast.samples is not None and slow.samples is not None
                assert np.array_equal(fast.samples, slow.samples)


def test_rows_not_multiple_of_the_block_size_are_all_counted() -> None:
    from node.engine import BLOCK_ROWS

    data = random_data(BLOCK_ROWS * 2 + 17, weighted=False, seed=3)
    spec = compile_query(Query(("employment_rate",), "c_birth", (), "NAT", 1.0)).tables[0]
    counted = (data.age >= 20) & (data.age <= 64) & (data.codes["wstatus"] < 3)
    assert int(compute_table(data, spec).counts.sum()) == int(counted.sum())


@pytest.mark.parametrize("weighted", [False, True])
def test_a_12896_cell_income_table_is_counted_by_key_and_agrees_with_the_cell_index(
    weighted: bool,
) -> None:
    from node.engine import MAX_KEYS, _age_classes, _by_cell_index

    data = random_data(BLOCK_ROWS_PLUS, weighted, seed=11)
    income = CATEGORICAL["income"]
    rng = np.random.default_rng(12)
    codes = dict(data.codes, income=rng.integers(0, len(income.codes), data.rows).astype(np.uint16))
    data = Harmonised(data.rows, codes, data.age, data.weights, {})
    spec = compile_query(Query(("arop_rate",), "c_birth", ("sex", "age"), "NAT", 1.0)).tables[0]
    assert spec.n_cells == 12_896
    keys = len(_age_classes(spec)[1])
    for dim in spec.all_dims:
        keys *= 1 if dim.name == "age" else len(CATEGORICAL[dim.name].codes)
    assert keys <= MAX_KEYS  # the age classes keep it on the per-block path
    fast, slow = compute_table(data, spec), _by_cell_index(data, spec)
    assert np.array_equal(fast.counts, slow.counts) and fast.counts.sum() > 0
    if weighted:
        assert fast.samples is not None and slow.samples is not None
        assert np.array_equal(fast.samples, slow.samples)


@pytest.mark.parametrize("weighted", [False, True])
def test_the_memory_engine_counts_the_same_with_the_plans_it_keeps(weighted: bool) -> None:
    from node.engines.memory import _MAX_PLANS, MemoryEngine

    data = random_data(20_000, weighted, seed=3)
    engine = MemoryEngine(data)
    queries = [
        Query((indicator,), group, by, "NAT", 1.0)
        for indicator in ("employment_rate", "attainment_high", "tertiary_30_34")
        for group in ("c_birth", "citizen")
        for by in [(), ("sex",), ("age",), ("sex", "age")]
    ]
    specs = [t for q in queries for t in compile_query(q).tables]
    assert len(specs) > _MAX_PLANS  # some plans are dropped and made again
    for _ in range(2):  # the second pass counts with kept plans (or remade ones)
        for spec in specs:
            kept, fresh = engine.count(spec), compute_table(data, spec)
            assert np.array_equal(kept.counts, fresh.counts)
            assert (kept.samples is None) == (fresh.samples is None)
            if fresh.samples is not None:
                assert kept.samples is not None
                assert np.array_equal(kept.samples, fresh.samples)
    assert 0 < len(engine._plans) <= _MAX_PLANS
    plan = next(iter(engine._plans.values()))
    assert plan.fold is not None and not plan.fold.flags.writeable
    assert not plan.ages.flags.writeable
