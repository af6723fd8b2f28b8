"""Every table engine gives the memory engine's true counts, and quotes config values.

The nine laeken Länder are served by the memory engine (the CSV file), DuckDB over the CSV
and over Parquet, PostgreSQL (a typed table on a server the tests started, read by a
read-only role) and Spark in local mode (Parquet). Each node answers the employment and
income queries' tables through `NodeService.true_counts`, the in-process hook that
releases nothing; every engine must give the same arrays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from indicators.spec import Query, compile_query
from node.config import load_config
from node.engine import TableCounts
from node.service import NodeService
from tests.support.postgres import PostgresServer, load_table
from tests.support.reference import LAEKEN, LANDS, laeken_node_toml, require_laeken

Memory = dict[str, tuple[list[TableCounts], object]]
QUERIES = (
    Query(("employment_rate",), "citizen", ("sex",), "NAT", rho=1.0),
    Query(("median_income_ratio", "arop_rate"), "citizen", (), "NAT", rho=1.0),
)
INCOME = '\n[variables.income]\ncolumn = "eqIncome"\n'


@pytest.fixture(scope="module")
def parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("laeken") / "laeken.parquet"
    pd.read_csv(require_laeken()).to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def laeken_table(postgres: PostgresServer) -> str:
    load_table(postgres, "laeken", pd.read_csv(require_laeken()))
    return "public.laeken"


def node(tmp_path: Path, land: str, dataset: str, *, where: str | None = None) -> NodeService:
    """A node of one Land whose [dataset] is read by ``dataset``'s engine keys."""
    node_id = land.lower().replace(" ", "-")
    text = laeken_node_toml(node_id, land, extra=INCOME).replace(f'path = "{LAEKEN}"', dataset)
    if where is not None:
        text = text.replace(f'where = {{ db040 = "{land}" }}', where)
    tmp_path.mkdir(exist_ok=True)
    config = tmp_path / f"{node_id}.toml"
    config.write_text(text)
    return NodeService(load_config(config))


def tables(service: NodeService) -> list[TableCounts]:
    specs = [t for q in QUERIES for t in compile_query(q).tables]
    return [service.true_counts(spec) for spec in specs]


def assert_same(got: list[TableCounts], expected: list[TableCounts], what: str) -> None:
    for g, e in zip(got, expected, strict=True):
        assert np.array_equal(g.counts, e.counts), what
        assert g.samples is not None and e.samples is not None
        assert np.array_equal(g.samples, e.samples), what


@pytest.fixture(scope="module")
def memory(tmp_path_factory: pytest.TempPathFactory) -> Memory:
    """Per Land: the memory engine's true tables and Describe's coverage floor."""
    tmp_path = tmp_path_factory.mktemp("memory")
    out: Memory = {}
    for land in LANDS:
        service = node(tmp_path, land, f'path = "{LAEKEN}"')
        out[land] = (tables(service), (service.coverage_floor(), service.engine.coverage))
    return out


def check_nine_laender(tmp_path: Path, dataset: str, engine: str, memory: Memory) -> None:
    for land in LANDS:
        service = node(tmp_path, land, dataset)
        try:
            assert service.engine.name == engine
            expected, floor = memory[land]
            assert sum(int(t.counts.sum()) for t in expected) > 0
            assert_same(tables(service), expected, f"{engine}, {land}")
            # Describe's floors, and `node check`'s report counted by the database.
            assert (service.coverage_floor(), service.engine.coverage) == floor, land
        finally:
            service.engine.close()


@pytest.mark.slow
@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_duckdb_counts_the_nine_laender_as_the_memory_engine(
    tmp_path: Path, parquet: Path, memory: Memory, suffix: str
) -> None:
    path = LAEKEN if suffix == "csv" else parquet
    check_nine_laender(tmp_path, f'engine = "duckdb"\npath = "{path}"', "duckdb", memory)


@pytest.mark.slow
def test_postgresql_counts_the_nine_laender_as_the_memory_engine(
    tmp_path: Path, postgres: PostgresServer, laeken_table: str, memory: Memory
) -> None:
    dataset = f'engine = "postgresql"\nurl = "{postgres.reader_url}"\ntable = "{laeken_table}"'
    check_nine_laender(tmp_path, dataset, "postgresql", memory)


@pytest.mark.slow
def test_spark_counts_the_nine_laender_as_the_memory_engine(
    tmp_path: Path, parquet: Path, spark: object, memory: Memory
) -> None:
    check_nine_laender(tmp_path, f'engine = "spark"\npath = "{parquet}"', "spark", memory)
