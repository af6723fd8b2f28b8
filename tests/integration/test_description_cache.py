"""The node's description is built once and its signature kept, yet stays exact: the
budget it reports is read from the ledger on every call, and the signed bytes change
(and verify) as soon as a query spends some of it. The answers the ledger stores are
still the JSON of ``dataclasses.asdict``, byte for byte."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict

import pytest

from node.service import QueryAnswer
from protos import node_pb2 as pb
from security.signing import DESCRIPTION_DOMAIN, parse_public_key, verify
from tests.support.cities import ServeCityFn
from tests.support.pki import pki, query_request


def test_signed_description_follows_the_budget(serve_city: ServeCityFn) -> None:
    node = serve_city("vienna", rho_budget=10.0)
    public = parse_public_key(pki().public_key("node", node.node_id), "test")
    stub = node.stub()

    def described() -> tuple[pb.SignedDescription, pb.NodeDescription]:
        signed = stub.DescribeSigned(pb.DescribeRequest(), timeout=30)
        assert verify(public, DESCRIPTION_DOMAIN + signed.description, signed.signature)
        return signed, pb.NodeDescription.FromString(signed.description)

    first, before = described()
    again, _ = described()
    assert again == first  # nothing changed: the same signed bytes
    assert before.budget.rho_spent == 0.0 and before.variables and before.indicators

    result = node.ask(query_request("q-spend", rho=0.25))
    after_signed, after = described()
    assert after_signed.description != first.description
    assert after.budget.rho_spent == pytest.approx(0.25) == result.budget.rho_spent
    assert after.budget.rho_remaining == pytest.approx(9.75)
    unsigned = stub.Describe(pb.DescribeRequest(), timeout=30)
    assert unsigned == after  # the unsigned description is the same, budget included
    before.ClearField("budget")
    after.ClearField("budget")
    assert before == after  # all but the budget is what the node started with


def test_stored_answer_bytes_are_asdict_json(serve_city: ServeCityFn) -> None:
    node = serve_city("vienna", rho_budget=10.0)
    node.ask(query_request("q-one", rho=0.2, breakdowns=("sex",)))
    with sqlite3.connect(node.service.config.state_dir / "ledger.sqlite") as db:
        row = db.execute("SELECT answer FROM releases WHERE query_id = 'q-one'").fetchone()
    answer = QueryAnswer.from_stored("q-one", row[0])
    assert answer.tables and answer.tables[0].margins
    assert answer.to_bytes() == json.dumps([asdict(t) for t in answer.tables]).encode()
    assert answer.to_bytes() == row[0]
