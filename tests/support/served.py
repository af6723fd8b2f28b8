"""Nodes started as an operator starts them: ``deploy/entrypoint.sh`` in a process of its
own (optionally inside a network namespace), with JSON log lines read back."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
VENV_BIN = Path(sys.executable).parent


def entrypoint_env(config: Path, **extra: str) -> dict[str, str]:
    """The environment the image and the unit give the entrypoint, aimed at this venv."""
    return {
        **os.environ,
        "FEDSTATS_CONFIG": str(config),
        "FEDSTATS_BIN": str(VENV_BIN / "fedstats"),
        "FEDSTATS_PYTHON": sys.executable,
        "FEDSTATS_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


class ServedNode:
    """``deploy/entrypoint.sh node`` in a child process; its log lines parsed as JSON.

    Args:
        config: The node's config file.
        prefix: Command words before the entrypoint (``ip netns exec NS``).
        env: Extra environment variables (``FEDSTATS_GRACE`` ...).
    """

    def __init__(self, config: Path, prefix: tuple[str, ...] = (), **env: str) -> None:
        self.proc = subprocess.Popen(
            [*prefix, str(ENTRYPOINT), "node"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=entrypoint_env(config, **env),
        )
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw.append(line)
            with contextlib.suppress(json.JSONDecodeError):  # tests compare lines with raw
                self.lines.append(json.loads(line))

    def wait_for(self, event: str, timeout: float = 60.0) -> dict[str, Any]:
        """The first log line with this ``event`` (waiting for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines if line.get("event") == event]
            if found:
                return found[0]
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no {event!r} log line; the node wrote:\n{''.join(self.raw)}")

    def events(self, event: str) -> list[dict[str, Any]]:
        """Every log line with this ``event`` so far."""
        return [line for line in self.lines if line.get("event") == event]

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM (unless it has exited) and the exit code; see `wait`."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 60.0) -> int:
        """The exit code, waiting for it (killed after ``timeout``: the test then fails)."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the node did not exit within {timeout} s") from None
        finally:
            self._reader.join(timeout=5)
            if self.proc.stderr is not None:
                self.proc.stderr.close()
