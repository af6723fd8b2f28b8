"""Harmonisation: local columns to small integer codes, with a coverage report.

Each mapped column is read as its distinct values (`node.columns`: an Arrow column's
dictionary, or a pandas column factorised); only those are mapped, and the codes reach
the rows by one take, so a large file costs one pass per column, one column at a time.
Values that are missing or cannot be mapped become ``UNK`` and are counted in the
coverage report.

Then the node derives what its mapping implies (`node.derive`, rules in
`indicators.derived`), in dependency order: ``mig_background`` from the parents' countries
of birth; ``yearesid`` and ``arrival_cohort`` from an arrival year; ``NAP`` for the
native-born in ``reason``, ``yearesid`` and ``arrival_cohort`` and for the non-employed in
``stapro`` and ``isco08``; the derived outcomes ``elet``, ``neet`` and ``overqual``. A row
set to ``NAP`` this way is not counted as missing or unmapped: the variable does not
apply to it.

A frame may also hold *records* that each stand for several persons (``persons``): the
SQL engines (`node.engines`) harmonise one representative record per group of rows their
database counted, so every count and coverage figure is weighted by ``persons``.
"""

from __future__ import annotations

import contextvars
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import assert_never

import numpy as np
import numpy.typing as npt
import pandas as pd

from common.errors import DataError
from indicators.derived import APPLIES_TO, DERIVED
from indicators.spec import is_local
from indicators.variables import AGE, AGE_MISSING, CATEGORICAL, UNK, Variable, country_group
from node.columns import Columns, Distinct, Slots, distinct_of
from node.config import NodeConfig
from node.cut import cut
from node.derive import apply_rule, arrival_codes, from_parents, refine
from node.mappings import (
    CodedColumn,
    CodeMap,
    FromArrivalYear,
    FromParents,
    LocalColumn,
    NumericColumn,
    VariableMapping,
)

__all__ = [
    "KINDS",
    "Coverage",
    "Harmonised",
    "WeightClipping",
    "harmonise",
    "named_alone",
    "value_classes",
]

_PERSONS: contextvars.ContextVar[npt.NDArray[np.int64] | None] = contextvars.ContextVar(
    "persons", default=None
)  # persons per record of the frame being harmonised
_COUNT_BLOCK = 1 << 16  # rows counted at once: small codes widened to indices in cache
_INTEGRAL_FLOAT = re.compile(r"^(-?\d+)\.0*$")
MAX_AGE = 120
MAX_BAD_VALUES_SHOWN = 20
_OK, _MISSING, _UNMAPPED, _DEFAULTED = 0, 1, 2, 3  # what a distinct local value is
KINDS = 4
"""Kinds of a distinct value; `value_classes` encodes a class as code x KINDS + kind."""
Codes = npt.NDArray[np.int8]
Refine = Callable[[Codes], Codes]


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
        defaulted: Distinct local values not in the map that ``default`` caught, with
            row counts (counted in ``mapped``).
    """

    variable: str
    column: str
    rows: int
    mapped: int
    missing: int
    unmapped: dict[str, int] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)
    defaulted: dict[str, int] = field(default_factory=dict)

    @property
    def mapped_share(self) -> float:
        """Share of rows with a mapped value."""
        return self.mapped / self.rows if self.rows else 0.0

    @property
    def missing_share(self) -> float:
        """Share of rows with an empty value."""
        return self.missing / self.rows if self.rows else 0.0

    @property
    def defaulted_share(self) -> float:
        """Share of rows whose value ``default`` caught."""
        return sum(self.defaulted.values()) / self.rows if self.rows else 0.0


@dataclass(frozen=True)
class WeightClipping:
    """How much clipping the survey weights to ``max_weight`` took away.

    Attributes:
        max_weight: The clipping bound (``[privacy] max_weight``).
        rows: Persons with a weight.
        clipped: Persons whose weight was over ``max_weight``.
        largest: The largest weight before clipping.
        weight: The sum of the weights before clipping.
        kept: The sum after clipping.
    """

    max_weight: float
    rows: int
    clipped: int
    largest: float
    weight: float
    kept: float

    @property
    def clipped_share(self) -> float:
        """Share of persons whose weight was clipped."""
        return self.clipped / self.rows if self.rows else 0.0

    @property
    def weight_share_removed(self) -> float:
        """Share of the total weight that clipping removed."""
        return 1.0 - self.kept / self.weight if self.weight > 0 else 0.0


@dataclass(frozen=True)
class Harmonised:
    """The node's microdata as code arrays, ready for the table engine.

    Attributes:
        rows: Number of rows.
        codes: Categorical variable to its positions in its code list (int8), or a
            binned numeric variable to its bin (uint16); ``UNK`` is the last position.
        age: Ages as uint8, ``AGE_MISSING`` where missing or implausible.
        weights: Clipped survey weights, or None for unit weights.
        coverage: Per-variable coverage reports.
        local: The node's own ``local:NAME`` variables (their codes are in ``codes``).
        persons: Persons each record stands for, or None when a record is one person.
        clipping: What clipping the weights took away (None for unit weights).
    """

    rows: int
    codes: Mapping[str, npt.NDArray[np.integer]]
    age: npt.NDArray[np.uint8]
    weights: npt.NDArray[np.float64] | None
    coverage: dict[str, Coverage]
    local: Mapping[str, Variable] = field(default_factory=dict)
    persons: npt.NDArray[np.int64] | None = None
    clipping: WeightClipping | None = None

    def variable(self, name: str) -> Variable:
        """A harmonised variable, or one of the node's own local ones, by name."""
        if is_local(name):
            return self.local[name]
        return CATEGORICAL[name]


