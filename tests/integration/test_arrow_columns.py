"""Harmonising Arrow columns (`node.columns`) gives what harmonising a pandas frame gives.

The node reads CSV and Parquet into Arrow and maps each column's distinct values; the
SQL engines (and before them the node) harmonise pandas frames. On a register full of
awkward values (empty cells, numbers that are no ages or years, text among numbers,
values no map knows, integer columns with gaps, several Parquet row groups with their
own dictionaries) both give the same codes, coverage reports (with the order of their
values) and fingerprint digest, with and without a row filter and survey weights.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from node.config import load_config
from node.fingerprint import harmonised_digest
from node.harmonise import Harmonised, harmonise
from node.source import load_frame

ROWS = 4_000
MANY = {"inc", "inc_text", "inc_plain", "w", "w_plain"}  # numbers: read as plain text

TOML = """\
[node]
id = "awkward"
geo = "XX01"
country = "NL"

[dataset]
path = "register.{suffix}"
time_period = "2024"
{dataset}

[privacy]
rho_budget = 1.0
max_rho_per_query = 1.0
max_weight = 25.0

[variables.age]
column = "{age}"

[variables.sex]
column = "sex"
map = {{ m = "M", f = "F" }}

[variables.c_birth]
column = "cob"
iso_country = true

[variables.mig_background]
from_parents = {{ father = "fcob", mother = "mcob" }}
iso_country = true

[variables.yearesid]
arrival_year = "{arrival}"

[variables.arrival_cohort]
arrival_year = "{arrival}"

[variables.reason]
column = "reason"
map = {{ asiel = "INTPROT", gezin = "FAM", werk = "EMP" }}

[variables.wstatus]
column = "{work}"
map = {{ 1 = "EMP", 2 = "UNE", 3 = "INAC" }}
{work_default}

[variables.tenure]
column = "own"
map = {{ koop = "OWNER", huur = "TENANT" }}
default = "TENANT"

[variables.income]
column = "{income}"

