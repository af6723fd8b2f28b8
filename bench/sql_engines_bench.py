"""The SQL engines against a plain GROUP BY on the same data (not part of the tests).

One employment table (citizen x sex x 5 age bands x wstatus, 120 cells, ages 20-64) is
counted by each engine's node path (`node.engines.sql`: the mapping classes read once at
start, then one GROUP BY per table and the fold) and by the plain aggregation a DBA
would write (bands and codes in SQL, one GROUP BY), timed in the same process on the
same data after checking both give the same total. Usage:

    .venv/bin/python bench/sql_engines_bench.py [persons ...]   # default 1000000
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indicators.spec import Query, compile_query
from node.config import load_config
from node.engines import open_engine
from tests.support.postgres import load_table, start_postgres, stop_postgres

PLAIN = """
SELECT citizen, sex, CASE WHEN age < 25 THEN 0 WHEN age < 35 THEN 1 WHEN age < 45 THEN 2
  WHEN age < 55 THEN 3 ELSE 4 END AS band, work, COUNT(*) AS n
FROM {source} WHERE age BETWEEN 20 AND 64 GROUP BY 1, 2, 3, 4
"""


def persons(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "age": rng.integers(0, 100, n),
            "sex": rng.choice(["m", "f"], n),
            "citizen": rng.choice(["AT", "EU", "Other"], n, p=[0.8, 0.1, 0.1]),
            "work": rng.integers(1, 4, n),
        }
    )


def node_toml(dataset: str) -> str:
    return textwrap.dedent("""
        [node]
        id = "bench"
        geo = "XX"
        country = "AT"

        [dataset]
        {dataset}
        time_period = "2024"

        [privacy]
        rho_budget = 1.0
        max_rho_per_query = 1.0

        [variables.age]
        column = "age"

        [variables.sex]
        column = "sex"
        map = {{ m = "M", f = "F" }}

        [variables.citizen]
        column = "citizen"
        map = {{ AT = "NAT", EU = "EU27_2020_FOR", Other = "NEU27_2020_FOR" }}

        [variables.wstatus]
        column = "work"
        map = {{ 1 = "EMP", 2 = "UNE", 3 = "INAC" }}
        """).format(dataset=dataset)


def median_ms(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run(name: str, workdir: Path, dataset: str, plain: Callable[[], int]) -> None:
    config = workdir / f"{name}.toml"
    config.write_text(node_toml(dataset))
    query = Query(("employment_rate",), "citizen", ("sex", "age"), "NAT", 1.0)
    spec = compile_query(query).tables[0]
    start = time.perf_counter()
    engine = open_engine(load_config(config))
    started = time.perf_counter() - start
    total = int(engine.count(spec).counts.sum())
    assert total == plain(), f"{name}: the node and the plain GROUP BY disagree"
    node_ms = median_ms(lambda: engine.count(spec))
    plain_ms = median_ms(plain)
    print(
        f"{name:<16} start {started:6.2f} s  node {node_ms:8.1f} ms  plain {plain_ms:8.1f} ms"
        f"  ratio {node_ms / plain_ms:5.2f}  RSS {rss_mib():6.0f} MiB"
    )
    engine.close()


def main(sizes: list[int]) -> None:
    print(f"RSS of the empty benchmark process: {rss_mib():.0f} MiB")
    for n in sizes:
        one_size(n)


def one_size(n: int) -> None:
    import duckdb
    import psycopg

    from node.engines.spark import spark_session

    print(f"--- {n:,} persons ({os.cpu_count()} cores)")
    workdir = Path(tempfile.mkdtemp())
    frame = persons(n)
    parquet = workdir / "persons.parquet"
    frame.to_parquet(parquet, index=False)
    con = duckdb.connect()
    source = f"read_parquet('{parquet}')"

    def plain_duckdb() -> int:
        rows = con.execute(PLAIN.format(source=source)).fetchall()
        return sum(int(r[-1]) for r in rows if r[0] in ("AT", "EU", "Other"))

    run("duckdb parquet", workdir, f'engine = "duckdb"\npath = "{parquet}"', plain_duckdb)

    server = start_postgres()
    try:
        load_table(server, "persons", frame)
        pg = psycopg.connect(server.admin_url, autocommit=True)
        pg.execute("ANALYZE persons")

        def plain_pg() -> int:
            rows = pg.execute(PLAIN.format(source="persons")).fetchall()
            return sum(int(r[-1]) for r in rows if r[0] in ("AT", "EU", "Other"))

        dataset = f'engine = "postgresql"\nurl = "{server.reader_url}"\ntable = "persons"'
        run("postgresql", workdir, dataset, plain_pg)
        pg.close()
    finally:
        stop_postgres(server)

    spark = spark_session("local[2]")
    spark.read.parquet(str(parquet)).createOrReplaceTempView("plain_persons")

    def plain_spark() -> int:
        rows = spark.sql(PLAIN.format(source="plain_persons")).collect()
        return sum(int(r[-1]) for r in rows if r[0] in ("AT", "EU", "Other"))

    run("spark local[2]", workdir, f'engine = "spark"\nspark_master = "local[2]"\n'
        f'path = "{parquet}"', plain_spark)  # fmt: skip


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1_000_000])
