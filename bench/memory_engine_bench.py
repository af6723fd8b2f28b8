"""The in-memory engine: start time, resident memory and table counting (not part of the tests).

1. *Start.* Synthetic registers of 1M and 10M persons (age, sex, country of birth,
   citizenship, arrival year, work status, income) are written as CSV and Parquet in a
   temporary directory. Each is loaded by ``MemoryEngine.load`` in a fresh process, which
   reports its resident memory before (the empty node's baseline: Python with the node's
   modules imported) and after, and the start time.
2. *Counting.* In this process, over the largest Parquet register, tables of 120, 840,
   6,720 and 12,896 cells are counted by ``node.engine.compute_table`` and by the floor:
   one ``numpy.bincount`` over a precomputed int32 cell index (rows outside the table at
   one overflow bin), timed in the same process after checking both agree.

Usage (from the repository root)::

    .venv/bin/python bench/memory_engine_bench.py [persons ...]   # default 1000000 10000000
        [--data DIR] [--repeat K] [--start-only]

``--data`` keeps the registers in DIR and reuses them on the next run (same bytes for a
before/after comparison); ``--repeat`` loads each file K times. Each start line gives the
wall time and the process's CPU time (all threads), the fingerprint digest of the loaded
arrays (`MemoryEngine.content_digest`, which the node computes at start too) and the load
average when it ran.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indicators.spec import Dim, Query, TableSpec, compile_query
from indicators.variables import AGE, CATEGORICAL

CHUNK = 1_000_000
CONFIG = """
[node]
id = "bench"
geo = "XX"
country = "AT"

[dataset]
path = "{path}"
time_period = "2024"

[privacy]
rho_budget = 1.0
max_rho_per_query = 1.0

[variables.age]
column = "age"

[variables.sex]
column = "sex"
map = {{ m = "M", f = "F" }}

[variables.c_birth]
column = "cob"
[variables.c_birth.map]
AT = "NAT"
DE = "EU27_2020_FOR"
RO = "EU27_2020_FOR"
TR = "NEU27_2020_FOR"
SY = "NEU27_2020_FOR"

[variables.citizen]
column = "cit"
[variables.citizen.map]
AT = "NAT"
DE = "EU27_2020_FOR"
RO = "EU27_2020_FOR"
TR = "NEU27_2020_FOR"
XX = "STLS"

[variables.yearesid]
arrival_year = "arrived"

[variables.arrival_cohort]
arrival_year = "arrived"

[variables.wstatus]
column = "work"
map = {{ 1 = "EMP", 2 = "UNE", 3 = "INAC" }}

[variables.income]
column = "income"
"""


def chunk(n: int, seed: int) -> pa.Table:
    """``n`` synthetic persons."""
    rng = np.random.default_rng(seed)
    cob = rng.choice(["AT", "DE", "RO", "TR", "SY"], n, p=[0.7, 0.08, 0.05, 0.1, 0.07])
    arrived = rng.integers(1960, 2025, n).astype(np.float64)
    arrived[cob == "AT"] = np.nan
    citizen = np.where(cob == "AT", "AT", rng.choice(["AT", "DE", "RO", "TR", "XX"], n))
    return pa.table(
        {
            "age": rng.integers(0, 100, n),
            "sex": rng.choice(["m", "f"], n),
            "cob": cob,
            "cit": citizen,
            "arrived": pa.array(arrived, mask=np.isnan(arrived)).cast(pa.int64()),
            "work": rng.integers(1, 4, n),
            "income": np.round(rng.lognormal(10, 0.7, n), 2),
        }
    )


def write(n: int, workdir: Path) -> tuple[Path, Path]:
    """The register as Parquet and as CSV, written a chunk at a time."""
    parquet, csv = workdir / f"persons-{n}.parquet", workdir / f"persons-{n}.csv"
    first = chunk(min(n, CHUNK), 0)
    with pq.ParquetWriter(parquet, first.schema) as pw, pacsv.CSVWriter(csv, first.schema) as cw:
        for i, start in enumerate(range(0, n, CHUNK)):
            table = first if i == 0 else chunk(min(CHUNK, n - start), i)
            pw.write_table(table)
            cw.write_table(table)
    return parquet, csv


def rss_mib() -> float:
    """Resident memory of this process."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(config_path: str) -> None:
    """Load one register in this (fresh) process; print baseline, start time, RSS."""
    from node.config import load_config
    from node.engines.memory import MemoryEngine
    from node.service import NodeService  # noqa: F401  (the empty node's modules)

    config = load_config(Path(config_path))
    baseline = rss_mib()
    start, cpu = time.perf_counter(), time.process_time()
    engine = MemoryEngine.load(config)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    rss = rss_mib()
    start, cpu = time.perf_counter(), time.process_time()
    engine.content_digest()
    digest, digest_cpu = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps({"baseline": baseline, "start": seconds, "cpu": cpu_seconds, "rss": rss,
                      "digest": digest, "digest_cpu": digest_cpu, "rows": engine.rows,
                      "load": os.getloadavg()[0]}))  # fmt: skip


