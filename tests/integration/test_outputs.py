"""Benchmark outputs from a real small federation: CSV, Parquet, SDMX, HTML agree.

Three nodes serve synthetic weighted surveys (`fedstats.synth`'s Athens profile, of
different sizes); Burgenland's is so small that some of its cells are confidential
(``c``), and a fourth node is down (``n``). The SDMX files are read back with pysdmx
(the BIS library, independent of the sdmx1 library that writes them), which validates the
structure message against the SDMX-ML 2.1 schemas and types the observations from the data
structure definition.
"""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow.parquet as pq
import pytest
from pysdmx.io import get_datasets, read_sdmx

from common.errors import FedstatsError
from coordinator.progress import FanOutProgress
from coordinator.publish.outputs import FORMATS, output_files, write_outputs
from coordinator.publish.report.blocks import Block
from coordinator.publish.report.compare import gap_versus_pooled
from coordinator.publish.report.labels import row_key
from coordinator.publish.sdmx import DATAFLOWS, OBS_STATUS, POOLED_GEO, STATS
from coordinator.rows import POOLED, BenchmarkRow
from coordinator.run import QueryOutcome, run_query
from indicators.catalogue import CATALOGUE
from indicators.spec import Query, TableSpec
from tests.support.cities import SyntheticCities
from tests.support.nodes import ServeFn, coordinator_for

# Persons in each node's synthetic survey (the Athens profile: a weighted survey).
LANDS = {"burgenland": 400, "tyrol": 3_000, "vienna": 5_000}
SURVEY = "athens"
STAT_COLUMNS = {
    "VALUE": "value", "CI_LOW": "ci_low", "CI_HIGH": "ci_high", "GAP": "gap",
    "GAP_CI_LOW": "gap_ci_low", "GAP_CI_HIGH": "gap_ci_high", "DENOM": "denominator",
}  # fmt: skip
ROW_ATTRIBUTE_COLUMNS = {
    "SOURCE_TYPE": "source", "DEVIATION": "deviation", "GEO_LEVEL": "geo_level",
    "RELEASE": "release",
}  # fmt: skip


def survey_outcome(
    tmp_path: Path,
    serve: ServeFn,
    cities: SyntheticCities,
    rho: float = 1.0,
    progress: FanOutProgress | None = None,
) -> QueryOutcome:
    """Three survey nodes plus one node that is down, asked by citizenship."""
    addresses = []
    for node_id, persons in LANDS.items():
        config = tmp_path / f"{node_id}.toml"
        config.write_text(cities.node_toml(node_id, SURVEY, persons=persons))
        addresses.append((node_id, serve(config).address))
    addresses.append(("salzburg", "127.0.0.1:1"))
    query = Query(("employment_rate", "unemployment_rate"), "citizen", (), "NAT", rho)
    return run_query(coordinator_for(tmp_path, addresses), query, progress=progress)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def written(
    tmp_path: Path, serve: ServeFn, cities: SyntheticCities
) -> tuple[QueryOutcome, dict[str, Path]]:
    terminal = Terminal()
    outcome = survey_outcome(tmp_path, serve, cities, progress=FanOutProgress(terminal))
    assert set(outcome.answers) == set(LANDS) and set(outcome.failures) == {"salzburg"}
    assert terminal.getvalue().endswith(
        "nodes: 3/4 answered, 1 failed, 0 waiting | failed: salzburg\n"
    )
    return outcome, write_outputs([outcome], tmp_path / "out", FORMATS)


def read_benchmark_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_report_is_the_same_from_its_writer_process(
    tmp_path: Path, written: tuple[QueryOutcome, dict[str, Path]]
) -> None:
    """With other formats the report is rendered in a forked process; alone, in this one."""
    outcome, paths = written
    alone = write_outputs([outcome], tmp_path / "alone", ["html"])
    assert alone["html"].read_bytes() == paths["html"].read_bytes()
    assert list(paths) == list(FORMATS)  # the formats in the order asked for
    assert not [p for p in paths["html"].parent.iterdir() if p.name.startswith(".")]