def harmonise(
    frame: pd.DataFrame | Columns,
    config: NodeConfig,
    persons: npt.NDArray[np.int64] | None = None,
) -> Harmonised:
    """Map every configured variable to codes, derive what follows, clip the weights.

    Args:
        frame: The local columns, one record per row: a pandas frame, or a source's
            `Columns` (`node.source.load_frame`), each let go once harmonised.
        config: The node's (period's) configuration.
        persons: Persons each record stands for (None: one each); counts and coverage
            are weighted by it.

    Raises:
        DataError: When the weight column has missing or negative values.
    """
    token = _PERSONS.set(persons)
    try:
        columns = frame if isinstance(frame, Columns) else Columns.from_frame(frame)
        return _harmonise(columns, config, persons)
    finally:
        _PERSONS.reset(token)


def _harmonise(
    frame: Columns, config: NodeConfig, persons: npt.NDArray[np.int64] | None
) -> Harmonised:
    codes: dict[str, npt.NDArray[np.integer]] = {}
    coverage: dict[str, Coverage] = {}
    age = np.full(len(frame), AGE_MISSING, dtype=np.uint8)
    later: list[FromParents | FromArrivalYear | CodedColumn] = []
    for mapping in config.variables.values():
        name = mapping.name
        match mapping:
            case NumericColumn() if name == AGE:
                age, coverage[name] = _ages(frame.distinct(mapping.column), mapping)
            case NumericColumn():
                codes[name], coverage[name] = _binned(frame, mapping)
            case LocalColumn():
                variable = config.local[name]
                codes[name], coverage[name] = _categorical(frame, mapping, variable, config.country)
            case CodedColumn() if name not in APPLIES_TO:
                variable = CATEGORICAL[name]
                codes[name], coverage[name] = _categorical(frame, mapping, variable, config.country)
            case FromParents() | FromArrivalYear() | CodedColumn():
                later.append(mapping)  # needs the variables it is derived from or refined by
                continue
            case _:
                assert_never(mapping)
        frame.done(mapping.columns)  # a column goes once no mapping still reads it
    small = _small(codes)
    for mapping in sorted(later, key=lambda m: not isinstance(m, FromParents)):  # parents first
        name = mapping.name
        small[name], coverage[name] = _derive(frame, mapping, config, small)
        codes[name] = small[name]
        frame.done(mapping.columns)
    for name, derivation in DERIVED.items():
        if all(i in small for i in derivation.inputs):
            codes[name] = small[name] = apply_rule(
                derivation.rule,
                [small[i] for i in derivation.inputs],
                [CATEGORICAL[i].codes for i in derivation.inputs],
                name,
            )
            coverage[name] = _derived_coverage(name, small[name], derivation.inputs)
    order = [*config.variables, *(n for n in DERIVED if n in codes)]
    weights, clipping = _weights(frame, config) if config.dataset.weight else (None, None)
    rows = len(frame) if persons is None else int(persons.sum())
    return Harmonised(
        rows, codes, age, weights, {n: coverage[n] for n in order}, config.local, persons,
        clipping,
    )  # fmt: skip


