"""Many nodes in one process (`fedstats node serve --config DIR`): an office hosting its
municipalities. Fifty node configs are served from this test's process, each over its own
mutual-TLS port with its own keys, ledger and audit log; one query goes to all of them.
One node's exhausted budget refuses only that node, and every budget and audit chain
holds only its own node's entries, signed by its own key.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from common.errors import ConfigError, Reason
from coordinator.publish.report.page import render_report
from coordinator.run import run_query
from fedstats.synth import CITIES
from indicators.spec import Query
from node.audit import read_entries, verify_log
from node.hosting import config_paths, host_all, load_all, stop_all
from security.signing import load_private_key
from tests.support.cities import SyntheticCities, city_node_toml
from tests.support.nodes import coordinator_for

NODES = 50
POOR = "town07"  # its budget holds one query of RHO, not two
RHO = 0.1


def _write_configs(directory: Path, cities: SyntheticCities) -> None:
    directory.mkdir()
    for i in range(NODES):
        node_id, city = f"town{i:02d}", CITIES[i % len(CITIES)]
        budget = 1.5 * RHO if node_id == POOR else 1e9
        text = city_node_toml(node_id, city, cities.file(city, 2_000), rho_budget=budget)
        (directory / f"{node_id}.toml").write_text(text, encoding="utf-8")


@pytest.mark.slow
def test_one_process_serves_fifty_isolated_nodes(tmp_path: Path, cities: SyntheticCities) -> None:
    _write_configs(tmp_path / "nodes", cities)
    hosted = host_all(load_all(config_paths([tmp_path / "nodes"])))
    try:
        assert gc.get_freeze_count() > 0  # the nodes loaded are not walked by collections
        assert len({h.server.port for h in hosted}) == NODES
        nodes = [(h.config.id, f"127.0.0.1:{h.server.port}") for h in hosted]
        coordinator = coordinator_for(tmp_path, nodes)
        first = run_query(coordinator, Query(("employment_rate",), "citizen", (), "NAT", RHO))
        assert first.failures == {} and len(first.answers) == NODES
        # another table, so no cached answer: the poor node cannot pay for it
        second = run_query(
            coordinator, Query(("employment_rate",), "citizen", ("sex",), "NAT", RHO)
        )
    finally:
        stop_all(hosted, grace=None)
    assert gc.get_freeze_count() == 0  # and collectable again once they stopped

    assert {n: f.reason for n, f in second.failures.items()} == {POOR: Reason.BUDGET_EXCEEDED}
    assert len(second.answers) == NODES - 1
    assert {r.node for r in second.rows if r.status == "published"} >= set(second.answers)
    keys = {h.config.id: load_private_key(h.config.signing_key, "t") for h in hosted}  # type: ignore[arg-type]
    for node in hosted:
        node_id, ledger = node.config.id, node.service.config.state_dir / "ledger.sqlite"
        spent = node.service.ledger.state().spent
        events = [e.event for e in read_entries(ledger)]
        queries = {e.query_id for e in read_entries(ledger)}
        assert queries == {first.query_id, second.query_id}, node_id
        if node_id == POOR:
            assert spent == pytest.approx(RHO) and events == ["release", "refusal"]
        else:
            assert spent == pytest.approx(2 * RHO) and events == ["release", "release"], node_id
        assert verify_log(ledger, keys[node_id].public_key()).ok, node_id
        other = keys["town00" if node_id != "town00" else "town01"].public_key()
        assert not verify_log(ledger, other).ok  # signed by this node's key alone
    assert len({h.config.state_dir.resolve() for h in hosted}) == NODES
    # fifty cities: each city's own gap chart shows it beside the pooled and extreme cities
    page = render_report([first])
    assert page.count("the cities with the smallest and the largest gap (of 50)") >= NODES


def test_configs_that_share_state_or_identity_are_refused(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    data = cities.file("vienna", 2_000)
    one, two = tmp_path / "one.toml", tmp_path / "two.toml"
    one.write_text(city_node_toml("one", "vienna", data), encoding="utf-8")
    shared = city_node_toml("two", "vienna", data).replace('"state-two"', '"state-one"')
    two.write_text(shared, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"state_dir .* is shared"):
        load_all(config_paths([one, two]))
    two.write_text(city_node_toml("one", "vienna", data), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[node\] id 'one' is shared"):
        load_all(config_paths([one, two]))
    with pytest.raises(ConfigError, match="named twice"):
        config_paths([one, tmp_path / "." / "one.toml"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no \*\.toml node configs"):
        config_paths([tmp_path / "empty"])


def test_a_hosted_node_with_an_unmapped_outcome_stops_the_whole_process_before_it_serves(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    data = cities.file("vienna", 2_000)
    good, bad = tmp_path / "one.toml", tmp_path / "two.toml"
    good.write_text(city_node_toml("one", "vienna", data), encoding="utf-8")
    text = city_node_toml("two", "vienna", data)
    assert text.count('2 = "EMP"\n') == 1  # Vienna's part-time workers, left unmapped
    bad.write_text(text.replace('2 = "EMP"\n', ""), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        host_all(load_all(config_paths([good, bad])))
    assert gc.get_freeze_count() == 0  # the node that started, stopped: nothing kept frozen
    assert info.value.reason == Reason.UNMAPPED_OUTCOME
    assert str(bad) in info.value.message and "[variables.wstatus]" in info.value.message
    assert not (tmp_path / "state-two").exists()  # its ledger never opened: nothing charged


@pytest.mark.parametrize("workers", ["0", "-3", "many"])
def test_a_worker_count_that_is_not_a_positive_number_is_bad_usage(
    workers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from fedstats.cli import main

    with pytest.raises(SystemExit) as info:
        main(["node", "serve", "--config", "nodes/", "--workers", workers])
    assert info.value.code == 2
    assert "--workers" in capsys.readouterr().err
