"""The table engine: count rows by their stored codes, then fold the counts into cells.

A row's *key* is the mixed-radix number of its stored codes (``UNK`` included) for the
variables a table reads, with its age class (its band in the table, or outside the
population) as the last digit: one small lookup (age byte to class) per block, a few
in-place integer operations and one ``numpy.bincount`` per block of rows,
whatever the table's population filter and bands. The key counts (a few thousand) are
then folded into the table's cells through a small *fold* table that maps every key to
its cell, or to an overflow bin when the row is not counted (an age outside the
population, an ``UNK`` breakdown or outcome). Rows are processed in blocks that fit in
the CPU cache, so the engine never allocates per-row arrays as large as the data.

Records that stand for several persons (``Harmonised.persons``: the groups an SQL engine
counted, `node.engines`) count that many times.

For a table with too many keys for this (more than ``MAX_KEYS``), the engine falls back
to computing each row's cell index through per-variable lookup tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from common.errors import QueryError, Reason
from indicators.spec import TableSpec
from indicators.variables import AGE, AGE_MISSING
from node.harmonise import Harmonised

__all__ = [
    "BLOCK_ROWS",
    "MAX_KEYS",
    "CountPlan",
    "TableCounts",
    "compute_table",
    "count_plan",
    "require_variables",
    "sensitivity",
]

Int64Array = npt.NDArray[np.int64]
IntArray = npt.NDArray[np.integer]
BLOCK_ROWS = 1 << 16
MAX_KEYS = 1 << 19  # beyond this, zeroing the key counts per block costs more than it saves
_AGE_RADIX = AGE_MISSING + 1


@dataclass(frozen=True)
class TableCounts:
    """True (un-noised) cell totals of one table. Never leaves the node.

    Attributes:
        counts: Cell totals: weighted and rounded for surveys, plain counts otherwise.
        samples: Unweighted counts for weighted data, else None.
    """

    counts: Int64Array
    samples: Int64Array | None


def sensitivity(max_weight: float | None) -> int:
    """L2 sensitivity of a table: one person's clipped weight, plus 1 for rounding."""
    return 1 if max_weight is None else math.ceil(max_weight) + 1


def require_variables(data: Harmonised, spec: TableSpec) -> None:
    """Raise QueryError when the node does not provide a variable the table reads."""
    for name in spec.variables():
        if name != AGE and (name not in data.codes or _unknown_local(data, name)):
            raise QueryError(
                f"this node does not provide the variable {name!r}",
                reason=Reason.VARIABLE_NOT_PROVIDED,
                field=name,
                hint="map it under [variables] in the node config, or ask without it",
            )


def _unknown_local(data: Harmonised, name: str) -> bool:
    try:
        data.variable(name)
    except KeyError:
        return True
    return False


@dataclass(frozen=True)
class CountPlan:
    """What counting a table takes besides the rows: derived from the spec and code lists.

    Attributes:
        names: The variables of the key (age aside), in key order.
        radices: Their numbers of stored codes.
        ages: Age byte to age class (`_age_classes`).
        n_keys: Size of the key space.
        fold: Cell of every key (`_fold`); None when the table has more than
            ``MAX_KEYS`` keys and is counted by cell index instead.
    """

    names: tuple[str, ...]
    radices: tuple[int, ...]
    ages: npt.NDArray[np.uint8]
    n_keys: int
    fold: npt.NDArray[np.intp] | None


def count_plan(data: Harmonised, spec: TableSpec) -> CountPlan:
    """The plan of counting ``spec`` over ``data``: the same for every call on the same data.

    Its arrays are read-only, so that an engine can keep it and share it between calls.

    Raises:
        QueryError: When the node does not provide a variable the table reads.
    """
    require_variables(data, spec)
    names = list(dict.fromkeys(d.name for d in spec.all_dims if d.name != AGE))
    radices = [len(data.variable(n).codes) for n in names]
    ages, contributions = _age_classes(spec)
    n_keys = math.prod(radices) * len(contributions)
    fold = None
    if n_keys <= MAX_KEYS:
        fold = _fold(data, spec, names, radices, contributions)
        fold.setflags(write=False)
    ages.setflags(write=False)
    return CountPlan(tuple(names), tuple(radices), ages, n_keys, fold)


def compute_table(data: Harmonised, spec: TableSpec, plan: CountPlan | None = None) -> TableCounts:
    """Count one table over the harmonised microdata.

    Args:
        data: The microdata.
        spec: The table.
        plan: `count_plan` of the same data and spec, when the caller kept one (its
            variables were checked when it was made).

    Raises:
        QueryError: When the node does not provide a variable the table reads.
    """
    if plan is None:
        plan = count_plan(data, spec)
    if plan.fold is None:  # too many keys to count per block: index each row's cell
        return _by_cell_index(data, spec)
    names, radices = list(plan.names), list(plan.radices)
    key_counts, key_sums = _count_keys(data, names, radices, plan.ages, plan.n_keys)
    fold = plan.fold
    n_cells = spec.n_cells
    counts = np.bincount(fold, weights=key_counts, minlength=n_cells + 1)[:n_cells]
    samples = np.rint(counts).astype(np.int64)
    if key_sums is None:
        return TableCounts(counts=samples, samples=None)
    sums = np.bincount(fold, weights=key_sums, minlength=n_cells + 1)[:n_cells]
    return TableCounts(counts=np.rint(sums).astype(np.int64), samples=samples)


