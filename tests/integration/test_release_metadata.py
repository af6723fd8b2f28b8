"""Every number carries its metadata (issue 11, coordinator side), through real nodes.

Four synthetic cities over mutual TLS: Helsinki measures labour status from the register
of main activity and Ghent counts registered job-seekers as unemployed (both declare the
vocabulary's ``concept``); Amsterdam and Athens follow the harmonised definitions. Their
published benchmark, SDMX (read back with pysdmx), report and per-node reference metadata
must say so, and say how to cite the release.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from pysdmx.io import get_datasets, read_sdmx

from common.errors import Reason
from coordinator.provenance import citation_for, publish, verify_provenance
from coordinator.publish.outputs import FORMATS
from coordinator.publish.sdmx import DATAFLOWS
from coordinator.rows import POOLED
from coordinator.run import QueryOutcome, run_query
from indicators.spec import Query
from security.signing import load_private_key, parse_public_key
from tests.support.cities import SyntheticCities
from tests.support.nodes import ServeFn, coordinator_for
from tests.support.pki import COORDINATOR, pki

PERSONS = 1_500
CITIES = ("amsterdam", "athens", "ghent", "helsinki")
CONCEPTS = {"ghent": "wstatus=registered_jobseeker", "helsinki": "wstatus=register_activity"}
QUERY = Query(("employment_rate",), "c_birth", (), "NAT", 1.0)


def _federation(tmp_path: Path, serve: ServeFn, cities: SyntheticCities) -> list[tuple[str, str]]:
    addresses = []
    for city in CITIES:
        config = tmp_path / f"{city}.toml"
        config.write_text(cities.node_toml(city, persons=PERSONS))
        addresses.append((city, serve(config).address))
    return addresses


def _published(outcome: QueryOutcome, out: Path) -> str:
    """Publish every format as the test coordinator; the release id."""
    keys = pki()
    node_keys = {n: parse_public_key(keys.public_key("node", n), "test") for n in CITIES}
    signing = load_private_key(keys.files("coordinator", COORDINATOR)["sign_key"], "t")
    citation = citation_for([outcome.query_id], COORDINATOR, "Test Statistics Office", "2")
    publish([outcome], out, list(FORMATS), COORDINATOR, signing.public_key(), node_keys, citation)
    report = verify_provenance(out, node_keys)
    assert report.ok, report.problems
    assert any(line.startswith("metadata/helsinki.json: SHA-256") for line in report.checked)
    return citation.release


def test_outputs_carry_source_concepts_geo_level_and_release(
    tmp_path: Path, serve: ServeFn, cities: SyntheticCities
) -> None:
    outcome = run_query(coordinator_for(tmp_path, _federation(tmp_path, serve, cities)), QUERY)
    assert set(outcome.answers) == set(CITIES)
    out = tmp_path / "out"
    release = _published(outcome, out)
    assert release.startswith(f"{COORDINATOR}-") and len(release.rsplit("-", 1)[1]) == 10

    with (out / "benchmark.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        assert row["release"] == release
        if row["node"] == POOLED:
            continue
        assert row["geo_level"] == "city"
        assert row["source"] == ("survey" if row["node"] == "athens" else "register")
        if row["node"] in CONCEPTS:
            assert "d" in row["flags"]
            assert row["deviation"].startswith(CONCEPTS[row["node"]])
        else:
            assert "d" not in row["flags"] and row["deviation"] == ""
    pooled = [r for r in rows if r["node"] == POOLED and r["status"] == "published"]
    assert pooled, "Amsterdam and Athens (half the nodes) pool"
    # the pooled row names its composition: the nodes whose definitions agree
    assert {(r["geo"], r["source"], r["flags"].count("d")) for r in pooled} == {
        ("NL002C+EL001C", "register+survey", 0)
    }

    structure = read_sdmx(out / "sdmx" / "structure.xml", validate=True)
    assert release in str(structure.header)  # the header's Source: how to cite
    data = get_datasets(
        out / "sdmx" / f"{DATAFLOWS['c_birth']}.csv", out / "sdmx" / "structure.xml"
    )
    frame: pd.DataFrame = data[0].data
    helsinki = frame[frame["geo"] == "FI001C"]
    assert set(helsinki["SOURCE_TYPE"]) == {"register"}
    assert set(helsinki["GEO_LEVEL"]) == {"city"}
    assert set(helsinki["RELEASE"]) == {release}
    assert all(str(d).startswith(CONCEPTS["helsinki"]) for d in helsinki["DEVIATION"])
    assert all("d" in str(f) for f in helsinki["OBS_FLAG"])

    page = (out / "report.html").read_text(encoding="utf-8")
    assert "How to cite" in page and release in page and "Test Statistics Office" in page
    assert 'href="metadata/ghent.json"' in page
    for city in CITIES:
        meta = json.loads((out / "metadata" / f"{city}.json").read_text(encoding="utf-8"))
        assert meta["RELEASE"]["release"] == release and meta["RELEASE"]["version"] == "2"
        source = "survey" if city == "athens" else "register"
        assert meta["STAT_PROCESS"]["SOURCE_TYPE"] == source
        assert meta["STAT_PRES"]["REF_AREA"]["geo_level"] == "city"
        assert meta["ACCURACY"]["privacy_budget_spent"]["rho_zcdp"] == pytest.approx(1.0)
        assert set(meta["CONF"]["CONF_DATA_TR"]) >= {"min_count", "max_cv"}
    ghent = json.loads((out / "metadata" / "ghent.json").read_text(encoding="utf-8"))
    wstatus = ghent["STAT_PRES"]["STAT_CONC_DEF"]["concepts"]["wstatus"]
    assert wstatus == [
        {
            "variable": "wstatus",
            "code": "registered_jobseeker",
            "meaning": "unemployed are the registered job-seekers",
            "harmonised": "ilo",
        }
    ]
    pooled_meta = json.loads((out / "metadata" / "pooled.json").read_text(encoding="utf-8"))
    members = pooled_meta["STAT_PRES"]["REF_AREA"]["pooled_members_by_query_and_indicator"]
    assert members == {outcome.query_id: {"employment_rate": "NL002C+EL001C"}}


def test_a_wrong_node_key_spends_nothing(
    tmp_path: Path, serve: ServeFn, cities: SyntheticCities
) -> None:
    config = tmp_path / "ghent.toml"
    config.write_text(cities.node_toml("ghent", persons=PERSONS))
    ghent = serve(config)
    coordinator = coordinator_for(tmp_path, [("ghent", ghent.address)])
    wrong = parse_public_key(pki().public_key("node", "helsinki"), "test")
    node = coordinator.nodes[0]
    coordinator = coordinator.__class__(
        **{**coordinator.__dict__, "nodes": (node.__class__(node.id, node.address, wrong),)}
    )
    outcome = run_query(coordinator, QUERY)
    assert outcome.failures["ghent"].reason == Reason.BAD_RESULT_SIGNATURE
    assert "nothing was asked" in outcome.failures["ghent"].message
    assert ghent.service.budget().spent == 0.0
    right = run_query(coordinator_for(tmp_path, [("ghent", ghent.address)]), QUERY)
    assert right.answers and ghent.service.budget().spent == pytest.approx(1.0)
