"""The table engine: one pass of integer arithmetic and a ``numpy.bincount`` per table.

Every dimension (and the age filter) contributes a lookup table from its stored codes to
``position * stride`` in the table's mixed-radix cell index. A value that the table does
not count (an age outside the population, an ``UNK`` breakdown or outcome) looks up
``n_cells`` instead, which pushes the index past the last cell; those rows land in
overflow bins that are cut off after the count. So a table costs one lookup and one
addition per dimension, and no mask or fancy indexing of the rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from indicators.errors import QueryError
from indicators.spec import Dim, TableSpec
from indicators.variables import AGE, AGE_MISSING, CATEGORICAL
from node.harmonise import Harmonised

__all__ = ["TableCounts", "compute_table", "require_variables", "sensitivity"]

Int64Array = npt.NDArray[np.int64]


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
        if name != AGE and name not in data.codes:
            raise QueryError(
                f"this node does not provide the variable {name!r}",
                reason="VARIABLE_NOT_PROVIDED",
                field=name,
                hint="map it under [variables] in the node config, or ask without it",
            )


def compute_table(data: Harmonised, spec: TableSpec) -> TableCounts:
    """Count one table over the harmonised microdata.

    Raises:
        QueryError: When the node does not provide a variable the table reads.
    """
    require_variables(data, spec)
    n_cells = spec.n_cells
    dtype = np.int32 if (len(spec.all_dims) + 2) * n_cells < 2**31 else np.int64
    index = _age_lut(spec, n_cells, dtype)[data.age]
    stride = n_cells
    for dim in spec.all_dims:
        stride //= len(dim.codes)
        if dim.name != AGE:
            index += _code_lut(dim, stride, n_cells, dtype)[data.codes[dim.name]]
    length = int(index.max(initial=0)) + 1 if index.size else 0
    minlength = max(n_cells, length)
    if data.weights is None:
        counts = np.bincount(index, minlength=minlength)[:n_cells].astype(np.int64)
        return TableCounts(counts=counts, samples=None)
    sums = np.bincount(index, weights=data.weights, minlength=minlength)[:n_cells]
    samples = np.bincount(index, minlength=minlength)[:n_cells].astype(np.int64)
    return TableCounts(counts=np.rint(sums).astype(np.int64), samples=samples)


def _age_lut(spec: TableSpec, n_cells: int, dtype: type) -> npt.NDArray[np.integer]:
    """Age code to its contribution: the band position (if banded) or 0, else overflow."""
    lut: npt.NDArray[np.integer] = np.full(AGE_MISSING + 1, n_cells, dtype=dtype)
    lut[spec.age_min : spec.age_max + 1] = 0
    stride = n_cells
    for dim in spec.all_dims:
        stride //= len(dim.codes)
        if dim.name == AGE:
            for position, (low, high) in enumerate(dim.bands):
                lut[low : high + 1] = position * stride
    return lut


def _code_lut(dim: Dim, stride: int, n_cells: int, dtype: type) -> npt.NDArray[np.integer]:
    """Stored code to ``position * stride``; codes the table leaves out overflow."""
    stored = CATEGORICAL[dim.name].codes
    lut: npt.NDArray[np.integer] = np.full(len(stored), n_cells, dtype=dtype)
    for i, code in enumerate(stored):
        if code in dim.codes:
            lut[i] = dim.codes.index(code) * stride
    return lut
