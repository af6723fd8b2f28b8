"""Descriptions kept between queries (`coordinator.described`): the next query asks each
node in one call, planned from the description it signed before; a node restarted with
another config refuses that plan before charging anything, and is described again."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest

from common.errors import Reason
from coordinator.config import CoordinatorConfig
from coordinator.described import DESCRIPTIONS_FILE, kept
from coordinator.identity import checked_description
from coordinator.run import run_query
from indicators.spec import Query
from node.audit import read_entries
from node.config import load_config
from node.server import build_server
from node.service import NodeService
from protos import node_pb2 as pb
from tests.support.cities import SyntheticCities
from tests.support.nodes import RunningNode, coordinator_for, publish_and_verify
from tests.support.pki import sign_request

QUERY = Query(("employment_rate",), "citizen", (), "NAT", 0.1)


class Calls(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Counts the calls a real server receives, by method name; optionally holds each
    Describe for ``stall`` seconds, or changes each result as ``change`` says."""

    def __init__(self, service: NodeService) -> None:
        self.service = service
        self.calls: list[str] = []
        self.stall = 0.0
        self.change: Callable[[pb.QueryResult], None] | None = None

    def intercept_service(
        self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        method = details.method.rsplit("/", 1)[-1]
        self.calls.append(method)
        handler = continuation(details)
        if method == "DescribeSigned" and self.stall:
            time.sleep(self.stall)
        if method != "RunQuery" or self.change is None or handler is None:
            return handler
        inner, change = handler.unary_unary, self.change

        def changed(request: Any, context: grpc.ServicerContext) -> pb.SignedResult:
            """The node running modified code: its result changed, then signed again."""
            signed: pb.SignedResult = inner(request, context)
            result = pb.QueryResult.FromString(signed.result)
            change(result)
            data = result.SerializeToString()
            return pb.SignedResult(
                result=data, signature=self.service.sign(data), key_id=signed.key_id
            )

        return grpc.unary_unary_rpc_method_handler(
            changed, handler.request_deserializer, handler.response_serializer
        )


def counted_node(config: Path) -> tuple[RunningNode, Calls]:
    """A node from its config, on a free port over mutual TLS, its calls counted."""
    service = NodeService(load_config(config))
    calls = Calls(service)
    server = build_server(service, "127.0.0.1:0", tls=service.config.tls, interceptors=(calls,))
    return RunningNode(service, server, f"127.0.0.1:{server.port}", config), calls


def kept_description(coordinator: CoordinatorConfig) -> pb.NodeDescription:
    """The coordinator's kept description of its only node, checked as it is when used."""
    return checked_description(coordinator.nodes[0], kept(coordinator)[coordinator.nodes[0].id])


def test_a_second_query_asks_each_node_in_one_call(tmp_path: Path, cities: SyntheticCities) -> None:
    config = tmp_path / "vienna.toml"
    config.write_text(cities.node_toml("vienna"))
    node, counter = counted_node(config)
    try:
        coordinator = coordinator_for(tmp_path, [("vienna", node.address)])
        first = run_query(coordinator, QUERY)
        assert counter.calls == ["DescribeSigned", "RunQuery"]
        assert set(kept(coordinator)) == {"vienna"}
        second = run_query(coordinator, replace(QUERY, rho=0.2))  # a new release
        assert counter.calls[2:] == ["RunQuery"]  # planned from the kept description
        assert first.failures == second.failures == {}
        cells = [
            [(r.node, r.geo, r.group, dict(r.breakdown)) for r in o.rows] for o in (first, second)
        ]
        assert cells[0] == cells[1] and cells[0]  # the same rows, from the same plan
        assert node.service.budget().spent == pytest.approx(0.3)  # each charged once
        digest = kept_description(coordinator).description_sha256
        assert second.replies["vienna"].result is not None
        assert second.replies["vienna"].result.described_sha256 == digest  # checked: echoed
        publish_and_verify(second, tmp_path / "out")
    finally:
        node.stop()


def asked_once(
    tmp_path: Path, cities: SyntheticCities
) -> tuple[RunningNode, Calls, CoordinatorConfig]:
    """Vienna served (its calls counted) and asked once: its description is kept."""
    config = tmp_path / "vienna.toml"
    config.write_text(cities.node_toml("vienna"))
    node, calls = counted_node(config)
    coordinator = coordinator_for(tmp_path, [("vienna", node.address)])
    try:
        assert run_query(coordinator, QUERY).failures == {}
    except BaseException:
        node.stop()
        raise
    return node, calls, coordinator


def restarted_with_another_config(
    tmp_path: Path, cities: SyntheticCities
) -> tuple[RunningNode, Calls, CoordinatorConfig, str]:
    """Vienna asked once (its description kept), then restarted serving less.

    Returns the restarted node, its calls, the coordinator and the kept digest.
    """
    node, _, coordinator = asked_once(tmp_path, cities)
    node.stop()
    before = kept_description(coordinator).description_sha256
    config = tmp_path / "vienna.toml"
    config.write_text(cities.node_toml("vienna", without=("yearesid",)))  # serves less now
    node, calls = counted_node(config)
    return node, calls, coordinator_for(tmp_path, [("vienna", node.address)]), before


def test_a_node_restarted_with_another_config_is_described_again(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    node, counter, coordinator, before = restarted_with_another_config(tmp_path, cities)
    try:
        outcome = run_query(coordinator, replace(QUERY, rho=0.2))
        assert outcome.failures == {} and set(outcome.answers) == {"vienna"}
        # refused before anything was charged, then described and asked again
        assert counter.calls == ["RunQuery", "DescribeSigned", "RunQuery"]
        refusal = [e for e in read_entries(node.service.config.state_dir / "ledger.sqlite")
                   if e.event == "refusal"]  # fmt: skip
        assert [e.reason for e in refusal] == [Reason.DESCRIPTION_CHANGED]
        assert node.service.budget().spent == pytest.approx(0.3)  # the refusal cost nothing
        after = kept_description(coordinator)
        assert after.description_sha256 != before
        assert "yearesid" not in {v.name for v in after.variables}
    finally:
        node.stop()


def test_a_retry_after_a_restart_is_answered_from_the_ledger(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    """The same signed request again after the node restarted with another description
    (its answer lost on the way): given back from the ledger, charged once, not refused.
    A new request planned from the old description is still refused."""
    node, _, coordinator = asked_once(tmp_path, cities)
    digest = kept_description(coordinator).description_sha256
    asked = pb.QueryRequest(
        query_id="retried", spec=replace(QUERY, rho=0.2).to_wire(), described_sha256=digest
    )
    signed = sign_request(asked, "vienna")
    try:
        first = node.ask(signed)
    finally:
        node.stop()
    config = tmp_path / "vienna.toml"
    text = config.read_text()
    renamed = re.sub(r'(?m)^name = ".*"$', 'name = "Wien"', text, count=1)
    assert renamed != text
    config.write_text(renamed)  # described otherwise, its data and mappings the same
    node, _ = counted_node(config)
    try:
        assert node.service.config.name == "Wien"
        again = node.ask(signed)  # the retry: the same bytes
        assert again.tables == first.tables and again.cached
        assert first.described_sha256 == digest
        assert again.described_sha256 == ""  # not served now: described next time
        assert node.service.budget().spent == pytest.approx(0.3)  # 0.1 + 0.2, once each
        events = [e.event for e in read_entries(node.service.config.state_dir / "ledger.sqlite")]
        assert events[-1] == "replay"
        fresh = pb.QueryRequest(
            query_id="new", spec=replace(QUERY, rho=0.2).to_wire(), described_sha256=digest
        )
        with pytest.raises(grpc.RpcError) as refused:
            node.ask(sign_request(fresh, "vienna"))
        assert "no longer serves" in str(refused.value.details())
        assert node.service.budget().spent == pytest.approx(0.3)
    finally:
        node.stop()


def test_a_changed_node_late_to_describe_again_fails_as_late(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    node, calls, coordinator, _ = restarted_with_another_config(tmp_path, cities)
    calls.stall = 4.0  # its Describe outlives the query's whole deadline
    try:
        outcome = run_query(
            replace(coordinator, query_timeout_seconds=2.0), replace(QUERY, rho=0.2)
        )
        failure = outcome.failures["vienna"]  # not planned from what it served before
        assert failure.reason == Reason.DEADLINE_EXCEEDED
        assert "did not answer Describe" in failure.message
        assert outcome.replies == {} and node.service.budget().spent == pytest.approx(0.1)
        publish_and_verify(outcome, tmp_path / "out")  # its failure is published
        assert "vienna" not in kept(coordinator)  # forgotten: it serves another now
    finally:
        node.stop()


def test_a_node_that_does_not_echo_the_digest_is_described_next_time(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    node, calls, coordinator = asked_once(tmp_path, cities)
    try:
        calls.change = lambda result: result.ClearField("described_sha256")  # an older release
        outcome = run_query(coordinator, replace(QUERY, rho=0.2))
        assert outcome.failures == {} and calls.calls[2:] == ["RunQuery"]  # answered
        assert "vienna" not in kept(coordinator)  # but not planned from memory again
        calls.change = None
        assert run_query(coordinator, replace(QUERY, rho=0.3)).failures == {}
        assert calls.calls[3:] == ["DescribeSigned", "RunQuery"]
        assert set(kept(coordinator)) == {"vienna"}
    finally:
        node.stop()


def test_a_kept_description_altered_or_under_another_key_or_unreadable_is_not_used(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    node, counter, coordinator = asked_once(tmp_path, cities)
    try:
        path = coordinator.state_dir / DESCRIPTIONS_FILE
        stored = json.loads(path.read_text())
        entry = stored["nodes"]["vienna"]
        signed = pb.SignedDescription.FromString(base64.b64decode(entry["signed"]))
        description = pb.NodeDescription.FromString(signed.description)
        del description.variables[-1]  # one variable fewer, the digest and signature kept
        signed.description = description.SerializeToString()
        entry["signed"] = base64.b64encode(signed.SerializeToString()).decode()
        path.write_text(json.dumps(stored))
        assert run_query(coordinator, replace(QUERY, rho=0.2)).failures == {}
        assert counter.calls[2:] == ["DescribeSigned", "RunQuery"]  # not trusted: described
        assert len(kept_description(coordinator).variables) == len(description.variables) + 1
        stored = json.loads(path.read_text())
        stored["nodes"]["vienna"]["key_id"] = "another key"
        path.write_text(json.dumps(stored))
        assert kept(coordinator) == {}
        for text in ("{not json", json.dumps({"format": 2, "nodes": {"vienna": "é"}}),
                     json.dumps({"format": 2, "nodes": {"vienna": {"key_id": node.service.key_id,
                                                                  "signed": "é"}}})):  # fmt: skip
            path.write_text(text)
            assert kept(coordinator) == {}
        assert run_query(coordinator, replace(QUERY, rho=0.3)).failures == {}
        assert counter.calls[4:] == ["DescribeSigned", "RunQuery"]  # described, kept again
        assert set(kept(coordinator)) == {"vienna"}
    finally:
        node.stop()
