"""One output written by a forked worker process while this process writes the others.

The HTML report is the largest output (about 2.5 ms of CPU per city) and needs nothing
the other writers make, so on Linux it is rendered in a child process forked once the
rows are final, while the parent writes the CSV, Parquet, SDMX and metadata files: the
two run on two cores. The child writes a hidden partial file beside the target and exits
(`os._exit`: no atexit handler, no gRPC, nothing of the parent's but the rows); the
parent moves the file into place only when the child succeeded and its own writers did
too, so a failure on either side leaves no report behind and says what failed.

Where ``fork`` is unsafe or missing (macOS, Windows) or nothing else is written, the
report is written in this process, as before; the bytes are the same either way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from common.errors import FedstatsError

__all__ = ["Beside", "can_fork"]

_MESSAGE_BYTES = 4000


def can_fork() -> bool:
    """Whether a writer may run in a forked child.

    Linux only: macOS's frameworks are not fork-safe once threads run, Windows has no fork.
    """
    return sys.platform == "linux" and hasattr(os, "fork")


class Beside:
    """A forked child writing one file; `finish` waits for it and moves the file into place.

    Args:
        write: Writes the output to the path it is given (the hidden partial file).
        path: Where the output belongs.
    """

    def __init__(self, write: Callable[[Path], None], path: Path) -> None:
        self.path = path
        self.partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
        read, report = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; its work is checked by the parent
            os.close(read)
            _child(write, self.partial, report)
        os.close(report)
        self._pid: int | None = pid
        self._read = read

    def finish(self, keep: bool = True) -> None:
        """Wait for the child; with ``keep``, move its file into place, else remove it.

        Raises:
            FedstatsError: With ``keep``, the child failed: its error, and nothing at
                ``path``.
        """
        if self._pid is None:
            return
        if not keep:  # this process failed: the child's work is not wanted
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGTERM)
        with os.fdopen(self._read, "rb") as pipe:
            message = pipe.read(_MESSAGE_BYTES).decode("utf-8", "replace")
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        code = os.waitstatus_to_exitcode(status)
        if not keep or code != 0:
            self.partial.unlink(missing_ok=True)
        if not keep:
            return
        if code != 0:
            raise FedstatsError(
                f"{self.path}: not written: {message or f'its writer process ended with {code}'}",
                field="--out",
                hint="the other outputs were written; fix the cause and run the query again",
            )
        os.replace(self.partial, self.path)


def _child(write: Callable[[Path], None], partial: Path, report: int) -> None:
    """The forked child: write, say what failed on the pipe, and leave without cleanup."""
    code = 0
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides on ^C
        write(partial)
    except BaseException as exc:  # every failure goes to the parent
        code = 1
        text = f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")
        with contextlib.suppress(OSError):
            os.write(report, text[:_MESSAGE_BYTES])
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
