"""The coordinator's fan-out: one connection (one TLS handshake) per node for a whole
query, and a deadline for the whole fan-out that a stalled node cannot stretch."""

from __future__ import annotations

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