def named_alone(value_class: int) -> bool:
    """Whether values of a `value_classes` class are reported one by one.

    Unmapped values and those ``default`` caught are: each must be its own class.
    """
    return value_class % KINDS in (_UNMAPPED, _DEFAULTED)


def value_classes(
    mapping: VariableMapping, column: str, values: list[object], config: NodeConfig
) -> npt.NDArray[np.int64]:
    """The class of each distinct value of one mapped column (`node.engines.sql`).

    Two values share a class exactly when `harmonise` stores the same code for them and
    counts them the same way in the coverage report (known, missing, unmapped or caught
    by ``default``): the code x ``KINDS`` + that kind.
    """
    series = distinct_of(pd.Series(values, dtype=object))
    kind: npt.NDArray[np.integer]
    match mapping:
        case NumericColumn():  # age (binned variables are cut in SQL)
            code: npt.NDArray[np.integer] = _ages(series, mapping)[0]
            number = np.isnan(_numbers(series))
            kind = np.where(code != AGE_MISSING, _OK, np.where(number, _MISSING, _UNMAPPED))
        case FromArrivalYear():
            years = _numbers(series)
            empty = np.isnan(years) & (series.slot == series.missing)
            years[np.isnan(years) & ~empty] = np.inf
            year = int(config.dataset.time_period[:4])
            code, bad = arrival_codes(mapping.name, years, year, mapping.missing)
            kind = np.where(empty, _MISSING, np.where(bad, _UNMAPPED, _OK))
        case CodedColumn() | LocalColumn() | FromParents():
            if isinstance(mapping, FromParents):
                variable = CATEGORICAL["c_birth"]
            elif isinstance(mapping, LocalColumn):
                variable = config.local[mapping.name]
            else:
                variable = CATEGORICAL[mapping.name]
            mapped = _map_column(series, mapping.coding, config.country, variable)
            code, kind = mapped.coded, mapped.kind[mapped.slot]
        case _:
            assert_never(mapping)
    return code.astype(np.int64) * KINDS + kind.astype(np.int64)


def _derive(
    frame: Columns,
    mapping: FromParents | FromArrivalYear | CodedColumn,
    config: NodeConfig,
    small: dict[str, Codes],
) -> tuple[Codes, Coverage]:
    """A variable derived from others, or refined by them (``NAP`` outside its population)."""
    refined: Refine = functools.partial(_refine, mapping.name, small)  # a no-op for parents
    match mapping:
        case FromParents():
            return _from_parents(frame, mapping, config.country, small)
        case FromArrivalYear():
            return _arrival(frame, mapping, int(config.dataset.time_period[:4]), refined)
        case CodedColumn():
            variable = CATEGORICAL[mapping.name]
            return _categorical(frame, mapping, variable, config.country, refined)
        case _:
            assert_never(mapping)


def _refine(name: str, small: dict[str, Codes], coded: Codes) -> Codes:
    return refine(name, coded, small)


def _small(codes: dict[str, npt.NDArray[np.integer]]) -> dict[str, Codes]:
    """The int8 code columns (binned variables left out): inputs of derivations."""
    return {n: c.astype(np.int8, copy=False) for n, c in codes.items() if c.dtype == np.int8}


def _total(rows: npt.NDArray[np.bool_]) -> int:
    """Persons in the records where ``rows`` holds."""
    persons = _PERSONS.get()
    return int(rows.sum()) if persons is None else int(persons[rows].sum())


