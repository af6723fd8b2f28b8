"""A node computes its national poverty line (issue 9, Build 5's second option).

Real node services on a synthetic national register, a real SQLite ledger and audit
chain, real OpenDP noise: the line is one release charged once per period, reused by
every query, read back (not recharged) after a restart, refused when the stored bytes
were altered, and its release's privacy map is OpenDP's.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common.errors import ConfigError, FedstatsError, Reason
from indicators.spec import Query
from indicators.variables import INCOME_EDGES
from node.config import load_config
from node.engines import open_engine
from node.engines.memory import MemoryEngine
from node.national_line import LINE_QUERY, line_spec, median_of
from node.service import NodeService
from privacy.gaussian import make_measurement
from tests.support.cities import SyntheticCities
from tests.support.nodes import ServeFn
from tests.support.pki import query_request

LINE_RHO = 0.05
QUERY_RHO = 0.1
AROP = Query(("arop_rate",), "citizen", (), "NAT", QUERY_RHO)


def computing_toml(cities: SyntheticCities, extra: str = "") -> str:
    """Vienna's synthetic file as a national register that computes its own line."""
    toml = cities.node_toml("vienna", persons=20_000)
    toml = re.sub(r"(?m)^poverty_line(_currency|_source)? = .*\n", "", toml)
    line = f'poverty_line = "compute"\npoverty_line_rho = {LINE_RHO}\n{extra}'
    return toml.replace("[privacy]\n", line + "\n[privacy]\n", 1)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vienna.toml"
    path.write_text(text)
    return path


def true_line(cities: SyntheticCities) -> float:
    people = pd.read_csv(cities.file("vienna", 20_000))
    return 0.6 * float(people.hx090.median())


