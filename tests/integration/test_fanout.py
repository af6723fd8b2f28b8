"""The coordinator's fan-out: one connection (one TLS handshake) per node for a whole
query, each node asked as soon as it has described itself (a slow node delays only
itself), and a deadline for the whole fan-out that a stalled node cannot stretch."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from pathlib import Path

from common.errors import Reason
from coordinator.run import run_query
from indicators.spec import Query
from tests.support.cities import ServeCityFn
from tests.support.nodes import coordinator_for
from tests.support.tcp import Relay


def test_a_query_uses_one_connection_per_node(tmp_path: Path, serve_city: ServeCityFn) -> None:
    node = serve_city("vienna")
    relay = Relay(int(node.address.rsplit(":", 1)[1]))
    try:
        config = coordinator_for(tmp_path, [("vienna", relay.address)])
        outcome = run_query(config, Query(("employment_rate",), "citizen", (), "NAT", 0.1))
        assert outcome.failures == {} and outcome.answers
        assert relay.connections == 1  # Describe and RunQuery over one channel
    finally:
        relay.close()


def test_a_stalled_node_is_cut_off_by_the_whole_query_deadline(
    tmp_path: Path, serve_city: ServeCityFn
) -> None:
    node = serve_city("vienna")
    hole = Relay(None)  # accepts, never completes the TLS handshake
    try:
        config = coordinator_for(
            tmp_path, [("vienna", node.address), ("ghent", hole.address)], timeout=60
        )
        started = time.monotonic()
        outcome = run_query(
            replace(config, query_timeout_seconds=2.0),
            Query(("employment_rate",), "citizen", (), "NAT", 0.1),
        )
        assert time.monotonic() - started < 20  # not the 60 s of a call's own deadline
        assert set(outcome.answers) == {"vienna"}
        assert outcome.failures["ghent"].reason == Reason.DEADLINE_EXCEEDED
        assert "total deadline" in outcome.failures["ghent"].message
    finally:
        hole.close()


def test_a_node_slow_to_describe_delays_only_itself(
    tmp_path: Path, serve_city: ServeCityFn
) -> None:
    node = serve_city("vienna")
    hole = Relay(None)  # never completes the TLS handshake: its Describe never returns
    events: list[tuple[str, str]] = []
    try:
        config = coordinator_for(
            tmp_path, [("ghent", hole.address), ("vienna", node.address)], timeout=60
        )
        outcome = run_query(
            replace(config, query_timeout_seconds=3.0),
            Query(("employment_rate",), "citizen", (), "NAT", 0.1),
            progress=lambda node_id, state: events.append((node_id, state)),
        )
        assert set(outcome.answers) == {"vienna"}
        assert "did not answer Describe" in outcome.failures["ghent"].message
        # vienna was asked and answered while ghent's Describe was still out
        assert events.index(("vienna", "answered")) < events.index(("ghent", "failed"))
        assert list(outcome.replies) == ["vienna"]  # ghent was never asked
    finally:
        hole.close()


def test_a_node_stalled_in_its_query_is_cut_off_by_the_whole_query_deadline(
    tmp_path: Path, serve_city: ServeCityFn
) -> None:
    node = serve_city("vienna")
    ledger = sqlite3.connect(tmp_path / "state-vienna" / "ledger.sqlite", isolation_level=None)
    try:
        config = coordinator_for(tmp_path, [("vienna", node.address)], timeout=60)
        ledger.execute("BEGIN IMMEDIATE")  # the node's reservation waits for this lock
        started = time.monotonic()
        outcome = run_query(
            replace(config, query_timeout_seconds=2.0),
            Query(("employment_rate",), "citizen", (), "NAT", 0.1),
        )
        assert time.monotonic() - started < 20
        failure = outcome.failures["vienna"]
        assert failure.reason == Reason.DEADLINE_EXCEEDED
        assert "did not answer RunQuery within the query's total deadline" in failure.message
        reply = outcome.replies["vienna"]
        assert reply.request is not None and reply.result is None  # asked, with its request
    finally:
        ledger.execute("ROLLBACK")
        ledger.close()
