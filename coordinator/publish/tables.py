"""The benchmark as a table: ``benchmark.csv`` with DESIGN's columns, and its Parquet twin.

Both publish the same numbers (``coordinator.publish.numbers``): nothing where a value
is not published (``status`` other than ``published``). ``unknown_share`` is in percent.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from coordinator.combine import BenchmarkRow
from coordinator.publish.numbers import published, published_float

__all__ = ["COLUMNS_AFTER", "COLUMNS_BEFORE", "breakdown_columns", "write_csv", "write_parquet"]

COLUMNS_BEFORE = ["node", "geo", "geo_level", "time_period", "indicator", "group_dim", "group"]
COLUMNS_AFTER = [
    "value", "ci_low", "ci_high", "comparator", "comparator_value", "gap", "gap_ci_low",
    "gap_ci_high", "denominator", "unknown_share", "flags", "status", "unit", "source",
    "deviation", "poverty_line", "poverty_line_source", "aggregate", "release",
]  # fmt: skip
# The numeric columns and their published decimals.
_FLOAT_COLUMNS = {
    "value": 1, "ci_low": 1, "ci_high": 1, "comparator_value": 1, "gap": 1, "gap_ci_low": 1,
    "gap_ci_high": 1, "denominator": 0, "unknown_share": 1, "poverty_line": 0,
}  # fmt: skip


def breakdown_columns(rows: Iterable[BenchmarkRow]) -> list[str]:
    """Breakdown columns present in any row, in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row.breakdown))
    return list(seen)


def _after(row: BenchmarkRow) -> list[str]:
    """A row's columns after the breakdowns, as text."""
    return [
        published(getattr(row, name), _FLOAT_COLUMNS[name])
        if name in _FLOAT_COLUMNS
        else str(getattr(row, name))
        for name in COLUMNS_AFTER
    ]


def write_csv(rows: Sequence[BenchmarkRow], path: Path) -> None:
    """Write benchmark.csv: one row per node x indicator x group x breakdown cell."""
    extra = breakdown_columns(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*COLUMNS_BEFORE, *extra, *COLUMNS_AFTER])
        for r in rows:
            before = [getattr(r, name) for name in COLUMNS_BEFORE]
            writer.writerow([*before, *[r.breakdown.get(c, "") for c in extra], *_after(r)])


def write_parquet(rows: Sequence[BenchmarkRow], path: Path) -> None:
    """Write benchmark.parquet: benchmark.csv's columns, numbers as float64 (null if blank)."""
    extra = breakdown_columns(rows)
    columns: dict[str, list[str | float | None]] = {
        **{name: [getattr(r, name) for r in rows] for name in COLUMNS_BEFORE},
        **{c: [r.breakdown.get(c, "") for r in rows] for c in extra},
    }
    for name in COLUMNS_AFTER:
        if name in _FLOAT_COLUMNS:
            digits = _FLOAT_COLUMNS[name]
            columns[name] = [published_float(getattr(r, name), digits) for r in rows]
        else:
            columns[name] = [str(getattr(r, name)) for r in rows]
    schema = pa.schema([(n, pa.float64() if n in _FLOAT_COLUMNS else pa.string()) for n in columns])
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns, schema=schema), path)
