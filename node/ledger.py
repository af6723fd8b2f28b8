"""The durable privacy-budget ledger (DESIGN section 4).

SQLite in WAL mode with ``synchronous=FULL``; every change runs in ``BEGIN IMMEDIATE``
so that concurrent processes serialise on the budget. A ledger holds one connection for
its lifetime (no open, checkpoint and close per operation); the gRPC threads take turns
on it under a lock. Other tools (a backup, the operator's CLI) open their own connections
to the same file, which WAL lets them do while the node runs. Budgets are integer
micro-rho. The order of a release is: reserve (charge), compute, store the answer and
commit; the answer leaves the node only after the commit, and the commit appends the
release to the audit log in the same transaction. Opening a ledger brings its file to
the current schema (`node.ledger_schema`). A reservation whose process died
before committing stays charged: nothing was released, and a retry with the same query
id adopts it and releases once, without a second charge.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.errors import BudgetError, ConfigError, FedstatsError, QueryError, Reason
from node import audit
from node.chainhead import ChainHead, check_not_behind, last_entry, mirror
from node.ledger_schema import upgrade
from privacy.budget import from_micro, to_micro

__all__ = [
    "BudgetState",
    "Ledger",
    "LedgerEntry",
    "Request",
    "Reservation",
    "StoredAnswer",
]


@dataclass(frozen=True)
class Request:
    """What a query asks of the ledger.

    Attributes:
        query_id: Idempotency key.
        spec_hash: Hash of what the query releases (tables and rho): equal specs share
            one answer.
        rho: zCDP the query would spend.
        coordinator: Who asks.
        request_sha256: Hash of the exact signed request bytes: a retry must match.
        coordinator_cap: The most rho this coordinator may spend on the dataset.
        legacy_spec_hash: The spec's hash as earlier releases stored it (a retry of a
            query id they stored matches it too); empty when the same as ``spec_hash``.
        fingerprint: The node's data and effective-config fingerprint the answer is
            computed over (`node.fingerprint`): the cache serves only answers of the same
            fingerprint, and a retried id whose answer came from another one is refused.
    """

    query_id: str
    spec_hash: str
    rho: float
    coordinator: str = ""
    request_sha256: str = ""
    coordinator_cap: float | None = None
    legacy_spec_hash: str = ""
    fingerprint: str = ""


@dataclass(frozen=True)
class Reservation:
    """A charge taken for a query that must now be computed, then committed or cancelled."""

    request: Request
    micro_rho: int

    @property
    def query_id(self) -> str:
        """The query's id."""
        return self.request.query_id


@dataclass(frozen=True)
class StoredAnswer:
    """An answer released before: a retry of the same id, or an identical query."""

    answer: bytes
    answered_by: str
    fingerprint: str = ""
    """What the answer was computed over ("" for answers released before fingerprints)."""
    position: ChainHead = field(default_factory=lambda: ChainHead(0, ""))
    cap_micro: int = 0
    """Charged to the asking coordinator's cap (not to the node's budget) by this call:
    the answer was paid for by another coordinator, and is served as if fresh."""


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
    coordinator: str
    rho: float
    state: str
    created_at: float
    answered_by: str


