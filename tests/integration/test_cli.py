"""The command line as an operator uses it: a node served by `fedstats node serve` in its
own process, queried by `fedstats query`, inspected by `fedstats budget`."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.client import Dialer
from coordinator.config import NodeAddress
from fedstats import synth
from fedstats.cli import main
from privacy.budget import DEFAULT_DELTA, epsilon_for
from tests.support.cities import SyntheticCities, city_node_toml
from tests.support.pki import COORDINATOR, pki

DESIGN_COLUMNS_BEFORE = [
    "node", "geo", "geo_level", "time_period", "indicator", "group_dim", "group",
]  # fmt: skip
DESIGN_COLUMNS_AFTER = [
    "value", "ci_low", "ci_high", "comparator", "comparator_value", "gap", "gap_ci_low",
    "gap_ci_high", "denominator", "unknown_share", "flags", "status", "unit", "source",
    "deviation", "poverty_line", "poverty_line_source", "aggregate", "release",
]  # fmt: skip
# DESIGN section 6's columns, in its order


@pytest.fixture
def served_node(tmp_path: Path, cities: SyntheticCities) -> Iterator[tuple[str, Path]]:
    """`fedstats node serve` in a child process; yields its address and config."""
    config = tmp_path / "vienna.toml"
    config.write_text(cities.node_toml("vienna", rho_budget=10.0, max_rho=2.0))
    with subprocess.Popen(  # on leaving, closes the stderr pipe (no ResourceWarning)
        [sys.executable, "-m", "fedstats.cli", "node", "serve", "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        assert proc.stderr is not None
        try:
            address = None
            deadline = time.monotonic() + 60
            while address is None and time.monotonic() < deadline:
                line = proc.stderr.readline()
                if not line and proc.poll() is not None:
                    break
                match = re.search(r"on (127\.0\.0\.1:\d+)", line)
                address = match.group(1) if match else None
            assert address, "node did not report its address"
            yield address, config
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0


def test_query_a_served_node_and_read_its_budget(
    served_node: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address, node_config = served_node
    coordinator = tmp_path / "coordinator.toml"
    keys = pki()
    tls = keys.tls("coordinator", COORDINATOR)
    coordinator.write_text(
        f'[coordinator]\nid = "{COORDINATOR}"\nstate_dir = "cstate"\n\n'
        f'[tls]\nca = "{tls.ca}"\ncert = "{tls.cert}"\nkey = "{tls.key}"\n\n'
        f'[signing]\nkey = "{keys.files("coordinator", COORDINATOR)["sign_key"]}"\n\n'
        f'[[nodes]]\nid = "vienna"\naddress = "{address}"\n'
        f'public_key = "{keys.public_key("node", "vienna")}"\n'
    )
    out = tmp_path / "out"
    code = main([
        "query", "--config", str(coordinator), "--indicators", "employment_rate,activity_rate",
        "--group", "citizen", "--by", "sex", "--rho", "0.5", "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "Employment rate" in printed and "benchmark.csv" in printed
    with (out / "benchmark.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [*DESIGN_COLUMNS_BEFORE, "sex", *DESIGN_COLUMNS_AFTER]
    nodes = {r["node"] for r in rows}
    assert nodes == {"vienna", "*"}
    nat = [r for r in rows if r["node"] == "vienna" and r["group"] == "NAT"]
    assert {r["sex"] for r in nat} == {"M", "F"}
    assert all(r["unit"] == "PC" and r["value"] for r in nat)
    assert (tmp_path / "cstate" / "queries.jsonl").exists()
    assert main(["verify", str(out), "--config", str(coordinator)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("verified")

    assert main(["budget", "--config", str(node_config)]) == 0
    report = capsys.readouterr().out
    assert "spent 0.5" in report and "remaining 9.5" in report
    # the same budget as epsilon at a stated delta, from OpenDP's conversion
    eps = {k: f"{epsilon_for(r):.3g}" for k, r in (("total", 10), ("spent", 0.5), ("left", 9.5))}
    assert f"as epsilon at delta {DEFAULT_DELTA:g}: total {eps['total']}" in report
    assert f"spent {eps['spent']}, remaining {eps['left']}" in report


def test_check_reports_coverage_without_spending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    survey = synth.generate("athens", 2_000)
    survey.loc[0, "ilikia"] = -1  # an invalid age
    synth.write(survey, tmp_path / "athens.csv")
    config = tmp_path / "athens.toml"
    config.write_text(
        city_node_toml("athens", "athens", tmp_path / "athens.csv", rho_budget=1.0, max_rho=1.0)
    )
    assert main(["node", "check", "--config", str(config)]) == 0
    report = capsys.readouterr().out
    assert "ypikootita" in report and "citizen" in report
    # the survey's invalid ages and unknown citizenships are reported, not dropped silently
    assert "'-1'" in report and "unmapped value '9'" in report
    assert main(["budget", "--config", str(config)]) == 0
    assert "spent 0," in capsys.readouterr().out


def test_unsupported_format_is_refused_before_any_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    coordinator = tmp_path / "c.toml"
    coordinator.write_text(
        '[coordinator]\nid = "eu"\n[[nodes]]\nid = "x"\naddress = "127.0.0.1:9"\n'
    )
    code = main([
        "query", "--config", str(coordinator), "--indicators", "employment_rate", "--group",
        "citizen", "--rho", "0.5", "--out", str(tmp_path / "o"), "--format", "csv,xlsx",
    ])  # fmt: skip
    assert code == 2
    assert "xlsx" in capsys.readouterr().err


def test_health_service_reports_serving(served_node: tuple[str, Path]) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    address, _ = served_node
    with Dialer(pki().tls("coordinator", COORDINATOR)).channel(
        NodeAddress("vienna", address)
    ) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "fedstats.v1.NodeService"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
