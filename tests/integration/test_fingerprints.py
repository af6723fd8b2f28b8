"""Answers keyed on what produced them: a node's data and effective-config fingerprint.

A real node (the production server factory, mutual TLS, its SQLite ledger) answers a
query; one mapping line is changed and the node restarted on the same state directory:
the same query is then a new, charged release with the new numbers and another
fingerprint, a retry of the old id is refused rather than served stale, the audit log
records both fingerprints, and `verify` across both outputs says that one node's results
came from different data.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest

from coordinator.provenance import verify_outputs
from coordinator.run import run_query
from indicators.spec import Query, compile_query
from node import audit
from node.config import load_config
from node.fingerprint import config_digest, file_digest
from protos import node_pb2 as pb
from tests.support.cities import SyntheticCities
from tests.support.nodes import ServeFn, coordinator_for, publish_and_verify
from tests.support.pki import sign_request

QUERY = Query(("employment_rate",), "citizen", rho=1e6)  # noise of a few units at most
PART_TIME = '2 = "EMP"\n'  # Vienna's pl030: 2 = part-time


def _request(query_id: str) -> pb.QueryRequest:
    return pb.QueryRequest(query_id=query_id, spec=QUERY.to_wire(), issuer="", audience="")


def _released(result: pb.QueryResult) -> np.ndarray:
    return np.array(result.tables[0].counts, dtype=np.int64)


def test_a_mapping_fix_makes_the_same_query_a_new_charged_release(
    serve: ServeFn, tmp_path: Path, cities: SyntheticCities
) -> None:
    config = tmp_path / "vienna.toml"
    config.write_text(cities.node_toml("vienna"))
    node = serve(config)
    retry = sign_request(_request("before-the-fix"), "vienna")  # kept, as a coordinator does
    first = node.ask(retry)
    again = node.ask(_request("same-query-new-id"))
    spec = compile_query(QUERY).tables[0]
    old_true = node.service.true_counts(spec).counts
    node.stop()
    assert (first.cached, first.rho_charged) == (False, QUERY.rho)
    assert (again.cached, again.rho_charged) == (True, 0.0)  # same query, same data: free
    assert len(first.fingerprint) == 64 and again.fingerprint == first.fingerprint
    assert list(again.tables[0].counts) == list(first.tables[0].counts)

    # Part-time workers are moved from employed to unemployed: one line of the mapping.
    text = config.read_text()
    assert text.count(PART_TIME) == 1
    config.write_text(text.replace(PART_TIME, '2 = "UNE"\n'))
    node = serve(config)  # restarted on the same state directory and ledger
    after = node.ask(_request("after-the-fix"))
    new_true = node.service.true_counts(spec).counts

    assert (after.cached, after.rho_charged) == (False, QUERY.rho)  # a new, charged release
    assert after.fingerprint != first.fingerprint and len(after.fingerprint) == 64
    assert node.service.budget().spent == pytest.approx(2 * QUERY.rho)
    assert not np.array_equal(old_true, new_true)
    sigma = after.tables[0].sigma
    assert np.abs(_released(after) - new_true.ravel()).max() < 10 * sigma + 1  # new numbers
    assert np.abs(_released(first) - old_true.ravel()).max() < 10 * sigma + 1
    assert np.abs(new_true - old_true).max() > 20 * sigma + 2  # ... which differ from the old

    # A retry of the old id is not served the stale table, nor silently charged anew.
    with pytest.raises(grpc.RpcError) as info:
        node.ask(retry)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "changed" in (info.value.details() or "")

    entries = audit.read_entries(node.service.ledger.path)
    released = [e.fingerprint for e in entries if e.event == "release"]
    assert released == [first.fingerprint, after.fingerprint]
    assert [e.fingerprint for e in entries if e.event == "replay"] == [first.fingerprint]
    key = node.service.signing_key.public_key()
    assert audit.verify_log(node.service.ledger.path, key).ok


def test_verify_reports_one_node_s_results_from_different_fingerprints(
    serve: ServeFn, tmp_path: Path, cities: SyntheticCities
) -> None:
    config = tmp_path / "vienna.toml"
    config.write_text(cities.node_toml("vienna"))
    outputs = []
    changed = config.read_text().replace(PART_TIME, '2 = "UNE"\n')  # one mapping line
    for step, text in enumerate([config.read_text(), changed]):
        config.write_text(text)
        node = serve(config)
        coordinator = coordinator_for(tmp_path, [("vienna", node.address)])
        outcome = run_query(coordinator, Query(("employment_rate",), "citizen", rho=0.1))
        node.stop()
        out = tmp_path / f"out-{step}"
        assert publish_and_verify(outcome, out).ok
        outputs.append(out)
    report = verify_outputs(outputs)
    assert report.ok  # a data change is no forgery, but the reader is told
    assert len(report.notices) == 1 and "vienna" in report.notices[0]
    assert "different data fingerprints" in report.notices[0]
    assert verify_outputs([outputs[0], outputs[0]]).notices == []


def test_the_fingerprint_follows_the_bytes_and_the_effective_config(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    data = cities.file("vienna")
    copy = tmp_path / "copy.csv"
    copy.write_bytes(data.read_bytes())
    assert file_digest(copy) == file_digest(data)
    copy.write_bytes(data.read_bytes().replace(b"\n", b"\r\n", 1))
    assert file_digest(copy) != file_digest(data)

    config = tmp_path / "vienna.toml"
    text = cities.node_toml("vienna")
    config.write_text(text)
    base = config_digest(load_config(config))
    config.write_text(text.replace('name = "Vienna"', 'name = "Wien"'))
    assert config_digest(load_config(config)) == base  # a name changes no number
    config.write_text(text.replace(PART_TIME, '2 = "UNE"\n'))
    assert config_digest(load_config(config)) != base


def test_the_fingerprint_is_keyed_so_it_cannot_be_recomputed_from_guessed_data(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    import hashlib
    import json

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from node.fingerprint import fingerprint, fingerprint_key

    config_file = tmp_path / "vienna.toml"
    config_file.write_text(cities.node_toml("vienna"))
    config = load_config(config_file)
    data = file_digest(cities.file("vienna"))
    one, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    mine = fingerprint(config, data, fingerprint_key(one))
    assert mine == fingerprint(config, data, fingerprint_key(one))  # stable for the node
    assert mine != fingerprint(config, data, fingerprint_key(other))  # another key: another
    # Whoever guesses every record (so the data digest) still cannot check a guess.
    body = json.dumps({"data": data, "config": config_digest(config)})
    assert mine != hashlib.sha256(body.encode()).hexdigest()
