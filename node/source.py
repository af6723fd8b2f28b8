"""Reading a node's microdata: CSV or Parquet, only the needed columns, the `where` rows.

The file is read by Arrow (its threads) into typed columns: text columns of codes as
dictionaries (a small array of positions and the distinct values), numbers as numbers,
so that harmonising (`node.harmonise`) maps only distinct values, one column at a time,
and lets each column go once the last mapping reading it is done (`node.columns`).
"""

from __future__ import annotations

import difflib
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from common.errors import DataError, Reason
from indicators.variables import AGE
from node.columns import Columns
from node.config import NodeConfig
from node.mappings import NumericColumn

__all__ = ["describe_filters", "load_frame", "missing_columns", "needed_columns"]


def needed_columns(config: NodeConfig) -> list[str]:
    """Local columns the node reads: mapped variables, the weight, the row filters."""
    cols = [c for m in config.variables.values() for c in m.columns]
    if config.dataset.weight:
        cols.append(config.dataset.weight)
    cols.extend(config.dataset.where)
    cols.extend(config.dataset.where_not)
    return list(dict.fromkeys(cols))


def load_frame(config: NodeConfig) -> Columns:
    """Load the configured dataset's needed columns, keeping only the `where` rows.

    Each column goes when `node.harmonise.harmonise` is done with it; the columns only
    the row filters read go at once.

    Raises:
        DataError: When the file is missing, a configured column is absent, or no row
            is left after `where`.
    """
    path = config.dataset.path
    if path is None:
        raise DataError(
            f"{config.file}: dataset.path: the {config.dataset.engine} engine reads no file",
            field="dataset.path",
        )
    if not path.exists():
        raise DataError(
            f"{config.file}: dataset.path: no such file {path}",
            field="dataset.path",
            hint="paths are relative to the config file",
        )
    available = _columns(path)
    wanted = needed_columns(config)
    missing = [c for c in wanted if c not in available]
    if missing:
        raise missing_columns(f"{path}: ", f"named in {config.file.name} ", missing, available)
    uses = Counter(c for m in config.variables.values() for c in m.columns)
    if config.dataset.weight:
        uses[config.dataset.weight] += 1
    columns = Columns.from_table(_read(path, wanted, _many_values(config)), uses)
    return _select(columns, config)


def missing_columns(where: str, named: str, missing: list[str], available: list[str]) -> DataError:
    """The error for configured columns the source lacks.

    It names each with its likeliest match, and every column the source has (none left
    out, however many).
    """
    guesses = []
    for name in missing:
        close = difflib.get_close_matches(name, available, n=1, cutoff=0.6)
        folded = [c for c in available if c.casefold() == name.casefold()]
        if folded or close:
            guesses.append(f"{name!r}: did you mean {(folded or close)[0]!r}?")
    return DataError(
        f"{where}column(s) {', '.join(missing)} {named}not found"
        + (f" ({'; '.join(guesses)})" if guesses else ""),
        reason=Reason.MISSING_COLUMN,
        field=", ".join(missing),
        hint=f"the source has {len(available)} columns: {', '.join(available)}",
    )


def _columns(path: Path) -> list[str]:
    if path.suffix.lower() == ".parquet":
        return list(pq.read_schema(path).names)
    return list(pd.read_csv(path, nrows=0).columns)


def _many_values(config: NodeConfig) -> set[str]:
    """Columns of numbers with many distinct values (income, the weight): not dictionaries."""
    binned = {
        c for m in config.variables.values() if isinstance(m, NumericColumn) and m.name != AGE
        for c in m.columns
    }  # fmt: skip
    return binned | ({config.dataset.weight} if config.dataset.weight else set())


def _read(path: Path, columns: list[str], many: set[str]) -> pa.Table:
    """The columns: codes dictionary-encoded, the ``many`` columns plain.

    A column of codes is one small array of positions and its dictionary, so
    harmonising maps only the dictionary's values.
    """
    _use_arrow_pool()
    if path.suffix.lower() == ".parquet":
        schema = pq.read_schema(path)
        text = [c for c in columns if pa.types.is_string(schema.field(c).type) and c not in many]
        return pq.read_table(path, columns=columns, read_dictionary=text)
    # Every CSV column is text (a code such as 01 stays 01), empty is missing; read by
    # Arrow's parallel reader.
    codes = pa.dictionary(pa.int32(), pa.string())
    options = pacsv.ConvertOptions(
        include_columns=columns,
        column_types={c: pa.string() if c in many else codes for c in columns},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    return pacsv.read_csv(path, convert_options=options)


def _use_arrow_pool() -> None:
    """Read with the system allocator's pool rather than Arrow's default, mimalloc.

    With several threads decoding a large file into fresh memory, mimalloc sometimes
    spent 4-4.5 s of system time on a 10M-row Parquet file where the same read in the
    next process took 0.2 s (`bench/memory_engine_bench.py`, fresh processes, load
    7-17 on 2 cores); the system allocator took 0.4-1.3 s, and `malloc_trim` (which the
    memory engine calls) gives its free pages back. jemalloc was as fast but kept about
    80 MiB more after loading.
    """
    if pa.default_memory_pool().backend_name == "mimalloc":
        pa.set_memory_pool(pa.system_memory_pool())


def describe_filters(config: NodeConfig) -> str:
    """The row filters as the config says them, for messages ("" when there are none)."""
    dataset = config.dataset
    parts = []
    for key, filters in (("where", dataset.where), ("where_not", dataset.where_not)):
        if filters:
            shown = [f"{c} = {list(v) if len(v) > 1 else v[0]!r}" for c, v in filters.items()]
            parts.append(f"{key} {{ {', '.join(shown)} }}")
    return " and ".join(parts)


def _select(columns: Columns, config: NodeConfig) -> Columns:
    """The rows ``where`` keeps and ``where_not`` does not drop (values compared as text)."""
    n_read = columns.rows
    keep = np.ones(n_read, dtype=np.bool_)
    for column, values in config.dataset.where.items():
        keep &= _matches(columns, column, values)
    for column, values in config.dataset.where_not.items():
        keep &= ~_matches(columns, column, values)
    if config.dataset.where or config.dataset.where_not:
        columns = columns.filter(keep)
    columns.done([])  # the columns only the filters read go
    if not columns.rows:
        filters = describe_filters(config)
        raise DataError(
            f"{config.dataset.path}: no rows left of {n_read} after {filters}"
            if filters
            else f"{config.dataset.path}: the dataset has no rows",
            reason=Reason.EMPTY_DATASET,
            field="dataset.where",
            hint="check the values in dataset.where against the file's values",
        )
    return columns


def _matches(columns: Columns, column: str, values: tuple[str, ...]) -> np.ndarray:
    """Per row, whether its value's text is one of ``values`` (an empty value never is)."""
    distinct = columns.distinct(column)
    wanted = set(values)
    hit = np.array([t in wanted for t in distinct.texts()] + [False], dtype=np.bool_)
    result: np.ndarray = hit[distinct.slot]
    return result
