"""A node stopped by SIGTERM during a query, and the log lines it writes: a real process
started through deploy/entrypoint.sh, as the image, the unit and the multi-host test run it.

The query is held in flight by a real SQLite write lock on the node's ledger (what a
long backup or a slow disk does): it cannot finish before SIGTERM arrives, and finishes
once the lock is let go, inside the grace period.
"""

from __future__ import annotations

import ctypes
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from coordinator.client import Dialer
from coordinator.config import NodeAddress
from fedstats.cli import main
from protos import node_pb2 as pb
from protos import node_pb2_grpc as pb_grpc
from security.signing import parse_public_key, verify
from tests.support.cities import SyntheticCities
from tests.support.pki import COORDINATOR, pki, query_request, sign_request
from tests.support.served import ServedNode

pytestmark = pytest.mark.slow

LOG_KEYS = {"time", "level", "logger", "message"}


def _ask(address: str, query_id: str, rho: float = 0.2, by: str = "sex") -> pb.QueryResult:
    """One signed query over mutual TLS; the node's signature on the result checked.

    Each call asks for another breakdown: the node answers a repeated table from its
    ledger, free of charge (its answer cache).
    """
    node = NodeAddress("vienna", address)
    with Dialer(pki().tls("coordinator", COORDINATOR)).channel(node) as channel:
        signed = pb_grpc.NodeServiceStub(channel).RunQuery(
            sign_request(
                query_request(query_id, rho=rho, breakdowns=(by,) if by else ()),
                "vienna",
            ),
            timeout=60,
        )
    public = parse_public_key(pki().public_key("node", "vienna"), "test")
    assert verify(public, signed.result, signed.signature)
    return pb.QueryResult.FromString(signed.result)


def _lock_ledger(state_dir: Path) -> sqlite3.Connection:
    """Hold the ledger's write lock (released by ``rollback``): the node's next write waits."""
    lock = sqlite3.connect(
        state_dir / "ledger.sqlite", isolation_level=None, check_same_thread=False
    )
    lock.execute("BEGIN IMMEDIATE")
    return lock


