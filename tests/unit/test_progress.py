"""The fan-out's terminal progress line."""

from __future__ import annotations

import io
import threading

import pytest

from coordinator.progress import FanOutProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_silent_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = FanOutProgress(stream)
    for node in ("a", "b"):
        progress(node, "waiting")
    progress("a", "answered")
    progress("b", "failed")
    assert stream.getvalue() == ""
    assert progress.states == {"a": "answered", "b": "failed"}


def test_one_status_line_redrawn_until_no_node_waits() -> None:
    stream = Terminal()
    progress = FanOutProgress(stream)
    for node in ("vienna", "ghent", "athens"):
        progress(node, "waiting")
    progress("ghent", "answered")
    assert stream.getvalue().endswith(
        "\r\x1b[Knodes: 1/3 answered, 0 failed, 2 waiting | waiting: vienna athens"
    )
    progress("athens", "failed")
    progress("vienna", "answered")
    assert stream.getvalue().endswith(
        "\r\x1b[Knodes: 2/3 answered, 1 failed, 0 waiting | failed: athens\n"
    )
    assert stream.getvalue().count("\n") == 1
    progress("vienna", "waiting")  # a second query starts a fresh line
    assert progress.states == {"vienna": "waiting"}


def test_states_are_checked_and_threads_do_not_collide() -> None:
    progress = FanOutProgress(Terminal())
    with pytest.raises(ValueError, match="unknown"):
        progress("a", "done")
    nodes = [f"node{i}" for i in range(200)]
    for node in nodes:
        progress(node, "waiting")
    threads = [threading.Thread(target=progress, args=(n, "answered")) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(progress.states.values()) == {"answered"}
    assert progress.status().startswith("nodes: 200/200 answered")
