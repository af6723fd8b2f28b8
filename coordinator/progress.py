"""Progress of a fan-out on a terminal: which nodes are waiting, answered or failed.

``FanOutProgress`` is the ``progress`` callback of ``coordinator.run.run_query``. On a
terminal it redraws one status line as nodes answer (and ends it when none is waiting);
when the stream is not a terminal (a pipe, a log file, CI) it prints nothing, so
scripted output stays clean. The fan-out calls it from worker threads: it is
thread-safe.
"""

from __future__ import annotations

import shutil
import sys
import threading
from typing import TextIO

__all__ = ["STATES", "FanOutProgress"]

STATES = ("waiting", "answered", "failed")


class FanOutProgress:
    """Per-node state of one or more fan-outs, drawn as one status line.

    Args:
        stream: Where to draw (standard error by default).
        enabled: Draw even if ``stream`` is not a terminal (None: only on a terminal).
    """

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_terminal(self.stream) if enabled is None else enabled
        self.states: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, node_id: str, state: str) -> None:
        """Record a node's new state and redraw (``waiting``, ``answered`` or ``failed``)."""
        if state not in STATES:
            raise ValueError(f"unknown fan-out state {state!r}")
        with self._lock:
            if state == "waiting" and self.states and "waiting" not in self.states.values():
                self.states = {}  # a new fan-out after a finished one starts a new line
            self.states[node_id] = state
            if self.enabled:
                self._draw()

    def status(self) -> str:
        """The status line: counts, then the nodes that failed and those still waiting."""
        by_state = {s: [n for n, v in self.states.items() if v == s] for s in STATES}
        text = (
            f"nodes: {len(by_state['answered'])}/{len(self.states)} answered, "
            f"{len(by_state['failed'])} failed, {len(by_state['waiting'])} waiting"
        )
        if by_state["failed"]:
            text += " | failed: " + " ".join(by_state["failed"])
        if by_state["waiting"]:
            text += " | waiting: " + " ".join(by_state["waiting"])
        return text

    def _draw(self) -> None:
        width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
        line = self.status()
        if len(line) > width:
            line = line[: width - 3] + "..."
        done = "waiting" not in self.states.values()
        self.stream.write("\r\x1b[K" + line + ("\n" if done else ""))
        self.stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or fake streams
        return False
