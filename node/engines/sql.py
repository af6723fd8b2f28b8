"""The SQL engines: harmonisation, filter and table spec compiled into one ``GROUP BY``.

How a table is counted inside the data holder's engine (DuckDB, PostgreSQL, Spark SQL):

1. *Classes.* Each mapped column's distinct values are read once (``SELECT col, COUNT(*)
   ... GROUP BY col``) and mapped in Python by the very functions of `node.harmonise`
   (maps, defaults, missing, ISO grouping, ages, arrival years), so every value gets its
   stored code: its *class*. A binned numeric column (``income``) is cut at its public
   edges in SQL instead. The ``where`` filter is compiled the same way: the distinct
   values whose text equals the configured value.
2. *One GROUP BY.* Per table, the rows are grouped by the raw values of the columns the
   table reads (with the inputs of its derived variables), with a row count and, for
   surveys, the sum of clipped weights; rows whose age lies outside the table's
   population are left out by a ``WHERE`` on the seen values. That inner aggregation is
   what a DBA's plain ``GROUP BY`` costs. An outer query over its few thousand groups
   maps each raw value to its class (``CASE``; cheap there, not per row) and sums the
   groups by class. Only the class table reaches Python.
3. *The fold.* One representative value per class rebuilds each group as a record that
   stands for its persons; `node.harmonise` derives what follows (``mig_background``,
   years since arrival, ``NAP``, ``elet`` ...) and `node.engine` folds the groups into
   the table's cells. The counts are therefore those of the in-memory engine by
   construction, with the same code doing each step.

Every identifier and literal enters the SQL text through SQLGlot's expression tree, which
quotes identifiers and escapes literals for the dialect: a config value is never pasted
into SQL text. A value the classes have not seen (the data changed since they were read)
falls into class -1; the classes are then read again and the table counted once more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlglot import exp

from common.errors import DataError, Reason
from indicators.derived import APPLIES_TO, DERIVED
from indicators.spec import TableSpec
from indicators.variables import AGE, CATEGORICAL, Variable
from node.config import NodeConfig
from node.engine import TableCounts, compute_table, require_variables
from node.engines.memory import known_shares
from node.fingerprint import harmonised_digest
from node.harmonise import (
    KINDS,
    Coverage,
    Harmonised,
    WeightClipping,
    harmonise,
    named_alone,
    value_classes,
)
from node.mappings import FromParents, NumericColumn, VariableMapping
from node.source import missing_columns

__all__ = ["Backend", "SqlEngine", "compile_counts"]

UNSEEN = -1
"""Class of a value the classes have not seen."""
MAX_CLASS_VALUES = 100_000
"""Distinct values of one mapped column beyond which the node refuses (not categorical)."""


class Backend(Protocol):
    """One database: the relation holding the data, and a way to run a query."""

    dialect: str

    def source(self) -> exp.Expr:
        """The relation (table, view or file scan) holding the microdata."""
        ...

    def columns(self) -> list[str]:
        """The relation's column names."""
        ...

    def rows(self, query: exp.Expr) -> list[tuple[Any, ...]]:
        """Run a query; its result rows as tuples of Python values."""
        ...

    def close(self) -> None:
        """Release the connection or session."""
        ...


@dataclass(frozen=True)
class _Classes:
    """A column's distinct values by class, and one representative value per class."""

    values: dict[int, list[object]]
    representative: dict[int, object]


def column(name: str) -> exp.Column:
    """A quoted column reference."""
    return exp.column(exp.to_identifier(name, quoted=True))


def number(expression: exp.Expr) -> exp.Expr:
    """A column as a double, NULL where it is no number."""
    return exp.TryCast(this=expression, to=exp.DataType.build("double"))


def _case(expression: exp.Expr, *, classes: _Classes) -> exp.Expr:
    """The class of ``expression``'s value: a CASE over the values seen, else `UNSEEN`."""
    ifs = []
    for code, values in classes.values.items():
        present = [v for v in values if v is not None]
        tests: list[exp.Expr] = []
        if len(present) < len(values):
            tests.append(exp.Is(this=expression.copy(), expression=exp.Null()))
        if present:
            tests.append(expression.copy().isin(*[exp.convert(v) for v in present], copy=False))
        if tests:
            ifs.append(exp.If(this=exp.or_(*tests, copy=False), true=exp.Literal.number(code)))
    return exp.Case(ifs=ifs, default=exp.Literal.number(UNSEEN))


