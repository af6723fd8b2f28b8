"""benchmark.parquet built from Arrow buffers: benchmark.csv's values, and no pandas."""

from __future__ import annotations

import csv
import io
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coordinator.flags import Flags, Status
from coordinator.publish.numbers import published
from coordinator.publish.tables import (
    _FLOAT_COLUMNS,
    COLUMNS_AFTER,
    COLUMNS_BEFORE,
    write_csv,
    write_parquet,
)
from coordinator.rows import BenchmarkRow

ROOT = Path(__file__).resolve().parents[2]


def rows() -> list[BenchmarkRow]:
    base = BenchmarkRow(
        node="zürich", geo="CH011", time_period="2024", indicator="employment_rate",
        group_dim="citizen", group="NAT", breakdown={"sex": "F"}, comparator="NAT", unit="PC",
        value=71.25, ci_low=69.0, ci_high=73.5, denominator=1234.4,
    )  # fmt: skip
    hidden = replace(
        base, group="STLS", flags=Flags("c"), status=Status.SUPPRESSED, value=None,
        ci_low=None, ci_high=None, denominator=None, deviation='a "quoted", note',
    )  # fmt: skip
    return [base, hidden, replace(base, node="a", geo="", breakdown={"sex": "M"}, value=0.04)]


def test_parquet_holds_the_csv_values_nulls_and_types(tmp_path: Path) -> None:
    write_csv(rows(), tmp_path / "b.csv")
    write_parquet(rows(), tmp_path / "b.parquet")
    with (tmp_path / "b.csv").open(newline="", encoding="utf-8") as handle:
        want = list(csv.DictReader(handle))
    table = pq.read_table(tmp_path / "b.parquet")
    assert table.column_names == list(want[0])
    assert table.schema.field("value").type == pa.float64()
    assert table.schema.field("node").type == pa.string()
    for got, expected in zip(table.to_pylist(), want, strict=True):
        assert {k: "" if v is None else v for k, v in got.items()} == {
            k: float(v) if isinstance(got[k], float) else v for k, v in expected.items()
        }
    assert table.column("value").null_count == 1 and table.column("denominator").to_pylist() == [
        1234.0, None, 1234.0,
    ]  # fmt: skip
    assert table.column("node").to_pylist() == ["zürich", "zürich", "a"]


def test_writing_parquet_does_not_import_pandas(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from tests.unit.test_tables import rows; "
        "from coordinator.publish.tables import write_parquet; "
        f"write_parquet(rows(), Path({str(tmp_path / 'b.parquet')!r})); "
        "print('pandas' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"
    assert pq.read_table(tmp_path / "b.parquet").num_rows == 3


_TEXT = st.text(alphabet=st.sampled_from(list('ab ,"\r\n\x01é\t;')), max_size=6)
_NUMBER = st.none() | st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(_TEXT, _TEXT, _TEXT, st.lists(_NUMBER, min_size=10, max_size=10)),
        min_size=1,
        max_size=6,
    )
)
def test_csv_and_parquet_hold_each_field_as_csv_writer_and_float_do(
    tmp_path_factory: pytest.TempPathFactory, cases: list[tuple[str, str, str, list[float | None]]]
) -> None:
    """Fields that need quoting, blanks, numbers as published: as csv.writer writes a row."""
    base = rows()[0]
    table = []
    for geo, deviation, source, numbers in cases:
        row = replace(base, geo=geo, deviation=deviation, source=source, breakdown={"sex": geo})
        table.append(row.amended(**dict(zip(_FLOAT_COLUMNS, numbers, strict=True))))
    path = tmp_path_factory.mktemp("csv")
    write_csv(table, path / "b.csv")
    sink = io.StringIO()
    writer = csv.writer(sink)
    writer.writerow([*COLUMNS_BEFORE, "sex", *COLUMNS_AFTER])
    for r in table:
        after = [
            published(getattr(r, n), _FLOAT_COLUMNS[n])
            if n in _FLOAT_COLUMNS
            else str(getattr(r, n))
            for n in COLUMNS_AFTER
        ]
        writer.writerow([*(getattr(r, n) for n in COLUMNS_BEFORE), r.breakdown["sex"], *after])
    assert (path / "b.csv").read_bytes() == sink.getvalue().encode("utf-8")
    write_parquet(table, path / "b.parquet")
    written = pq.read_table(path / "b.parquet")
    for name, digits in _FLOAT_COLUMNS.items():
        texts = [published(getattr(r, name), digits) for r in table]  # what the CSV says
        want = [float(t) if t else None for t in texts]
        got = written.column(name).to_pylist()
        assert [None if v is None else struct.pack("<d", v) for v in got] == [
            None if v is None else struct.pack("<d", v) for v in want
        ]
