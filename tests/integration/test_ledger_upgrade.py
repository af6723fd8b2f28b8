"""A node started on a state directory written by fedstats 0.1 serves on.

``tests/fixtures/ledger_0_1`` is a node's config, keys, data and ledger as release 0.1
(commit d4184a1) left them after real queries (see ``make_ledger_0_1.py`` beside it).
Each test serves a copy through the production server factory on 127.0.0.1:0, in
plaintext (the fixture carries no certificates that could expire; queries are signed).
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from common.errors import ConfigError
from common.versions import software_version
from coordinator.client import QuerySigner
from indicators.catalogue import CATALOGUE, CATALOGUE_VERSION
from node.audit import read_entries, verify_log
from node.config import load_config
from node.ledger_schema import SCHEMA_VERSION
from node.server import NodeServer, build_server
from node.service import NodeService
from protos import node_pb2 as pb
from protos import node_pb2_grpc as pb_grpc
from security.signing import load_private_key, parse_public_key, sign, verify

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ledger_0_1"
EXPECTED: dict[str, Any] = json.loads((FIXTURE / "expected.json").read_text(encoding="utf-8"))
COORDINATOR = "fixture-coordinator"


@dataclass
class OldNode:
    """A copy of the 0.1 state directory, served by this release."""

    directory: Path
    server: NodeServer
    channel: grpc.Channel

    @property
    def ledger(self) -> Path:
        return self.directory / "state" / "ledger.sqlite"

    def stub(self) -> pb_grpc.NodeServiceStub:
        return pb_grpc.NodeServiceStub(self.channel)

    def identity(self) -> list[tuple[str, bytes]]:
        """The coordinator's signed identity: served without TLS, the node needs it."""
        key = load_private_key(self.directory / "keys" / "coordinator.sign.key", "fixture")
        return [QuerySigner(COORDINATOR, key).identity_for("oldtown")]

    def budget(self) -> pb.BudgetStatus:
        status: pb.BudgetStatus = self.stub().GetBudget(
            pb.BudgetRequest(), timeout=30, metadata=self.identity()
        )
        return status

    def ask(self, signed: pb.SignedQuery) -> pb.QueryResult:
        reply = self.stub().RunQuery(signed, timeout=60)
        public = parse_public_key(EXPECTED["node_public_key"], "fixture")
        assert verify(public, reply.result, reply.signature), "the node's result signature"
        return pb.QueryResult.FromString(reply.result)

    def verify_audit(self) -> list[str]:
        """The audit chain's events, after checking it as `fedstats node audit --verify`."""
        check = verify_log(self.ledger, parse_public_key(EXPECTED["node_public_key"], "x"))
        assert check.ok, check.problems
        return [e.event for e in read_entries(self.ledger)]


def _schema_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


@pytest.fixture
def old_node(tmp_path: Path) -> Iterator[OldNode]:
    directory = tmp_path / "oldtown"
    shutil.copytree(FIXTURE, directory)
    assert _schema_version(directory / "state" / "ledger.sqlite") == 0, "a 0.1 ledger"
    service = NodeService(load_config(directory / "node.toml"))
    server = build_server(service, "127.0.0.1:0", tls=None)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    yield OldNode(directory, server, channel)
    channel.close()
    server.stop(grace=None)


def _stored(name: str) -> pb.SignedQuery:
    """A signed request kept by the fixture, byte for byte."""
    kept = EXPECTED[name]
    return pb.SignedQuery(
        request=base64.b64decode(kept["request"]), signature=base64.b64decode(kept["signature"])
    )


def _new_query(directory: Path, query_id: str, indicator: str, rho: float) -> pb.SignedQuery:
    request = pb.QueryRequest(
        query_id=query_id,
        spec=pb.QuerySpec(indicators=[indicator], group_dim="citizen", comparator="NAT", rho=rho),
        issuer=COORDINATOR,
        audience="oldtown",
        issued_at_ms=int(time.time() * 1000),
    )
    data = request.SerializeToString()
    key = load_private_key(directory / "keys" / "coordinator.sign.key", "fixture")
    return pb.SignedQuery(request=data, signature=sign(key, data))


def test_the_budget_and_the_audit_chain_are_adopted_intact(old_node: OldNode) -> None:
    budget = old_node.budget()
    assert budget.dataset == EXPECTED["dataset"]
    assert budget.rho_total == EXPECTED["budget"]["total"]
    assert budget.rho_spent == EXPECTED["budget"]["spent"]  # the abandoned charge included
    assert budget.rho_remaining == EXPECTED["budget"]["remaining"]
    assert old_node.verify_audit() == EXPECTED["audit_events"]
    assert _schema_version(old_node.ledger) == SCHEMA_VERSION
    db = sqlite3.connect(old_node.ledger)
    history = db.execute("SELECT version, software, note FROM schema_history").fetchall()
    db.close()
    assert [v for v, _, _ in history] == list(range(1, SCHEMA_VERSION + 1))
    assert "adopted a ledger of fedstats 0.1" in history[0][2]
    assert {s for _, s, _ in history} == {software_version()}


def test_old_queries_are_retried_without_a_new_charge_and_new_ones_are_charged(
    old_node: OldNode,
) -> None:
    spent = EXPECTED["budget"]["spent"]
    retried = old_node.ask(_stored("retry"))
    assert (retried.cached, retried.rho_charged) == (True, 0.0)
    assert old_node.budget().rho_spent == spent

    # The reservation 0.1 left behind (its process died) is adopted and released once.
    adopted = old_node.ask(_stored("abandoned"))
    assert (adopted.cached, adopted.rho_charged) == (False, 0.25)
    assert old_node.budget().rho_spent == spent
    assert old_node.ask(_stored("abandoned")).rho_charged == 0.0

    fresh = old_node.ask(_new_query(old_node.directory, "q-new", "activity_rate", 0.125))
    assert (fresh.cached, fresh.rho_charged) == (False, 0.125)
    assert old_node.budget().rho_spent == pytest.approx(spent + 0.125, abs=1e-9)
    events = old_node.verify_audit()
    assert events == [*EXPECTED["audit_events"], "replay", "release", "replay", "release"]


def test_describe_advertises_the_release_s_capabilities(old_node: OldNode) -> None:
    description = old_node.stub().Describe(
        pb.DescribeRequest(), timeout=30, metadata=old_node.identity()
    )
    assert description.HasField("capabilities")
    caps = description.capabilities
    assert caps.protocol == "fedstats.v1" == pb.DESCRIPTOR.package
    assert caps.software_version == software_version()
    assert caps.catalogue_version == CATALOGUE_VERSION
    assert list(caps.catalogue) == list(CATALOGUE)
    assert list(caps.engines) == ["memory", "duckdb", "postgresql", "spark"]
    assert list(caps.disclosure_rules) == ["noisy_thresholds", "eu-silc", "lfs", "register"]
    assert caps.secure_aggregation is True
    assert caps.ledger_schema == SCHEMA_VERSION


def test_a_ledger_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "oldtown"
    shutil.copytree(FIXTURE, directory)
    ledger = directory / "state" / "ledger.sqlite"
    db = sqlite3.connect(ledger)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(ConfigError) as refused:
        NodeService(load_config(directory / "node.toml"))
    assert str(ledger) in refused.value.message
    assert f"schema version {SCHEMA_VERSION + 1}" in refused.value.message
    assert "never downgraded" in refused.value.hint
    assert _schema_version(ledger) == SCHEMA_VERSION + 1