def _per_value(
    values: npt.NDArray[np.integer], length: int, rows: npt.NDArray[np.bool_] | None = None
) -> npt.NDArray[np.int64]:
    """Persons per value of ``values`` (0 .. length - 1), of the records ``rows`` (or all)."""
    persons = _PERSONS.get()
    if rows is not None:
        values = values[rows]
        persons = None if persons is None else persons[rows]
    if persons is not None:
        return np.rint(np.bincount(values, weights=persons, minlength=length)).astype(np.int64)
    counts = np.zeros(length, dtype=np.int64)
    for start in range(0, len(values), _COUNT_BLOCK):  # small codes widened a block at a time
        counts += np.bincount(values[start : start + _COUNT_BLOCK], minlength=length)
    return counts


def _value_counts(
    column: Distinct, rows: npt.NDArray[np.bool_] | None, *, normal: bool
) -> dict[str, int]:
    """Persons per distinct text (``_text`` when ``normal``) where ``rows`` holds, top first.

    Texts in the order they first occur, then the most persons first (ties in that
    order), at most `MAX_BAD_VALUES_SHOWN`.
    """
    per_slot = _per_value(column.slot, column.missing + 1, rows)
    texts = [*column.texts(), "nan"]
    totals: dict[str, int] = {}
    for i in column.in_order(np.flatnonzero(per_slot > 0), rows):
        text = _text(texts[i]) if normal else texts[i]
        totals[text] = totals.get(text, 0) + int(per_slot[i])
    top = sorted(totals.items(), key=lambda kv: -kv[1])[:MAX_BAD_VALUES_SHOWN]
    return dict(top)


def _text(value: object) -> str:
    text = str(value).strip()
    match = _INTEGRAL_FLOAT.match(text)
    return match.group(1) if match else text


def _is_missing(value: object) -> bool:
    return (
        value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == ""
    )


@dataclass(frozen=True)
class _Mapped:
    """One local column mapped through its distinct values.

    Attributes:
        coded: Code positions per row.
        column: The column's distinct values (the last slot: the missing one).
        texts: Each distinct value as text, then "" for the missing slot.
        kind: Each slot: ``_OK``, ``_MISSING``, ``_UNMAPPED`` or ``_DEFAULTED``.
    """

    coded: Codes
    column: Distinct
    texts: list[str]
    kind: npt.NDArray[np.int8]

    @property
    def slot(self) -> Slots:
        """Per row, its distinct value."""
        return self.column.slot

    def counts(self, rows: npt.NDArray[np.bool_] | None, *kinds: int) -> list[dict[str, int]]:
        """Per kind, rows (of ``rows``, or all) per distinct value text of that kind.

        Values in the order they first occur in the column.
        """
        per_slot = _per_value(self.slot, len(self.texts), rows)
        found = []
        for kind in kinds:
            out: dict[str, int] = {}
            for i in self.column.in_order(np.flatnonzero((self.kind == kind) & (per_slot > 0))):
                out[self.texts[i]] = out.get(self.texts[i], 0) + int(per_slot[i])
            found.append(out)
        return found


def _map_column(column: Distinct, coding: CodeMap, country: str, variable: Variable) -> _Mapped:
    """Map a column to ``variable``'s codes through its distinct values."""
    uniques = column.values
    n = len(uniques)
    lut = np.empty(n + 1, dtype=np.int8)  # last entry: pandas' NA sentinel (-1)
    kind = np.full(n + 1, _OK, dtype=np.int8)
    lut[-1], kind[-1] = variable.index(coding.missing), _MISSING
    texts = []
    for i, value in enumerate(uniques):
        text = _text(value)
        texts.append(text)
        if _is_missing(value):
            lut[i], kind[i] = variable.index(coding.missing), _MISSING
            continue
        code = _map_value(text, coding, country, variable.name)
        if code is None:
            code = coding.default or UNK
            kind[i] = _UNMAPPED if coding.default is None else _DEFAULTED
        lut[i] = variable.index(code)
    return _Mapped(lut[column.slot], column, [*texts, ""], kind)