[variables."local:tongue"]
column = "tongue"
codes = ["fi", "sv", "other"]
map = {{ fin = "fi", swe = "sv" }}
"""

PLAIN = {"age": "age", "arrival": "arr", "work": "ws", "income": "inc", "work_default": ""}
FILTERED = {
    "age": "age_float",
    "arrival": "arr_text",
    "work": "ws_float",
    "income": "inc_text",
    "work_default": 'default = "INAC"',
}
DECIMALS = {**PLAIN, "income": "inc_plain"}  # text of plain decimals: parsed by Arrow
DATASETS = {
    "plain": (PLAIN, ""),
    "filtered_and_weighted": (FILTERED, 'weight = "w"\nwhere = { region = ["A", "B"] }'),
    "decimals_as_text": (DECIMALS, 'weight = "w_plain"'),
}


def register(seed: int) -> pa.Table:
    """Awkward columns of every kind the readers give."""
    rng = np.random.default_rng(seed)

    def text(values: list[str], empty: float = 0.05) -> pa.Array:
        drawn = rng.choice(np.array(values, dtype=object), ROWS)
        drawn[rng.random(ROWS) < empty] = None
        return pa.array(list(drawn), type=pa.string())

    def whole(low: int, high: int, odd: tuple[int, ...], empty: float) -> pa.Array:
        drawn = rng.integers(low, high, ROWS).astype(object)
        for value in odd:
            drawn[rng.random(ROWS) < 0.002] = value
        drawn[rng.random(ROWS) < empty] = None
        return pa.array(list(drawn), type=pa.int64())

    ages = rng.integers(-3, 130, ROWS).astype(np.float64)
    ages[rng.random(ROWS) < 0.01] += 0.5
    ages[rng.random(ROWS) < 0.03] = np.nan  # half NaN, half empty
    income = np.round(rng.lognormal(10, 1.2, ROWS), 2)
    income[rng.random(ROWS) < 0.01] *= -1
    income[rng.random(ROWS) < 0.02] = np.nan
    return pa.table(
        {
            "age": whole(-5, 135, (999, -1), 0.05),
            "age_float": pa.array(ages, mask=np.isnan(ages) & (rng.random(ROWS) < 0.5)),
            "sex": text(["m", "f", "M", "x", " m"]),
            "cob": text(["NL", "MA", "DE", "TR", "XX", "SY", "", "ZZ", "fr"]),
            "fcob": text(["NL", "MA", "DE", "QQ", "RR"]),
            "mcob": text(["NL", "MA", "PP", "DE"]),
            "arr": whole(1890, 2030, (3000, 0), 0.5),
            "arr_text": text(["2001", "2010", "abc", "1999.0", "2031", "1850", "2020.5"], 0.4),
            "reason": text(["asiel", "gezin", "werk", "studie", "zzz", "yyy"]),
            "ws": whole(1, 6, (9, 8), 0.05),
            "ws_float": pa.array(rng.choice([1.0, 2.0, 3.0, 4.5, np.nan], ROWS)),
            "own": text(["koop", "huur", "other", "o2"]),
            "inc": pa.array(income, mask=np.isnan(income) & (rng.random(ROWS) < 0.5)),
            "inc_text": text(["1000.5", "abc", "20000", "", "-5", "1e5", " 300", "nanx"]),
            "inc_plain": text([f"{v:.2f}" for v in income[:500] if np.isfinite(v)] + ["-0"]),
            "w": pa.array(rng.uniform(0.5, 40, ROWS)),
            "w_plain": text([f"{v:.4f}" for v in rng.uniform(0.5, 40, 300)], empty=0.0),
            "region": text(["A", "B", "C"], 0.01),
            "tongue": text(["fin", "swe", "ru", "so", "xx", "ar"]),
        }
    )


def as_before(path: Path, config_path: Path) -> Harmonised:
    """The file read whole into pandas, as the node read it before, then harmonised."""
    config = load_config(config_path)
    if path.suffix == ".parquet":
        text = [n for n, t in zip(*_schema(path), strict=True) if pa.types.is_string(t)]
        frame = pq.read_table(path, read_dictionary=[c for c in text if c not in MANY])
    else:
        names = _schema(path)[0]
        codes = pa.dictionary(pa.int32(), pa.string())
        options = pacsv.ConvertOptions(
            column_types={c: pa.string() if c in MANY else codes for c in names},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        )
        frame = pacsv.read_csv(path, convert_options=options)
    table = frame.to_pandas()
    for column, values in config.dataset.where.items():
        table = table[table[column].astype(str).isin(values)]
    return harmonise(table.reset_index(drop=True), config)


def _schema(path: Path) -> tuple[list[str], list[pa.DataType]]:
    schema = pq.read_schema(path) if path.suffix == ".parquet" else pacsv.read_csv(path).schema
    return list(schema.names), list(schema.types)


def summary(data: Harmonised) -> tuple[object, ...]:
    """Everything harmonising produced, coverage dicts as ordered lists."""
    coverage = [
        [(k, list(v.items()) if isinstance(v, dict) else v) for k, v in asdict(c).items()]
        for c in data.coverage.values()
    ]
    codes = {n: (c.dtype.str, c.tobytes()) for n, c in data.codes.items()}
    weights = None if data.weights is None else data.weights.tobytes()
    digest = harmonised_digest(data, sort=False)
    return data.rows, list(data.codes), codes, data.age.tobytes(), weights, coverage, digest


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
@pytest.mark.parametrize("variant", sorted(DATASETS))
def test_arrow_columns_harmonise_as_a_pandas_frame(
    tmp_path: Path, suffix: str, variant: str
) -> None:
    table = register(seed=7)
    path = tmp_path / f"register.{suffix}"
    if suffix == "parquet":
        pq.write_table(table, path, row_group_size=ROWS // 5)
    else:
        pacsv.write_csv(table, path)
    names, dataset = DATASETS[variant]
    config_path = tmp_path / "awkward.toml"
    config_path.write_text(TOML.format(suffix=suffix, dataset=dataset, **names))
    config = load_config(config_path)

    data = harmonise(load_frame(config), config)

    assert summary(data) == summary(as_before(path, config_path))
    assert data.coverage["age"].unmapped  # the awkward values were seen, not lost
    assert data.coverage["sex"].unmapped
    assert (data.rows < ROWS) == (variant == "filtered_and_weighted")


def test_the_streamed_digest_is_the_stacked_one(tmp_path: Path) -> None:
    """The memory engine's digest hashes its columns as before: one stacked int64 table."""
    path = tmp_path / "register.parquet"
    pq.write_table(register(seed=3), path)
    config_path = tmp_path / "awkward.toml"
    dataset = 'weight = "w"'
    config_path.write_text(TOML.format(suffix="parquet", dataset=dataset, **PLAIN))
    config = load_config(config_path)
    data = harmonise(load_frame(config), config)
    assert data.weights is not None
    names = sorted(data.codes)
    columns = [np.asarray(data.codes[n], np.int64) for n in names]
    columns += [data.age.astype(np.int64), np.ones(data.rows, np.int64)]
    columns.append(np.rint(data.weights * 1e6).astype(np.int64))
    stacked = hashlib.sha256(json.dumps(names).encode() + np.stack(columns).tobytes())
    assert harmonised_digest(data, sort=False) == stacked.hexdigest()
