"""The benchmark as a table: ``benchmark.csv`` with DESIGN's columns, and its Parquet twin.

Both publish the same numbers (``coordinator.publish.numbers``): nothing where a value
is not published (``status`` other than ``published``). ``unknown_share`` is in percent.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from coordinator.publish.numbers import published_column
from coordinator.rows import BenchmarkRow

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


def _column(rows: Sequence[BenchmarkRow], name: str) -> list[str]:
    """A column after the breakdowns, as text: a number as published, anything else its str."""
    values = list(map(attrgetter(name), rows))
    if name in _FLOAT_COLUMNS:
        return published_column(values, _FLOAT_COLUMNS[name])
    return list(map(str, values))


def write_csv(rows: Sequence[BenchmarkRow], path: Path) -> None:
    """Write benchmark.csv: one row per node x indicator x group x breakdown cell.

    Built a column at a time, each field as ``csv.writer`` writes it (`_csv_column`), and
    joined into lines: a ``csv.writer`` row by row costs more than the text itself.
    """
    extra = breakdown_columns(rows)
    columns = [_csv_column(list(map(attrgetter(name), rows))) for name in COLUMNS_BEFORE]
    columns += [_csv_column([r.breakdown.get(c, "") for r in rows]) for c in extra]
    columns += [_csv_column(_column(rows, name)) for name in COLUMNS_AFTER]
    header = [_csv_field(name) for name in [*COLUMNS_BEFORE, *extra, *COLUMNS_AFTER]]
    lines = [",".join(header), *map(",".join, zip(*columns, strict=True)), ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\r\n".join(lines), encoding="utf-8", newline="")


_QUOTED = re.compile(r'[,"\r\n\x00]')
"""What ``csv.writer`` may quote or refuse in a field: a field without these it writes as is."""


def _csv_column(values: list[Any]) -> list[str]:
    """A column's fields as ``csv.writer`` (the default dialect) writes each of them."""
    if set(map(type, values)) <= {str}:
        texts: list[str] = values
    else:  # as csv.writer: None is blank, anything else its str
        texts = ["" if v is None else str(v) for v in values]
    if _QUOTED.search(" ".join(texts)) is None:
        return texts
    return [_csv_field(t) if _QUOTED.search(t) else t for t in texts]


def _csv_field(text: str) -> str:
    """One field as ``csv.writer`` writes it in a row of several (the csv module's own)."""
    sink = io.StringIO()
    csv.writer(sink, lineterminator="\r\n").writerow([text, ""])
    return sink.getvalue().removesuffix(",\r\n")


def write_parquet(rows: Sequence[BenchmarkRow], path: Path) -> None:
    """Write benchmark.parquet: benchmark.csv's columns, numbers as float64 (null if blank).

    The columns are handed to Arrow as buffers (`_strings`): ``pa.array`` of Python lists
    imports pandas (to recognise its objects), a quarter second of CPU that writing a
    table of text and numbers does not need. A number is its published text (the CSV's)
    read by Arrow's cast to float64, which reads every decimal text to the nearest double,
    as ``float`` does.
    """
    extra = breakdown_columns(rows)
    arrays = [_strings(list(map(attrgetter(name), rows))) for name in COLUMNS_BEFORE]
    arrays += [_strings([r.breakdown.get(c, "") for r in rows]) for c in extra]
    for name in COLUMNS_AFTER:
        if name in _FLOAT_COLUMNS:
            texts = _column(rows, name)
            arrays.append(_strings([t or None for t in texts]).cast(pa.float64()))
        else:
            arrays.append(_strings(_column(rows, name)))
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
    texts = [v or "" for v in values] if None in values else cast(Sequence[str], values)
    joined = "".join(texts)
    data = joined.encode("utf-8")
    lengths: Iterable[int] = map(len, texts)  # ASCII: a text's length is its number of bytes
    if len(data) != len(joined):
        lengths = (len(t.encode("utf-8")) for t in texts)
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    offsets[1:] = np.fromiter(lengths, dtype=np.int64, count=len(texts)).cumsum()
    if offsets[-1] >= 2**31:
        raise ValueError("a benchmark.parquet text column over 2 GiB")  # not a query's size
    buffers = [_validity(values), pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.string(), len(texts), buffers)
