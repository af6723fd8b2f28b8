"""A budget that only moves forward (DESIGN sections 4 and 5): every way of giving spent
budget back through the state directory is found by `fedstats node audit --verify` and
refused when the node starts (``LEDGER_INCONSISTENT``)."""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from common.errors import ConfigError, Reason
from coordinator.run import run_query
from fedstats.cli import main
from indicators.spec import Query
from node.config import load_config
from node.service import NodeService
from protos import node_pb2 as pb
from tests.support.cities import SyntheticCities
from tests.support.nodes import ServeFn, coordinator_for, publish_and_verify

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


def test_fedstats_verify_reports_a_rollback_across_results(
    tmp_path: Path, cities: SyntheticCities, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone with write access to both the state directory and the chain head restores
    an old state directory and deletes the head: the node starts, but results issued before
    and after the rollback sit at conflicting audit positions, and `fedstats verify` of the
    outputs together says so."""
    config = node_config(tmp_path, cities)
    outs = [tmp_path / f"out{i}" for i in (1, 2, 3)]

    def query(out: Path, rho: float) -> int:
        node = serve(config)
        coordinator = coordinator_for(tmp_path, [(node.node_id, node.address)])
        outcome = run_query(coordinator, Query(QUERY.indicators, QUERY.group_dim, rho=rho))
        node.stop()
        assert publish_and_verify(outcome, out).ok
        return pb_result_seq(out)

    first = query(outs[0], 0.11)
    shutil.copytree(ledger(config).parent, tmp_path / "backup")
    second = query(outs[1], 0.12)
    restore_an_older_copy(config)
    head = config.parent / "state-vienna.chain-head.json"
    assert head.exists()
    head.unlink()
    time.sleep(1.1)  # out2's `created` is cut to seconds: ask strictly after it
    third = query(outs[2], 0.13)
    assert first < second and third <= second  # the node reused a position: rolled back

    capsys.readouterr()
    assert main(["verify", str(outs[0]), str(outs[1])]) == 0
    assert main(["verify", str(outs[2])]) == 0  # each output alone is sound
    assert "no rollback" in capsys.readouterr().out
    assert main(["verify", *map(str, outs)]) == 1
    printed = capsys.readouterr().out
    assert "two different audit entries at seq" in printed
    assert "verification FAILED" in printed


def pb_result_seq(out: Path) -> int:
    """The audit seq of the one node result in an output directory."""
    document = json.loads((out / "provenance.json").read_text())
    (entry,) = document["queries"][0]["nodes"]
    return int(pb.QueryResult.FromString(base64.b64decode(entry["result"])).audit_seq)
