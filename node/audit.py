"""The node's hash-chained, signed audit log (DESIGN section 5).

Every release, every replay of a stored answer and every refusal is one entry. An
entry's hash covers its fields and the previous entry's hash; the node signs the hash
with its Ed25519 key. Entries live in the ledger's SQLite file and a release's entry is
written in the same transaction as its budget charge, so the log and the ledger cannot
disagree. ``verify_log`` recomputes the chain, checks every signature, checks the chain
against its mirrored head (`node.chainhead`) and reconciles the ledger with the log in both
directions (`reconcile`): every charge in the ledger has its release entry with the same
rho, and every release entry has its charge, so a deleted, zeroed or altered charge and a
truncated log are all found. The table is created and versioned with the
ledger's (`node.ledger_schema`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from node.chainhead import behind, read_head
from security.signing import sign, verify

__all__ = [
    "GENESIS",
    "SCHEMA",
    "AuditCheck",
    "AuditEntry",
    "append",
    "read_entries",
    "reconcile",
    "verify_log",
]

GENESIS = "0" * 64
SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq            INTEGER PRIMARY KEY,
    at_ms          INTEGER NOT NULL,
    event          TEXT NOT NULL CHECK (event IN ('release', 'replay', 'refusal')),
    dataset        TEXT NOT NULL,
    query_id       TEXT NOT NULL,
    coordinator    TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    answer_sha256  TEXT NOT NULL,
    micro_rho      INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    prev           TEXT NOT NULL,
    hash           TEXT NOT NULL,
    signature      BLOB NOT NULL
);
"""
_FIELDS = (
    "seq", "at_ms", "event", "dataset", "query_id", "coordinator", "request_sha256",
    "answer_sha256", "micro_rho", "reason", "prev",
)  # fmt: skip


