"""SDMX mapping details: periods, geo codes, duplicates, and a schema-valid structure."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

import pytest
from pysdmx.io import get_datasets, read_sdmx

from common.errors import FedstatsError
from coordinator.flags import Flags, Status
from coordinator.publish.sdmx import POOLED_GEO, _period, prepare_sdmx
from coordinator.rows import POOLED, BenchmarkRow
from tests.support.sdmx_library import write_with_library


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025", ("A", "2025")),
        ("2025-Q2", ("Q", "2025-Q2")),
        ("2025-S1", ("S", "2025-S1")),
        ("2025-03", ("M", "2025-03")),
        ("2025+2025", ("A", "2025-01-01/P1Y")),
        ("2023+2025", ("A", "2023-01-01/P3Y")),
        ("2025-Q1+2025-Q3", ("Q", "2025-01-01/P9M")),
        ("2024+2025-Q1", ("A", "2024-01-01/P15M")),
    ],
)
def test_periods(text: str, expected: tuple[str, str]) -> None:
    assert _period(text) == expected


def row(
    node: str, geo: str, period: str, group: str = "NAT", flags: str = "",
    status: Status = Status.PUBLISHED,
) -> BenchmarkRow:  # fmt: skip
    if "c" in flags:
        status = Status.SUPPRESSED
    return BenchmarkRow(
        node=node, geo=geo, time_period=period, indicator="employment_rate",
        group_dim="c_birth", group=group, breakdown={}, comparator="NAT", unit="PC",
        flags=Flags(flags), status=status,
        value=None if status != Status.PUBLISHED else 70.0,
        ci_low=None if flags or status != Status.PUBLISHED else 69.0,
        ci_high=None if flags or status != Status.PUBLISHED else 71.0,
        denominator=None if flags or status != Status.PUBLISHED else 1000.0,
    )  # fmt: skip


def test_a_period_sdmx_cannot_express_is_refused() -> None:
    with pytest.raises(FedstatsError) as caught:
        prepare_sdmx([row("x", "X1", "winter 2025")])
    assert caught.value.reason == "UNSUPPORTED_TIME_PERIOD"


def test_two_rows_with_one_key_are_refused() -> None:
    rows = [row("x", "X1", "2025")]
    with pytest.raises(FedstatsError) as caught:
        prepare_sdmx(rows + rows)
    assert caught.value.reason == "DUPLICATE_OBSERVATION"


def test_odd_geo_codes_and_pooled_ranges_stay_valid_sdmx(tmp_path: Path) -> None:
    rows = [
        row("a", "AT 13", "2024"),
        row("a", "AT 13", "2024", "NEU27_2020_FOR", "c"),
        row("b", "", "2025", status=Status.NO_ANSWER),  # a node that did not answer: no geo
        row(POOLED, POOLED, "2024+2025", "EU27_2020_FOR", status=Status.NOT_PROVIDED),
        row(POOLED, POOLED, "2024+2025", "STLS", "z", Status.NOT_APPLICABLE),
    ]
    written = prepare_sdmx(rows).write(tmp_path)
    structure = tmp_path / "structure.xml"
    assert structure in written
    read_sdmx(structure, validate=True)
    (dataset,) = get_datasets(tmp_path / "MIGINT_CBIRTH.csv", structure)
    data = dataset.data
    assert set(data.geo) == {"AT_13", "B", POOLED_GEO}
    assert set(data[data.geo == POOLED_GEO].TIME_PERIOD) == {"2024-01-01/P2Y"}
    hidden = data[data.c_birth == "NEU27_2020_FOR"]
    assert hidden.OBS_VALUE.isna().all() and set(hidden.CONF_STATUS) == {"C"}
    assert set(hidden.OBS_STATUS) == {"Q"} and set(hidden.OBS_FLAG) == {"c"}
    status = {
        (g, c): set(data[(data.geo == g) & (data.c_birth == c)].OBS_STATUS)
        for g, c in [("B", "NAT"), (POOLED_GEO, "EU27_2020_FOR"), (POOLED_GEO, "STLS"),
                     ("AT_13", "NAT")]
    }  # fmt: skip
    assert status == {
        ("B", "NAT"): {"O"}, (POOLED_GEO, "EU27_2020_FOR"): {"L"},
        (POOLED_GEO, "STLS"): {"M"}, ("AT_13", "NAT"): {"A"},
    }  # fmt: skip
    assert data[data.geo == "B"].OBS_VALUE.isna().all()
    assert "n" not in set(data.OBS_FLAG.dropna())


def test_the_poverty_line_of_an_arop_value_is_an_sdmx_attribute(tmp_path: Path) -> None:
    arop = replace(
        row("a", "AT13", "2024"),
        indicator="arop_rate",
        poverty_line=14218.0,
        poverty_line_source="computed, rho=0.01",
        value=21.5,
    )
    prepare_sdmx([arop, row("a", "AT13", "2024", "EU27_2020_FOR")]).write(tmp_path)
    structure = tmp_path / "structure.xml"
    (dataset,) = get_datasets(tmp_path / "MIGINT_CBIRTH.csv", structure)
    data = dataset.data
    assert set(data[data.indic == "AROP_RATE"].POVERTY_LINE.astype(float)) == {14218.0}
    assert data[data.indic == "EMPLOYMENT_RATE"].POVERTY_LINE.isna().all()
    assert set(data[data.indic == "AROP_RATE"].POVERTY_LINE_SOURCE) == {"computed, rho=0.01"}
    assert set(data[data.indic == "EMPLOYMENT_RATE"].POVERTY_LINE_SOURCE.fillna("")) == {""}


def test_the_direct_writer_quotes_texts_as_the_library_path_does(tmp_path: Path) -> None:
    # node-supplied texts with commas, quotes, line breaks and non-ASCII letters
    notes = ['wstatus=register_activity; "main" activity, per register', "line\nbreak", "Zürich"]
    rows = [
        replace(row("a", "AT13", "2024", group), deviation=note)
        for group, note in zip(["NAT", "EU27_2020_FOR", "STLS"], notes, strict=True)
    ]
    rows.append(row("a", "AT13", "2024", "NEU27_2020_FOR", "c"))
    release = prepare_sdmx(rows)
    (library,) = write_with_library(release, tmp_path / "library")
    direct = release.write(tmp_path / "direct")[1]
    with library.open(encoding="utf-8", newline="") as lib, direct.open(newline="") as own:
        library_rows, direct_rows = list(csv.reader(lib)), list(csv.reader(own))
    assert direct_rows == library_rows
    assert len(direct_rows) == 1 + 4 + 3 * 7  # the comparator has no gap observations
    assert any(notes[0] in r for r in direct_rows) and any(notes[1] in r for r in direct_rows)
    # and the bytes are what the csv module writes for those observations
    with io.StringIO(newline="") as expected:
        writer = csv.writer(expected, lineterminator="\n")
        writer.writerows(direct_rows)
        assert direct.read_text(encoding="utf-8") == expected.getvalue()
