"""The durable privacy-budget ledger (DESIGN section 4).

SQLite in WAL mode with ``synchronous=FULL``; every change runs in ``BEGIN IMMEDIATE``
so that concurrent threads and processes serialise on the budget. Budgets are integer
micro-rho. The order of a release is: reserve (charge), compute, store the answer and
commit; the answer leaves the node only after the commit. A reservation whose process
died before committing stays charged: nothing was released, and a retry with the same
query id adopts it and releases once, without a second charge.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from indicators.errors import BudgetError, QueryError
from privacy.budget import from_micro, to_micro

__all__ = ["BudgetState", "Ledger", "LedgerEntry", "Reservation", "StoredAnswer"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS releases (
    query_id     TEXT NOT NULL,
    dataset      TEXT NOT NULL,
    spec_hash    TEXT NOT NULL,
    micro_rho    INTEGER NOT NULL CHECK (micro_rho >= 0),
    state        TEXT NOT NULL CHECK (state IN ('reserved', 'committed')),
    owner        TEXT NOT NULL,
    created_at   REAL NOT NULL,
    committed_at REAL,
    answer       BLOB,
    answered_by  TEXT,
    PRIMARY KEY (dataset, query_id)
);
CREATE INDEX IF NOT EXISTS releases_by_spec ON releases (dataset, spec_hash, state);
"""


@dataclass(frozen=True)
class Reservation:
    """A charge taken for a query that must now be computed, then committed or cancelled."""

    query_id: str
    micro_rho: int


@dataclass(frozen=True)
class StoredAnswer:
    """An answer released before: a retry of the same id, or an identical query."""

    answer: bytes
    answered_by: str


@dataclass(frozen=True)
class BudgetState:
    """Budget of one dataset, in rho."""

    total: float
    spent: float
    max_per_query: float

    @property
    def remaining(self) -> float:
        """Rho left to spend."""
        return max(self.total - self.spent, 0.0)


@dataclass(frozen=True)
class LedgerEntry:
    """One row of the ledger, for the operator's summary."""

    query_id: str
    spec_hash: str
    rho: float
    state: str
    created_at: float
    answered_by: str


