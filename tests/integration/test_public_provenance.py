"""`provenance.public.json`: everything of the provenance but the node results, so that it
can be published without the noisy values of suppressed (``c``) cells; it verifies as far
as it can and says what it could not check."""

from __future__ import annotations

import base64
import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from coordinator.provenance import verify_outputs
from coordinator.public_provenance import PUBLIC_FILE
from coordinator.run import run_query
from fedstats.cli import main
from indicators.spec import Query
from protos import node_pb2 as pb
from security.signing import parse_public_key
from tests.support.cities import SyntheticCities
from tests.support.nodes import ServeFn, coordinator_for, publish_and_verify
from tests.support.pki import pki

# A small weighted survey (some cells confidential), a larger one, and a node that is down.
LANDS = {"burgenland": 400, "vienna": 3_000}


@pytest.fixture
def published(tmp_path: Path, serve: ServeFn, cities: SyntheticCities) -> Path:
    addresses = []
    for node_id, persons in LANDS.items():
        config = tmp_path / f"{node_id}.toml"
        config.write_text(cities.node_toml(node_id, "athens", persons=persons))
        addresses.append((node_id, serve(config).address))
    addresses.append(("salzburg", "127.0.0.1:1"))
    query = Query(("employment_rate", "unemployment_rate"), "citizen", (), "NAT", 1.0)
    outcome = run_query(coordinator_for(tmp_path, addresses), query)
    assert set(outcome.answers) == set(LANDS)
    out = tmp_path / "out"
    report = publish_and_verify(outcome, out)
    assert report.ok, report.problems
    return out


def _suppressed_counts(full: dict[str, Any]) -> set[int]:
    """Every noisy count of a `c` cell in the signed results (count and sample count)."""
    found: set[int] = set()
    for query in full["queries"]:
        for entry in query["nodes"]:
            if "result" not in entry:
                continue
            result = pb.QueryResult.FromString(base64.b64decode(entry["result"]))
            for table in result.tables:
                width = len(table.counts) // len(table.cell_flags)
                for cell, flag in enumerate(table.cell_flags):
                    if "c" in flag:
                        at = slice(cell * width, (cell + 1) * width)
                        found.update(table.counts[at], table.sample_counts[at])
    return found


def _numbers(node: Any, skip: frozenset[str]) -> list[float]:
    """Every number in a JSON value, but those under the keys in ``skip``."""
    if isinstance(node, dict):
        return [n for k, v in node.items() if k not in skip for n in _numbers(v, skip)]
    if isinstance(node, list):
        return [n for v in node for n in _numbers(v, skip)]
    if isinstance(node, int | float) and not isinstance(node, bool):
        return [node]
    return []


def test_the_public_form_holds_no_suppressed_noisy_value(published: Path) -> None:
    full = json.loads((published / "provenance.json").read_text(encoding="utf-8"))
    public = json.loads((published / PUBLIC_FILE).read_text(encoding="utf-8"))
    hidden = _suppressed_counts(full)
    assert hidden  # the test needs suppressed cells with their noisy values
    statuses = [r["status"] for q in public["queries"] for r in q["rows"]]
    assert "suppressed" in statuses
    text = (published / PUBLIC_FILE).read_text(encoding="utf-8")
    for query in full["queries"]:
        for entry in query["nodes"]:
            if "result" in entry:
                assert entry["result"] not in text
    for query in public["queries"]:
        for entry in query["nodes"]:
            assert "result" not in entry and "tables" not in entry
            if entry["status"] == "answered":
                assert len(base64.b64decode(entry["result_signature"])) == 64
                assert entry["audit_seq"] > 0 and len(entry["result_sha256"]) == 64
            if "request" in entry:  # the coordinator's request: a query, no cells
                request = pb.QueryRequest.FromString(base64.b64decode(entry["request"]))
                assert request.query_id == query["query_id"]
        for row in query["rows"]:
            assert set(row) == {
                "node", "indicator", "group_dim", "group", "breakdown", "comparator",
                "flags", "status",
            }  # fmt: skip
    # no number of the file is a noisy count of a suppressed cell, audit positions (chain
    # indexes) and the query's own rho aside
    assert not hidden & set(_numbers(public, frozenset({"audit_seq", "rho", "rho_charged"})))


def _nodes_keys() -> dict[str, Any]:
    return {n: parse_public_key(pki().public_key("node", n), "test") for n in LANDS}


def test_the_public_form_verifies_and_says_what_it_could_not_check(
    published: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    beside = verify_outputs([published], _nodes_keys(), public=True)
    assert beside.ok, beside.problems
    assert beside.requests == 2 and "provenance.json: its results' hashes and positions match" in (
        beside.checked
    )
    assert any("no rollback" in line for line in beside.checked)
    assert any("recomputation of benchmark.csv" in line for line in beside.unchecked)

    alone = tmp_path / "public"
    shutil.copytree(published, alone)
    (alone / "provenance.json").unlink()
    assert main(["verify", str(alone)]) == 0  # the public form is found on its own
    printed = capsys.readouterr().out
    assert "not checked: the nodes' signatures on their results" in printed
    assert "benchmark.csv: SHA-256 matches" in printed and printed.endswith("verified\n")

    # one changed output file is detected
    benchmark = alone / "benchmark.csv"
    with benchmark.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    rows[1][rows[0].index("status")] = "altered"
    with benchmark.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    assert main(["verify", str(alone)]) == 1
    printed = capsys.readouterr().out
    assert "FAIL benchmark.csv: changed since it was written" in printed


def test_a_public_form_that_disagrees_with_the_full_one_fails(published: Path) -> None:
    path = published / PUBLIC_FILE
    public = json.loads(path.read_text(encoding="utf-8"))
    entry = next(e for e in public["queries"][0]["nodes"] if e["status"] == "answered")
    entry["result_sha256"] = "0" * 64
    path.write_text(json.dumps(public), encoding="utf-8")
    report = verify_outputs([published], _nodes_keys(), public=True)
    assert report.problems == [f"provenance.json: its node entries differ from {PUBLIC_FILE}'s"]