def test_sigterm_during_a_query_finishes_it_refuses_new_calls_and_exits_0(
    tmp_path: Path, cities: SyntheticCities, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "vienna.toml"
    config.write_text(cities.node_toml("vienna", rho_budget=10.0, max_rho=1.0))
    node = ServedNode(config, FEDSTATS_GRACE="30")
    try:
        port = node.wait_for("start")["port"]
        address = f"127.0.0.1:{port}"
        _ask(address, "before")  # the ledger exists and a query is answered
        lock = _lock_ledger(tmp_path / "state-vienna")
        with ThreadPoolExecutor(1) as pool:
            in_flight: Future[pb.QueryResult] = pool.submit(_ask, address, "in-flight", 0.2, "")
            time.sleep(2.0)  # the call reaches the node and waits on the lock
            assert not in_flight.done()
            signalled = time.monotonic()
            node.proc.send_signal(signal.SIGTERM)
            node.wait_for("stopping", timeout=10)
            with pytest.raises(grpc.RpcError) as refused:
                _ask(address, "after-sigterm", 0.2, "age")
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            threading.Timer(1.0, lock.rollback).start()  # let the in-flight query finish
            result = in_flight.result(timeout=30)
        lock.close()
        assert result.query_id == "in-flight" and result.rho_charged == pytest.approx(0.2)
        assert node.wait(timeout=40) == 0  # no second signal
        assert time.monotonic() - signalled < 30  # inside the grace period
    finally:
        if node.proc.poll() is None:
            node.terminate()

    # One line per start, query and stop, JSON, with ids and numbers and no data value.
    assert all(line.keys() >= LOG_KEYS for line in node.lines), node.raw
    assert len(node.lines) == len(node.raw), "every log line is JSON"
    queries = node.events("query")
    assert [q["query_id"] for q in queries] == ["before", "in-flight"]
    assert set(queries[0]) == LOG_KEYS | {
        "event", "query_id", "coordinator", "time_period", "tables", "rho_charged", "cached",
        "audit_seq", "ms",
    }  # fmt: skip
    assert [len(node.events(e)) for e in ("start", "stopping", "stop")] == [1, 1, 1]
    # The refused call never reached the handler: gRPC refused it once stop began.
    assert not node.events("refusal")

    # The ledger verifies and charged exactly the two answered queries.
    assert main(["node", "audit", "--config", str(config), "--verify"]) == 0
    assert "audit log verified" in capsys.readouterr().out
    assert main(["budget", "--config", str(config)]) == 0
    assert "0.4" in capsys.readouterr().out


def test_a_call_still_running_after_the_grace_period_is_abandoned_cleanly(
    tmp_path: Path, cities: SyntheticCities, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "vienna.toml"
    config.write_text(cities.node_toml("vienna", rho_budget=10.0, max_rho=1.0))
    node = ServedNode(config, FEDSTATS_GRACE="1")
    try:
        address = f"127.0.0.1:{node.wait_for('start')['port']}"
        _ask(address, "before")
        lock = _lock_ledger(tmp_path / "state-vienna")
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(_ask, address, "stuck", 0.2, "")
            time.sleep(2.0)
            signalled = time.monotonic()
            assert node.terminate(timeout=20) == 0  # one SIGTERM
            assert time.monotonic() - signalled < 10  # the grace, not the lock's 60 s
            with pytest.raises(grpc.RpcError) as cut:
                in_flight.result(timeout=10)
        assert cut.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
        lock.rollback()
        lock.close()
    finally:
        if node.proc.poll() is None:
            node.terminate()
    assert node.events("stop")[0]["abandoned"] == 1
    assert [q["query_id"] for q in node.events("query")] == ["before"]
    # Nothing of the abandoned call reached the ledger; the chain verifies.
    assert main(["node", "audit", "--config", str(config), "--verify"]) == 0
    assert "audit log verified" in capsys.readouterr().out
    assert main(["budget", "--config", str(config)]) == 0
    assert "0.2" in capsys.readouterr().out


def test_sigterm_taken_by_any_thread_stops_the_node(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    """The kernel gives a process's SIGTERM to any of its threads that does not block
    it; sent here to one of the node's other threads (gRPC's, the metrics server's), it
    must stop the node as surely as when the main thread takes it."""
    config = tmp_path / "vienna.toml"
    config.write_text(cities.node_toml("vienna"))
    node = ServedNode(config)
    try:
        node.wait_for("start")
        pid = node.proc.pid
        deadline = time.monotonic() + 30
        while not _catches_sigterm(pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # its handler is set just after the start lines
        other = next(int(t) for t in sorted(os.listdir(f"/proc/{pid}/task")) if int(t) != pid)
        _signal_thread(pid, other, signal.SIGTERM)
        assert node.wait(timeout=20) == 0
    finally:
        if node.proc.poll() is None:
            node.proc.kill()
    assert node.events("stopping")[0]["signal"] == "SIGTERM"


def _catches_sigterm(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(
        next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16
    )
    return bool(caught >> (signal.SIGTERM - 1) & 1)


def _signal_thread(pid: int, tid: int, sig: int) -> None:
    """tgkill(2): a signal to one thread of another process (Python has no wrapper)."""
    number = {"x86_64": 234, "aarch64": 131}[platform.machine()]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(number, pid, tid, sig) != 0:
        raise OSError(ctypes.get_errno(), "tgkill failed")


def test_a_refusal_is_one_log_line_with_its_reason(tmp_path: Path, cities: SyntheticCities) -> None:
    config = tmp_path / "vienna.toml"
    config.write_text(cities.node_toml("vienna", rho_budget=10.0, max_rho=0.1))
    node = ServedNode(config)
    try:
        address = f"127.0.0.1:{node.wait_for('start')['port']}"
        with pytest.raises(grpc.RpcError):
            _ask(address, "too-much", rho=0.5)  # over max_rho_per_query
        refusal = node.wait_for("refusal", timeout=10)
    finally:
        assert node.terminate() == 0
    assert refusal["query_id"] == "too-much"
    assert refusal["coordinator"] == COORDINATOR
    assert refusal["reason"] == "QUERY_CAP_EXCEEDED"
    assert refusal["level"] == "WARNING"


def test_a_log_format_from_the_environment_is_checked(tmp_path: Path) -> None:
    bad = subprocess.run(
        ["fedstats", "budget", "--config", str(tmp_path / "none.toml")],
        env={"FEDSTATS_LOG_FORMAT": "xml", "PATH": str(Path(sys.executable).parent)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "FEDSTATS_LOG_FORMAT must be one of text, json" in bad.stderr