class Ledger:
    """Budget ledger and audit log of one dataset, shared safely by threads and processes.

    Args:
        path: The SQLite file.
        dataset: Key of the dataset's budget.
        total_rho: The dataset's budget.
        max_rho_per_query: The node's cap on one query.
        signer: The node's Ed25519 key, which signs audit entries; without it the
            ledger can be read but not written.
        chain_head: The file that mirrors the audit chain's head; opening a ledger
            that is behind it fails with ``LEDGER_ROLLED_BACK``.
        pool: Every dataset key of the same population (this one included): they share
            ``pool_rho`` and each coordinator's cap, since they hold the same persons.
        pool_rho: The population's budget (None: the pool is this dataset alone).
    """

    def __init__(
        self,
        path: Path,
        dataset: str,
        total_rho: float,
        max_rho_per_query: float,
        signer: Ed25519PrivateKey | None = None,
        chain_head: Path | None = None,
        pool: tuple[str, ...] = (),
        pool_rho: float | None = None,
    ) -> None:
        self.path = path
        self.dataset = dataset
        self.chain_head = chain_head
        self.pool = tuple(dict.fromkeys((dataset, *pool)))
        self.pool_micro = None if pool_rho is None else to_micro(pool_rho, round_up=False)
        self.total_micro = to_micro(total_rho, round_up=False)
        self.cap_micro = to_micro(max_rho_per_query, round_up=False)
        self.signer = signer
        self.owner = f"{_process_identity(os.getpid())}:{uuid.uuid4().hex}"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._mirrored = -1  # the audit entry this ledger last wrote to the chain head
        self._db = _open(path)
        self._closer = weakref.finalize(self, self._db.close)
        self._file = _identity(path)
        try:
            with self._connect() as db:
                upgrade(db, path)
                if signer is not None:  # a node about to spend: refuse a ledger rolled back
                    _check_consistent(db, path)
                    if chain_head is not None:
                        check_not_behind(db, path, chain_head)
                        self._mirror(db)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the ledger's connection (also done when the ledger is garbage-collected)."""
        with self._lock:
            self._closer()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """The ledger's connection, held by one thread at a time.

        Raises:
            RuntimeError: When the file was removed or replaced since the ledger opened
                it: the connection would write to a file nobody reads again.
        """
        with self._lock:
            if _identity(self.path) != self._file:
                raise RuntimeError(f"ledger file {self.path} was removed or replaced")
            yield self._db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # the connection outlives this call: leave it clean
                    db.execute("ROLLBACK")
                raise
            self._mirror(db)

    def _mirror(self, db: sqlite3.Connection) -> None:
        """Write the audit log's last entry to the chain head, unless this ledger already did.

        A transaction that appended no audit entry (a reservation, a cancel) leaves the
        head as this ledger last wrote it, and the head only moves forward: there is
        nothing to write, and no file is opened.
        """
        if self.chain_head is None:
            return
        head = last_entry(db)
        if head.seq != self._mirrored:
            mirror(self.chain_head, head)
            self._mirrored = head.seq

    def _audit(
        self,
        db: sqlite3.Connection,
        request: Request,
        event: str,
        *,
        answer_sha256: str = "",
        micro_rho: int = 0,
        reason: str = "",
        fingerprint: str = "",
    ) -> ChainHead:
        if self.signer is None:
            raise RuntimeError("this ledger has no signing key: it is read-only")
        entry = audit.append(
            db,
            self.signer,
            event=event,
            dataset=self.dataset,
            query_id=request.query_id,
            coordinator=request.coordinator,
            request_sha256=request.request_sha256,
            answer_sha256=answer_sha256,
            micro_rho=micro_rho,
            reason=reason,
            fingerprint=fingerprint,
        )
        return ChainHead(entry.seq, entry.hash)

    def reserve(self, request: Request) -> Reservation | StoredAnswer:
        """Charge a query, or find the answer it already has (logged as a replay).

        Returns:
            A Reservation to compute and commit, or the StoredAnswer to return as is.

        Raises:
            QueryError: The id was used for a different request, or is being computed.
            BudgetError: The query passes a cap or the remaining budget.
        """
        micro = to_micro(request.rho)
        with self._transaction() as db:
            row = db.execute(
                "SELECT spec_hash, request_sha256, state, owner, answer, answered_by, micro_rho,"
                " fingerprint FROM releases WHERE dataset = ? AND query_id = ?",
                (self.dataset, request.query_id),
            ).fetchone()
            if row is not None:
                outcome = self._known_id(db, request, row)
            else:
                outcome = self._new_id(db, request, micro)
            if isinstance(outcome, StoredAnswer):
                answer_hash = hashlib.sha256(outcome.answer).hexdigest()
                position = self._audit(
                    db,
                    request,
                    "replay",
                    answer_sha256=answer_hash,
                    micro_rho=outcome.cap_micro,
                    fingerprint=outcome.fingerprint,
                )
                outcome = replace(outcome, position=position)
        return outcome

    def _new_id(
        self, db: sqlite3.Connection, request: Request, micro: int
    ) -> Reservation | StoredAnswer:
        cached = db.execute(
            "SELECT query_id, answer FROM releases WHERE dataset = ? AND spec_hash = ?"
            " AND fingerprint = ? AND state = 'committed' AND answer IS NOT NULL"
            " ORDER BY created_at LIMIT 1",
            (self.dataset, request.spec_hash, request.fingerprint),
        ).fetchone()
        if cached is not None:
            cap_micro = 0 if self._has_paid(db, request) else micro
            if cap_micro:
                self._check_coordinator_cap(db, request, cap_micro)
            self._insert(db, request, 0, "committed", answered_by=cached[0], cap_micro=cap_micro)
            return StoredAnswer(
                answer=cached[1],
                answered_by=cached[0],
                fingerprint=request.fingerprint,
                cap_micro=cap_micro,
            )
        self._check_budget(db, request, micro)
        self._insert(db, request, micro, "reserved", answered_by=request.query_id)
        return Reservation(request=request, micro_rho=micro)

    def _known_id(
        self, db: sqlite3.Connection, request: Request, row: tuple[object, ...]
    ) -> Reservation | StoredAnswer:
        old_spec, old_request, state, owner, answer, answered_by, micro, fingerprint = row
        same_spec = old_spec in {request.spec_hash, request.legacy_spec_hash or request.spec_hash}
        if not same_spec or old_request != request.request_sha256:
            raise QueryError(
                f"query id {request.query_id!r} was already used for a different request",
                reason=Reason.QUERY_ID_REUSED,
                field="query_id",
                hint="a retry must resend the same signed bytes; a new query needs a new id",
            )
        if state == "committed":
            _check_same_data(request, str(fingerprint))
            if answer is None:  # an identical query: the answer lives with the first id
                answer = db.execute(
                    "SELECT answer FROM releases WHERE dataset = ? AND query_id = ?",
                    (self.dataset, answered_by),
                ).fetchone()[0]
            assert isinstance(answer, bytes)
            return StoredAnswer(
                answer=answer, answered_by=str(answered_by), fingerprint=str(fingerprint)
            )
        if owner == self.owner or _alive(str(owner)):
            raise QueryError(
                f"query {request.query_id!r} is being computed now",
                reason=Reason.QUERY_IN_PROGRESS,
                field="query_id",
                hint="retry in a few seconds",
            )
        db.execute(  # nothing was released: it is computed over the data served now
            "UPDATE releases SET owner = ?, fingerprint = ? WHERE dataset = ? AND query_id = ?",
            (self.owner, request.fingerprint, self.dataset, request.query_id),
        )
        return Reservation(request=request, micro_rho=int(str(micro)))

    def _check_budget(self, db: sqlite3.Connection, request: Request, micro: int) -> None:
        if micro > self.cap_micro:
            raise BudgetError(
                f"the query asks for rho {from_micro(micro):g}, over this node's per-query cap "
                f"{from_micro(self.cap_micro):g}",
                reason=Reason.QUERY_CAP_EXCEEDED,
                field="rho",
                hint=f"ask for rho <= {from_micro(self.cap_micro):g}",
            )
        self._check_coordinator_cap(db, request, micro)
        spent, pool_spent = self._spent_both(db)
        remaining = self.total_micro - spent
        if self.pool_micro is not None:
            remaining = min(remaining, self.pool_micro - pool_spent)
        if micro > remaining:
            raise BudgetError(
                f"the query asks for rho {from_micro(micro):g} but only "
                f"{from_micro(max(remaining, 0)):g} of {from_micro(self.total_micro):g} is left",
                reason=Reason.BUDGET_EXCEEDED,
                field="rho",
                hint="ask for less, or the data holder must grant a larger budget",
            )

    def _check_coordinator_cap(self, db: sqlite3.Connection, request: Request, micro: int) -> None:
        if request.coordinator_cap is None:
            return
        cap = to_micro(request.coordinator_cap, round_up=False)
        used = self._coordinator_used(db, request.coordinator)
        if used + micro > cap:
            raise BudgetError(
                f"coordinator {request.coordinator!r} has {from_micro(max(cap - used, 0)):g}"
                f" of its rho cap {from_micro(cap):g} left on this population "
                f"({', '.join(self.pool)})",
                reason=Reason.COORDINATOR_CAP_EXCEEDED,
                field="rho",
                hint="ask for less; the node operator sets rho_cap under [[coordinators]]",
            )

    def _has_paid(self, db: sqlite3.Connection, request: Request) -> bool:
        """Whether the coordinator was already served this spec on this dataset."""
        row = db.execute(
            "SELECT 1 FROM releases WHERE dataset = ? AND spec_hash = ? AND coordinator = ?"
            " AND fingerprint = ? AND state = 'committed' LIMIT 1",
            (self.dataset, request.spec_hash, request.coordinator, request.fingerprint),
        ).fetchone()
        return row is not None

    def _coordinator_used(self, db: sqlite3.Connection, coordinator: str) -> int:
        """Micro-rho of a coordinator's cap used on the population.

        Its fresh releases and the answers it was served that another coordinator paid for.
        """
        marks = ", ".join("?" * len(self.pool))
        row = db.execute(
            "SELECT COALESCE(SUM(micro_rho + cap_micro), 0) FROM releases"
            f" WHERE dataset IN ({marks}) AND coordinator = ?",
            (*self.pool, coordinator),
        ).fetchone()
        return int(row[0])

    def _insert(
        self,
        db: sqlite3.Connection,
        request: Request,
        micro: int,
        state: str,
        answered_by: str,
        cap_micro: int = 0,
    ) -> None:
        now = time.time()
        db.execute(
            "INSERT INTO releases (query_id, dataset, spec_hash, request_sha256, coordinator,"
            " micro_rho, state, owner, created_at, committed_at, answered_by, cap_micro,"
            " fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                request.query_id, self.dataset, request.spec_hash, request.request_sha256,
                request.coordinator, micro, state, self.owner, now,
                now if state == "committed" else None, answered_by, cap_micro,
                request.fingerprint,
            ),
        )  # fmt: skip

    def commit(self, reservation: Reservation, answer: bytes) -> ChainHead:
        """Store the answer, mark the charge committed and log the release, atomically.

        Returns:
            The release's position in the audit chain.
        """
        with self._transaction() as db:
            cur = db.execute(
                "UPDATE releases SET state = 'committed', answer = ?, committed_at = ?"
                " WHERE dataset = ? AND query_id = ? AND state = 'reserved' AND owner = ?",
                (answer, time.time(), self.dataset, reservation.query_id, self.owner),
            )
            if cur.rowcount != 1:
                raise RuntimeError(f"reservation {reservation.query_id!r} is no longer ours")
            position = self._audit(
                db,
                reservation.request,
                "release",
                answer_sha256=hashlib.sha256(answer).hexdigest(),
                micro_rho=reservation.micro_rho,
                fingerprint=reservation.request.fingerprint,
            )
        return position

    def answered(self, query_id: str, request_sha256: str) -> bool:
        """Whether this exact signed request (its id and bytes' hash) was answered here.

        Such a request is a retry: the ledger gives back the answer it stored
        (`reserve`), whatever the node serves now.
        """
        with self._connect() as db:
            row = db.execute(
                "SELECT 1 FROM releases WHERE dataset = ? AND query_id = ?"
                " AND request_sha256 = ? AND state = 'committed'",
                (self.dataset, query_id, request_sha256),
            ).fetchone()
        return row is not None

    def cancel(self, reservation: Reservation) -> None:
        """Drop a reservation whose computation failed before anything was released."""
        with self._transaction() as db:
            db.execute(
                "DELETE FROM releases WHERE dataset = ? AND query_id = ? AND state = 'reserved'"
                " AND owner = ?",
                (self.dataset, reservation.query_id, self.owner),
            )

    def record_refusal(self, request: Request, error: FedstatsError) -> None:
        """Log a refused query (nothing is charged)."""
        with self._transaction() as db:
            self._audit(
                db, request, "refusal", reason=error.reason, fingerprint=request.fingerprint
            )

    def _spent(self, db: sqlite3.Connection, pool: tuple[str, ...] = ()) -> int:
        """Micro-rho charged to the budget of this dataset (or of every dataset in ``pool``)."""
        datasets = pool or (self.dataset,)
        marks = ", ".join("?" * len(datasets))
        sql = f"SELECT COALESCE(SUM(micro_rho), 0) FROM releases WHERE dataset IN ({marks})"
        return int(db.execute(sql, datasets).fetchone()[0])

    def _spent_both(self, db: sqlite3.Connection) -> tuple[int, int]:
        """Micro-rho charged to this dataset, and to every dataset of its pool.

        The pool's sum is read only when it has a budget and another dataset: a pool of
        this dataset alone has spent exactly what the dataset has, so one SUM over the
        ledger's history is read instead of two (the same figures).
        """
        spent = self._spent(db)
        if self.pool_micro is None or self.pool == (self.dataset,):
            return spent, spent
        return spent, self._spent(db, self.pool)

    def state(self) -> BudgetState:
        """The budget left to this dataset: its own, or its population's when less.

        Total and spent are those of whichever leaves less; the cap is the node's.
        """
        with self._connect() as db:
            spent, pool_spent = self._spent_both(db)
            total = self.total_micro
            if self.pool_micro is not None and self.pool_micro - pool_spent < total - spent:
                total, spent = self.pool_micro, pool_spent
        return BudgetState(
            total=from_micro(total),
            spent=from_micro(spent),
            max_per_query=from_micro(self.cap_micro),
        )

    def released_sha256(self, query_id: str) -> str | None:
        """The answer hash the signed audit chain holds for a release of this dataset."""
        with self._connect() as db:
            row = db.execute(
                "SELECT answer_sha256 FROM audit WHERE event = 'release' AND dataset = ?"
                " AND query_id = ? ORDER BY seq DESC LIMIT 1",
                (self.dataset, query_id),
            ).fetchone()
        return None if row is None else str(row[0])

    def entries(self) -> list[LedgerEntry]:
        """Every ledger row of the dataset, oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT query_id, coordinator, micro_rho, state, created_at, answered_by"
                " FROM releases WHERE dataset = ? ORDER BY created_at",
                (self.dataset,),
            ).fetchall()
        return [
            LedgerEntry(str(q), str(c), from_micro(int(m)), str(s), float(t), str(a))
            for q, c, m, s, t, a in rows
        ]


def _check_same_data(request: Request, fingerprint: str) -> None:
    """Refuse a retry whose stored answer was computed over other data or mappings.

    Serving it would hand out a table that predates a fix as if it were current;
    charging anew under the same id would give one id two different answers. A new id
    asks for a new (charged) release. Answers stored before fingerprints ("") are
    served as before: their retry is the same signed request, answered once.
    """
    if fingerprint and fingerprint != request.fingerprint:
        raise QueryError(
            f"query id {request.query_id!r} was answered over the node's data fingerprint "
            f"{fingerprint[:12]}, but its data or mappings have changed since (now "
            f"{request.fingerprint[:12]}): the stored answer is stale",
            reason=Reason.DATA_CHANGED,
            field="query_id",
            hint="send the query again with a new id: it is a new release over the current "
            "data, charged as such",
        )


def _open(path: Path) -> sqlite3.Connection:
    """The ledger's connection: autocommit (transactions are explicit), WAL, full sync.

    Shared by the server's threads, which the ledger's lock serialises.
    """
    db = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
    except BaseException:
        db.close()
        raise
    return db


def _identity(path: Path) -> tuple[int, int] | None:
    """The file's device and inode (None when there is no file)."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


def _check_consistent(db: sqlite3.Connection, path: Path) -> None:
    """Refuse a ledger whose charges disagree with its signed audit log."""
    problems = audit.reconcile(db)
    if problems:
        shown = "; ".join(problems[:3]) + (
            f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        )
        raise ConfigError(
            f"{path}: the budget ledger disagrees with its signed audit log: {shown}",
            reason=Reason.LEDGER_INCONSISTENT,
            field="node.state_dir",
            hint="restore the state directory from its latest backup; "
            "`fedstats node audit --verify` lists every problem",
        )


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
    if _state(pid) in ("Z", "X"):  # killed but not yet reaped: it will never commit
        return False
    recorded = ":".join(parts[:3])
    return len(parts) < 4 or _process_identity(pid) == recorded


def _state(pid: int) -> str:
    """The process state letter from /proc (``Z`` zombie, ``X`` dead), or ``?``."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"