def _age_classes(spec: TableSpec) -> tuple[npt.NDArray[np.uint8], Int64Array]:
    """Age byte to its class in the table, and each class's contribution to the cell.

    Ages with the same contribution (`_age_lut`: one band, or outside the population)
    share a class. Counting by class rather than by age byte keeps the key space small
    (5 bands: 6 digits, not 256), so that tables up to the policy's cell limit stay on
    the per-block fast path.
    """
    contribution, classes = np.unique(_age_lut(spec), return_inverse=True)
    return classes.astype(np.uint8), contribution.astype(np.int64)


def _count_keys(
    data: Harmonised,
    names: list[str],
    radices: list[int],
    ages: npt.NDArray[np.uint8],
    n_keys: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
    """Rows (and weights) per key, one block of rows at a time.

    A block is cache-sized, or a few times the key space when that is larger (so that
    the per-block key counts do not cost more than the rows).
    """
    dtype = np.uint16 if n_keys <= 1 << 16 else np.uint32
    counts = np.zeros(n_keys, dtype=np.int64 if data.persons is None else np.float64)
    sums = None if data.weights is None else np.zeros(n_keys, dtype=np.float64)
    block = max(BLOCK_ROWS, 4 * n_keys)
    buffer: npt.NDArray[np.unsignedinteger] = np.empty(block, dtype=dtype)
    age_class: npt.NDArray[np.uint8] = np.empty(block, dtype=np.uint8)
    radix = n_keys // math.prod(radices)
    records = len(data.age)
    for start in range(0, records, block):
        stop = min(start + block, records)
        key = buffer[: stop - start]
        key[:] = 0
        for name, r in zip(names, radices, strict=True):
            key *= r
            codes = data.codes[name][start:stop]
            key += codes.view(np.uint8) if codes.dtype == np.int8 else codes
        key *= radix
        key += np.take(ages, data.age[start:stop], out=age_class[: stop - start])
        persons = None if data.persons is None else data.persons[start:stop]
        counts += np.bincount(key, weights=persons, minlength=n_keys)
        if sums is not None:
            assert data.weights is not None
            sums += np.bincount(key, weights=data.weights[start:stop], minlength=n_keys)
    return counts.astype(np.float64), sums


def _fold(
    data: Harmonised,
    spec: TableSpec,
    names: list[str],
    radices: list[int],
    contributions: Int64Array,
) -> npt.NDArray[np.intp]:
    """Cell of every key (``n_cells`` = not counted): the variables' lookups summed."""
    n_cells = spec.n_cells
    grid = np.zeros([*radices, len(contributions)], dtype=np.int64)
    for axis, name in enumerate(names):
        shape = [1] * (len(names) + 1)
        shape[axis] = radices[axis]
        grid += _code_lut(data, spec, name).reshape(shape)
    grid += contributions.reshape([1] * len(names) + [len(contributions)])
    return np.minimum(grid.ravel(), n_cells).astype(np.intp)


def _strides(spec: TableSpec) -> dict[str, int]:
    """Stride of each dimension in the table's row-major cell index."""
    strides, stride = {}, spec.n_cells
    for dim in spec.all_dims:
        stride //= len(dim.codes)
        strides[dim.name] = stride
    return strides


def _age_lut(spec: TableSpec) -> Int64Array:
    """Age byte to its contribution: band position x stride (or 0), else ``n_cells``."""
    n_cells = spec.n_cells
    lut = np.full(_AGE_RADIX, n_cells, dtype=np.int64)
    lut[spec.age_min : spec.age_max + 1] = 0
    stride = _strides(spec).get(AGE)
    for dim in spec.all_dims:
        if dim.name == AGE and stride is not None:
            for position, (low, high) in enumerate(dim.bands):
                lut[low : high + 1] = position * stride
    return lut


def _code_lut(data: Harmonised, spec: TableSpec, name: str) -> Int64Array:
    """Stored code to position x stride; codes the table leaves out go to ``n_cells``."""
    dim = next(d for d in spec.all_dims if d.name == name)
    stride = _strides(spec)[name]
    stored = data.variable(name).codes
    lut = np.full(len(stored), spec.n_cells, dtype=np.int64)
    for i, code in enumerate(stored):
        if code in dim.codes:
            lut[i] = dim.codes.index(code) * stride
    return lut


def _by_cell_index(data: Harmonised, spec: TableSpec) -> TableCounts:
    """Fallback for tables with very many keys: a per-row cell index through lookups."""
    n_cells = spec.n_cells
    index: IntArray = np.take(_age_lut(spec), data.age)
    for dim in spec.all_dims:
        if dim.name != AGE:
            index = index + np.take(_code_lut(data, spec, dim.name), data.codes[dim.name])
    index = np.minimum(index, n_cells)
    rows = np.bincount(index, weights=data.persons, minlength=n_cells + 1)[:n_cells]
    counts = np.rint(rows).astype(np.int64)
    if data.weights is None:
        return TableCounts(counts=counts, samples=None)
    sums = np.bincount(index, weights=data.weights, minlength=n_cells + 1)[:n_cells]
    return TableCounts(counts=np.rint(sums).astype(np.int64), samples=counts)
