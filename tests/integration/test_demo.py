"""`fedstats demo`: the front door, end to end on small cities."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest

from fedstats.cli import main


@pytest.mark.slow
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
            assert float(r["value"]) >= 0.0
            if r["indicator"] != "median_income_ratio":  # a ratio of medians may pass 100
                assert float(r["value"]) <= 100.0
            assert float(r["ci_low"]) <= float(r["value"]) <= float(r["ci_high"])
    # Helsinki's and Ghent's register-based labour status: d, with the vocabulary code
    concepts = {"helsinki": "wstatus=register_activity", "ghent": "wstatus=registered_jobseeker"}
    labour = [r for r in rows if r["indicator"] == "employment_rate" and r["node"] in concepts]
    assert labour and all("d" in r["flags"] for r in labour)
    assert all(r["deviation"].startswith(concepts[r["node"]]) for r in labour)
    # Amsterdam counts 'onbekend' education as unknown (declared): d and the stated share
    education = [r for r in rows if r["indicator"] == "attainment_high"]
    unknown = [r for r in education if r["node"] == "amsterdam" and r["status"] == "published"]
    assert unknown and all("d" in r["flags"] for r in unknown)
    for r in unknown:
        share = f"{float(r['unknown_share']):.1f}% of the population cell has an unknown outcome"
        assert (
            r["deviation"].startswith("isced11=unmapped_as_unknown (") and share in r["deviation"]
        )
    assert not any("unmapped" in r["deviation"] for r in education if r["node"] == "athens")
    assert {r["geo_level"] for r in rows if r["node"] != "*"} == {"city"}
    assert len({r["release"] for r in rows}) == 1 and rows[0]["release"].startswith("demo-")
    # a reference-metadata file per node accompanies the outputs
    assert {p.stem for p in (out / "metadata").glob("*.json")} == nodes - {"*"} | {"pooled"}
    # the pathway (two periods, by arrival cohort) and the cohort comparison ran too
    with (out / "cohorts" / "benchmark.csv").open() as handle:
        cohorts = list(csv.DictReader(handle))
    assert {r["time_period"] for r in cohorts if r["node"] == "amsterdam"} == {"2024", "2025"}
    assert {r["comparator"] for r in cohorts} == {"NAT", "yearesid=Y_GE10"}
    # every node config maps its own local columns; the ledgers exist
    assert len(list((out / "nodes").glob("*.toml"))) == 5
    assert len(list((out / "state").glob("*/ledger.sqlite"))) == 5

    # the outputs verify; a node's audit log verifies; one changed byte is detected
    assert main(["verify", str(out), "--config", str(out / "coordinator.toml")]) == 0
    # so does the public form written beside provenance.json, as far as it can
    assert main(["verify", str(out), "--public", "--config", str(out / "coordinator.toml")]) == 0
    assert "not checked: the nodes' signatures" in capsys.readouterr().out
    amsterdam = str(out / "nodes" / "amsterdam.toml")
    assert main(["node", "audit", "--config", amsterdam, "--verify"]) == 0
    assert "audit log verified: 5 entries" in capsys.readouterr().out  # 4 queries, 2 periods
    provenance = out / "provenance.json"
    original = provenance.read_bytes()
    position = original.index(b'"result": "') + len(b'"result": "') + 10
    changed = bytearray(original)
    changed[position] = ord("A") if changed[position] != ord("A") else ord("B")
    provenance.write_bytes(bytes(changed))
    assert main(["verify", str(out)]) == 1
    assert "signature does not verify" in capsys.readouterr().out
    provenance.write_bytes(original)
    ledger = out / "state" / "amsterdam" / "ledger.sqlite"
    with sqlite3.connect(ledger) as db:
        db.execute("UPDATE audit SET micro_rho = micro_rho + 1 WHERE seq = 1")
    assert main(["node", "audit", "--config", amsterdam, "--verify"]) == 1
    assert "entry 1: contents do not match" in capsys.readouterr().out

    # a second run starts a fresh federation instead of draining the old budgets
    assert main(["demo", "--out", str(out), "--cities", "1", "--persons", "2000"]) == 0
    assert len(list((out / "state").glob("*/ledger.sqlite"))) == 1


def test_demo_refuses_impossible_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path), "--cities", "9"]) == 2
    assert "--cities" in capsys.readouterr().err


@pytest.mark.slow
def test_the_demos_sdmx_reads_back_into_its_values_and_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pysdmx.io import get_datasets

    from coordinator.provenance import signed_rows
    from coordinator.publish.sdmx import DATAFLOWS, POOLED_GEO, prepare_sdmx
    from coordinator.rows import POOLED
    from tests.support.sdmx_library import write_with_library

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--cities", "3", "--persons", "3000"]) == 0
    capsys.readouterr()
    with (out / "benchmark.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    checked = 0
    for group_dim, flow in DATAFLOWS.items():
        (dataset,) = get_datasets(out / "sdmx" / f"{flow}.csv", out / "sdmx" / "structure.xml")
        values = {
            (r["indic"], r[group_dim], r["geo"]): r
            for r in dataset.data.to_dict("records")
            if r["stat"] == "VALUE"
        }
        for row in (r for r in rows if r["group_dim"] == group_dim):
            geo = POOLED_GEO if row["node"] == POOLED else row["geo"]
            obs = values[(row["indicator"].upper(), row["group"], geo)]
            if row["value"]:
                assert obs["OBS_VALUE"] == pytest.approx(float(row["value"]))
            else:
                assert obs["OBS_VALUE"] is None or obs["OBS_VALUE"] != obs["OBS_VALUE"]
            assert (obs["OBS_FLAG"] or "") == row["flags"]
            assert obs["CONF_STATUS"] == ("C" if "c" in row["flags"] else "F")
            checked += 1
    assert checked == len(rows)

    # The direct SDMX-CSV writer and the sdmx1 library's data model, on the rows recomputed
    # from the demo's signed results, write the same observations, values and attributes.
    release = prepare_sdmx(signed_rows(out))
    for path in write_with_library(release, tmp_path / "library"):
        with path.open(encoding="utf-8") as lib, (out / "sdmx" / path.name).open() as direct:
            library_rows, direct_rows = list(csv.reader(lib)), list(csv.reader(direct))
        assert direct_rows == library_rows and len(direct_rows) > 100, path.name


def test_the_secure_demo_prints_both_pooled_intervals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "secure"
    assert main(["demo", "--secure", "--out", str(out), "--cities", "5", "--persons", "3000"]) == 0
    printed = capsys.readouterr().out
    assert "plain sum (95% CI)" in printed and "secure (95% CI)" in printed
    assert "athens: SECURE_ROUND_REFUSED" in printed  # the survey city is left out
    rows = [line.split() for line in printed.splitlines() if line.startswith("employment_rate")]
    assert len(rows) >= 5
    # athens (a survey) refuses; both pools take the deviating nodes (flag d): with t = 3
    # and 4 survivors the pooled noise variance is 4/3 of one node's, against 4 nodes' for
    # the plain sum: intervals about sqrt(1/3) = 0.577 as wide (their noisy denominators
    # move each ratio a little)
    ratios = sorted(float(r[-1]) for r in rows if r[-1][0].isdigit() and r[-1][-1] != "]")
    assert len(ratios) >= 5 and abs(ratios[len(ratios) // 2] - 0.577) < 0.05
