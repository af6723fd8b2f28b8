"""`fedstats query --secure` through the real command line against real node servers.

Four nodes over mutual TLS from the production factory: the command writes pooled rows
only, with its round's provenance; `fedstats verify` checks what it can and says what it
cannot; options a secure round cannot honour are refused before any node is asked.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from coordinator.rows import POOLED
from coordinator.run import run_query
from fedstats.cli import main
from indicators.spec import Query
from tests.support.cities import ServeCityFn
from tests.support.nodes import RunningNode, coordinator_for, write_coordinator_toml
from tests.support.pki import pki

CITIES = ("bregenz", "graz", "linz", "salzburg")  # registers, no deviating definition
HUGE = 1e6  # rho at which both pools' noise is far below a count


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _serve(tmp_path: Path, serve_city: ServeCityFn) -> tuple[list[RunningNode], Path]:
    nodes = [serve_city(n) for n in CITIES]
    pairs = [(n.node_id, n.address) for n in nodes]
    return nodes, write_coordinator_toml(tmp_path / "coordinator.toml", pairs)


def test_query_secure_writes_pooled_rows_only_that_verify(
    tmp_path: Path, serve_city: ServeCityFn, capsys: pytest.CaptureFixture[str]
) -> None:
    nodes, coordinator = _serve(tmp_path, serve_city)
    out = tmp_path / "out"

    code = main([
        "query", "--config", str(coordinator), "--indicators", "employment_rate",
        "--group", "citizen", "--by", "sex", "--rho", str(HUGE), "--out", str(out),
        "--format", "csv,parquet,sdmx", "--secure",
    ])  # fmt: skip

    assert code == 0
    printed = capsys.readouterr().out
    assert f"t = 3 of 4 participants; 4 in the sum: {', '.join(CITIES)}" in printed
    rows = _rows(out / "benchmark.csv")
    assert {r["node"] for r in rows} == {POOLED}  # no per-node row exists
    assert {"benchmark.parquet", "sdmx", "provenance.json"} <= {p.name for p in out.iterdir()}
    # the same columns as a plain query's CSV, values equal to the plain pooled sum
    plain = run_query(
        coordinator_for(tmp_path, [(n.node_id, n.address) for n in nodes]),
        Query(("employment_rate",), "citizen", ("sex",), "NAT", rho=HUGE),
    )
    plain_dir = tmp_path / "plain"
    from coordinator.publish.tables import write_csv

    write_csv([r for r in plain.rows if r.node == POOLED], plain_dir / "benchmark.csv")
    want = _rows(plain_dir / "benchmark.csv")
    assert list(rows[0]) == list(want[0])

    def key(row: dict[str, str]) -> tuple[str, str, str]:
        return row["indicator"], row["group"], row["sex"]

    mine = {key(r): r for r in rows}
    assert set(mine) == {key(r) for r in want} and len(mine) > 4
    compared = 0
    for row in want:
        got = mine[key(row)]
        assert got["flags"] == row["flags"], key(row)
        if row["value"] and got["value"]:
            compared += 1
            se = (float(got["ci_high"]) - float(got["ci_low"])) / 3.92
            assert se < 0.1
            # both are rounded to one decimal: allow the rounding on top of the noise
            assert abs(float(got["value"]) - float(row["value"])) <= 6 * se + 0.1, key(row)
    assert compared >= len(want) / 2

    record = json.loads((out / "provenance.json").read_text())
    (query,) = record["queries"]
    assert query["secure"]["threshold"] == 3
    assert query["secure"]["survivors"] == list(CITIES)
    assert "cannot be recomputed" in query["secure"]["note"]
    assert {e["node"]: e["rho_charged"] for e in query["nodes"]} == dict.fromkeys(CITIES, HUGE)
    assert all(e["request"] and e["request_signature"] for e in query["nodes"])

    assert main(["verify", str(out), "--config", str(coordinator)]) == 0
    report = capsys.readouterr().out
    assert "4 requests signed by the coordinator" in report
    assert "not checked: benchmark.csv: not recomputed" in report
    assert report.rstrip().endswith("verified")

    text = (out / "benchmark.csv").read_text()
    (out / "benchmark.csv").write_text(text.replace(rows[0]["value"], "99.9", 1))
    assert main(["verify", str(out), "--config", str(coordinator)]) == 1
    report = capsys.readouterr().out
    assert "FAIL benchmark.csv: changed since it was written" in report


def test_a_forged_request_or_an_untrusted_round_key_fails_verification(
    tmp_path: Path, serve_city: ServeCityFn, capsys: pytest.CaptureFixture[str]
) -> None:
    _, coordinator = _serve(tmp_path, serve_city)
    out = tmp_path / "out"
    assert main([
        "query", "--config", str(coordinator), "--indicators", "employment_rate",
        "--group", "citizen", "--rho", "0.25", "--out", str(out), "--secure",
    ]) == 0  # fmt: skip
    # a config that trusts another key for graz: the signed round's key for it is not that
    keys = {n: pki().public_key("node", n) for n in ("bregenz", "graz")}
    other = tmp_path / "other.toml"
    other.write_text(coordinator.read_text().replace(keys["graz"], keys["bregenz"]))
    capsys.readouterr()
    assert main(["verify", str(out), "--config", str(other)]) == 1
    assert "the signed round lists untrusted keys for graz" in capsys.readouterr().out

    path = out / "provenance.json"
    record = json.loads(path.read_text())
    nodes = record["queries"][0]["nodes"]
    nodes[0]["request"], nodes[1]["request"] = nodes[1]["request"], nodes[0]["request"]
    path.write_text(json.dumps(record))
    capsys.readouterr()

    assert main(["verify", str(out)]) == 1
    assert "the request's signature does not verify" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--pooled", "city-mean"], "--pooled city-mean cannot be used with --secure"),
        (["--pooled", "standardised"], "--pooled standardised cannot be used with --secure"),
        (["--format", "csv,html"], "--format html is not written for a secure round"),
    ],
)
def test_options_a_secure_round_cannot_honour_exit_2_before_any_charge(
    tmp_path: Path,
    serve_city: ServeCityFn,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    says: str,
) -> None:
    nodes, coordinator = _serve(tmp_path, serve_city)

    code = main([
        "query", "--config", str(coordinator), "--indicators", "employment_rate",
        "--group", "citizen", "--by", "sex,age", "--rho", "0.25", "--out",
        str(tmp_path / "out"), "--secure", *extra,
    ])  # fmt: skip

    assert code == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    for node in nodes:
        assert node.service.budget().spent == 0


def test_a_coverage_the_joining_nodes_cannot_meet_exits_2_before_any_charge(
    tmp_path: Path, serve_city: ServeCityFn, capsys: pytest.CaptureFixture[str]
) -> None:
    nodes, coordinator = _serve(tmp_path, serve_city)
    nodes[0].stop()  # 3 of the 4 configured nodes can join

    code = main([
        "query", "--config", str(coordinator), "--indicators", "employment_rate",
        "--group", "citizen", "--rho", "0.25", "--out", str(tmp_path / "out"), "--secure",
        "--pool-min-coverage", "0.9",
    ])  # fmt: skip

    assert code == 2
    assert "3 of 4 nodes can join the secure round" in capsys.readouterr().err
    for node in nodes[1:]:
        assert node.service.budget().spent == 0