def start_figures(path: Path, n: int) -> None:
    config = path.with_suffix(path.suffix + ".toml")
    config.write_text(CONFIG.format(path=path))
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(config)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    got = json.loads(out)
    assert got["rows"] == n
    beyond = got["rss"] - got["baseline"]
    print(
        f"{path.suffix[1:]:<8} {n:>11,}  start {got['start']:6.2f} s (CPU {got['cpu']:6.2f} s)"
        f"  baseline {got['baseline']:5.0f} MiB  RSS {got['rss']:6.0f} MiB  beyond baseline "
        f"{beyond:6.0f} MiB = {beyond / (n / 1e6):5.1f} MiB per million persons"
        f"  fingerprint digest {got['digest']:5.2f} s (CPU {got['digest_cpu']:5.2f} s)"
        f"  load {got['load']:4.1f}"
    )


def median_ms(fn: Callable[[], object], repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def tables() -> dict[str, TableSpec]:
    """Tables of 120, 840, 6,720 and 12,896 cells."""
    employment = compile_query(Query(("employment_rate",), "c_birth", ("sex", "age"))).tables[0]
    income = compile_query(Query(("arop_rate",), "c_birth", ("sex", "age"))).tables[0]
    decades = tuple((low, low + 9) for low in range(15, 85, 10))
    age = Dim(AGE, tuple(f"Y{a}-{b}" for a, b in decades), decades)
    citizen = Dim("citizen", CATEGORICAL["citizen"].codes)
    sex = Dim("sex", ("M", "F"))
    yearesid = Dim("yearesid", CATEGORICAL["yearesid"].codes[:-1])
    cohort = Dim("arrival_cohort", CATEGORICAL["arrival_cohort"].codes[:-1])
    wstatus = Dim("wstatus", ("EMP", "UNE", "INAC"))
    t840 = TableSpec(15, 84, (citizen, sex, age, yearesid), wstatus)
    t6720 = TableSpec(15, 84, (citizen, sex, age, yearesid, cohort), wstatus)
    found = {"120": employment, "840": t840, "6720": t6720, "12896": income}
    for cells, spec in found.items():
        assert spec.n_cells == int(cells), (cells, spec.n_cells)
    return found


def counting(parquet: Path) -> None:
    from node.config import load_config
    from node.engine import _age_lut, _code_lut, compute_table
    from node.engines.memory import MemoryEngine

    config = parquet.with_suffix(".parquet.toml")
    config.write_text(CONFIG.format(path=parquet))
    data = MemoryEngine.load(load_config(config)).data
    print(f"--- counting over {data.rows:,} persons (Parquet)")
    for cells, spec in tables().items():
        n = spec.n_cells
        index = np.take(_age_lut(spec), data.age)
        for dim in spec.all_dims:
            if dim.name != AGE:
                index = index + np.take(_code_lut(data, spec, dim.name), data.codes[dim.name])
        index = np.minimum(index, n).astype(np.int32)
        floor = np.bincount(index, minlength=n + 1)[:n]
        assert np.array_equal(compute_table(data, spec).counts, floor), cells
        node_ms = median_ms(partial(compute_table, data, spec))
        floor_ms = median_ms(partial(np.bincount, index, minlength=n + 1))
        print(
            f"{cells:>6} cells  node {node_ms:7.1f} ms  bincount floor {floor_ms:7.1f} ms"
            f"  ratio {node_ms / floor_ms:5.2f}"
        )


def main(sizes: list[int], data: Path | None, repeat: int, start_only: bool) -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        workdir = data or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        print("--- start from a file, one fresh process each (RSS: resident memory)")
        for n in sizes:
            parquet, csv = workdir / f"persons-{n}.parquet", workdir / f"persons-{n}.csv"
            if data is None or not (parquet.exists() and csv.exists()):
                parquet, csv = write(n, workdir)
            for _ in range(repeat):
                start_figures(csv, n)
                start_figures(parquet, n)
            if data is None:
                csv.unlink()
        if not start_only:
            counting(parquet)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2])
    else:
        print(textwrap.dedent(__doc__ or "").splitlines()[0])
        parser = argparse.ArgumentParser()
        parser.add_argument("persons", type=int, nargs="*", default=[1_000_000, 10_000_000])
        parser.add_argument("--data", type=Path, help="keep (and reuse) the registers here")
        parser.add_argument("--repeat", type=int, default=1, help="start runs per file")
        parser.add_argument("--start-only", action="store_true", help="skip the counting part")
        args = parser.parse_args()
        main(args.persons, args.data, args.repeat, args.start_only)
