"""`fedstats demo`: the front door, end to end on small cities."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from fedstats.cli import main


def test_demo_writes_a_benchmark_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--cities", "5", "--persons", "4000"]) == 0
    printed = capsys.readouterr().out
    assert "Employment rate" in printed and "pooled" in printed
    with (out / "benchmark.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    nodes = {r["node"] for r in rows}
    assert nodes == {"amsterdam", "athens", "ghent", "helsinki", "vienna", "*"}
    assert {r["group_dim"] for r in rows} == {"c_birth", "citizen"}
    assert {r["indicator"] for r in rows} >= {"employment_rate", "attainment_high"}
    for r in rows:
        if "c" in r["flags"]:
            assert r["value"] == "" and r["denominator"] == ""
        elif r["value"]:
            assert 0.0 <= float(r["value"]) <= 100.0
            assert float(r["ci_low"]) <= float(r["value"]) <= float(r["ci_high"])
    # every node config maps its own local columns; the ledgers exist
    assert len(list((out / "nodes").glob("*.toml"))) == 5
    assert len(list((out / "state").glob("*/ledger.sqlite"))) == 5

    # a second run starts a fresh federation instead of draining the old budgets
    assert main(["demo", "--out", str(out), "--cities", "1", "--persons", "2000"]) == 0
    assert len(list((out / "state").glob("*/ledger.sqlite"))) == 1


def test_demo_refuses_impossible_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path), "--cities", "9"]) == 2
    assert "--cities" in capsys.readouterr().err
