"""Provenance written by an earlier release still verifies, and verification counts what
it checked."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from coordinator.provenance import verify_provenance

# Written by the release before query kinds (a harmonised query with every optional field
# set, where both nodes answered; a local query, where one node lacked the variable).
BEFORE = Path(__file__).resolve().parents[1] / "fixtures" / "provenance_0_1"


@pytest.mark.parametrize(("name", "signed"), [("harmonised", 2), ("local", 1)])
def test_a_publication_of_the_previous_release_verifies(name: str, signed: int) -> None:
    report = verify_provenance(BEFORE / name)
    assert report.ok, report.problems
    assert (report.requests, report.results) == (signed, signed)
    # the earlier release's columns recompute identically (its flag `n` is now a status)
    assert any(
        c.startswith("benchmark.csv: recomputed from the signed results, identical")
        for c in report.checked
    )


def test_an_altered_request_signature_is_counted_out(tmp_path: Path) -> None:
    shutil.copytree(BEFORE / "harmonised", tmp_path, dirs_exist_ok=True)
    path = tmp_path / "provenance.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    entry = document["queries"][0]["nodes"][0]
    signature = bytearray(base64.b64decode(entry["request_signature"]))
    signature[0] ^= 1
    entry["request_signature"] = base64.b64encode(bytes(signature)).decode()
    path.write_text(json.dumps(document), encoding="utf-8")
    report = verify_provenance(tmp_path)
    assert (report.requests, report.results) == (1, 2)
    assert report.problems == [
        f"query {document['queries'][0]['query_id']} node {entry['node']}: "
        "the request's signature does not verify"
    ]
