"""The ledger file's schema and its versions: budget ledger and audit log in one SQLite file.

The version is SQLite's ``PRAGMA user_version``. History:

1. Release 0.1: the ``releases`` ledger and the ``audit`` log. Its files carry no
   version (``user_version`` 0); a node adopts one as version 1 after checking that its
   tables are those of a ledger.
2. ``schema_history``: one row per version the file was brought to, saying when, by
   which fedstats release and what was done, so that an operator can see what changed
   a ledger.
3. ``releases.cap_micro``: rho charged to the asking coordinator's cap, not to the
   node's budget, when it is served an answer another coordinator paid for (0 on every
   row written before).
4. ``releases.fingerprint`` and ``audit.fingerprint``: the node's data and
   effective-config fingerprint each answer was computed over (`node.fingerprint`); the
   answer cache is keyed on it. Empty on every row written before (an audit entry's hash
   covers the fingerprint only when it is set, so old entries verify unchanged).

A node opens its ledger through `upgrade`: a new file gets the current schema, an
older one is upgraded in place in one transaction (every step or none) and each step is
logged, a file from a newer release is refused. Steps only ever add: nothing that a
budget or the audit chain depends on is rewritten, so the charges, the reservations and
every signed audit entry stay exactly as they were.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from common.errors import ConfigError
from common.versions import software_version
from node import audit

__all__ = ["SCHEMA_VERSION", "upgrade"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4
"""The schema this release writes; bump it with a new entry in ``_STEPS``."""

_RELEASES = """
CREATE TABLE releases (
    query_id       TEXT NOT NULL,
    dataset        TEXT NOT NULL,
    spec_hash      TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    coordinator    TEXT NOT NULL,
    micro_rho      INTEGER NOT NULL CHECK (micro_rho >= 0),
    state          TEXT NOT NULL CHECK (state IN ('reserved', 'committed')),
    owner          TEXT NOT NULL,
    created_at     REAL NOT NULL,
    committed_at   REAL,
    answer         BLOB,
    answered_by    TEXT,
    PRIMARY KEY (dataset, query_id)
)
"""
_RELEASES_BY_SPEC = "CREATE INDEX releases_by_spec ON releases (dataset, spec_hash, state)"
_HISTORY = """
CREATE TABLE schema_history (
    version     INTEGER PRIMARY KEY,
    applied_at  REAL NOT NULL,
    software    TEXT NOT NULL,
    note        TEXT NOT NULL
)
"""
_CAP_MICRO = (
    "ALTER TABLE releases ADD COLUMN cap_micro INTEGER NOT NULL DEFAULT 0 CHECK (cap_micro >= 0)"
)
_FINGERPRINTS = (
    "ALTER TABLE releases ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE audit ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''",
)
# Version 1's tables and the columns a release-0.1 file must have to be adopted.
_V1_COLUMNS = {
    "releases": {
        "query_id", "dataset", "spec_hash", "request_sha256", "coordinator", "micro_rho",
        "state", "owner", "created_at", "committed_at", "answer", "answered_by",
    },
    "audit": {
        "seq", "at_ms", "event", "dataset", "query_id", "coordinator", "request_sha256",
        "answer_sha256", "micro_rho", "reason", "prev", "hash", "signature",
    },
}  # fmt: skip
# Each version after the first: what it does, and its statements (run in one transaction).
_STEPS: dict[int, tuple[str, tuple[str, ...]]] = {
    2: ("record every schema change in schema_history", (_HISTORY,)),
    3: (
        "charge a coordinator's cap for answers another coordinator paid for (cap_micro)",
        (_CAP_MICRO,),
    ),
    4: (
        "key answers on the data and config fingerprint they were computed over",
        _FINGERPRINTS,
    ),
}


def upgrade(db: sqlite3.Connection, path: Path) -> int:
    """Bring the ledger file to `SCHEMA_VERSION`, creating it when it is new.

    Args:
        db: A connection in autocommit mode (``isolation_level=None``) to the file.
        path: The file, for messages.

    Returns:
        The version the file had before (0 for a new file).

    Raises:
        ConfigError: The file was written by a newer release, or is not a ledger.
    """
    if _version(db) == SCHEMA_VERSION:
        return SCHEMA_VERSION
    db.execute("BEGIN IMMEDIATE")  # another process may be opening the same file now
    try:
        found = _version(db)
        done = _steps(db, path, found)
        software = software_version()
        db.executemany(
            "INSERT INTO schema_history (version, applied_at, software, note) VALUES (?, ?, ?, ?)",
            [(version, time.time(), software, note) for version, note in done],
        )
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    for version, note in done:
        log.info("ledger %s: now at schema version %d: %s", path, version, note)
    return found


def _version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _steps(db: sqlite3.Connection, path: Path, found: int) -> list[tuple[int, str]]:
    """Run every step from ``found`` to the current version; what each did, in order."""
    if found > SCHEMA_VERSION:
        raise ConfigError(
            f"{path}: this ledger has schema version {found}, written by a newer fedstats "
            f"release; this one ({software_version()}) knows versions up to {SCHEMA_VERSION}",
            field="node.state_dir",
            hint="serve this state directory with the release that wrote it, or a newer "
            "one: a ledger is never downgraded",
        )
    done: list[tuple[int, str]] = []
    if found == SCHEMA_VERSION:  # another process upgraded it while this one waited
        return done
    if found == 0:
        done.append((1, _first_version(db, path)))
    for version in range(max(found, 1) + 1, SCHEMA_VERSION + 1):
        note, statements = _STEPS[version]
        for statement in statements:
            db.execute(statement)
        done.append((version, note))
    return done


def _first_version(db: sqlite3.Connection, path: Path) -> str:
    """Create version 1's tables in a new file, or adopt a release-0.1 file as version 1."""
    tables = {
        str(name): {str(c) for (c,) in db.execute("SELECT name FROM pragma_table_info(?)", (name,))}
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    if not tables:
        for statement in (_RELEASES, _RELEASES_BY_SPEC, audit.SCHEMA):
            db.execute(statement)
        return "created the budget ledger and the audit log"
    for name, columns in _V1_COLUMNS.items():
        if not columns <= tables.get(name, set()):
            raise ConfigError(
                f"{path} is not a fedstats ledger: it has no {name} table with the columns "
                f"{', '.join(sorted(columns))}",
                field="node.state_dir",
                hint="point [node] state_dir at the node's own state directory",
            )
    return "adopted a ledger of fedstats 0.1 (no schema version): tables unchanged"
