"""Consistent copies of the budget ledger and audit log, and their restore (DESIGN section 4).

The ledger and the signed audit log live in one SQLite file (``state_dir/ledger.sqlite``),
so one copy holds both, consistent with each other. ``backup`` copies it with SQLite's
online backup API over a connection of its own: one read transaction, so the copy is the
ledger as of one commit even while the node serves queries (WAL mode lets the node keep
writing meanwhile). Beside the copy goes ``backup.json``: the copy's audit-chain head,
its size and SHA-256, and when it was taken.

``restore`` puts a copy back. A ledger only moves forward: a copy that lies behind the
node's mirrored chain head (``[node] chain_head``), or behind the ledger it would
replace, would give spent budget back, and is refused unless ``allow_rollback`` is given
(then the chain head is moved back too, and the restore says how much rho reappears).
The replaced ledger is kept beside the new one, never deleted. Stop the node first.

Every step of a restore leaves a whole ledger in place: the copy is written to a temporary
file beside the ledger and fsynced, the current ledger is hard-linked to its dated name,
and only then is the copy renamed over it (atomically) and the directory fsynced.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from common.durable import fsync_directory, fsync_file, replace_durably, write_durably
from common.errors import ConfigError, Reason
from node import audit
from node.chainhead import ChainHead, behind, last_entry, mirror, read_head
from privacy.budget import from_micro

__all__ = ["BackupInfo", "RestoreOutcome", "backup", "read_info", "restore"]

LEDGER = "ledger.sqlite"
INFO = "backup.json"


@dataclass(frozen=True)
class BackupInfo:
    """What ``backup.json`` records about a copy."""

    head: ChainHead
    sha256: str
    size: int
    taken_at: str


@dataclass(frozen=True)
class RestoreOutcome:
    """What a restore did.

    Attributes:
        head: The restored ledger's audit-chain head.
        replaced: Where the ledger it replaced was moved (None: there was none).
        rolled_back: Audit entries of the replaced ledger or chain head that the restored
            ledger does not hold (0 unless ``allow_rollback`` was given).
        given_back: Rho spent per dataset in the replaced ledger but not in the restored
            one.
    """

    head: ChainHead
    replaced: Path | None
    rolled_back: int
    given_back: dict[str, float]


def backup(ledger: Path, out: Path) -> BackupInfo:
    """Copy ``ledger`` (while the node may be serving) into the directory ``out``.

    Raises:
        ConfigError: No ledger there, ``out`` already holds a backup, or the copy does
            not pass SQLite's integrity check or the ledger's reconciliation with its
            audit log.
    """
    if not ledger.exists():
        raise ConfigError(
            f"no ledger at {ledger}", field="node.state_dir", hint="check [node] state_dir"
        )
    out.mkdir(parents=True, exist_ok=True)
    target = out / LEDGER
    if target.exists() or (out / INFO).exists():
        raise ConfigError(
            f"{out} already holds a backup", field="--out", hint="give a new directory"
        )
    partial = out / f"{LEDGER}.partial"
    source = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=60.0)
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)  # all pages in one step: one read transaction, one commit
            copy.execute("PRAGMA journal_mode=DELETE")
            head = _check_copy(copy, partial)
        finally:
            copy.close()
    finally:
        source.close()
    fsync_file(partial)
    os.replace(partial, target)
    fsync_directory(out)
    data = target.read_bytes()
    info = BackupInfo(
        head=head,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        taken_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    record = {"seq": head.seq, "hash": head.hash, "sha256": info.sha256, "size": info.size}
    write_durably(
        out / INFO, (json.dumps({**record, "taken_at": info.taken_at}, indent=2) + "\n").encode()
    )
    return info


def read_info(directory: Path) -> BackupInfo:
    """The ``backup.json`` of a backup directory, checked against its copy.

    Raises:
        ConfigError: A missing or unreadable record, or a copy that does not match it.
    """
    try:
        data = json.loads((directory / INFO).read_text(encoding="utf-8"))
        info = BackupInfo(
            ChainHead(int(data["seq"]), str(data["hash"])),
            str(data["sha256"]),
            int(data["size"]),
            str(data["taken_at"]),
        )
        content = (directory / LEDGER).read_bytes()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{directory}: not a backup of `fedstats node backup` ({exc})",
            field="--from",
            hint="name a directory that `fedstats node backup --out` wrote",
        ) from None
    if hashlib.sha256(content).hexdigest() != info.sha256 or len(content) != info.size:
        raise ConfigError(
            f"{directory / LEDGER}: does not match its {INFO} (changed or truncated since)",
            reason=Reason.LEDGER_INCONSISTENT,
            field="--from",
            hint="use another backup",
        )
    return info


def restore(
    directory: Path, ledger: Path, chain_head: Path | None, *, allow_rollback: bool = False
) -> RestoreOutcome:
    """Install the backup in ``directory`` as ``ledger``; refuse a rollback unless allowed.

    Raises:
        ConfigError: ``LEDGER_INCONSISTENT`` for a copy that does not verify, that is
            not a prefix of the ledger it replaces, or that lies behind the chain head or
            the current ledger without ``allow_rollback``.
    """
    info = read_info(directory)
    copy = sqlite3.connect(f"file:{directory / LEDGER}?mode=ro", uri=True)
    try:
        _check_copy(copy, directory / LEDGER)
        behind_head = _behind_head(copy, chain_head)
        current = _compare_current(copy, ledger)
        spent_copy = _spent(copy)
    finally:
        copy.close()
    missing = max(behind_head, current.missing)
    if missing and not allow_rollback:
        raise ConfigError(
            f"{directory}: restoring this backup (audit entry {info.head.seq}) would roll the "
            f"ledger back by {missing} audit entries and give spent budget back",
            reason=Reason.LEDGER_INCONSISTENT,
            field="--from",
            hint="restore the latest backup; only if the newer entries are truly lost and "
            "the loss is accepted, pass --allow-rollback",
        )
    replaced = _install(directory / LEDGER, ledger)
    if chain_head is not None:
        if missing:  # explicitly allowed: the head must follow, or the node would not start
            chain_head.unlink(missing_ok=True)
        mirror(chain_head, info.head)
    given_back = {
        k: from_micro(v - spent_copy.get(k, 0))
        for k, v in current.spent.items()
        if v > spent_copy.get(k, 0)
    }
    return RestoreOutcome(info.head, replaced, missing, given_back)


@dataclass(frozen=True)
class _Current:
    missing: int
    spent: dict[str, int]


def _check_copy(db: sqlite3.Connection, path: Path) -> ChainHead:
    ok = db.execute("PRAGMA integrity_check").fetchone()
    problems = [] if ok and ok[0] == "ok" else [f"SQLite integrity check: {ok}"]
    problems += audit.reconcile(db)
    if problems:
        raise ConfigError(
            f"{path}: the copy does not verify: {'; '.join(problems[:3])}",
            reason=Reason.LEDGER_INCONSISTENT,
            field="node.state_dir",
            hint="`fedstats node audit --verify` on the ledger lists every problem",
        )
    return last_entry(db)


def _behind_head(copy: sqlite3.Connection, chain_head: Path | None) -> int:
    """How many entries the copy lacks of the mirrored head (0 when it holds it)."""
    head = read_head(chain_head) if chain_head is not None else None
    if head is None or not behind(copy, head):
        return 0
    last = last_entry(copy).seq
    if last >= head.seq:  # it holds that entry, but another one
        raise ConfigError(
            f"{chain_head}: the backup's audit entry {head.seq} is not the one the chain head "
            "names: the backup belongs to another node or another history",
            reason=Reason.LEDGER_INCONSISTENT,
            field="--from",
            hint="restore a backup of this node's own ledger",
        )
    return head.seq - last


def _compare_current(copy: sqlite3.Connection, ledger: Path) -> _Current:
    if not ledger.exists():
        return _Current(0, {})
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=60.0)
    try:
        mine, theirs = last_entry(copy), last_entry(db)
        spent = _spent(db)
        if theirs.seq == 0:
            return _Current(0, spent)
        shared = min(mine.seq, theirs.seq)
        row = db.execute("SELECT hash FROM audit WHERE seq = ?", (shared,)).fetchone()
        own = copy.execute("SELECT hash FROM audit WHERE seq = ?", (shared,)).fetchone()
        if shared and (row is None or own is None or row[0] != own[0]):
            raise ConfigError(
                f"{ledger}: the backup's audit chain is not the current ledger's (entry "
                f"{shared} differs): it belongs to another node or another history",
                reason=Reason.LEDGER_INCONSISTENT,
                field="--from",
                hint="restore a backup of this node's own ledger",
            )
        return _Current(max(theirs.seq - mine.seq, 0), spent)
    finally:
        db.close()


def _spent(db: sqlite3.Connection) -> dict[str, int]:
    rows = db.execute("SELECT dataset, SUM(micro_rho) FROM releases GROUP BY dataset")
    return {str(d): int(m or 0) for d, m in rows}


def _install(copy: Path, ledger: Path) -> Path | None:
    """Put ``copy`` in place of ``ledger``; where the replaced ledger was kept (if any).

    The copy goes to ``ledger.sqlite.restoring`` (fsynced) first, then the current ledger
    (its WAL folded in) is hard-linked to ``ledger.sqlite.before-restore-<UTC time>``, then
    the copy is renamed over the ledger and the directory fsynced: a crash at any point
    leaves the old ledger or the new one at ``ledger``, never neither.
    """

    def fill(out: BinaryIO) -> None:
        with open(copy, "rb") as source:
            shutil.copyfileobj(source, out)

    ledger.parent.mkdir(parents=True, exist_ok=True)
    partial = ledger.with_name(f"{LEDGER}.restoring")
    aside = None
    if ledger.exists():
        _fold_wal(ledger)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = ledger.with_name(f"{LEDGER}.before-restore-{stamp}")
        if aside.exists():
            raise ConfigError(
                f"{aside} already exists: a restore ran this very second",
                field="--from",
                hint="run the restore again in a second",
            )
    # write and fsync the copy beside the ledger before touching the ledger
    replace_durably(partial, fill, suffix=".tmp")
    for suffix in ("-wal", "-shm"):  # none after _fold_wal; never pair one with the copy
        ledger.with_name(ledger.name + suffix).unlink(missing_ok=True)
    if aside is not None:
        try:
            os.link(ledger, aside)  # the old ledger under its dated name, still in place
        except FileExistsError:
            raise
        except OSError:  # a filesystem without hard links: a copy
            shutil.copy2(ledger, aside)
            fsync_file(aside)
    fsync_directory(ledger.parent)
    os.replace(partial, ledger)
    fsync_directory(ledger.parent)
    return aside


def _fold_wal(ledger: Path) -> None:
    """Fold the WAL into the ledger file and leave it in rollback-journal mode."""
    db = sqlite3.connect(ledger, timeout=60.0)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA journal_mode=DELETE")
    finally:
        db.close()