@dataclass(frozen=True)
class AuditEntry:
    """One audit entry, as stored."""

    seq: int
    at_ms: int
    event: str
    dataset: str
    query_id: str
    coordinator: str
    request_sha256: str
    answer_sha256: str
    micro_rho: int
    reason: str
    prev: str
    hash: str = ""
    signature: bytes = b""
    fingerprint: str = ""  # the node's data and config fingerprint (schema 4; "" before)

    def digest(self) -> str:
        """SHA-256 over the canonical JSON of every field but the hash and signature.

        The fingerprint joins the hashed fields only when set, so every entry written
        before it existed keeps its hash and signature.
        """
        fields = [getattr(self, f) for f in _FIELDS]
        if self.fingerprint:
            fields.append(self.fingerprint)
        body = json.dumps(fields, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()


def append(
    db: sqlite3.Connection,
    key: Ed25519PrivateKey,
    *,
    event: str,
    dataset: str,
    query_id: str,
    coordinator: str = "",
    request_sha256: str = "",
    answer_sha256: str = "",
    micro_rho: int = 0,
    reason: str = "",
    fingerprint: str = "",
) -> AuditEntry:
    """Append one signed entry; the caller holds the write transaction."""
    last = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (1, GENESIS) if last is None else (int(last[0]) + 1, str(last[1]))
    entry = AuditEntry(
        seq, int(time.time() * 1000), event, dataset, query_id, coordinator, request_sha256,
        answer_sha256, micro_rho, reason, prev, fingerprint=fingerprint,
    )  # fmt: skip
    digest = entry.digest()
    signature = sign(key, bytes.fromhex(digest))
    db.execute(
        f"INSERT INTO audit ({', '.join(_FIELDS)}, hash, signature, fingerprint)"
        f" VALUES ({', '.join('?' * (len(_FIELDS) + 3))})",
        (*[getattr(entry, f) for f in _FIELDS], digest, signature, fingerprint),
    )
    return AuditEntry(**{**entry.__dict__, "hash": digest, "signature": signature})


def read_entries(path: Path) -> list[AuditEntry]:
    """Every entry of the log, in order."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        columns = {str(c) for (c,) in db.execute("SELECT name FROM pragma_table_info('audit')")}
        extra = ", fingerprint" if "fingerprint" in columns else ""  # schema 4 on
        rows = db.execute(
            f"SELECT {', '.join(_FIELDS)}, hash, signature{extra} FROM audit ORDER BY seq"
        ).fetchall()
    finally:
        db.close()
    return [AuditEntry(*row) for row in rows]


@dataclass
class AuditCheck:
    """The outcome of verifying a log."""

    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the chain, the signatures and the ledger cross-check all hold."""
        return not self.problems


def verify_log(
    path: Path, public_key: Ed25519PublicKey, chain_head: Path | None = None
) -> AuditCheck:
    """Check the chain, every signature, the mirrored head, and the ledger both ways."""
    check = AuditCheck()
    entries = read_entries(path)
    prev = GENESIS
    for expected_seq, entry in enumerate(entries, start=1):
        where = f"entry {entry.seq}"
        if entry.seq != expected_seq:
            check.problems.append(f"{where}: sequence gap, expected {expected_seq}")
        if entry.prev != prev:
            check.problems.append(f"{where}: does not link to the previous entry")
        if entry.digest() != entry.hash:
            check.problems.append(f"{where}: contents do not match its hash (altered)")
        if not verify(public_key, bytes.fromhex(entry.hash), bytes(entry.signature)):
            check.problems.append(f"{where}: signature does not verify with the node's key")
        prev = entry.hash
    check.entries = len(entries)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        check.problems += reconcile(db)
        if chain_head is not None:
            head = read_head(chain_head)
            problem = behind(db, head) if head is not None else ""
            if problem:
                check.problems.append(f"{chain_head}: {problem} (rolled back or truncated)")
    finally:
        db.close()
    return check


def reconcile(db: sqlite3.Connection) -> list[str]:
    """Compare the ledger's charges with the log's release entries, in both directions."""
    logged = {
        (str(d), str(q)): int(m)
        for d, q, m in db.execute(
            "SELECT dataset, query_id, micro_rho FROM audit WHERE event = 'release'"
        )
    }
    charged = {
        (str(d), str(q)): int(m)
        for d, q, m in db.execute(
            "SELECT dataset, query_id, micro_rho FROM releases WHERE state = 'committed'"
            " AND answered_by = query_id"
        )
    }
    problems = []
    for (dataset, query_id), micro in logged.items():
        if (dataset, query_id) not in charged:
            problems.append(f"release {dataset}/{query_id} is logged but its charge is missing")
        elif charged[(dataset, query_id)] != micro:
            problems.append(
                f"release {dataset}/{query_id}: the ledger charges {charged[(dataset, query_id)]}"
                f" micro-rho but the log says {micro} (altered)"
            )
    for (dataset, query_id), micro in charged.items():
        if micro > 0 and (dataset, query_id) not in logged:
            problems.append(f"release {dataset}/{query_id} is in the ledger but not logged")
    return problems + _reconcile_caps(db)


def _reconcile_caps(db: sqlite3.Connection) -> list[str]:
    """Compare the charges to coordinators' caps with the log's replay entries.

    A coordinator served an answer another coordinator paid for is charged on its cap;
    the replay entry carries that charge. Both directions are checked.
    """
    columns = {str(c) for (c,) in db.execute("SELECT name FROM pragma_table_info('releases')")}
    if "cap_micro" not in columns:  # a ledger not yet upgraded has no such charges
        return []
    logged = {
        (str(d), str(q)): int(m)
        for d, q, m in db.execute(
            "SELECT dataset, query_id, micro_rho FROM audit WHERE event = 'replay'"
            " AND micro_rho > 0"
        )
    }
    charged = {
        (str(d), str(q)): int(m)
        for d, q, m in db.execute(
            "SELECT dataset, query_id, cap_micro FROM releases WHERE state = 'committed'"
            " AND answered_by != query_id"
        )
    }
    problems = []
    for key, micro in logged.items():
        if charged.get(key) != micro:
            problems.append(
                f"answer {key[0]}/{key[1]}: the log charges {micro} micro-rho to the "
                f"coordinator's cap but the ledger {charged.get(key, 'has no row')} (altered)"
            )
    for key, micro in charged.items():
        if micro > 0 and key not in logged:
            problems.append(
                f"answer {key[0]}/{key[1]} charges the coordinator's cap but is not logged"
            )
    return problems
