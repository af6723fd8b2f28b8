"""``local:`` group dimensions: a city's own definition, served per node, never pooled."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

from common.errors import ConfigError, FedstatsError, QueryError
from coordinator.publish.outputs import write_outputs
from coordinator.run import QueryOutcome, run_query
from indicators.spec import Query, compile_query
from indicators.variables import CATEGORICAL, UNK, Variable
from node.config import load_config
from node.harmonise import harmonise
from node.mappings import CodeMap, LocalColumn
from node.source import load_frame
from tests.support.cities import city_config
from tests.support.nodes import coordinator_for, publish_and_verify, start_node

LOCAL = "local:mother_tongue"
QUERY = Query(("employment_rate",), LOCAL, (), "TOTAL", rho=1e6)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[QueryOutcome, Path, Path]:
    tmp_path = tmp_path_factory.mktemp("local")
    helsinki = city_config(tmp_path, "helsinki", persons=30_000)
    amsterdam = city_config(tmp_path, "amsterdam", persons=5_000)
    nodes = [start_node(helsinki), start_node(amsterdam)]
    try:
        coordinator = coordinator_for(tmp_path, [(n.node_id, n.address) for n in nodes])
        outcome = run_query(coordinator, QUERY)
        spent = {n.node_id: n.service.budget().spent for n in nodes}
    finally:
        for node in nodes:
            node.stop()
    assert spent["amsterdam"] == 0 and spent["helsinki"] > 0
    return outcome, helsinki, tmp_path


def direct_rates(config: Path) -> pd.Series:
    """Employment rate (20-64) per mother tongue, on the harmonised data."""
    loaded = load_config(config)
    data = harmonise(load_frame(loaded), loaded)
    tongue = data.variable(LOCAL)
    frame = pd.DataFrame(
        {
            "tongue": [tongue.codes[i] for i in data.codes[LOCAL]],
            "wstatus": [CATEGORICAL["wstatus"].codes[i] for i in data.codes["wstatus"]],
            "age": data.age,
        }
    )
    frame = frame[frame.age.between(20, 64) & frame.wstatus.isin(["EMP", "UNE", "INAC"])]
    return 100 * frame.groupby("tongue").wstatus.apply(lambda s: (s == "EMP").mean())


def test_local_rows_are_per_node_flagged_and_match(
    local_run: tuple[QueryOutcome, Path, Path],
) -> None:
    outcome, config, _ = local_run
    assert set(outcome.answers) == {"helsinki"}
    assert outcome.failures["amsterdam"].reason == "VARIABLE_NOT_PROVIDED"
    assert "amsterdam" not in outcome.rho_charged and "amsterdam" not in outcome.replies
    assert outcome.rows and all("d" in r.flags for r in outcome.rows)
    assert {r.node for r in outcome.rows} == {"helsinki"}  # no pooled rows, none for amsterdam
    assert {r.comparator for r in outcome.rows} == {"TOTAL"}
    direct = direct_rates(config)
    rows = {r.group: r for r in outcome.rows}
    assert {"fi", "sv", "ru", "other", "TOTAL"} <= set(rows)
    for code in ("fi", "sv", "ru", "so", "ar", "et"):
        assert rows[code].value == pytest.approx(direct[code], abs=0.1), code
    assert outcome.plan.tables[0].dims[0].name == LOCAL


def test_local_outputs_and_provenance(local_run: tuple[QueryOutcome, Path, Path]) -> None:
    outcome, _, tmp_path = local_run
    written = write_outputs([outcome], tmp_path / "out", ["csv", "parquet", "html"])
    csv = pd.read_csv(written["csv"])
    assert set(csv.node) == {"helsinki"} and csv["flags"].str.contains("d").all()
    assert "mother_tongue" in written["html"].read_text(encoding="utf-8")
    report = publish_and_verify(outcome, tmp_path / "signed")
    assert report.ok, report.problems
    assert (report.requests, report.results) == (1, 1)  # amsterdam was not asked
    with pytest.raises(FedstatsError) as caught:
        write_outputs([outcome], tmp_path / "sdmx-out", ["csv", "sdmx"])
    assert caught.value.reason == "UNSUPPORTED_FORMAT"
    with pytest.raises(FedstatsError) as caught:  # the report's writer process is stopped
        write_outputs([outcome], tmp_path / "all-out", ["csv", "sdmx", "html"])
    assert caught.value.reason == "UNSUPPORTED_FORMAT"
    assert not (tmp_path / "all-out").exists()  # no report, no partial file, no directory


@pytest.mark.parametrize("comparator", ["NAT", "sex=F"])
def test_local_dimension_needs_total(comparator: str) -> None:
    query = Query(("employment_rate",), LOCAL, ("sex",), comparator)
    with pytest.raises(QueryError) as caught:
        compile_query(query, {LOCAL: Variable(LOCAL, ("a", UNK), "")})
    assert caught.value.field == "comparator" and "TOTAL" in caught.value.hint


def test_local_dimension_without_codes_is_not_provided() -> None:
    with pytest.raises(QueryError) as caught:
        compile_query(QUERY)
    assert caught.value.reason == "VARIABLE_NOT_PROVIDED"


def test_local_is_never_a_breakdown() -> None:
    with pytest.raises(QueryError) as caught:
        compile_query(Query(("employment_rate",), "c_birth", (LOCAL,), "TOTAL"))
    assert caught.value.field == "breakdowns"


BASE = """
[node]
id = "x"
geo = "FI001C"
country = "FI"
[dataset]
path = "x.csv"
time_period = "2024"
[privacy]
rho_budget = 1.0
max_rho_per_query = 1.0
[variables.age]
column = "age"
"""


@pytest.mark.parametrize(
    ("section", "key", "words"),
    [
        ('[variables."local:tongue"]\ncolumn = "t"\n', "codes", "missing required key"),
        ('[variables."local:tongue"]\ncolumn = "t"\ncodes = []\n', "codes", "is empty"),
        ('[variables."local:tongue"]\ncolumn = "t"\ncodes = ["a", "a"]\n', "codes", "twice"),
        ('[variables."local:tongue"]\ncolumn = "t"\ncodes = ["a", "UNK"]\n', "codes", "UNK"),
        ('[variables."local:tongue"]\ncolumn = "t"\ncodes = ["a b"]\n', "codes", "not a code"),
        ('[variables."local:Tongue"]\ncolumn = "t"\ncodes = ["a"]\n', "", "local:"),
        ('[variables."local:"]\ncolumn = "t"\ncodes = ["a"]\n', "", "local:"),
        (
            '[variables."local:tongue"]\ncolumn = "t"\ncodes = ["a"]\nmap = { x = "b" }\n',
            "map.x",
            "not in codes",
        ),
        (
            '[variables."local:tongue"]\ncolumn = "t"\ncodes = ["a"]\ndefault = "b"\n',
            "default",
            "not in codes",
        ),
        ('[variables."local:tongue"]\ncolumn = "t"\ncodes = ["a"]\niso_country = true\n', "", ""),
        # a local variable is not a code of a harmonised one: it cannot be a map target
        (
            '[variables.sex]\ncolumn = "s"\nmap = { 1 = "local:tongue" }\n',
            "variables.sex.map.1",
            "not a code of sex",
        ),
    ],
)
def test_bad_local_configs(tmp_path: Path, section: str, key: str, words: str) -> None:
    path = tmp_path / "node.toml"
    path.write_text(BASE + textwrap.dedent(section), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message and words in message
    if key.startswith("variables."):
        assert caught.value.field == key
    elif key:
        assert caught.value.field.endswith(key) and "local:tongue" in caught.value.field
    else:
        assert "local:" in caught.value.field


def test_local_config_parses(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    section = '[variables."local:tongue"]\ncolumn = "t"\ncodes = ["fi", "sv"]\ndefault = "sv"\n'
    path.write_text(BASE + section, encoding="utf-8")
    config = load_config(path)
    assert config.local["local:tongue"].codes == ("fi", "sv", UNK)
    by_default = CodeMap({"fi": "fi", "sv": "sv"}, default="sv")  # the values are the codes
    assert config.variables["local:tongue"] == LocalColumn(
        "local:tongue", "t", ("fi", "sv", UNK), by_default
    )
    assert "local:tongue" in config.provided
