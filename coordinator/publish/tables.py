"""The benchmark as a table: ``benchmark.csv`` with DESIGN's columns, and its Parquet twin.

Both publish the same numbers (``coordinator.publish.numbers``): nothing where a value
is not published (``status`` other than ``published``). ``unknown_share`` is in percent.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
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
    """Write benchmark.parquet: benchmark.csv's columns, numbers as float64 (null if blank).

    The columns are handed to Arrow as buffers (`_strings`, `_floats`): ``pa.array`` of
    Python lists imports pandas (to recognise its objects), a quarter second of CPU that
    writing a table of text and numbers does not need.
    """
    extra = breakdown_columns(rows)
    arrays = [_strings([getattr(r, name) for r in rows]) for name in COLUMNS_BEFORE]
    arrays += [_strings([r.breakdown.get(c, "") for r in rows]) for c in extra]
    for name in COLUMNS_AFTER:
        if name in _FLOAT_COLUMNS:
            digits = _FLOAT_COLUMNS[name]
            arrays.append(_floats([published_float(getattr(r, name), digits) for r in rows]))
        else:
            arrays.append(_strings([str(getattr(r, name)) for r in rows]))
    names = [*COLUMNS_BEFORE, *extra, *COLUMNS_AFTER]
    schema = pa.schema([(n, pa.float64() if n in _FLOAT_COLUMNS else pa.string()) for n in names])
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path)


def _validity(values: Sequence[object]) -> pa.Buffer | None:
    """Arrow's validity bitmap of values where None is a null (None when there is none)."""
    if None not in values:
        return None
    present = np.array([v is not None for v in values], dtype=bool)
    return pa.py_buffer(np.packbits(present, bitorder="little"))


def _strings(values: Sequence[str | None]) -> pa.Array:
    """A UTF-8 string array (None a null) built from its offsets and bytes."""
    texts = [v or "" for v in values]
    joined = "".join(texts)
    data = joined.encode("utf-8")
    if len(data) == len(joined):  # ASCII: a text's length is its number of bytes
        lengths = [len(t) for t in texts]
    else:
        lengths = [len(t.encode("utf-8")) for t in texts]
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] >= 2**31:
        raise ValueError("a benchmark.parquet text column over 2 GiB")  # not a query's size
    buffers = [_validity(values), pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.string(), len(texts), buffers)


def _floats(values: Sequence[float | None]) -> pa.Array:
    """A float64 array (None a null) built from its values."""
    data = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return pa.Array.from_buffers(pa.float64(), len(data), [_validity(values), pa.py_buffer(data)])
