"""benchmark.parquet built from Arrow buffers: benchmark.csv's values, and no pandas."""

from __future__ import annotations

import csv
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from coordinator.combine import BenchmarkRow
from coordinator.flags import Flags, Status
from coordinator.publish.tables import write_csv, write_parquet

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
