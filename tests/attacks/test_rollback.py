"""A budget that only moves forward (DESIGN sections 4 and 5): every way of giving spent
budget back through the state directory is found by `fedstats node audit --verify` and
refused when the node starts (``LEDGER_INCONSISTENT``)."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from common.errors import ConfigError, Reason
from fedstats.cli import main
from indicators.spec import Query
from node.config import load_config
from node.service import NodeService
from tests.support.cities import SyntheticCities

QUERY = Query(("employment_rate",), "citizen", rho=0.1)


def node_config(tmp_path: Path, cities: SyntheticCities) -> Path:
    config = tmp_path / "vienna.toml"
    config.write_text(cities.node_toml("vienna", rho_budget=1.0, max_rho=1.0))
    return config


def answer(config: Path, *query_ids: str) -> NodeService:
    service = NodeService(load_config(config))
    for query_id in query_ids:  # q1, q2, ...: each a different rho, so each is charged
        rho = 0.1 + int(query_id[1:]) / 100
        service.run_query(query_id, Query(QUERY.indicators, QUERY.group_dim, rho=rho))
    return service


def ledger(config: Path) -> Path:
    return config.parent / "state-vienna" / "ledger.sqlite"


def sql(config: Path, statement: str) -> None:
    with sqlite3.connect(ledger(config)) as db:
        db.execute(statement)


def delete_the_ledger(config: Path) -> None:
    for path in ledger(config).parent.glob("ledger.sqlite*"):
        path.unlink()


def restore_an_older_copy(config: Path) -> None:
    """The state directory as it was after the first query (a backup, a snapshot)."""
    shutil.rmtree(ledger(config).parent)
    shutil.copytree(config.parent / "backup", ledger(config).parent)


TAMPERING: dict[str, Callable[[Path], None]] = {
    "ledger deleted": delete_the_ledger,
    "release row deleted": lambda c: sql(c, "DELETE FROM releases WHERE query_id = 'q2'"),
    "charge zeroed": lambda c: sql(c, "UPDATE releases SET micro_rho = 0 WHERE query_id = 'q2'"),
    "charge lowered": lambda c: sql(c, "UPDATE releases SET micro_rho = 1 WHERE query_id = 'q3'"),
    "audit truncated": lambda c: sql(c, "DELETE FROM audit WHERE seq >= 2"),
    "state restored from an older copy": restore_an_older_copy,
}


@pytest.mark.parametrize("tamper", list(TAMPERING), ids=list(TAMPERING))
def test_tampering_is_detected_and_refused_at_start(
    tmp_path: Path, cities: SyntheticCities, tamper: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = node_config(tmp_path, cities)
    answer(config, "q1")
    shutil.copytree(ledger(config).parent, tmp_path / "backup")
    spent = answer(config, "q2", "q3").budget().spent
    assert main(["node", "audit", "--config", str(config), "--verify"]) == 0
    TAMPERING[tamper](config)
    capsys.readouterr()
    assert main(["node", "audit", "--config", str(config), "--verify"]) == 1
    assert "FAILED" in capsys.readouterr().out
    with pytest.raises(ConfigError) as info:
        NodeService(load_config(config))
    assert info.value.reason == Reason.LEDGER_INCONSISTENT
    assert spent == pytest.approx(0.11 + 0.12 + 0.13)


def test_an_untouched_node_restarts_and_an_old_query_id_gets_its_stored_answer(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    config = node_config(tmp_path, cities)
    query = Query(QUERY.indicators, QUERY.group_dim, rho=0.11)
    first = answer(config, "q1").run_query("q1", query)
    again = NodeService(load_config(config)).run_query("q1", query)
    assert again.tables == first.tables and again.cached
    assert again.audit_seq > first.audit_seq