class Ledger:
    """Budget ledger of one dataset, shared safely by threads and processes."""

    def __init__(
        self, path: Path, dataset: str, total_rho: float, max_rho_per_query: float
    ) -> None:
        self.path = path
        self.dataset = dataset
        self.total_micro = to_micro(total_rho, round_up=False)
        self.cap_micro = to_micro(max_rho_per_query, round_up=False)
        self.owner = f"{_process_identity(os.getpid())}:{uuid.uuid4().hex}"
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def reserve(self, query_id: str, spec_hash: str, rho: float) -> Reservation | StoredAnswer:
        """Charge a query, or find the answer it already has.

        Returns:
            A Reservation to compute and commit, or the StoredAnswer to return as is.

        Raises:
            QueryError: The id was used for a different query, or is being computed now.
            BudgetError: The query passes the per-query cap or the remaining budget.
        """
        micro = to_micro(rho)
        with self._transaction() as db:
            row = db.execute(
                "SELECT spec_hash, state, owner, answer, answered_by, micro_rho"
                " FROM releases WHERE dataset = ? AND query_id = ?",
                (self.dataset, query_id),
            ).fetchone()
            if row is not None:
                return self._known_id(db, query_id, spec_hash, row)
            cached = db.execute(
                "SELECT query_id, answer FROM releases WHERE dataset = ? AND spec_hash = ?"
                " AND state = 'committed' AND answer IS NOT NULL ORDER BY created_at LIMIT 1",
                (self.dataset, spec_hash),
            ).fetchone()
            if cached is not None:
                self._insert(db, query_id, spec_hash, 0, "committed", answered_by=cached[0])
                return StoredAnswer(answer=cached[1], answered_by=cached[0])
            self._check_budget(db, micro)
            self._insert(db, query_id, spec_hash, micro, "reserved", answered_by=query_id)
        return Reservation(query_id=query_id, micro_rho=micro)

    def _known_id(
        self, db: sqlite3.Connection, query_id: str, spec_hash: str, row: tuple[object, ...]
    ) -> Reservation | StoredAnswer:
        old_hash, state, owner, answer, answered_by, micro = row
        if old_hash != spec_hash:
            raise QueryError(
                f"query id {query_id!r} was already used for a different query",
                reason="QUERY_ID_REUSED",
                field="query_id",
                hint="use a fresh query id for a new query",
            )
        if state == "committed":
            if answer is None:  # an identical query: the answer lives with the first id
                answer = db.execute(
                    "SELECT answer FROM releases WHERE dataset = ? AND query_id = ?",
                    (self.dataset, answered_by),
                ).fetchone()[0]
            assert isinstance(answer, bytes)
            return StoredAnswer(answer=answer, answered_by=str(answered_by))
        if _alive(str(owner)) and owner != self.owner:
            raise QueryError(
                f"query {query_id!r} is being computed by another process",
                reason="QUERY_IN_PROGRESS",
                field="query_id",
                hint="retry in a few seconds",
            )
        if owner == self.owner:
            raise QueryError(
                f"query {query_id!r} is being computed now",
                reason="QUERY_IN_PROGRESS",
                field="query_id",
                hint="retry in a few seconds",
            )
        db.execute(
            "UPDATE releases SET owner = ? WHERE dataset = ? AND query_id = ?",
            (self.owner, self.dataset, query_id),
        )
        return Reservation(query_id=query_id, micro_rho=int(str(micro)))

    def _check_budget(self, db: sqlite3.Connection, micro: int) -> None:
        if micro > self.cap_micro:
            raise BudgetError(
                f"the query asks for rho {from_micro(micro):g}, over this node's per-query cap "
                f"{from_micro(self.cap_micro):g}",
                reason="QUERY_CAP_EXCEEDED",
                field="rho",
                hint=f"ask for rho <= {from_micro(self.cap_micro):g}",
            )
        spent = self._spent(db)
        remaining = self.total_micro - spent
        if micro > remaining:
            raise BudgetError(
                f"the query asks for rho {from_micro(micro):g} but only "
                f"{from_micro(max(remaining, 0)):g} of {from_micro(self.total_micro):g} is left",
                reason="BUDGET_EXCEEDED",
                field="rho",
                hint="ask for less, or the data holder must grant a larger budget",
            )

    def _insert(
        self,
        db: sqlite3.Connection,
        query_id: str,
        spec_hash: str,
        micro: int,
        state: str,
        answered_by: str,
    ) -> None:
        db.execute(
            "INSERT INTO releases (query_id, dataset, spec_hash, micro_rho, state, owner,"
            " created_at, committed_at, answered_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                query_id,
                self.dataset,
                spec_hash,
                micro,
                state,
                self.owner,
                time.time(),
                time.time() if state == "committed" else None,
                answered_by,
            ),
        )

    def commit(self, reservation: Reservation, answer: bytes) -> None:
        """Store the answer and mark the charge committed: after this it may leave."""
        with self._transaction() as db:
            cur = db.execute(
                "UPDATE releases SET state = 'committed', answer = ?, committed_at = ?"
                " WHERE dataset = ? AND query_id = ? AND state = 'reserved' AND owner = ?",
                (answer, time.time(), self.dataset, reservation.query_id, self.owner),
            )
            if cur.rowcount != 1:
                raise RuntimeError(f"reservation {reservation.query_id!r} is no longer ours")

    def cancel(self, reservation: Reservation) -> None:
        """Drop a reservation whose computation failed before any noise was drawn."""
        with self._transaction() as db:
            db.execute(
                "DELETE FROM releases WHERE dataset = ? AND query_id = ? AND state = 'reserved'"
                " AND owner = ?",
                (self.dataset, reservation.query_id, self.owner),
            )

    def _spent(self, db: sqlite3.Connection) -> int:
        row = db.execute(
            "SELECT COALESCE(SUM(micro_rho), 0) FROM releases WHERE dataset = ?", (self.dataset,)
        ).fetchone()
        return int(row[0])

    def state(self) -> BudgetState:
        """The dataset's budget: total, spent (committed and reserved) and the cap."""
        with self._connect() as db:
            spent = self._spent(db)
        return BudgetState(
            total=from_micro(self.total_micro),
            spent=from_micro(spent),
            max_per_query=from_micro(self.cap_micro),
        )

    def entries(self) -> list[LedgerEntry]:
        """Every ledger row of the dataset, oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT query_id, spec_hash, micro_rho, state, created_at, answered_by"
                " FROM releases WHERE dataset = ? ORDER BY created_at",
                (self.dataset,),
            ).fetchall()
        return [
            LedgerEntry(str(q), str(h), from_micro(int(m)), str(s), float(t), str(a))
            for q, h, m, s, t, a in rows
        ]


def _process_identity(pid: int) -> str:
    """``pid:start:boot``: tells a process from a later one that reuses its pid.

    The start time (clock ticks since boot) and the boot id come from Linux's /proc;
    elsewhere they are empty and only the pid is compared.
    """
    start = boot = ""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        start = stat.rsplit(")", 1)[1].split()[19]  # field 22: starttime
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except (OSError, IndexError):
        pass
    return f"{pid}:{start}:{boot}"


def _alive(owner: str) -> bool:
    """Whether the process that wrote a reservation still runs (the ledger is node-local).

    A reservation is alive only if a process with its pid exists now *and* started at
    the same moment of the same boot; after a restart (where the node may be PID 1
    again) or pid reuse, the reservation is recognised as abandoned.
    """
    parts = owner.split(":")
    try:
        pid = int(parts[0])
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        pass
    recorded = ":".join(parts[:3])
    return len(parts) < 4 or _process_identity(pid) == recorded
