"""The ledger file's schema version: created current, upgraded in one transaction, or refused."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from common.errors import ConfigError
from node.ledger import Ledger
from node.ledger_schema import SCHEMA_VERSION

FIXTURE_LEDGER = Path(__file__).resolve().parents[1] / "fixtures/ledger_0_1/state/ledger.sqlite"


def _read(path: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def _open(path: Path) -> Ledger:
    return Ledger(path, "oldtown/2025", total_rho=2.0, max_rho_per_query=0.5)


def test_a_new_ledger_is_created_at_the_current_version(tmp_path: Path) -> None:
    ledger = _open(tmp_path / "ledger.sqlite")
    assert _read(ledger.path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    notes = _read(ledger.path, "SELECT version, note FROM schema_history ORDER BY version")
    assert notes[0] == (1, "created the budget ledger and the audit log")
    assert [v for v, _ in notes] == list(range(1, SCHEMA_VERSION + 1))
    _open(ledger.path)  # opening it again changes nothing
    assert len(_read(ledger.path, "SELECT * FROM schema_history")) == SCHEMA_VERSION


def test_an_upgrade_logs_each_step(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ledger.sqlite"
    shutil.copy(FIXTURE_LEDGER, path)
    with caplog.at_level("INFO", logger="node.ledger_schema"):
        state = _open(path).state()
    assert state.spent == 0.625
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == SCHEMA_VERSION
    assert str(path) in logged[0]
    assert "schema version 1: adopted a ledger of fedstats 0.1" in logged[0]


def test_a_failed_upgrade_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    shutil.copy(FIXTURE_LEDGER, path)
    # A table in the way of step 2: the upgrade fails part-way through.
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_history (x)")
    db.close()
    with pytest.raises(sqlite3.OperationalError, match="schema_history already exists"):
        _open(path)
    assert _read(path, "PRAGMA user_version") == [(0,)]
    assert _read(path, "SELECT * FROM schema_history") == []
    assert _read(path, "SELECT COUNT(*) FROM releases") == [(4,)]


def test_a_file_that_is_not_a_ledger_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE releases (query_id TEXT)")
    db.close()
    with pytest.raises(ConfigError, match="is not a fedstats ledger") as refused:
        _open(path)
    assert str(path) in refused.value.message
    assert _read(path, "PRAGMA user_version") == [(0,)]


def test_a_ledger_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    _open(path)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    db.close()
    with pytest.raises(ConfigError, match=f"schema version {SCHEMA_VERSION + 3}") as refused:
        _open(path)
    assert refused.value.field == "node.state_dir"