def _bins(expression: exp.Expr, variable: Variable) -> exp.Expr:
    """A numeric column cut at the variable's public edges (``UNK`` when no number).

    The bin is found by a balanced tree of comparisons (about 9 for 403 bins), not by
    testing every edge in turn.
    """
    value = number(expression)
    edges = variable.edges

    def search(low: int, high: int) -> exp.Expr:  # the bin among low..high
        if low == high:
            return exp.Literal.number(low)
        middle = (low + high + 1) // 2
        below = value.copy() < exp.convert(float(edges[middle]))
        return exp.Case(
            ifs=[exp.If(this=below, true=search(low, middle - 1))], default=search(middle, high)
        )

    missing = exp.Is(this=value.copy(), expression=exp.Null())
    unknown = exp.Literal.number(len(variable.codes) - 1)
    return exp.Case(ifs=[exp.If(this=missing, true=unknown)], default=search(0, len(edges) - 1))


def bin_representative(variable: Variable, code: int) -> float | None:
    """A value inside bin ``code`` (None for ``UNK``)."""
    if code == len(variable.codes) - 1:
        return None
    low = variable.edges[code]
    return float(low) if np.isfinite(low) else float(variable.edges[1]) - 1.0


def compile_counts(
    source: exp.Expr,
    inputs: list[exp.Expr],
    classes: list[Callable[[exp.Expr], exp.Expr]],
    where: exp.Expr | None,
    weight: str | None,
    max_weight: float,
) -> exp.Select:
    """Rows and clipped weights by the classes of ``inputs``' values, in two aggregations.

    The inner query groups the rows by the raw ``inputs`` (``r0`` ...): ``COUNT(*)`` and,
    with a ``weight``, the sum of clipped weights, the number of bad weights, the raw sum,
    the largest and the rows clipped. The outer one maps each group's values through
    ``classes`` (``k0`` ...) and sums (the largest weight: its maximum).
    """
    raw: list[exp.Expr] = [e.as_(f"r{i}") for i, e in enumerate(inputs)]
    raw.append(exp.Count(this=exp.Star()).as_("n"))
    sums = ["n"]
    if weight is not None:
        w = number(column(weight))
        clipped = exp.func("LEAST", w, exp.convert(float(max_weight)))
        bad = exp.or_(exp.Is(this=w.copy(), expression=exp.Null()), w.copy() < exp.convert(0))
        flag = exp.Case().when(bad, exp.Literal.number(1)).else_(exp.Literal.number(0))
        raw += [exp.Sum(this=clipped).as_("w"), exp.Sum(this=flag).as_("bad")]
        over = w.copy() > exp.convert(float(max_weight))
        is_over = exp.Case().when(over, exp.Literal.number(1)).else_(exp.Literal.number(0))
        raw += [
            exp.Sum(this=w.copy()).as_("raw"),
            exp.Max(this=w.copy()).as_("top"),
            exp.Sum(this=is_over).as_("over"),
        ]
        sums += ["w", "bad", "raw", "top", "over"]
    inner = exp.select(*raw).from_(source)
    if where is not None:
        inner = inner.where(where)
    inner = inner.group_by(*[exp.Literal.number(i + 1) for i in range(len(inputs))])
    outputs: list[exp.Expr] = [
        classify(column(f"r{i}")).as_(f"k{i}") for i, classify in enumerate(classes)
    ]
    outputs += [
        (exp.Max if name == "top" else exp.Sum)(this=column(name)).as_(name) for name in sums
    ]
    grouped = inner.subquery("g")
    query = exp.select(*outputs).from_(grouped)
    return query.group_by(*[exp.Literal.number(i + 1) for i in range(len(inputs))])


