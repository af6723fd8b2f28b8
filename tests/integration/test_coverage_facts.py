"""Coverage that cannot be missed: clipped weights, values `default` caught, unmapped
outcome values, on `node check`, in the serve log, in `Describe` (listed coordinators
only) and in every signed result; and the thresholds that make a node refuse to start.

A small survey whose weights (575-681) are far over its `max_weight` (100), as in issue
11, served by a real node through the production factory over mutual TLS.
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common.errors import ConfigError, Reason
from fedstats.cli import main
from indicators.spec import Query
from node.config import load_config
from node.engines import open_engine
from protos import node_pb2 as pb
from tests.support.nodes import ServeFn
from tests.support.pki import pki

NODE = "clipville"
ROWS = 400


def survey(tmp_path: Path) -> pd.DataFrame:
    """Persons with weights 575-681, three country names `default` catches, and one
    work-status code (9) that maps to nothing."""
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(
        {
            "age": rng.integers(20, 65, ROWS),
            "sex": rng.choice(["m", "f"], ROWS),
            "cit": rng.choice(["AT", "EU", "Narnia", "Oz", "Utopia"], ROWS),
            "ws": rng.choice(["1", "2", "3", "9"], ROWS, p=[0.6, 0.1, 0.2, 0.1]),
            "w": rng.uniform(575, 681, ROWS).round(1),
        }
    )
    frame.to_csv(tmp_path / "survey.csv", index=False)
    return frame


def node_toml(tmp_path: Path, dataset_extra: str = "", engine: str = "memory") -> Path:
    config = tmp_path / f"{NODE}.toml"
    config.write_text(
        textwrap.dedent(f"""
            [node]
            id = "{NODE}"
            geo = "XX01"
            country = "AT"
            state_dir = "state"

            [dataset]
            engine = "{engine}"
            path = "survey.csv"
            time_period = "2024"
            source = "survey"
            weight = "w"
            {dataset_extra}

            [privacy]
            rho_budget = 1e9
            max_rho_per_query = 1e9
            max_weight = 100.0

            [variables.age]
            column = "age"

            [variables.sex]
            column = "sex"
            map = {{ m = "M", f = "F" }}

            [variables.citizen]
            column = "cit"
            map = {{ AT = "NAT", EU = "EU27_2020_FOR" }}
            default = "NEU27_2020_FOR"

            [variables.wstatus]
            column = "ws"
            map = {{ 1 = "EMP", 2 = "UNE", 3 = "INAC" }}
            unmapped = "unknown"  # code 9 is an unknown outcome (rows flagged d)
            """)
        + pki().node_trust_toml(NODE)
    )
    return config


@pytest.mark.parametrize("engine", ["memory", "duckdb"])
def test_node_check_shows_clipped_weights_and_what_default_caught(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], engine: str
) -> None:
    frame = survey(tmp_path)
    config = node_toml(tmp_path, engine=engine)
    assert main(["node", "check", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    largest = frame.w.max()
    assert f"weights: largest {largest:,.6g} against max_weight 100" in out
    assert f"{ROWS} of {ROWS} persons clipped (100.0%)" in out
    removed = 1 - 100 * ROWS / frame.w.sum()
    assert f"{removed:.1%} of the total weight removed" in out
    caught = frame.cit[~frame.cit.isin(["AT", "EU"])].value_counts()
    assert f"default caught 3 value(s), {caught.sum()} rows" in out
    for value, count in caught.items():
        assert f"'{value}' ({count})" in out
    declared = 'an unknown outcome, as declared (unmapped = "unknown")'
    assert f"unmapped value '9': {(frame.ws == '9').sum()} rows ({declared})" in out

    loaded = load_config(config)
    engine_ = open_engine(loaded)
    try:
        clipping = engine_.clipping
        assert clipping is not None
        assert (clipping.clipped, clipping.rows) == (ROWS, ROWS)
        assert clipping.largest == pytest.approx(largest)
        assert clipping.weight == pytest.approx(frame.w.sum())
        assert clipping.kept == pytest.approx(100 * ROWS)
        assert engine_.coverage["citizen"].defaulted == dict(caught)
    finally:
        engine_.close()


def test_describe_and_results_report_clipping_defaults_and_unmapped_outcomes(
    tmp_path: Path, serve: ServeFn, caplog: pytest.LogCaptureFixture
) -> None:
    frame = survey(tmp_path)
    with caplog.at_level(logging.WARNING, logger="node.coverage"):
        node = serve(node_toml(tmp_path))
    logged = caplog.text
    assert f"{ROWS} of {ROWS} weights are over max_weight 100" in logged
    assert "default caught 3 value(s) of citizen" in logged
    assert "wstatus has 1 unmapped value(s)" in logged

    description = node.stub().Describe(pb.DescribeRequest(), timeout=30)
    assert description.clipping.max_weight == 100.0
    assert description.clipping.clipped_share_ceil == 1.0
    assert description.clipping.weight_removed_share_ceil == 0.9  # 84-86% removed
    by_name = {v.name: v for v in description.variables}
    defaulted = (~frame.cit.isin(["AT", "EU"])).mean()
    assert by_name["citizen"].default_values == 3
    assert by_name["citizen"].default_share_ceil == pytest.approx(np.ceil(defaulted * 10) / 10)
    assert by_name["wstatus"].unmapped_share_ceil == 0.1  # ~10% of rows: code 9, rounded up
    assert by_name["wstatus"].concepts == "wstatus=unmapped_as_unknown"  # the declaration
    assert by_name["sex"].unmapped_share_ceil == 0.0

    query = Query(("employment_rate",), "citizen", rho=1.0)
    result = node.ask(pb.QueryRequest(query_id="q", spec=query.to_wire()))
    assert dict(result.unmapped_share_ceil) == {"wstatus": 0.1}


def test_thresholds_make_the_node_refuse_to_start(tmp_path: Path, serve: ServeFn) -> None:
    """Also when wstatus declares ``unmapped = "unknown"``: the thresholds still apply."""
    survey(tmp_path)
    for extra, field in [
        ("max_unmapped_share = 0.05", "dataset.max_unmapped_share"),
        ("max_clipped_weight_share = 0.5", "privacy.max_weight"),
    ]:
        config = node_toml(tmp_path, extra)
        with pytest.raises(ConfigError) as info:
            serve(config)
        assert info.value.reason == Reason.COVERAGE_BELOW_THRESHOLD
        assert info.value.field == field
        assert not (tmp_path / "state").exists()  # refused before the ledger is opened
    serve(node_toml(tmp_path, "max_unmapped_share = 0.2\nmax_clipped_weight_share = 0.9"))
