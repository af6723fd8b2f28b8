"""One output written by a forked writer process while this process writes the others.

The HTML report is the largest output (about 2.7 ms of CPU per city) and needs nothing
the other writers make, so on Linux it is rendered in a child process forked once the
rows are final, while the parent writes the CSV, Parquet, SDMX and metadata files: the
two run on two cores. The child writes a hidden partial file beside the target
(``.report.html.partial-<pid>``) and leaves with `os._exit` (no atexit handler, no
gRPC, no buffered output of the parent's written twice); the parent moves the file into
place only when the child succeeded and its own writers did too. A failure on either
side, ^C or SIGTERM included, stops the child, removes its partial file and leaves no
report behind (an older ``report.html`` there is removed too, so it is never taken for
this run's). The child is a copy-on-write image of the coordinator: it shares the rows'
pages and adds what the report makes (about 100 MiB at 300 cities).

Where ``fork`` is missing or unsafe (macOS, Windows) or fails (no memory), the report
is written in this process, as before; the bytes are the same either way.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

__all__ = ["Beside", "can_fork"]

_MESSAGE_BYTES = 4000
_STOPPING = {signal.SIGINT, signal.SIGTERM}


def can_fork() -> bool:
    """Whether a writer may run in a forked child.

    Linux only: macOS's frameworks are not fork-safe once threads run, Windows has no fork.
    """
    return sys.platform == "linux" and hasattr(os, "fork")


class Beside:
    """A forked child writing one file; `finish` waits for it and moves the file into place.

    Use `start`, which returns None where no child could be started.
    """

    def __init__(self, pid: int, read: int, path: Path, partial: Path) -> None:
        self._pid: int | None = pid
        self._read = read
        self.path = path
        self.partial = partial

    @classmethod
    def start(cls, write: Callable[[Path], None], path: Path) -> Beside | None:
        """Fork a child running ``write`` on a partial file beside ``path``.

        Returns:
            The running child, or None when fork is unavailable or fails: the caller
            then writes ``path`` itself.
        """
        if not can_fork():
            return None
        partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
        sys.stdout.flush()  # nothing buffered here is written again by the child
        sys.stderr.flush()
        read, report = os.pipe()
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)  # until the child is set
        try:
            with warnings.catch_warnings():  # Python 3.12 warns of fork beside threads:
                warnings.simplefilter("ignore", DeprecationWarning)  # the child runs no thread
                pid = os.fork()
        except OSError:
            os.close(read)
            os.close(report)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            return None
        if pid == 0:  # pragma: no cover - the child; the parent checks its work
            _child(write, partial, report)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(report)
        return cls(pid, read, path, partial)

    def finish(self, keep: bool = True) -> None:
        """Wait for the child; with ``keep``, move its file into place, else discard it.

        Interrupted (^C, SIGTERM, any error while waiting), the child is stopped and its
        file discarded before the interruption goes on.

        Raises:
            OSError: The child could not write the file (errno and message as it saw
                them); nothing is left at ``path``.
            RuntimeError: The child failed otherwise (its exception type and message);
                nothing is left at ``path``.
        """
        if self._pid is None:
            return
        if not keep:
            self._stop()
        try:
            with os.fdopen(self._read, "rb") as pipe:
                message = pipe.read(_MESSAGE_BYTES).decode("utf-8", "replace")
            _, status = os.waitpid(self._pid, 0)
        except BaseException:
            self._stop()
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._pid, 0)
            self._pid = None
            self.partial.unlink(missing_ok=True)
            raise
        self._pid = None
        code = os.waitstatus_to_exitcode(status)
        if keep and code == 0:
            os.replace(self.partial, self.path)
            return
        self.partial.unlink(missing_ok=True)
        if keep:
            self.path.unlink(missing_ok=True)  # never an older run's report beside this one's
            raise _failure(self.path, message, code)

    def _stop(self) -> None:
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGTERM)


def _failure(path: Path, message: str, code: int) -> Exception:
    """The child's error, as the parent raises it."""
    kind, _, text = message.partition(": ")
    number = int(kind[len("OSError ") :]) if kind.startswith("OSError ") else None
    if number is not None:
        return OSError(number, f"{text} (writing {path.name} in its writer process)", str(path))
    if not message:
        message = f"its writer process ended with {code}"
    return RuntimeError(f"{path}: not written: {message}")


def _child(write: Callable[[Path], None], partial: Path, report: int) -> None:
    """The forked child: write, say what failed on the pipe, and leave without cleanup."""
    code = 0
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides on ^C
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPPING)
        write(partial)
    except BaseException as exc:  # every failure goes to the parent
        code = 1
        if isinstance(exc, OSError) and exc.errno is not None:
            text = f"OSError {exc.errno}: {exc.strerror or errno.errorcode.get(exc.errno, '')}"
        else:
            text = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError):
            os.write(report, text.encode("utf-8", "replace")[:_MESSAGE_BYTES])
    finally:
        os._exit(code)
