"""Harmonisation: local columns to small integer codes, with a coverage report.

Each mapped column is factorised once; only its distinct values are mapped, so a large
file costs one pass per column. Values that are missing or cannot be mapped become
``UNK`` and are counted in the coverage report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from indicators.errors import DataError
from indicators.variables import AGE, AGE_MISSING, CATEGORICAL, UNK, country_group
from node.config import NodeConfig, VariableMapping

__all__ = ["Coverage", "Harmonised", "harmonise"]

_INTEGRAL_FLOAT = re.compile(r"^(-?\d+)\.0*$")
MAX_AGE = 120


@dataclass(frozen=True)
class Coverage:
    """How well one variable maps.

    Attributes:
        variable: Harmonised variable.
        column: Local column.
        rows: Rows read.
        mapped: Rows with a mapped, non-missing value.
        missing: Rows with an empty value.
        unmapped: Distinct local values that could not be mapped, with row counts.
        codes: Rows per harmonised code.
    """

    variable: str
    column: str
    rows: int
    mapped: int
    missing: int
    unmapped: dict[str, int] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)

    @property
    def mapped_share(self) -> float:
        """Share of rows with a mapped value."""
        return self.mapped / self.rows if self.rows else 0.0


@dataclass(frozen=True)
class Harmonised:
    """The node's microdata as code arrays, ready for the table engine.

    Attributes:
        rows: Number of rows.
        codes: Categorical variable to int8 positions in its code list.
        age: Ages as uint8, ``AGE_MISSING`` where missing or implausible.
        weights: Clipped survey weights, or None for unit weights.
        coverage: Per-variable coverage reports.
    """

    rows: int
    codes: dict[str, npt.NDArray[np.int8]]
    age: npt.NDArray[np.uint8]
    weights: npt.NDArray[np.float64] | None
    coverage: dict[str, Coverage]


def harmonise(frame: pd.DataFrame, config: NodeConfig) -> Harmonised:
    """Map every configured variable to codes and clip the weights.

    Raises:
        DataError: When the weight column has missing or negative values.
    """
    codes: dict[str, npt.NDArray[np.int8]] = {}
    coverage: dict[str, Coverage] = {}
    age = np.full(len(frame), AGE_MISSING, dtype=np.uint8)
    for name, mapping in config.variables.items():
        if name == AGE:
            age, coverage[name] = _ages(frame[mapping.column], mapping)
        else:
            codes[name], coverage[name] = _categorical(
                frame[mapping.column], mapping, config.country
            )
    weights = _weights(frame, config) if config.dataset.weight else None
    return Harmonised(len(frame), codes, age, weights, coverage)


def _text(value: object) -> str:
    text = str(value).strip()
    match = _INTEGRAL_FLOAT.match(text)
    return match.group(1) if match else text


def _is_missing(value: object) -> bool:
    return (
        value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == ""
    )


def _categorical(
    column: pd.Series, mapping: VariableMapping, country: str
) -> tuple[npt.NDArray[np.int8], Coverage]:
    variable = CATEGORICAL[mapping.name]
    positions, uniques = pd.factorize(column, use_na_sentinel=True)
    counts = np.bincount(positions[positions >= 0], minlength=len(uniques))
    lut = np.empty(len(uniques) + 1, dtype=np.int8)  # last entry: pandas' NA sentinel (-1)
    lut[-1] = variable.index(mapping.missing)
    unmapped: dict[str, int] = {}
    missing = int(np.sum(positions < 0))
    for i, value in enumerate(uniques):
        if _is_missing(value):
            lut[i] = variable.index(mapping.missing)
            missing += int(counts[i])
            continue
        code = _map_value(_text(value), mapping, country)
        if code is None:
            unmapped[_text(value)] = unmapped.get(_text(value), 0) + int(counts[i])
            code = mapping.default or UNK
            if mapping.default is not None:
                unmapped.pop(_text(value))
        lut[i] = variable.index(code)
    coded = lut[positions]
    per_code = np.bincount(coded, minlength=len(variable.codes))
    n_unmapped = sum(unmapped.values())
    cov = Coverage(
        variable=mapping.name,
        column=mapping.column,
        rows=len(column),
        mapped=len(column) - missing - n_unmapped,
        missing=missing,
        unmapped=dict(sorted(unmapped.items(), key=lambda kv: -kv[1])),
        codes={c: int(n) for c, n in zip(variable.codes, per_code, strict=True)},
    )
    return coded, cov


def _map_value(text: str, mapping: VariableMapping, country: str) -> str | None:
    if text in mapping.map:
        return mapping.map[text]
    if mapping.iso_country:
        return country_group(text, country, mapping.name)
    return None


def _ages(column: pd.Series, mapping: VariableMapping) -> tuple[npt.NDArray[np.uint8], Coverage]:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    missing = np.isnan(values)
    valid = ~missing & (values >= 0) & (values <= MAX_AGE) & (values == np.floor(values))
    age = np.where(valid, values, AGE_MISSING).astype(np.uint8)
    bad = column[~valid & ~missing].astype(str).value_counts().head(20)
    cov = Coverage(
        variable=AGE,
        column=mapping.column,
        rows=len(column),
        mapped=int(valid.sum()),
        missing=int(missing.sum()),
        unmapped={str(k): int(v) for k, v in bad.items()},
    )
    return age, cov


def _weights(frame: pd.DataFrame, config: NodeConfig) -> npt.NDArray[np.float64]:
    column = config.dataset.weight
    assert column is not None
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = int(np.sum(~np.isfinite(values) | (values < 0)))
    if bad:
        raise DataError(
            f"{config.dataset.path}: weight column {column!r} has {bad} missing, "
            "non-numeric or negative value(s)",
            field=f"dataset.weight ({column})",
            hint="every row needs a non-negative weight; fix the data or filter with where",
        )
    clipped: npt.NDArray[np.float64] = np.minimum(values, config.privacy.max_weight)
    return clipped
