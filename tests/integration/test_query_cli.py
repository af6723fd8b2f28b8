"""The operator's small things of `fedstats query`, `verify` and `budget` (issue 11).

A real node (Helsinki, over mutual TLS) and one that is down: exit codes of DESIGN
section 6 with and without ``--strict``, the summary's charges and cache, the node's
``[node] name``, the period of a silent node's rows, `verify` without a trusted key list,
and `budget` into a closed pipe.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedstats.cli import EXIT_NO_ANSWER, EXIT_SOME_FAILED, main
from tests.support.cities import SyntheticCities
from tests.support.nodes import ServeFn, write_coordinator_toml

DOWN = ("vienna", "127.0.0.1:1")  # nothing listens on port 1


def _query(config: Path, out: Path, *extra: str) -> int:
    return main([
        "query", "--config", str(config), "--indicators", "employment_rate",
        "--group", "c_birth", "--rho", "0.5", "--time-period", "2025", "--out", str(out),
        "--format", "csv", *extra,
    ])  # fmt: skip


def test_exit_codes_summary_names_cache_and_silent_period(
    tmp_path: Path, serve: ServeFn, cities: SyntheticCities, capsys: pytest.CaptureFixture[str]
) -> None:
    node_config = tmp_path / "helsinki.toml"
    node_config.write_text(cities.node_toml("helsinki", persons=1_500))
    helsinki = serve(node_config)
    config = write_coordinator_toml(
        tmp_path / "coordinator.toml", [("helsinki", helsinki.address), DOWN]
    )

    assert _query(config, tmp_path / "first") == 0  # one node answered: 0 without --strict
    first = capsys.readouterr().out
    assert "rho charged per node: helsinki 0.5\n" in first
    assert "\n  Helsinki " in first  # the grid names the node by its [node] name
    with (tmp_path / "first" / "benchmark.csv").open(newline="", encoding="utf-8") as handle:
        silent = [r for r in csv.DictReader(handle) if r["node"] == "vienna"]
    assert silent and {(r["time_period"], r["status"]) for r in silent} == {("2025", "no_answer")}

    # the same query again: the node's cached answer, free; --strict fails on the silent node
    assert _query(config, tmp_path / "second", "--strict") == EXIT_SOME_FAILED
    assert "helsinki 0 (from its cache: nothing charged)" in capsys.readouterr().out

    assert main(["verify", str(tmp_path / "first")]) == 0
    told = capsys.readouterr().out
    assert "NOT checked against a trusted list" in told and "--config" in told
    assert main(["verify", str(tmp_path / "first"), "--config", str(config)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("\nverified")

    nobody = write_coordinator_toml(tmp_path / "nobody.toml", [DOWN])
    assert _query(nobody, tmp_path / "none") == EXIT_NO_ANSWER
    assert _query(nobody, tmp_path / "none", "--strict") == EXIT_NO_ANSWER


def test_budget_into_a_closed_pipe_has_no_traceback(
    tmp_path: Path, serve: ServeFn, cities: SyntheticCities
) -> None:
    node_config = tmp_path / "helsinki.toml"
    node_config.write_text(cities.node_toml("helsinki", persons=500))
    serve(node_config)  # creates its ledger
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written, as `| head` may be
    try:
        done = subprocess.run(
            [sys.executable, "-m", "fedstats.cli", "budget", "--config", str(node_config)],
            stdout=write, stderr=subprocess.PIPE, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        os.close(write)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr
    assert done.returncode == 1
