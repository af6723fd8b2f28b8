"""A source's columns as distinct values: what harmonising maps, one column at a time.

Harmonising maps the *distinct* values of a column (a few hundred at most for codes,
ages and years) and spreads the results to the rows with one take. `Distinct` is a
column in that form: per row the slot of its value, and the values.

- Arrow columns (`node.source` reads CSV and Parquet into Arrow): a dictionary-encoded
  column's dictionary gives the values and its indices the slots; whole numbers over a
  small range are their own slots (value - smallest); other text is encoded by Arrow;
  other types go through pandas, one column at a time.
- pandas columns (the SQL engines' representative records, `node.engines.sql`):
  `pandas.factorize`.

Either way a value is what pandas shows for it (an integer column with gaps reads as
floats, as ``to_pandas`` makes it), so codes and the texts of coverage reports are the
same whichever reader the file went through.

`Columns` holds a source's columns and lets each one go once the last mapping that reads
it is done, so the file's columns give way to their codes as harmonising goes on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Columns", "Distinct", "Slots", "distinct_of", "slot_type"]

_SMALL_RANGE = 1 << 16  # whole numbers spanning fewer values are their own slots
_FIRST_BLOCK = 1 << 12  # rows scanned first when looking for where values first occur
_LAST_BLOCK = 1 << 20
FloatArray = npt.NDArray[np.float64]
Slots = npt.NDArray[np.unsignedinteger] | npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]
Column: TypeAlias = pa.ChunkedArray | pd.Series
Values: TypeAlias = "pd.Index[Any] | npt.NDArray[Any] | list[Any]"


@dataclass
class Distinct:
    """One column as its distinct values and, per row, the slot of its value.

    Attributes:
        slot: Per row, the position of its value in ``values``; ``len(values)`` (the
            missing slot) where the row is empty. The narrowest unsigned type that holds
            the slots (`slot_type`): a byte a row for up to 255 distinct values.
        values: The distinct non-missing values, as pandas shows them.
    """

    slot: Slots
    values: Values
    _texts: list[str] | None = field(default=None, repr=False)

    @property
    def missing(self) -> int:
        """The slot of empty rows (after the last value)."""
        return len(self.values)

    def texts(self) -> list[str]:
        """Each value as text (``str``, as pandas' ``astype(str)`` gives it)."""
        if self._texts is None:
            self._texts = [str(v) for v in self.values]
        return self._texts

    def numbers(self) -> FloatArray:
        """Each value as a number (NaN: not a number), then NaN for the missing slot."""
        values = self.values
        if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
            return np.append(values.astype(np.float64), np.nan)
        parsed = pd.to_numeric(pd.Series(values), errors="coerce")
        return np.append(parsed.to_numpy(dtype=np.float64, na_value=np.nan), np.nan)

    def in_order(self, slots: Iterable[int], rows: BoolArray | None = None) -> list[int]:
        """``slots`` ordered by the row where each first occurs (of ``rows``, or all).

        The order pandas gives distinct values (``factorize``, ``groupby(sort=False)``),
        found by scanning blocks of growing size until every slot was seen; slots never
        seen come last.
        """
        wanted = dict.fromkeys(int(s) for s in slots)
        if len(wanted) < 2:
            return list(wanted)
        first: dict[int, int] = {}
        start, size, n = 0, _FIRST_BLOCK, len(self.slot)
        while len(first) < len(wanted) and start < n:
            block = self.slot[start : start + size]
            where = np.arange(start, start + len(block))
            if rows is not None:
                kept = rows[start : start + size]
                block, where = block[kept], where[kept]
            seen = np.bincount(block, minlength=self.missing + 1)
            for s in wanted:
                if s not in first and seen[s]:
                    first[s] = int(where[np.argmax(block == s)])
            start, size = start + size, min(size * 2, _LAST_BLOCK)
        return sorted(wanted, key=lambda s: first.get(s, n))


def slot_type(values: int) -> type[np.unsignedinteger] | type[np.intp]:
    """The narrowest type for the slots of ``values`` distinct values and the missing one."""
    for kind in (np.uint8, np.uint16, np.uint32):
        if values < np.iinfo(kind).max:
            return kind
    return np.intp


def distinct_of(column: Column) -> Distinct:
    """A column (Arrow or pandas) as its distinct values."""
    if isinstance(column, pd.Series):
        return _factorized(column)
    return _from_arrow(column)


def _factorized(column: pd.Series) -> Distinct:
    positions, uniques = pd.factorize(column, use_na_sentinel=True)
    slot = np.where(positions < 0, len(uniques), positions).astype(slot_type(len(uniques)))
    return Distinct(slot, uniques)


def _from_arrow(column: pa.ChunkedArray) -> Distinct:
    kind = column.type
    if pa.types.is_dictionary(kind) and _is_text(kind.value_type):
        return _from_dictionary(column)
    if _is_text(kind):
        return _from_dictionary(pc.dictionary_encode(column))
    if pa.types.is_integer(kind):
        return _from_integers(column)
    return _factorized(column.to_pandas())  # floats, dates, ...: as pandas reads them


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _from_dictionary(column: pa.ChunkedArray) -> Distinct:
    """A dictionary-encoded text column: the (unified) dictionary and its indices."""
    column = column.unify_dictionaries()
    if column.num_chunks == 0:
        return Distinct(np.zeros(0, np.uint8), [])
    dictionary = column.chunk(0).dictionary
    if dictionary.null_count:
        return _factorized(column.to_pandas())
    values = dictionary.to_pylist()
    slot = np.empty(len(column), dtype=slot_type(len(values)))
    at = 0
    for chunk in column.chunks:
        indices = chunk.indices.fill_null(len(values)) if chunk.null_count else chunk.indices
        np.copyto(slot[at : at + len(chunk)], indices.to_numpy(), casting="unsafe")
        at += len(chunk)
    return Distinct(slot, values)


def _from_integers(column: pa.ChunkedArray) -> Distinct:
    """Whole numbers: their own slots over a small range, else encoded by Arrow.

    With empty rows the values are floats, as in pandas.
    """
    gaps = column.null_count > 0
    span = pc.min_max(column).as_py()
    low, high = span["min"], span["max"]
    if low is None:  # every row empty
        return Distinct(np.zeros(len(column), np.uint8), np.zeros(0, np.float64))
    if high - low >= _SMALL_RANGE:
        encoded = _from_dictionary_values(pc.dictionary_encode(column).unify_dictionaries())
        values = np.asarray(encoded.values, dtype=np.float64 if gaps else np.int64)
        return Distinct(encoded.slot, values)
    n = high - low + 1
    slot = np.empty(len(column), dtype=slot_type(n))
    at = 0
    for chunk in column.chunks:
        part = slot[at : at + len(chunk)]
        at += len(chunk)
        if chunk.null_count == len(chunk):
            part[:] = n
            continue
        np.subtract(_raw_integers(chunk), low, out=part, dtype=np.intp, casting="unsafe")
        if chunk.null_count:
            part[chunk.is_null().to_numpy(zero_copy_only=False)] = n
    values = np.arange(low, high + 1, dtype=np.int64)
    return Distinct(slot, values.astype(np.float64) if gaps else values)


def _raw_integers(chunk: pa.Array) -> npt.NDArray[np.integer]:
    """An integer chunk's values as numpy, without a copy (empty rows: any value)."""
    if not chunk.null_count:
        values: npt.NDArray[np.integer] = chunk.to_numpy()
        return values
    dtype = np.dtype(chunk.type.to_pandas_dtype())
    data = chunk.buffers()[1]
    return np.frombuffer(data, dtype=dtype, count=chunk.offset + len(chunk))[chunk.offset :]


def _from_dictionary_values(column: pa.ChunkedArray) -> Distinct:
    """A dictionary-encoded column of any value type (unified dictionaries)."""
    values = column.chunk(0).dictionary.to_numpy(zero_copy_only=False)
    slot = np.concatenate(
        [c.indices.fill_null(len(values)).to_numpy() for c in column.chunks]
    ).astype(slot_type(len(values)))
    return Distinct(slot, values)


class Columns:
    """A source's columns, each read as `Distinct` or as numbers, let go when done.

    Args:
        columns: Column name to its Arrow or pandas column (all of one length).
        rows: The number of rows.
        uses: How many mappings read each column (a column goes when they are done);
            None keeps every column.
    """

    def __init__(
        self, columns: dict[str, Column], rows: int, uses: Counter[str] | None = None
    ) -> None:
        self._columns = columns
        self._distinct: dict[str, Distinct] = {}
        self._uses = uses
        self.rows = rows

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Columns:
        """A pandas frame's columns (kept: the caller holds the frame)."""
        return cls({str(c): frame[c] for c in frame.columns}, len(frame))

    @classmethod
    def from_table(cls, table: pa.Table, uses: Counter[str] | None = None) -> Columns:
        """An Arrow table's columns."""
        return cls(dict(zip(table.column_names, table.columns, strict=True)), len(table), uses)

    def __len__(self) -> int:
        return self.rows

    def names(self) -> list[str]:
        """The columns held."""
        return list(self._columns)

    def distinct(self, name: str) -> Distinct:
        """A column as its distinct values (computed once)."""
        if name not in self._distinct:
            self._distinct[name] = distinct_of(self._columns[name])
        return self._distinct[name]

    def text(self, name: str) -> pd.Series:
        """A column as pandas shows it (for the rare checks made per row)."""
        column = self._columns[name]
        return column if isinstance(column, pd.Series) else column.to_pandas()

    def numbers(self, name: str) -> tuple[FloatArray, Distinct | None]:
        """A column as numbers (NaN where empty or not a number), and its non-numbers.

        The second holds the non-empty values that are not numbers (every other row in
        the missing slot), or is None when the column is of a number type (then every
        NaN is an empty value).
        """
        column = self._columns[name]
        if isinstance(column, pa.ChunkedArray) and (
            pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
        ):
            return _floats(column), None
        if isinstance(column, pa.ChunkedArray) and _is_text(column.type):
            plain = _plain_decimals(column)
            if plain is not None:
                return plain, None
        series = self.text(name)
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        words = np.flatnonzero(np.isnan(values) & series.notna().to_numpy())
        found = _factorized(series.iloc[words])
        slot = np.full(len(values), len(found.values), dtype=slot_type(len(found.values)))
        slot[words] = found.slot
        return values, Distinct(slot, found.values)

    def filter(self, rows: BoolArray) -> Columns:
        """The rows where ``rows`` holds, every column."""
        kept = pa.array(rows)
        columns: dict[str, Column] = {
            n: c[rows].reset_index(drop=True) if isinstance(c, pd.Series) else c.filter(kept)
            for n, c in self._columns.items()
        }
        return Columns(columns, int(rows.sum()), self._uses)

    def done(self, names: Iterable[str]) -> None:
        """One mapping reading ``names`` is done: columns no mapping still reads go.

        ``done([])`` lets go the columns no mapping reads (those only the row filters read).
        """
        if self._uses is None:
            return
        for name in names:
            self._uses[name] -= 1
        for name in [n for n in self._columns if self._uses[n] <= 0]:
            del self._columns[name]
            self._distinct.pop(name, None)


_PLAIN_DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"
_PLAIN_DIGITS = 15  # at most 15 digits: pandas' parser and Arrow's round them alike


def _plain_decimals(column: pa.ChunkedArray) -> FloatArray | None:
    """A text column of plain decimals (such as ``-1234.56``) parsed by Arrow, or None.

    Only when every non-empty value is one, of at most 15 characters: such a number is
    exact as an integer of at most 15 digits and a power of ten of at most 22, so both
    pandas' parser (`pandas.to_numeric`, which the node used) and Arrow's (correctly
    rounded) give the correctly rounded float. Anything else (spaces, exponents, words,
    longer numbers) goes to pandas, as before.
    """
    if not len(column):
        return None
    plain = pc.and_(
        pc.match_substring_regex(column, _PLAIN_DECIMAL),
        pc.less_equal(pc.utf8_length(column), _PLAIN_DIGITS),
    )
    if pc.sum(plain).as_py() != len(column) - column.null_count:
        return None
    return _floats(pc.cast(column, pa.float64()))


def _floats(column: pa.ChunkedArray) -> FloatArray:
    """A numeric Arrow column as float64, NaN where empty (as pandas reads it)."""
    out = np.empty(len(column), dtype=np.float64)
    at = 0
    for chunk in column.chunks:
        values = chunk if chunk.type == pa.float64() else chunk.cast(pa.float64(), safe=False)
        out[at : at + len(chunk)] = values.to_numpy(zero_copy_only=False)
        at += len(chunk)
    return out
