"""Config values reach SQL only quoted: a hostile column name, ``where`` value, file or
table name is read as a name or a value (or refused), on every SQL engine."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
import tomli_w

from common.errors import DataError
from indicators.spec import Query, compile_query
from node.config import load_config
from node.engines import open_engine
from tests.support.postgres import PostgresServer, load_table

COLUMN = 'citizen"; DROP TABLE persons; --'
PLACE = "O'Hara'); DROP TABLE persons; --"
TABLE = "persons"


def persons() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 400
    return pd.DataFrame(
        {
            "age": rng.integers(15, 80, n),
            COLUMN: rng.choice(["AT", "other"], n),
            "place": rng.choice([PLACE, "elsewhere"], n),
            "work": rng.choice(["1", "2", "3"], n),
        }
    )


def config(tmp_path: Path, dataset: str, filters: str = "") -> Path:
    """A node over ``dataset``; ``filters`` replaces the default ``where`` on the place."""
    path = tmp_path / "node.toml"
    filters = filters or f"where = {{ {toml('place', PLACE)} }}"
    path.write_text(
        textwrap.dedent(f"""
        [node]
        id = "n"
        geo = "XX"
        country = "AT"
        state_dir = "state"

        [dataset]
        {dataset}
        time_period = "2024"
        {filters}

        [privacy]
        rho_budget = 1.0
        max_rho_per_query = 1.0

        [variables.age]
        column = "age"

        [variables.citizen]
        {toml("column", COLUMN)}
        map = {{ AT = "NAT", other = "NEU27_2020_FOR" }}

        [variables.wstatus]
        column = "work"
        map = {{ 1 = "EMP", 2 = "UNE", 3 = "INAC" }}
        """)
    )
    return path


def toml(key: str, value: str) -> str:
    """``key = "value"`` in TOML, quoted by the TOML writer."""
    return tomli_w.dumps({key: value}).strip()


def inline(values: dict[str, list[str]]) -> str:
    """A TOML inline table of lists (JSON's string escapes are TOML's)."""
    return "{ " + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in values.items()) + " }"


LISTS = (
    f"where = {inline({'place': [PLACE, 'nowhere'], 'work': ['1', '3']})}\n"
    f"        where_not = {inline({COLUMN: ['other', PLACE]})}"
)


def expected_lists(frame: pd.DataFrame) -> int:
    """Rows kept by `LISTS`: a place in the list, work 1 or 3, citizen not "other"."""
    kept = frame[
        frame.place.isin([PLACE, "nowhere"])
        & frame.work.isin(["1", "3"])
        & (frame[COLUMN] != "other")
        & frame.age.between(20, 64)
    ]
    return len(kept)


def expected(frame: pd.DataFrame) -> int:
    kept = frame[(frame.place == PLACE) & frame.age.between(20, 64)]
    return len(kept)


def counted(path: Path) -> int:
    spec = compile_query(Query(("employment_rate",), "citizen", (), "NAT", rho=1.0)).tables[0]
    engine = open_engine(load_config(path))
    try:
        return int(engine.count(spec).counts.sum())
    finally:
        engine.close()


@pytest.fixture
def files(tmp_path: Path) -> tuple[pd.DataFrame, Path, Path]:
    frame = persons()
    csv = tmp_path / 'it\'s "here".csv'
    parquet = tmp_path / 'it\'s "here".parquet'
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet, index=False)
    return frame, csv, parquet


def test_memory_and_duckdb_read_hostile_names_as_names(
    tmp_path: Path, files: tuple[pd.DataFrame, Path, Path]
) -> None:
    frame, csv, parquet = files
    want = expected(frame)
    assert want > 0
    assert counted(config(tmp_path, toml("path", str(csv)))) == want
    for path in (csv, parquet):
        assert counted(config(tmp_path, 'engine = "duckdb"\n' + toml("path", str(path)))) == want


def test_where_lists_and_where_not_count_alike_on_memory_and_duckdb(
    tmp_path: Path, files: tuple[pd.DataFrame, Path, Path]
) -> None:
    frame, csv, parquet = files
    want = expected_lists(frame)
    assert 0 < want < expected(frame)
    loaded = load_config(config(tmp_path, toml("path", str(csv)), LISTS))
    assert loaded.dataset.where["work"] == ("1", "3")
    assert loaded.dataset.where_not[COLUMN] == ("other", PLACE)
    assert counted(config(tmp_path, toml("path", str(csv)), LISTS)) == want
    for path in (csv, parquet):
        duck = 'engine = "duckdb"\n' + toml("path", str(path))
        assert counted(config(tmp_path, duck, LISTS)) == want


def test_postgresql_quotes_columns_values_and_tables(
    tmp_path: Path, postgres: PostgresServer, files: tuple[pd.DataFrame, Path, Path]
) -> None:
    frame = files[0]
    load_table(postgres, TABLE, frame)
    url = postgres.reader_url
    good = config(tmp_path, f'engine = "postgresql"\nurl = "{url}"\ntable = "{TABLE}"')
    assert counted(good) == expected(frame)
    lists = config(tmp_path, f'engine = "postgresql"\nurl = "{url}"\ntable = "{TABLE}"', LISTS)
    assert counted(lists) == expected_lists(frame)
    hostile = f'{TABLE}"; DROP TABLE {TABLE}; --'
    bad = config(tmp_path, f'engine = "postgresql"\nurl = "{url}"\n' + toml("table", hostile))
    with pytest.raises(DataError, match="cannot read"):
        counted(bad)
    with psycopg.connect(postgres.admin_url) as connection:  # still there
        assert connection.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone() == (len(frame),)


def test_postgresql_refuses_a_password_in_the_config(tmp_path: Path) -> None:
    from common.errors import ConfigError

    url = "postgresql://reader:secret@127.0.0.1/db"
    with pytest.raises(ConfigError, match="password"):
        load_config(config(tmp_path, f'engine = "postgresql"\nurl = "{url}"\ntable = "t"'))


@pytest.mark.slow
def test_spark_quotes_columns_values_and_tables(
    tmp_path: Path, spark: object, files: tuple[pd.DataFrame, Path, Path]
) -> None:
    frame, _, parquet = files
    assert counted(config(tmp_path, 'engine = "spark"\n' + toml("path", str(parquet)))) == expected(
        frame
    )
    bad = config(tmp_path, 'engine = "spark"\ntable = "x`; DROP TABLE y; --"')
    with pytest.raises(DataError, match="cannot read"):
        counted(bad)