def test_the_line_is_charged_once_per_period_and_survives_a_restart(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    config = write(tmp_path, computing_toml(cities))
    node = NodeService(load_config(config))
    served = node.period()
    assert "arop_rate" in node.indicators()
    assert node.poverty_line(served) is None  # nothing released before a query needs it
    node.run_query("q1", AROP)
    line = node.poverty_line(served)
    assert line is not None and line.source == f"computed, rho={LINE_RHO:g}"
    assert node.budget().spent == pytest.approx(LINE_RHO + QUERY_RHO)
    node.run_query("q2", replace(AROP, rho=2 * QUERY_RHO))  # the line is reused
    assert node.budget().spent == pytest.approx(LINE_RHO + 3 * QUERY_RHO)

    again = NodeService(load_config(config))  # a restart
    again.run_query("q3", replace(AROP, rho=3 * QUERY_RHO))
    reread = again.poverty_line(again.period())
    assert reread == line
    assert again.budget().spent == pytest.approx(LINE_RHO + 6 * QUERY_RHO)
    ids = [e.query_id for e in again.ledger.entries()]
    assert ids.count(f"{LINE_QUERY}:{served.config.dataset.time_period}") == 1


def test_the_line_is_close_to_the_national_median_and_its_release_is_opendps(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    """60% of the median of the noisy histogram of every person; rho = OpenDP's map."""
    node = NodeService(load_config(write(tmp_path, computing_toml(cities))))
    served = node.period()
    node.run_query("q1", AROP)
    line = node.poverty_line(served)
    assert line is not None
    ledger = sqlite3.connect(tmp_path / "state-vienna" / "ledger.sqlite")
    (stored,) = ledger.execute(
        "SELECT answer FROM releases WHERE query_id LIKE ?", (f"{LINE_QUERY}:%",)
    ).fetchone()
    record = json.loads(stored)
    assert record["rho"] == make_measurement(record["sigma"]).map(record["sensitivity"])
    assert record["rho"] <= LINE_RHO
    assert (
        record["line"]
        == line.value
        == 0.6 * median_of(np.asarray(record["counts"], dtype=np.int64), record["sigma"])
    )
    assert len(record["counts"]) == len(line_spec().outcome.codes)
    # every person of every age: the histogram's total is the file's row count (+ noise)
    persons = len(pd.read_csv(cities.file("vienna", 20_000)))
    assert abs(sum(record["counts"]) - persons) < 6 * record["sigma"] * len(record["counts"]) ** 0.5
    # the median lies within a bin's width of the exact one (noise is small at 20,000)
    exact = true_line(cities)
    k = int(np.searchsorted(np.asarray(INCOME_EDGES[1:]), exact / 0.6, side="right"))
    width = 0.6 * (INCOME_EDGES[k + 1] - INCOME_EDGES[k])
    assert abs(line.value - exact) < 3 * width


def test_an_altered_stored_line_is_refused(tmp_path: Path, cities: SyntheticCities) -> None:
    config = write(tmp_path, computing_toml(cities))
    NodeService(load_config(config)).run_query("q1", AROP)
    ledger = sqlite3.connect(tmp_path / "state-vienna" / "ledger.sqlite")
    where = (f"{LINE_QUERY}:%",)
    (stored,) = ledger.execute(
        "SELECT answer FROM releases WHERE query_id LIKE ?", where
    ).fetchone()
    altered = json.loads(stored) | {"line": 1.0}  # a line that puts nobody at risk
    with ledger:
        ledger.execute(
            "UPDATE releases SET answer = ? WHERE query_id LIKE ?",
            (json.dumps(altered).encode(), *where),
        )
    restarted = NodeService(load_config(config))
    with pytest.raises(FedstatsError) as refused:
        restarted.run_query("q2", replace(AROP, rho=2 * QUERY_RHO))
    assert refused.value.reason == Reason.LEDGER_INCONSISTENT
    assert restarted.budget().spent == pytest.approx(LINE_RHO + QUERY_RHO)  # q2 not charged


def test_a_filtered_dataset_or_a_missing_rho_cannot_compute_a_line(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    text = computing_toml(cities)
    filtered = text.replace("[dataset]\n", '[dataset]\nwhere = { sex = "1" }\n', 1)
    with pytest.raises(ConfigError, match=r"dataset\.poverty_line.*`where`"):
        load_config(write(tmp_path, filtered))
    without_rho = re.sub(r"(?m)^poverty_line_rho = .*\n", "", text)
    with pytest.raises(ConfigError, match=r"poverty_line_rho: required"):
        load_config(write(tmp_path, without_rho))


def test_the_query_result_carries_the_computed_line_and_its_source(
    tmp_path: Path, cities: SyntheticCities, serve: ServeFn
) -> None:
    node = serve(write(tmp_path, computing_toml(cities)))
    result = node.ask(query_request("q1", indicators=AROP.indicators, rho=QUERY_RHO))
    assert result.poverty_line > 0
    assert result.poverty_line_source == f"computed, rho={LINE_RHO:g}"


def test_duckdb_counts_the_lines_table_as_the_memory_engine(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    """The line's table has no breakdown at all; an SQL engine counts it like any other."""
    toml = computing_toml(cities).replace("[dataset]\n", '[dataset]\nengine = "duckdb"\n', 1)
    config = load_config(write(tmp_path, toml))
    duck = open_engine(config)
    try:
        counts = duck.count(line_spec()).counts
    finally:
        duck.close()
    memory = MemoryEngine.load(config).count(line_spec()).counts
    assert counts.tolist() == memory.tolist()
    assert counts.sum() == len(pd.read_csv(cities.file("vienna", 20_000)))


def test_an_unusable_line_release_stays_charged_and_is_not_drawn_again(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    """Whether the noisy median is usable is read from the release: it stays spent, and
    every later query of the period gets the same refusal without a new draw."""
    people = pd.read_csv(cities.file("vienna", 20_000), dtype=str, keep_default_na=False)
    people["hx090"] = "-1"  # every income below the first public bin: an empty histogram
    data = tmp_path / "no-income.csv"
    people.to_csv(data, index=False)
    text = computing_toml(cities).replace(
        f"poverty_line_rho = {LINE_RHO}", "poverty_line_rho = 1e6"
    )
    text = re.sub(r'(?m)^path = ".*"$', f'path = "{data}"', text, count=1)
    node = NodeService(load_config(write(tmp_path, text)))
    for query_id in ("q1", "q2"):
        with pytest.raises(FedstatsError) as refused:
            node.run_query(query_id, AROP)
        assert refused.value.reason == Reason.VARIABLE_NOT_PROVIDED
        assert "too noisy" in refused.value.message
        assert node.budget().spent == pytest.approx(1e6)  # the line's release, once
    ids = [e.query_id for e in node.ledger.entries()]
    assert ids == [f"{LINE_QUERY}:{node.period().config.dataset.time_period}"]