def _categorical(
    frame: Columns,
    mapping: CodedColumn | LocalColumn,
    variable: Variable,
    country: str,
    refined: Refine | None = None,
) -> tuple[Codes, Coverage]:
    """A column of local codes, refined (``NAP`` outside its population) when it applies."""
    mapped = _map_column(frame.distinct(mapping.column), mapping.coding, country, variable)
    coded = mapped.coded
    kept = None
    if refined is not None:
        coded = refined(coded)
        kept = coded == mapped.coded  # rows the refinement left alone
    missing_values, unmapped, defaulted = mapped.counts(kept, _MISSING, _UNMAPPED, _DEFAULTED)
    missing = sum(missing_values.values())
    cov = _coverage(mapping.name, mapping.column, coded, missing, unmapped, -1, variable)
    return coded, replace(cov, defaulted=dict(sorted(defaulted.items(), key=lambda kv: -kv[1])))


def _coverage(
    name: str,
    column: str,
    coded: Codes,
    missing: int,
    unmapped: dict[str, int],
    bad: int = -1,
    variable: Variable | None = None,
) -> Coverage:
    """A coverage report; ``bad`` counts unmapped rows when ``unmapped`` shows only some."""
    variable = variable or CATEGORICAL[name]
    n_unmapped = sum(unmapped.values()) if bad < 0 else bad
    per_code = _per_value(coded, len(variable.codes))
    rows = int(per_code.sum())
    return Coverage(
        variable=name,
        column=column,
        rows=rows,
        mapped=rows - missing - n_unmapped,
        missing=missing,
        unmapped=dict(sorted(unmapped.items(), key=lambda kv: -kv[1])),
        codes={c: int(n) for c, n in zip(variable.codes, per_code, strict=True)},
    )


def _map_value(text: str, coding: CodeMap, country: str, target: str) -> str | None:
    if text in coding.map:
        return coding.map[text]
    if coding.iso_country:
        return country_group(text, country, target)
    return None


def _from_parents(
    frame: Columns, mapping: FromParents, country: str, small: dict[str, Codes]
) -> tuple[Codes, Coverage]:
    """``mig_background`` from the node's ``c_birth`` and the parents' columns."""
    groups = CATEGORICAL["c_birth"]
    father, mother = (
        _map_column(frame.distinct(column), mapping.coding, country, groups)
        for column in mapping.columns
    )
    own = small["c_birth"]
    coded = from_parents(own, father.coded, mother.coded)
    # A native-born person is UNK because of a parent: say which value, father's first.
    blamed = (coded == CATEGORICAL["mig_background"].index(UNK)) & (
        own == CATEGORICAL["c_birth"].index("NAT")
    )
    father_bad = blamed & (father.kind[father.slot] == _UNMAPPED)
    mother_bad = blamed & ~father_bad & (mother.kind[mother.slot] == _UNMAPPED)
    unmapped = {
        f"{mapping.father}: {t}": n for t, n in father.counts(father_bad, _UNMAPPED)[0].items()
    }
    for text, n in mother.counts(mother_bad, _UNMAPPED)[0].items():
        unmapped[f"{mapping.mother}: {text}"] = n
    unknown = _total(coded == CATEGORICAL["mig_background"].index(UNK))
    missing = unknown - sum(unmapped.values())
    column = " + ".join(mapping.columns)
    return coded, _coverage(mapping.name, column, coded, missing, unmapped)


def _arrival(
    frame: Columns, mapping: FromArrivalYear, reference_year: int, refined: Refine
) -> tuple[Codes, Coverage]:
    """``yearesid`` or ``arrival_cohort`` from an arrival-year column, then refined."""
    column = frame.distinct(mapping.column)
    slot, years = _distinct_numbers(column)  # coded per distinct value, then per row
    empty_value = np.zeros(len(years), dtype=np.bool_)
    empty_value[-1] = True  # the missing slot
    years[np.isnan(years) & ~empty_value] = np.inf  # text that is no number: no plausible year
    raw_value, bad_value = arrival_codes(mapping.name, years, reference_year, mapping.missing)
    raw, bad, empty = raw_value[slot], bad_value[slot], empty_value[slot]
    coded = refined(raw)
    kept = coded == raw
    unmapped = _value_counts(column, bad & kept, normal=True)
    missing = _total(empty & kept)
    n_bad = _total(bad & kept)
    return coded, _coverage(mapping.name, mapping.column, coded, missing, unmapped, n_bad)


