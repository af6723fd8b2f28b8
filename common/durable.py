"""Durable file replacement: a crash leaves either the old file or the new one, whole.

Every state file a party rewrites whole (the CRL high-water mark, a restored ledger, a
new chain head file; later heads are written in place, see `node.chainhead`) goes through
`replace_durably`: the new bytes are written to a temporary file in
the same directory and fsynced, ``os.replace`` swaps it in atomically, and the directory
is fsynced so that the rename itself survives a power cut.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["fsync_directory", "fsync_file", "replace_durably", "write_durably"]


def fsync_file(path: Path) -> None:
    """Flush ``path``'s contents to stable storage."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_directory(directory: Path) -> None:
    """Flush ``directory``'s entries (a rename or a new link in it) to stable storage."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(
    target: Path, fill: Callable[[BinaryIO], None], suffix: str = ".partial"
) -> None:
    """Atomically replace ``target`` with what ``fill`` writes to a fresh file.

    ``fill`` writes into a temporary file beside ``target`` (its name, this process's id
    and ``suffix``, so that two processes never share one; threads of one process must
    not replace one target at once); it is fsynced, renamed over ``target`` and the
    directory fsynced. If anything before the rename fails, the temporary file is removed
    and ``target`` is untouched. The new file's mode follows the umask, as ``open`` does.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}{suffix}")
    try:
        with open(partial, "wb") as out:
            fill(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)


def write_durably(target: Path, data: bytes) -> None:
    """Atomically replace ``target`` with ``data`` (see `replace_durably`)."""

    def fill(out: BinaryIO) -> None:
        out.write(data)

    replace_durably(target, fill)
