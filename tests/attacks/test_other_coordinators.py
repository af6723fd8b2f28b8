"""Another coordinator's cached answer, through a real node over mutual TLS: it is
charged to the asker's cap (not the node's budget again), looks like a fresh answer, and
its charge is in the signed audit log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import grpc
import pytest

from common.errors import ERROR_METADATA_KEY
from node.audit import verify_log
from protos import node_pb2 as pb
from protos import node_pb2_grpc as pb_grpc
from security.signing import load_private_key
from tests.support.cities import SyntheticCities
from tests.support.nodes import RunningNode, ServeFn
from tests.support.pki import COORDINATOR, pki, query_request, sign_request

OTHER = "observatory"


@pytest.fixture
def node(tmp_path: Path, serve: ServeFn, cities: SyntheticCities) -> RunningNode:
    config = tmp_path / "vienna.toml"
    text = cities.node_toml("vienna", persons=2_000, rho_budget=5.0, max_rho=1.0)
    text = text.replace("rho_cap = 1000000000000.0", "rho_cap = 2.0")
    other = pki().node_trust_toml("vienna", rho_cap=0.5, coordinator=OTHER)
    config.write_text(text + other[other.index("[[coordinators]]") :])
    return serve(config)


def ask(
    node: RunningNode, coordinator: str, query_id: str, rho: float = 0.3, by: tuple[str, ...] = ()
) -> pb.QueryResult:
    request = query_request(
        query_id, indicators=("employment_rate", "activity_rate"), breakdowns=by, rho=rho
    )
    with node.channel(coordinator) as channel:
        signed = pb_grpc.NodeServiceStub(channel).RunQuery(
            sign_request(request, node.node_id, coordinator), timeout=30
        )
    return pb.QueryResult.FromString(signed.result)


def refusal(
    node: RunningNode, coordinator: str, query_id: str, rho: float, by: tuple[str, ...]
) -> str:
    with pytest.raises(grpc.RpcError) as info:
        ask(node, coordinator, query_id, rho, by)
    assert isinstance(info.value, grpc.Call)
    raw = dict(info.value.trailing_metadata() or ()).get(ERROR_METADATA_KEY)
    assert isinstance(raw, bytes)
    return pb.ErrorDetail.FromString(raw).reason


def without_per_call_fields(result: pb.QueryResult) -> pb.QueryResult:
    """The result without what differs between any two calls (id, chain position, budget)."""
    stripped = pb.QueryResult()
    stripped.CopyFrom(result)
    for name in ("query_id", "audit_seq", "audit_hash", "budget"):
        stripped.ClearField(name)
    return stripped


def test_a_cached_answer_charges_the_other_coordinators_cap_and_looks_fresh(
    node: RunningNode,
) -> None:
    fresh = ask(node, COORDINATOR, "a-1")
    assert fresh.rho_charged == pytest.approx(0.3) and not fresh.cached
    spent = node.service.budget().spent

    served = ask(node, OTHER, "b-1")
    # what B receives is a fresh answer's form field for field: the same charge, not
    # marked cached; only the per-call id, chain position and budget figures differ
    assert without_per_call_fields(served) == without_per_call_fields(fresh)
    assert served.ListFields()[0][0].name == fresh.ListFields()[0][0].name
    assert {f.name for f, _ in served.ListFields()} == {f.name for f, _ in fresh.ListFields()}
    assert served.audit_seq > fresh.audit_seq and served.audit_hash != fresh.audit_hash
    assert node.service.budget().spent == pytest.approx(spent), "node budget not charged again"

    # B's cap was charged: 0.3 of its 0.5 used, so a fresh 0.3 no longer fits
    assert refusal(node, OTHER, "b-2", 0.3, ("sex",)) == "COORDINATOR_CAP_EXCEEDED"
    assert ask(node, OTHER, "b-3", 0.2, ("sex",)).rho_charged == pytest.approx(0.2)
    # asked again by B under a new id: B has paid for it, so it is free and cached to B
    again = ask(node, OTHER, "b-4")
    assert (again.rho_charged, again.cached) == (0.0, True)
    # and A's cap is untouched by B's use of A's answer
    assert ask(node, COORDINATOR, "a-2", 1.0, ("sex",)).rho_charged == pytest.approx(1.0)
    assert node.service.budget().spent == pytest.approx(spent + 0.2 + 1.0)


def test_the_cap_charge_is_in_the_audit_log_and_cannot_be_zeroed(node: RunningNode) -> None:
    ask(node, COORDINATOR, "a-1")
    ask(node, OTHER, "b-1")
    path = node.service.ledger.path
    key = load_private_key(pki().files("node", "vienna")["sign_key"], "test").public_key()
    assert verify_log(path, key).ok
    db = sqlite3.connect(path)
    db.execute("UPDATE releases SET cap_micro = 0 WHERE query_id = 'b-1'")
    db.commit()
    db.close()
    problems = verify_log(path, key).problems
    assert any("b-1" in p and "cap" in p for p in problems), problems
