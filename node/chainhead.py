"""The audit chain's head, mirrored outside the state directory (DESIGN sections 4 and 5).

After every write to the audit log the node writes the log's last entry (sequence number
and hash) to ``[node] chain_head``, a small JSON file that should live on other storage
than ``state_dir``. The head only moves forward: a writer never replaces a later head with
an earlier one. On start, and in ``node audit --verify``, the ledger must still hold the
entry the head names; a deleted, truncated or older ledger is then refused, so that a
budget cannot be given back by rolling the state directory back.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from common.durable import write_durably
from common.errors import ConfigError, Reason

__all__ = ["ChainHead", "check_not_behind", "last_entry", "mirror", "read_head"]


@dataclass(frozen=True)
class ChainHead:
    """A position in the audit chain: the entry's sequence number and hash."""

    seq: int
    hash: str


def last_entry(db: sqlite3.Connection) -> ChainHead:
    """The last entry of the ledger's audit log (seq 0 when it is empty)."""
    row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return ChainHead(0, "") if row is None else ChainHead(int(row[0]), str(row[1]))


def read_head(path: Path) -> ChainHead | None:
    """The mirrored head, or None when the file does not exist yet."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ChainHead(int(data["seq"]), str(data["hash"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{path}: not a chain head file ({exc})",
            field="node.chain_head",
            hint="restore it from its backup; never edit it by hand",
        ) from None


def mirror(path: Path, head: ChainHead) -> None:
    """Write ``head`` to ``path`` unless the file already names a later entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(path.suffix + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = read_head(path)
        if current is not None and current.seq >= head.seq:
            return
        write_durably(path, json.dumps({"seq": head.seq, "hash": head.hash}).encode())


def behind(db: sqlite3.Connection, head: ChainHead) -> str:
    """Why the ledger is behind the mirrored head, or "" when it holds the head's entry."""
    row = db.execute("SELECT hash FROM audit WHERE seq = ?", (head.seq,)).fetchone()
    if head.seq == 0:
        return ""
    if row is None:
        last = last_entry(db).seq
        return (
            f"its audit log ends at entry {last}, but the chain head says the node has "
            f"written entry {head.seq}"
        )
    if str(row[0]) != head.hash:
        return f"its audit entry {head.seq} is not the one the chain head names"
    return ""


def check_not_behind(db: sqlite3.Connection, ledger: Path, head_file: Path) -> None:
    """Refuse a ledger that is missing, truncated or rolled back behind the head.

    Raises:
        ConfigError: With reason ``LEDGER_INCONSISTENT``.
    """
    head = read_head(head_file)
    if head is None:
        return
    problem = behind(db, head)
    if problem:
        raise ConfigError(
            f"{ledger}: the budget ledger is behind {head_file}: {problem}; a deleted or "
            "restored ledger would give back spent budget",
            reason=Reason.LEDGER_INCONSISTENT,
            field="node.state_dir",
            hint="restore the latest ledger (`fedstats node backup` makes consistent "
            "copies); never start a node on an older or empty state directory",
        )