def _derived_coverage(name: str, coded: Codes, inputs: tuple[str, ...]) -> Coverage:
    """A derived outcome: known where every input it reads is known."""
    unknown = _total(coded == CATEGORICAL[name].index(UNK))
    return _coverage(name, "from " + "+".join(inputs), coded, unknown, {})


def _distinct_numbers(column: Distinct) -> tuple[Slots, npt.NDArray[np.float64]]:
    """Per row its distinct value's slot, and each slot's number (NaN: empty or no number).

    The last slot is the missing one. Ages and years have few distinct values, so what
    follows is computed per value and spread to the rows by one take.
    """
    return column.slot, column.numbers()


def _numbers(column: Distinct) -> npt.NDArray[np.float64]:
    """The column as numbers, NaN where empty or not a number (a new, writable array)."""
    slot, numbers = _distinct_numbers(column)
    result: npt.NDArray[np.float64] = numbers[slot]
    return result


def _ages(column: Distinct, mapping: NumericColumn) -> tuple[npt.NDArray[np.uint8], Coverage]:
    """Ages 0 to `MAX_AGE` (whole numbers), decided per distinct value; others missing."""
    slot, values = _distinct_numbers(column)
    missing_value = np.isnan(values)
    valid_value = (
        ~missing_value & (values >= 0) & (values <= MAX_AGE) & (values == np.floor(values))
    )
    age_value = np.where(valid_value, values, AGE_MISSING).astype(np.uint8)
    age: npt.NDArray[np.uint8] = age_value[slot]
    per_slot = _per_value(slot, len(values))
    bad_value = ~valid_value & ~missing_value
    cov = Coverage(
        variable=AGE,
        column=mapping.column,
        rows=int(per_slot.sum()),
        mapped=int(per_slot[valid_value].sum()),
        missing=int(per_slot[missing_value].sum()),
        unmapped=_value_counts(column, bad_value[slot], normal=False) if bad_value.any() else {},
    )
    return age, cov


def _binned(frame: Columns, mapping: NumericColumn) -> tuple[npt.NDArray[np.uint16], Coverage]:
    """A numeric column cut at the variable's public edges; missing values are ``UNK``."""
    variable = CATEGORICAL[mapping.name]
    values, words = frame.numbers(mapping.column)
    coded = cut(values, variable.edges[1:])
    missing = np.isnan(values)
    coded[missing] = len(variable.codes) - 1
    not_numbers = np.zeros(len(values), np.bool_) if words is None else words.slot != words.missing
    cov = Coverage(
        variable=mapping.name,
        column=mapping.column,
        rows=_total(np.ones(len(values), dtype=np.bool_)),
        mapped=_total(~missing),
        missing=_total(missing & ~not_numbers),
        unmapped={} if words is None else _value_counts(words, not_numbers, normal=False),
    )
    return coded, cov


def _weights(frame: Columns, config: NodeConfig) -> tuple[npt.NDArray[np.float64], WeightClipping]:
    column = config.dataset.weight
    assert column is not None
    values = frame.numbers(column)[0]
    bad = int(np.sum(~np.isfinite(values) | (values < 0)))
    if bad:
        raise DataError(
            f"{config.dataset.path}: weight column {column!r} has {bad} missing, "
            "non-numeric or negative value(s)",
            field=f"dataset.weight ({column})",
            hint="every row needs a non-negative weight; fix the data or filter with where",
        )
    bound = config.privacy.max_weight
    clipped: npt.NDArray[np.float64] = np.minimum(values, bound)
    persons = _PERSONS.get()
    over = values > bound
    clipping = WeightClipping(
        max_weight=bound,
        rows=len(values) if persons is None else int(persons.sum()),
        clipped=_total(over),
        largest=float(values.max()) if len(values) else 0.0,
        weight=float(values.sum()),
        kept=float(clipped.sum()),
    )
    return clipped, clipping
