"""`fedstats node backup` while a real node answers queries, and `fedstats node restore`:
a copy verifies (budget and audit chain), and a restore that would roll the ledger back is
refused without ``--allow-rollback``."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from common.errors import ConfigError, Reason
from fedstats.cli import main
from node.audit import verify_log
from node.backup import backup, restore
from node.config import load_config
from node.ledger import Ledger
from node.service import NodeService
from security.signing import load_private_key
from tests.support.cities import ServeCityFn
from tests.support.pki import query_request


def _spent(config_path: Path) -> float:
    config = load_config(config_path)
    ledger = Ledger(config.state_dir / "ledger.sqlite", config.dataset_id, 1e9, 1e9)
    return ledger.state().spent


def _verified(config_path: Path, ledger: Path) -> int:
    config = load_config(config_path)
    assert config.signing_key is not None
    public = load_private_key(config.signing_key, "t").public_key()
    check = verify_log(ledger, public, None)
    assert check.ok, check.problems
    return check.entries


def test_backup_under_load_restores_a_verified_ledger_and_refuses_a_rollback(
    serve_city: ServeCityFn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node = serve_city("vienna", persons=3_000)
    config = node.config_path
    answered: list[str] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def load() -> None:  # distinct rho each time: every query is charged and audited
        try:
            i = 0
            while not done.is_set():
                i += 1
                node.ask(query_request(f"load-{i}", rho=0.01 + i / 1000))
                answered.append(f"load-{i}")
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=load)
    worker.start()
    copies = []
    try:
        while len(answered) < 2 and worker.is_alive():
            worker.join(0.01)
        for n in range(3):  # each taken while the node writes
            assert (
                main(["node", "backup", "--config", str(config), "--out", str(tmp_path / f"b{n}")])
                == 0
            )
            copies.append(tmp_path / f"b{n}")
        taken = len(answered)
        while len(answered) < taken + 2 and worker.is_alive():  # writes after the last copy
            worker.join(0.01)
    finally:
        done.set()
        worker.join(60)
    assert not errors, errors
    node.stop()
    ledger = load_config(config).state_dir / "ledger.sqlite"
    served_spent, served_entries = _spent(config), _verified(config, ledger)
    assert served_entries == len(answered)

    # every copy taken under load is a consistent ledger whose chain and signatures verify
    counts = [_verified(config, c / "ledger.sqlite") for c in copies]
    assert 2 <= counts[0] <= counts[-1] < served_entries

    # restoring a copy taken mid-load would roll back: refused, nothing changed
    before = ledger.read_bytes()
    assert main(["node", "restore", "--config", str(config), "--from", str(copies[-1])]) == 2
    assert "roll the ledger back" in capsys.readouterr().err
    assert ledger.read_bytes() == before and _spent(config) == served_spent

    # a copy of the stopped node, the state directory lost: restored, and it serves again
    final = tmp_path / "final"
    backup(ledger, final)
    for path in ledger.parent.glob("ledger.sqlite*"):
        path.unlink()
    assert main(["node", "restore", "--config", str(config), "--from", str(final)]) == 0
    assert _spent(config) == served_spent
    assert main(["node", "audit", "--config", str(config), "--verify"]) == 0
    NodeService(load_config(config))  # starts: not behind its chain head

    # with --allow-rollback the mid-load copy goes back in, its own budget verified
    assert main(["node", "restore", "--config", str(config), "--from", str(copies[0]),
                 "--allow-rollback"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "rolled back" in out and "kept as" in out and "no longer charged" in out
    assert _verified(config, ledger) == counts[0]
    assert main(["node", "audit", "--config", str(config), "--verify"]) == 0
    assert 0 < _spent(config) < served_spent


def test_a_backup_of_another_history_or_altered_is_refused(
    serve_city: ServeCityFn, tmp_path: Path
) -> None:
    node = serve_city("vienna", persons=3_000)
    node.ask(query_request("q-1", rho=0.01))
    node.stop()
    config = load_config(node.config_path)
    ledger = config.state_dir / "ledger.sqlite"
    backup(ledger, tmp_path / "b")
    copy = tmp_path / "b" / "ledger.sqlite"
    copy.write_bytes(copy.read_bytes()[:-1] + b"\x01")
    with pytest.raises(ConfigError) as err:
        restore(tmp_path / "b", ledger, config.chain_head)
    assert err.value.reason == Reason.LEDGER_INCONSISTENT and "does not match" in err.value.message
    with pytest.raises(ConfigError, match="already holds a backup"):
        backup(ledger, tmp_path / "b")
    other = serve_city("wien-2", "vienna", persons=3_000)
    other.ask(query_request("q-x", rho=0.02))
    other.stop()
    backup(load_config(other.config_path).state_dir / "ledger.sqlite", tmp_path / "foreign")
    with pytest.raises(ConfigError, match="another node or another history"):
        restore(tmp_path / "foreign", ledger, config.chain_head, allow_rollback=True)


def test_a_restore_that_fails_midway_leaves_the_ledger_in_place(
    serve_city: ServeCityFn, tmp_path: Path
) -> None:
    """The copy cannot be written beside the ledger (here a directory stands where it
    would go; a full disk or an I/O error fails the same step): the ledger the restore
    would replace is still there, whole, and the node's history with it."""
    node = serve_city("vienna", persons=3_000)
    node.ask(query_request("q-1", rho=0.01))
    backup(load_config(node.config_path).state_dir / "ledger.sqlite", tmp_path / "b")
    node.ask(query_request("q-2", rho=0.02))
    node.stop()
    node.service.ledger.close()  # as the node process would on exit
    config = load_config(node.config_path)
    ledger = config.state_dir / "ledger.sqlite"
    entries = _verified(node.config_path, ledger)
    obstacle = ledger.with_name("ledger.sqlite.restoring")
    obstacle.mkdir()
    with pytest.raises(OSError):
        restore(tmp_path / "b", ledger, config.chain_head, allow_rollback=True)
    assert _verified(node.config_path, ledger) == entries  # untouched
    assert not list(ledger.parent.glob("*.before-restore-*"))
    assert not list(ledger.parent.glob("*.tmp"))
    obstacle.rmdir()
    outcome = restore(tmp_path / "b", ledger, config.chain_head, allow_rollback=True)
    assert outcome.replaced is not None and outcome.rolled_back > 0
    assert _verified(node.config_path, outcome.replaced) == entries  # kept, whole
    assert ledger.read_bytes() == (tmp_path / "b" / "ledger.sqlite").read_bytes()
    assert sorted(p.name for p in ledger.parent.iterdir() if "restor" in p.name) == [
        outcome.replaced.name
    ]
