"""Descriptions kept between queries (`coordinator.described`): the next query asks each
node in one call, planned from the description it signed before; a node restarted with
another config refuses that plan before charging anything, and is described again."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest

from common.errors import Reason
from coordinator.described import DESCRIPTIONS_FILE, kept
from coordinator.run import run_query
from indicators.spec import Query
from node.audit import read_entries
from node.config import load_config
from node.server import build_server
from node.service import NodeService
from tests.support.cities import SyntheticCities
from tests.support.nodes import RunningNode, coordinator_for

QUERY = Query(("employment_rate",), "citizen", (), "NAT", 0.1)


class CallCounter(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Counts the calls a real server receives, by method name."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def intercept_service(
        self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        self.calls.append(details.method.rsplit("/", 1)[-1])
        return continuation(details)


def counted_node(config: Path) -> tuple[RunningNode, CallCounter]:
    """A node from its config, on a free port over mutual TLS, its calls counted."""
    counter = CallCounter()
    service = NodeService(load_config(config))
    server = build_server(service, "127.0.0.1:0", tls=service.config.tls, interceptors=(counter,))
    return RunningNode(service, server, f"127.0.0.1:{server.port}", config), counter


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
        assert not kept(coordinator)["vienna"].HasField("budget")  # read from each answer
    finally:
        node.stop()


def test_a_node_restarted_with_another_config_is_described_again(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    config = tmp_path / "vienna.toml"
    config.write_text(cities.node_toml("vienna"))
    node, _ = counted_node(config)
    try:
        coordinator = coordinator_for(tmp_path, [("vienna", node.address)])
        assert run_query(coordinator, QUERY).failures == {}
        before = kept(coordinator)["vienna"].description_sha256
    finally:
        node.stop()
    config.write_text(cities.node_toml("vienna", without=("yearesid",)))  # serves less now
    node, counter = counted_node(config)
    try:
        coordinator = coordinator_for(tmp_path, [("vienna", node.address)])
        outcome = run_query(coordinator, replace(QUERY, rho=0.2))
        assert outcome.failures == {} and set(outcome.answers) == {"vienna"}
        # refused before anything was charged, then described and asked again
        assert counter.calls == ["RunQuery", "DescribeSigned", "RunQuery"]
        refusal = [e for e in read_entries(node.service.config.state_dir / "ledger.sqlite")
                   if e.event == "refusal"]  # fmt: skip
        assert [e.reason for e in refusal] == [Reason.DESCRIPTION_CHANGED]
        assert node.service.budget().spent == pytest.approx(0.3)  # the refusal cost nothing
        after = kept(coordinator)["vienna"]
        assert after.description_sha256 != before
        assert "yearesid" not in {v.name for v in after.variables}
    finally:
        node.stop()


def test_a_kept_description_is_not_used_under_another_key_or_when_unreadable(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    config = tmp_path / "vienna.toml"
    config.write_text(cities.node_toml("vienna"))
    node, counter = counted_node(config)
    try:
        coordinator = coordinator_for(tmp_path, [("vienna", node.address)])
        assert run_query(coordinator, QUERY).failures == {}
        path = coordinator.state_dir / DESCRIPTIONS_FILE
        stored = json.loads(path.read_text())
        stored["nodes"]["vienna"]["key_id"] = "another key"
        path.write_text(json.dumps(stored))
        assert kept(coordinator) == {}
        path.write_text("{not json")
        assert kept(coordinator) == {}
        assert run_query(coordinator, QUERY).failures == {}
        assert counter.calls == ["DescribeSigned", "RunQuery"] * 2  # described each time
        assert set(kept(coordinator)) == {"vienna"}  # and kept again
    finally:
        node.stop()