class SqlEngine:
    """Tables counted inside a database by one ``GROUP BY`` each.

    Args:
        config: The period's configuration.
        backend: The database holding the data.

    Raises:
        DataError: When a configured column is missing or no row is left after ``where``.
    """

    def __init__(self, config: NodeConfig, backend: Backend) -> None:
        self.config = config
        self.backend = backend
        self.name = config.dataset.engine
        self._classes: dict[tuple[str, str], _Classes] = {}
        try:
            self._start()
        except BaseException:
            backend.close()
            raise

    def _start(self) -> None:
        """Check the columns, compile the filter, read the coverage summary."""
        config = self.config
        self._check_columns()
        self._where: exp.Expr | None = None
        self._where = self._compile_where()
        summary = self._summary()
        self.rows = summary.rows
        self.weighted = config.dataset.weight is not None
        self.clipping: WeightClipping | None = summary.clipping
        binned = [n for n, m in config.variables.items() if _binned(m)]
        self.provided: tuple[str, ...] = (*summary.codes, *binned)
        self.coverage: dict[str, Coverage] = dict(summary.coverage)
        self._shares = known_shares(summary)
        scanned = [summary]
        for name in binned:
            per_bin = self._harmonised({name: config.variables[name]})
            scanned.append(per_bin)
            self.coverage[name] = per_bin.coverage[name]
            self._shares[name] = per_bin.coverage[name].mapped_share
        self._scan_digest = harmonised_digest(*scanned)
        self.coverage = {n: self.coverage[n] for n in (*config.variables, *self.coverage)}

    def variable(self, name: str) -> Variable:
        """A provided variable (or the node's own local one) by name."""
        return self.config.local[name] if name in self.config.local else CATEGORICAL[name]

    def known_shares(self) -> dict[str, float]:
        """Per provided variable, the share of persons whose value is known."""
        return dict(self._shares)

    def require(self, spec: TableSpec) -> None:
        """Raise QueryError when the node does not provide a variable the table reads."""
        for name in spec.variables():
            if name != AGE and name not in self.provided:
                require_variables(_EMPTY, spec)  # raises the documented error

    def count(self, spec: TableSpec) -> TableCounts:
        """The table's true counts, from one GROUP BY inside the database."""
        self.require(spec)
        names = [n for n in spec.variables() if n != AGE]
        data = self._harmonised(_closure(self.config, names), (spec.age_min, spec.age_max))
        return compute_table(data, spec)

    def content_digest(self) -> str:
        """Digest of the start-up scan (`node.fingerprint`).

        The scan holds every categorical variable's joint counts with age, and each
        numeric variable's bin counts.
        """
        return self._scan_digest

    def close(self) -> None:
        """Release the backend."""
        self.backend.close()

    # -- the steps -------------------------------------------------------------------------

    def _check_columns(self) -> None:
        available = self.backend.columns()
        wanted = _needed(self.config)
        missing = [c for c in wanted if c not in available]
        if missing:
            source = f"in the {self.name} source "
            raise missing_columns(f"{self.config.file}: ", source, missing, list(available))

    def _distinct(self, name: str) -> list[object]:
        query = exp.select(column(name)).from_(self.backend.source()).distinct()
        filtered = (*self.config.dataset.where, *self.config.dataset.where_not)
        if self._where is not None and name not in filtered:
            query = query.where(self._where.copy())
        values = [row[0] for row in self.backend.rows(query)]
        if len(values) > MAX_CLASS_VALUES:
            raise DataError(
                f"{self.config.file}: column {name!r} has over {MAX_CLASS_VALUES} distinct "
                "values: it is not a column of codes",
                field=name,
                hint="map a column of codes, ages or years",
            )
        return values

    def _compile_where(self) -> exp.Expr | None:
        """``where`` (membership) and ``where_not`` as one condition over the source's values.

        Each value is matched as the memory engine matches it (the cell's text); the
        values the source holds are quoted by sqlglot, never pasted into SQL.
        """
        dataset = self.config.dataset
        tests = []
        for name, wanted in dataset.where.items():
            values = [v for v in self._distinct(name) if _where_text(v) in wanted]
            if not values:
                shown = list(wanted) if len(wanted) > 1 else wanted[0]
                raise DataError(
                    f"{self.config.file}: no rows with {name} = {shown!r} in the "
                    f"{self.name} source",
                    reason=Reason.EMPTY_DATASET,
                    field="dataset.where",
                    hint="check the values in dataset.where against the data's values",
                )
            tests.append(_is_any(column(name), values))
        for name, unwanted in dataset.where_not.items():
            values = [v for v in self._distinct(name) if _where_text(v) in unwanted]
            if values:
                tests.append(_is_none_of(column(name), values))
        return exp.and_(*tests) if tests else None

    def _classes_of(self, mapping: VariableMapping, name: str, refresh: bool) -> _Classes:
        key = (mapping.name, name)
        if refresh or key not in self._classes:
            values = self._distinct(name)
            codes = value_classes(mapping, name, values, self.config)
            by_class: dict[int, list[object]] = {}
            for i, (value, code) in enumerate(zip(values, codes, strict=True)):
                # An unmapped value is its own class: `node check` names each one.
                # So is a value `default` caught: it lists what the default took.
                own = named_alone(int(code))
                by_class.setdefault(-2 - i if own else int(code), []).append(value)
            self._classes[key] = _Classes(by_class, {c: v[0] for c, v in by_class.items()})
        return self._classes[key]

    def _summary(self) -> Harmonised:
        categorical = {n: m for n, m in self.config.variables.items() if not _binned(m)}
        data = self._harmonised(categorical)
        if data.rows == 0:
            raise DataError(
                f"{self.config.file}: the {self.name} source has no rows"
                + (" after where" if self.config.dataset.where else ""),
                reason=Reason.EMPTY_DATASET,
                field="dataset.where" if self.config.dataset.where else "dataset",
                hint="check the source and the values in dataset.where",
            )
        return data

    def _harmonised(
        self, mappings: dict[str, VariableMapping], ages: tuple[int, int] | None = None
    ) -> Harmonised:
        """Group the rows by the classes of ``mappings``' columns; harmonise the groups.

        Args:
            mappings: The variables to read.
            ages: The table's population (``age_min``, ``age_max``): rows whose age
                class lies outside it are not read (the table would not count them).
        """
        for refresh in (False, True):
            keys: list[tuple[VariableMapping, str]] = [
                (m, c) for m in mappings.values() for c in m.columns
            ]
            inputs = [self._input(m, c) for m, c in keys]
            classes = [self._classify(m, c, refresh) for m, c in keys]
            where = self._where
            if ages is not None and AGE in mappings:
                outside = self._outside(mappings[AGE], ages)
                where = outside if where is None else exp.and_(where.copy(), outside)
            dataset = self.config.dataset
            query = compile_counts(
                self.backend.source(), inputs, classes, where, dataset.weight,
                self.config.privacy.max_weight,
            )  # fmt: skip
            result = self.backend.rows(query)
            unseen = any(row[i] == UNSEEN for row in result for i in range(len(keys)))
            if not unseen:
                return self._records(mappings, keys, result)
        raise DataError(
            f"{self.config.file}: the {self.name} source changed while it was being read",
            field="dataset",
            hint="serve a snapshot or a view that does not change under the node",
        )

    def _input(self, mapping: VariableMapping, name: str) -> exp.Expr:
        """What the inner aggregation groups by: the raw column, or its public bin."""
        if _binned(mapping):
            return _bins(column(name), CATEGORICAL[mapping.name])
        return column(name)

    def _classify(
        self, mapping: VariableMapping, name: str, refresh: bool
    ) -> Callable[[exp.Expr], exp.Expr]:
        """How the outer query maps a group's value to its class."""
        if _binned(mapping):
            return lambda grouped: grouped
        return partial(_case, classes=self._classes_of(mapping, name, refresh))

    def _outside(self, mapping: VariableMapping, ages: tuple[int, int]) -> exp.Expr:
        """True for rows whose age may lie in ``ages``: not NULL, no seen value outside.

        A value not seen when the classes were read passes, so that the outer query
        finds it unseen and the classes are read again.
        """
        (name,) = mapping.columns
        low, high = ages
        classes = self._classes[(mapping.name, name)].values
        inside = {c for c in classes if c >= 0 and c % KINDS == 0 and low <= c // KINDS <= high}
        excluded = [v for c, vs in classes.items() if c not in inside for v in vs]
        present = [v for v in excluded if v is not None]
        test: exp.Expr = exp.not_(exp.Is(this=column(name), expression=exp.Null()))
        if present:
            isin = column(name).isin(*[exp.convert(v) for v in present], copy=False)
            test = exp.and_(test, exp.not_(isin))
        return test

    def _records(
        self,
        mappings: dict[str, VariableMapping],
        keys: list[tuple[VariableMapping, str]],
        result: list[tuple[Any, ...]],
    ) -> Harmonised:
        """One representative record per group, standing for the group's persons."""
        frame: dict[str, list[object]] = {}
        for i, (mapping, name) in enumerate(keys):
            if _binned(mapping):
                variable = CATEGORICAL[mapping.name]
                frame[name] = [bin_representative(variable, int(row[i])) for row in result]
            else:
                representative = self._classes[(mapping.name, name)].representative
                frame[name] = [representative[int(row[i])] for row in result]
        counts = [int(row[len(keys)]) for row in result]  # SUM may come back as a decimal
        persons: npt.NDArray[np.int64] = np.array(counts, np.int64)
        config = replace(
            self.config,
            variables=mappings,
            dataset=replace(self.config.dataset, weight=None, where={}, where_not={}),
        )
        data = harmonise(pd.DataFrame(frame, dtype=object), config, persons)
        if self.config.dataset.weight is None:
            return data
        bad = sum(int(row[len(keys) + 2] or 0) for row in result)
        if bad:
            raise DataError(
                f"{self.config.file}: weight column {self.config.dataset.weight!r} has {bad} "
                "missing, non-numeric or negative value(s)",
                field=f"dataset.weight ({self.config.dataset.weight})",
                hint="every row needs a non-negative weight; fix the data or filter with where",
            )
        weights = np.array([float(row[len(keys) + 1]) for row in result], dtype=np.float64)
        at = len(keys) + 3  # the raw weight's sum, its largest value, the rows clipped
        clipping = WeightClipping(
            max_weight=self.config.privacy.max_weight,
            rows=int(persons.sum()),
            clipped=sum(int(row[at + 2] or 0) for row in result),
            largest=max(
                (float(row[at + 1]) for row in result if row[at + 1] is not None), default=0.0
            ),
            weight=sum(float(row[at] or 0.0) for row in result),
            kept=float(weights.sum()),
        )
        return replace(data, weights=weights, clipping=clipping)


_EMPTY = Harmonised(0, {}, np.zeros(0, np.uint8), None, {})


def _binned(mapping: VariableMapping) -> bool:
    return isinstance(mapping, NumericColumn) and mapping.name != AGE


def _where_text(value: object) -> str:
    """A value as the memory engine's ``where`` compares it (pandas' text of a cell)."""
    return "nan" if value is None else str(value)


def _is_any(expression: exp.Expr, values: list[object]) -> exp.Expr:
    present = [v for v in values if v is not None]
    tests: list[exp.Expr] = []
    if present:
        tests.append(expression.copy().isin(*[exp.convert(v) for v in present]))
    if len(present) < len(values):
        tests.append(exp.Is(this=expression.copy(), expression=exp.Null()))
    return exp.or_(*tests)


def _is_none_of(expression: exp.Expr, values: list[object]) -> exp.Expr:
    """Rows whose value is none of ``values``; a NULL is kept unless it is one of them."""
    present = [v for v in values if v is not None]
    tests: list[exp.Expr] = []
    if present:
        inside = expression.copy().isin(*[exp.convert(v) for v in present])
        tests.append(exp.Not(this=exp.Paren(this=inside)))
    if len(present) == len(values):  # NULL is not excluded: NOT IN alone would drop it
        tests.append(exp.Is(this=expression.copy(), expression=exp.Null()))
        return exp.or_(*tests)
    null = exp.Is(this=expression.copy(), expression=exp.Null())
    return exp.and_(*tests, exp.Not(this=null)) if tests else exp.Not(this=null)


def _needed(config: NodeConfig) -> list[str]:
    cols = [c for m in config.variables.values() for c in m.columns]
    if config.dataset.weight:
        cols.append(config.dataset.weight)
    cols.extend(config.dataset.where)
    cols.extend(config.dataset.where_not)
    return list(dict.fromkeys(cols))


def _closure(config: NodeConfig, names: list[str]) -> dict[str, VariableMapping]:
    """The mappings a table's variables are read or derived from, age included."""
    todo, keep = [*names, AGE], set()
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        if name in DERIVED:
            todo.extend(DERIVED[name].inputs)
            continue
        mapping = config.variables.get(name)
        if mapping is None:
            continue
        keep.add(name)
        if isinstance(mapping, FromParents):
            todo.append("c_birth")
        if name in APPLIES_TO:
            todo.extend(source for source, _ in APPLIES_TO[name].sources)
    return {n: m for n, m in config.variables.items() if n in keep}