def test_parquet_has_the_csv_columns_with_types(
    written: tuple[QueryOutcome, dict[str, Path]],
) -> None:
    _, paths = written
    rows = read_benchmark_csv(paths["csv"])
    table = pq.read_table(paths["parquet"])
    assert table.column_names == list(rows[0])
    assert str(table.schema.field("value").type) == "double"
    assert str(table.schema.field("denominator").type) == "double"
    frame = table.to_pylist()
    assert len(frame) == len(rows)
    for got, want in zip(frame, rows, strict=True):
        for column, text in want.items():
            value = got[column]
            if isinstance(value, float):
                assert value == pytest.approx(float(text)), column
            elif value is None:
                assert text == "", column
            else:
                assert value == text, column


def _sdmx_frame(directory: Path, group_dim: str) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """One dataflow's observations read by pysdmx, and the DSD's code lists."""
    structure = directory / "structure.xml"
    datasets = get_datasets(directory / f"{DATAFLOWS[group_dim]}.csv", structure)
    assert len(datasets) == 1
    schema = datasets[0].structure
    assert not isinstance(schema, str)
    codes = {c.id: {code.id for code in c.local_codes} for c in schema.components if c.local_codes}
    return datasets[0].data, codes


def test_sdmx_reads_back_into_the_same_values_and_flags(
    written: tuple[QueryOutcome, dict[str, Path]],
) -> None:
    _, paths = written
    directory = paths["sdmx"]
    assert [p.name for p in output_files(paths) if p.parent == directory] == [
        "MIGINT_CITIZEN.csv",
        "structure.xml",
    ]
    message = read_sdmx(directory / "structure.xml", validate=True)  # XSD-valid SDMX-ML 2.1
    assert {d.id for d in message.get_dataflows()} == set(DATAFLOWS.values())
    with (directory / f"{DATAFLOWS['citizen']}.csv").open(encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    assert header == [
        "DATAFLOW", "freq", "stat", "unit", "indic", "sex", "age", "citizen", "geo",
        "TIME_PERIOD", "OBS_VALUE", "OBS_FLAG", "CONF_STATUS", "OBS_STATUS", "COMPARATOR",
        "POVERTY_LINE", "POVERTY_LINE_SOURCE", "SOURCE_TYPE", "DEVIATION", "GEO_LEVEL", "RELEASE",
    ]  # fmt: skip
    data, codes = _sdmx_frame(directory, "citizen")
    for column, allowed in codes.items():
        assert set(data[column].dropna().astype(str)) - {""} <= allowed, column
    assert str(data["OBS_VALUE"].dtype).startswith("double")

    observations = {
        (r["stat"], r["indic"], r["citizen"], r["geo"]): r for r in data.to_dict("records")
    }
    rows = read_benchmark_csv(paths["csv"])
    comparator_flags = {
        (r["node"], r["indicator"]): r["flags"] for r in rows if r["group"] == r["comparator"]
    }
    comparator_status = {
        (r["node"], r["indicator"]): r["status"] for r in rows if r["group"] == r["comparator"]
    }
    expected = 0
    for row in rows:
        if not row["time_period"]:  # a silent node, its period unknown: not in SDMX
            assert (row["node"], row["status"]) == ("salzburg", "no_answer")
            continue
        geo = POOLED_GEO if row["node"] == POOLED else row["geo"] or row["node"].upper()
        for stat in STATS:
            if stat.gap and row["group"] == row["comparator"]:
                continue
            obs = observations[(stat.code, row["indicator"].upper(), row["group"], geo)]
            expected += 1
            text, value = row[STAT_COLUMNS[stat.code]], obs["OBS_VALUE"]
            if text:
                assert value == pytest.approx(float(text)), (row, stat.code)
            else:
                assert value is None or pd.isna(value), (row, stat.code)
            flags = row["flags"]
            if stat.gap:  # a gap also carries its comparator's flags
                flags += comparator_flags[(row["node"], row["indicator"])]
            assert (obs["OBS_FLAG"] or "") == "".join(sorted(set(flags)))
            assert obs["CONF_STATUS"] == ("C" if "c" in flags else "F")
            status = row["status"]
            if stat.gap and comparator_status[(row["node"], row["indicator"])] != "published":
                status = "suppressed" if status == "published" else status
            assert obs["OBS_STATUS"] == OBS_STATUS[status]
            assert "n" not in flags
            assert (obs["COMPARATOR"] or "") == (row["comparator"] if stat.gap else "")
            assert (obs["unit"], obs["freq"], obs["TIME_PERIOD"]) == (stat.unit, "A", "2025")
            assert (obs["sex"], obs["age"]) == ("T", CATALOGUE[row["indicator"]].population.code)
            for attribute, column in ROW_ATTRIBUTE_COLUMNS.items():
                got = obs[attribute]
                assert ("" if got is None or pd.isna(got) else str(got)) == row[column]
    assert expected == len(data)


class KeyedElements(HTMLParser):
    """Elements of the report that carry a benchmark row's ``data-key``, with their text,
    the text of their ``own`` cells and how many chart marks (circles) they draw."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict[str, Any]] = []
        self._open: list[tuple[int, dict[str, Any]]] = []
        self._depth = 0
        self._own: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._depth += 1
        found = dict(attrs)
        if found.get("data-key"):
            record: dict[str, Any] = {
                "key": found["data-key"],
                "tag": tag,
                "own": [],
                "text": "",
                "circles": 0,
            }
            self._open.append((self._depth, record))
            self.found.append(record)
        if tag == "td" and found.get("class") == "own":
            self._own = ""

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for _, record in self._open:
            record["circles"] += tag == "circle"

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._own is not None:
            for _, record in self._open:
                record["own"].append(self._own.strip())
            self._own = None
        if self._open and self._open[-1][0] == self._depth:
            self._open.pop()
        self._depth -= 1

    def handle_data(self, data: str) -> None:
        for _, record in self._open:
            record["text"] += data
        if self._own is not None:
            self._own += data


def test_suppressed_cells_show_no_value_in_any_format(
    written: tuple[QueryOutcome, dict[str, Path]],
) -> None:
    outcome, paths = written
    confidential = [r for r in outcome.rows if "c" in r.flags]
    assert any(r.node == "burgenland" for r in confidential)  # the test needs c cells
    keys = {(r.node, r.indicator, r.group) for r in confidential}

    for row in read_benchmark_csv(paths["csv"]):
        if (row["node"], row["indicator"], row["group"]) in keys:
            shown = [row[c] for c in STAT_COLUMNS.values()]
            assert shown == [""] * len(shown), row
    for row in pq.read_table(paths["parquet"]).to_pylist():
        if (row["node"], row["indicator"], row["group"]) in keys:
            assert all(row[c] is None for c in STAT_COLUMNS.values()), row
    data, _ = _sdmx_frame(paths["sdmx"], "citizen")
    geo_of = {r.node: POOLED_GEO if r.node == POOLED else r.geo for r in outcome.rows}
    for node, indicator, group in keys:
        mask = (data.geo == geo_of[node]) & (data.indic == indicator.upper())
        mask &= data.citizen == group
        assert mask.sum() >= 4
        assert data[mask].OBS_VALUE.isna().all()
        assert (data[mask].CONF_STATUS == "C").all()

    parser = KeyedElements()
    parser.feed(paths["html"].read_text(encoding="utf-8"))
    hidden = {row_key(r) for r in confidential}
    kinds = set()
    for element in parser.found:
        if element["key"] not in hidden:
            continue
        kinds.add(element["tag"])
        if element["tag"] == "tr":  # table rows: the row's own cells hold no number
            assert element["own"] and not any(re.search(r"\d", t) for t in element["own"])
            assert any(t.startswith(": ") and "c" in t for t in element["own"])
        elif element["tag"] == "g":  # chart lines: no mark, the flag instead
            assert element["circles"] == 0 and re.search(r": [a-z]*c", element["text"])
        else:  # the sentences of a city section
            assert "not published" in element["text"]
            assert not re.search(r"\d+\.\d", element["text"])
    assert {"tr", "g"} <= kinds


def test_an_unknown_format_fails_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(FedstatsError) as caught:
        write_outputs([], out, ["csv", "xlsx"])
    assert caught.value.reason == "UNSUPPORTED_FORMAT"
    assert caught.value.field == "--format"
    assert "xlsx" in caught.value.message and "parquet" in caught.value.hint
    assert not out.exists()


def test_a_city_gap_against_the_pooled_gap(
    tmp_path: Path, serve: ServeFn, cities: SyntheticCities
) -> None:
    """The delta-method interval of (city gap - pooled gap) matches a simulation."""
    outcome = survey_outcome(tmp_path, serve, cities, rho=1e6)
    row = next(
        r for r in outcome.rows
        if r.node == "vienna" and r.group == "NEU27_2020_FOR" and r.indicator == "employment_rate"
    )  # fmt: skip
    place = Block(outcome, row.indicator).place(row)
    assert place is not None
    diff = gap_versus_pooled(outcome, row, place)
    assert diff is not None and diff.se > 0
    pooled = next(
        r for r in outcome.rows
        if r.node == POOLED and r.group == row.group and r.indicator == row.indicator
    )  # fmt: skip
    assert row.gap is not None and pooled.gap is not None
    assert 100 * diff.value == pytest.approx(row.gap - pooled.gap, abs=0.11)

    # simulate every released cell with its variance and recompute both gaps exactly
    _, spec = outcome.plan.indicator(row.indicator)
    parts = [outcome.answers[n].cells[spec.key] for n in outcome.answers]
    rng = np.random.default_rng(5)
    draws = []
    for _ in range(2000):
        noisy = [p.values + rng.normal(0.0, np.sqrt(p.variance)) for p in parts]
        tables = [x.reshape(spec.shape) for x in noisy]
        city = tables[list(outcome.answers).index("vienna")]
        draws.append(_gap(city, spec, row) - _gap(np.sum(tables, axis=0), spec, row))
    assert float(np.std(draws)) == pytest.approx(diff.se, rel=0.1)

    # one node alone is its own pool: no difference, no uncertainty
    single = survey_outcome_single(tmp_path, serve, cities)
    alone = next(r for r in single.rows if r.node == "vienna" and r.gap is not None)
    alone_place = Block(single, alone.indicator).place(alone)
    assert alone_place is not None
    only = gap_versus_pooled(single, alone, alone_place)
    assert only is not None and only.value == pytest.approx(0.0, abs=1e-12)
    assert only.se == pytest.approx(0.0, abs=1e-12)


def _gap(table: npt.NDArray[np.float64], spec: TableSpec, row: BenchmarkRow) -> float:
    """Employment rate of the row's group minus its comparator's, computed directly."""
    codes, employed = spec.dims[0].codes, spec.outcome.codes.index("EMP")
    rates = [
        table[codes.index(g)][employed] / table[codes.index(g)].sum()
        for g in (row.group, row.comparator)
    ]
    return float(rates[0] - rates[1])


def survey_outcome_single(tmp_path: Path, serve: ServeFn, cities: SyntheticCities) -> QueryOutcome:
    config = tmp_path / "vienna-alone.toml"
    text = cities.node_toml("vienna", SURVEY, persons=LANDS["vienna"])
    config.write_text(text.replace("state-vienna", "state-alone"))
    node = serve(config)
    query = Query(("employment_rate",), "citizen", (), "NAT", 1e6)
    return run_query(coordinator_for(tmp_path / "alone", [("vienna", node.address)]), query)
