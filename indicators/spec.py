"""Queries and the table specs they compile to (DESIGN section 3).

Both the node and the coordinator compile a query with this module: the node to know
what to compute, the coordinator to know how to read what comes back. A table spec's
``key`` is canonical JSON, so two sides (or two queries) agree on a table by its key.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from common.errors import QueryError, Reason
from indicators.catalogue import CATALOGUE, RATIO, Indicator, Population
from indicators.variables import AGE, CATEGORICAL, UNK, Variable
from protos import node_pb2 as pb

__all__ = [
    "BREAKDOWNS",
    "COMPARATORS",
    "DERIVED_GROUPS",
    "DERIVED_GROUP_LABELS",
    "GROUP_DIMS",
    "LOCAL_PREFIX",
    "NATIVE_GROUP",
    "Dim",
    "Plan",
    "Query",
    "TableSpec",
    "compile_query",
    "is_local",
    "parse_comparator",
]

GROUP_DIMS = ("c_birth", "citizen", "mig_background", "reason", "yearesid")
# Canonical order of breakdown dimensions. A breakdown's table dimension has every code but
# UNK, NAP included: ``yearesid`` and ``arrival_cohort`` are NAP for the native-born, so
# keeping NAP keeps the natives in the table and TOTAL the whole population.
BREAKDOWNS = ("sex", AGE, "yearesid", "arrival_cohort")
LOCAL_PREFIX = "local:"  # a node's own group dimension: ``local:NAME``, never pooled
LOCAL_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
COMPARATORS = ("NAT", "TOTAL")  # besides these, a cohort comparator ``DIM=CODE``
MAX_RHO = 1e9
_PERIOD = re.compile(r"^[0-9]{4}([-A-Z0-9]{0,8})$")  # anything above is a typo, not a budget

# Named target groups published beside the code list, as sums of released cells:
# non-EU-born and third-country nationals are codes already (NEU27_2020_FOR).
DERIVED_GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "c_birth": {"FOR": ("EU27_2020_FOR", "NEU27_2020_FOR")},
    "citizen": {"FOR": ("EU27_2020_FOR", "NEU27_2020_FOR", "STLS")},
    "mig_background": {
        "FOR_ORIGIN": ("FB", "NB_2FBP", "NB_1FBP"),  # foreign-born or a foreign-born parent
        "SECOND_GEN": ("NB_2FBP", "NB_1FBP"),  # native-born, a foreign-born parent
    },
}
DERIVED_GROUP_LABELS: dict[str, str] = {
    "FOR": "Foreign country",
    "FOR_ORIGIN": "Foreign origin: foreign-born, or native-born with a foreign-born parent",
    "SECOND_GEN": "Second generation: native-born with one or two foreign-born parents",
}

# The group code that plays the comparator NAT on each group dimension: nationals, the
# native-born, the native-born of native-born parents. ``reason`` and ``yearesid`` apply to
# the foreign-born only, so their NAP ("not applicable") is the native-born. None: the
# dimension has no native group and a query must compare with TOTAL.
NATIVE_GROUP: dict[str, str | None] = {
    "c_birth": "NAT",
    "citizen": "NAT",
    "mig_background": "NB_NBP",
    "reason": "NAP",
    "yearesid": "NAP",
}


@dataclass(frozen=True)
class Query:
    """What a coordinator asks every node.

    The query owns its two serialised forms, the only places its fields are listed: the
    wire form (`to_wire`, `from_wire`: the ``QuerySpec`` a coordinator signs) and the
    record form (`to_record`, `from_record`: the JSON of ``provenance.json`` and the
    coordinator's ``queries.jsonl``). An absent optional field is ``None`` here, its
    proto default on the wire (0, "") and ``null`` in a record.

    Attributes:
        indicators: Catalogue names.
        group_dim: The target-group dimension.
        breakdowns: Extra cell dimensions, from ``BREAKDOWNS``.
        comparator: ``NAT`` (the group dimension's `NATIVE_GROUP` code), ``TOTAL``, or
            ``DIM=CODE`` with DIM one of the breakdowns: each row is compared with the same
            group in the same breakdown cell but for DIM set to CODE (a cohort
            comparison, e.g. ``yearesid=Y_GE10``).
        rho: zCDP budget the query may spend on each node.
        poverty_line: For ``arop_rate``: the line to use on every node; None lets each
            node's configured line, else 60% of the pooled median, apply.
        time_period: The reference period to answer for; None: each node's latest.
    """

    indicators: tuple[str, ...]
    group_dim: str
    breakdowns: tuple[str, ...] = ()
    comparator: str = "NAT"
    rho: float = 0.5
    poverty_line: float | None = None
    time_period: str | None = None

    def to_wire(self) -> pb.QuerySpec:
        """The query as the ``QuerySpec`` of a signed request."""
        return pb.QuerySpec(
            indicators=list(self.indicators),
            group_dim=self.group_dim,
            breakdowns=list(self.breakdowns),
            comparator=self.comparator,
            rho=self.rho,
            poverty_line=self.poverty_line or 0.0,
            time_period=self.time_period or "",
        )

    @classmethod
    def from_wire(cls, spec: pb.QuerySpec) -> Query:
        """The query a ``QuerySpec`` carries (not validated: `compile_query` does that)."""
        return cls(
            indicators=tuple(spec.indicators),
            group_dim=spec.group_dim,
            breakdowns=tuple(spec.breakdowns),
            comparator=spec.comparator,
            rho=spec.rho,
            poverty_line=spec.poverty_line or None,
            time_period=spec.time_period or None,
        )

    def to_record(self) -> dict[str, Any]:
        """The query as a JSON object, every field present."""
        return {
            "indicators": list(self.indicators),
            "group_dim": self.group_dim,
            "breakdowns": list(self.breakdowns),
            "comparator": self.comparator,
            "rho": self.rho,
            "poverty_line": self.poverty_line,
            "time_period": self.time_period,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Query:
        """The query of a JSON object written by `to_record`.

        Optional fields may be absent (the coordinator's log did not record them before).
        """
        return cls(
            indicators=tuple(record["indicators"]),
            group_dim=record["group_dim"],
            breakdowns=tuple(record["breakdowns"]),
            comparator=record["comparator"],
            rho=float(record["rho"]),
            poverty_line=record.get("poverty_line"),
            time_period=record.get("time_period"),
        )

    def validate(self) -> None:
        """Raise QueryError naming the first field that is wrong."""
        if not self.indicators:
            raise QueryError(
                "the query names no indicator",
                field="indicators",
                hint=f"name one or more of: {', '.join(CATALOGUE)}",
            )
        for name in self.indicators:
            if name not in CATALOGUE:
                raise QueryError(
                    f"unknown indicator {name!r}",
                    reason=Reason.UNKNOWN_INDICATOR,
                    field="indicators",
                    hint=f"known indicators: {', '.join(CATALOGUE)}",
                )
        if is_local(self.group_dim):
            self._validate_local()
        elif self.group_dim not in GROUP_DIMS:
            raise QueryError(
                f"unknown group dimension {self.group_dim!r}",
                reason=Reason.UNKNOWN_DIMENSION,
                field="group_dim",
                hint=f"known group dimensions: {', '.join(GROUP_DIMS)}, or local:NAME",
            )
        for name in self.breakdowns:
            if name not in BREAKDOWNS:
                raise QueryError(
                    f"unknown breakdown {name!r}",
                    reason=Reason.UNKNOWN_DIMENSION,
                    field="breakdowns",
                    hint=f"known breakdowns: {', '.join(BREAKDOWNS)}",
                )
        if len(set(self.breakdowns)) != len(self.breakdowns):
            raise QueryError("a breakdown is named twice", field="breakdowns")
        if self.group_dim in self.breakdowns:
            raise QueryError(
                f"{self.group_dim!r} is both the group dimension and a breakdown",
                field="breakdowns",
                hint="break a group down by other dimensions, e.g. group reason by yearesid",
            )
        cohort = parse_comparator(self.comparator)
        if cohort is not None:
            self._validate_cohort(*cohort)
        elif self.comparator not in COMPARATORS:
            raise QueryError(
                f"unknown comparator {self.comparator!r}",
                field="comparator",
                hint=f"use one of: {', '.join(COMPARATORS)}, or DIM=CODE with DIM one of the "
                "query's breakdowns, e.g. yearesid=Y_GE10",
            )
        if self.comparator == "NAT" and NATIVE_GROUP.get(self.group_dim) is None:
            raise QueryError(
                f"group dimension {self.group_dim!r} has no native group to serve as "
                "comparator NAT",
                field="comparator",
                hint="compare with TOTAL (the whole population of the same table) instead",
            )
        if self.poverty_line is not None and not (
            math.isfinite(self.poverty_line) and self.poverty_line > 0
        ):
            raise QueryError(
                f"poverty_line must be a positive number, got {self.poverty_line!r}",
                field="poverty_line",
                hint="an equivalised income in the data's currency, e.g. 15000",
            )
        if self.time_period is not None and not _PERIOD.match(self.time_period):
            raise QueryError(
                f"time_period {self.time_period!r} is not a reference period",
                field="time_period",
                hint='e.g. "2024", "2024-Q1" or "2024-06"',
            )
        if not (math.isfinite(self.rho) and 0 < self.rho <= MAX_RHO):
            raise QueryError(
                f"rho must be a positive number up to {MAX_RHO:g}, got {self.rho!r}",
                field="rho",
                hint="rho is the zCDP budget per node, for example 0.5",
            )

    def _validate_local(self) -> None:
        name = self.group_dim.removeprefix(LOCAL_PREFIX)
        if not LOCAL_NAME.match(name):
            raise QueryError(
                f"malformed local group dimension {self.group_dim!r}",
                reason=Reason.UNKNOWN_DIMENSION,
                field="group_dim",
                hint="local:NAME with NAME of 1-32 characters a-z, 0-9 or _",
            )
        if self.comparator != "TOTAL":
            raise QueryError(
                f"comparator {self.comparator!r} cannot be used with the local group "
                f"dimension {self.group_dim!r}: a node's own code list has no native group "
                "and no cohorts",
                field="comparator",
                hint="compare with TOTAL (the whole population of the same table)",
            )

    def _validate_cohort(self, dim: str, code: str) -> None:
        if dim not in self.breakdowns:
            known = ", ".join(self.breakdowns) or "none"
            raise QueryError(
                f"comparator {self.comparator!r} names {dim!r}, which is not a breakdown "
                "of the query",
                field="comparator",
                hint=f"DIM must be one of the query's breakdowns ({known}); add {dim!r} to "
                f"the breakdowns if it is one of: {', '.join(BREAKDOWNS)}",
            )
        for name in self.indicators:
            codes = _breakdown(dim, CATALOGUE[name].population).codes
            if code not in codes:
                raise QueryError(
                    f"comparator {self.comparator!r}: {code!r} is not a code of breakdown "
                    f"{dim!r}" + (f" for indicator {name}" if dim == AGE else ""),
                    field="comparator",
                    hint=f"codes of {dim}: {', '.join(codes)}",
                )

    def canonical(self) -> Query:
        """The same query with indicators deduplicated and breakdowns in canonical order."""
        return replace(
            self,
            indicators=tuple(dict.fromkeys(self.indicators)),
            breakdowns=tuple(b for b in BREAKDOWNS if b in self.breakdowns),
        )


@dataclass(frozen=True)
class Dim:
    """One dimension of a table: a name and its closed, public code list.

    Attributes:
        name: Harmonised variable (``age`` is banded).
        codes: Codes in cell order.
        bands: For ``age``: the (low, high) of each code.
    """

    name: str
    codes: tuple[str, ...]
    bands: tuple[tuple[int, int], ...] = ()

    def to_json(self) -> dict[str, object]:
        """Canonical JSON form."""
        out: dict[str, object] = {"name": self.name, "codes": list(self.codes)}
        if self.bands:
            out["bands"] = [list(b) for b in self.bands]
        return out


@dataclass(frozen=True)
class TableSpec:
    """A noisy contingency table: who is counted and in which cells.

    Persons outside ``age_min..age_max`` are not counted; persons whose value of a
    breakdown or outcome dimension is ``UNK`` are not counted either (the group
    dimension keeps ``UNK``). Each counted person falls in exactly one cell.

    Attributes:
        age_min: Lowest age counted.
        age_max: Highest age counted.
        dims: Cell dimensions: the group dimension first, then the breakdowns.
        outcome: The outcome partition, the last (fastest-varying) dimension.
    """

    age_min: int
    age_max: int
    dims: tuple[Dim, ...]
    outcome: Dim

    # The derived forms below are cached on first use (the spec is immutable): the key
    # is looked up for every cell of every node when outputs are written.
    @cached_property
    def all_dims(self) -> tuple[Dim, ...]:
        """Cell dimensions followed by the outcome."""
        return (*self.dims, self.outcome)

    @cached_property
    def shape(self) -> tuple[int, ...]:
        """Number of codes per dimension, in cell order."""
        return tuple(len(d.codes) for d in self.all_dims)

    @cached_property
    def n_cells(self) -> int:
        """Number of released cells."""
        return math.prod(self.shape)

    @cached_property
    def key(self) -> str:
        """Canonical JSON identifying the table."""
        return json.dumps(
            {
                "age": [self.age_min, self.age_max],
                "dims": [d.to_json() for d in self.dims],
                "outcome": self.outcome.to_json(),
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    def variables(self) -> tuple[str, ...]:
        """Harmonised variables the table reads."""
        return tuple(d.name for d in self.all_dims)


@dataclass(frozen=True)
class Plan:
    """A compiled query: deduplicated tables and which table serves which indicator."""

    query: Query
    tables: tuple[TableSpec, ...]
    table_of: dict[str, int] = field(default_factory=dict)

    @property
    def n_cells(self) -> int:
        """Cells released by the whole query."""
        return sum(t.n_cells for t in self.tables)

    def spec_hash(self) -> str:
        """Hash of what the query releases: the set of table keys and rho.

        Canonical: the order of the indicators (hence of the tables) and the comparator
        do not change it, so a reordered query is answered from the cache, not noised
        again (averaging reordered specs gains nothing).
        """
        body = json.dumps({"tables": sorted(t.key for t in self.tables), "rho": self.query.rho})
        return hashlib.sha256(body.encode()).hexdigest()

    def legacy_spec_hash(self) -> str:
        """The hash earlier releases (0.2 and before) stored (table keys in the plan's order).

        A retry of a query id stored by such a release is matched against it.
        """
        body = json.dumps({"tables": [t.key for t in self.tables], "rho": self.query.rho})
        return hashlib.sha256(body.encode()).hexdigest()

    def indicator(self, name: str) -> tuple[Indicator, TableSpec]:
        """The catalogue entry and the table of one indicator in this plan."""
        return CATALOGUE[name], self.tables[self.table_of[name]]


def denominator_codes(indicator: Indicator, spec: TableSpec) -> tuple[str, ...]:
    """The outcome codes an indicator divides by, in the table's outcome order."""
    codes = spec.outcome.codes
    if indicator.kind == RATIO:
        return tuple(c for c in codes if c in indicator.denominator)
    return codes


def margin_codes(spec: TableSpec) -> tuple[tuple[str, ...], ...]:
    """The denominator margins a table releases (DESIGN section 3), in release order.

    Every known outcome (the population cell), then each other denominator of a catalogue
    indicator on the same outcome, then the unknown outcome (``UNK``: item non-response).
    The list depends on the table alone, never on the query, so a cached answer serves
    every query that asks for the same table.
    """
    out = [spec.outcome.codes]
    for indicator in CATALOGUE.values():
        if indicator.outcome == spec.outcome.name:
            codes = denominator_codes(indicator, spec)
            if codes not in out:
                out.append(codes)
    return (*out, (UNK,))


def is_local(name: str) -> bool:
    """Whether a dimension is a node's own ``local:NAME`` one."""
    return name.startswith(LOCAL_PREFIX)


def compile_query(query: Query, local: Mapping[str, Variable] | None = None) -> Plan:
    """Validate a query and compile it to deduplicated table specs.

    Args:
        query: The query.
        local: A node's own ``local:NAME`` variables by name, for a local group
            dimension: its codes are that node's (each node gets its own plan).

    Raises:
        QueryError: When a field is unknown or out of range, or the local group dimension
            is not in ``local`` (reason ``VARIABLE_NOT_PROVIDED``).
    """
    query.validate()
    query = query.canonical()
    group = CATEGORICAL.get(query.group_dim)
    if is_local(query.group_dim):
        group = (local or {}).get(query.group_dim)
        if group is None:
            raise QueryError(
                f"this node does not provide the local variable {query.group_dim!r}",
                reason=Reason.VARIABLE_NOT_PROVIDED,
                field="group_dim",
                hint=f'map it under [variables."{query.group_dim}"] in the node config',
            )
    assert group is not None
    tables: list[TableSpec] = []
    table_of: dict[str, int] = {}
    for name in query.indicators:
        spec = _table_for(CATALOGUE[name], query, group)
        if spec not in tables:
            tables.append(spec)
        table_of[name] = tables.index(spec)
    return Plan(query=query, tables=tuple(tables), table_of=table_of)


def _table_for(indicator: Indicator, query: Query, group: Variable) -> TableSpec:
    dims = [Dim(group.name, group.codes)]
    for name in query.breakdowns:
        dims.append(_breakdown(name, indicator.population))
    outcome = CATEGORICAL[indicator.outcome]
    return TableSpec(
        age_min=indicator.population.age_min,
        age_max=indicator.population.age_max,
        dims=tuple(dims),
        outcome=Dim(outcome.name, _known(outcome.codes)),
    )


def _breakdown(name: str, population: Population) -> Dim:
    if name == AGE:
        return Dim(
            AGE,
            tuple(b.code for b in population.bands),
            tuple((b.low, b.high) for b in population.bands),
        )
    return Dim(name, _known(CATEGORICAL[name].codes))


def parse_comparator(comparator: str) -> tuple[str, str] | None:
    """A cohort comparator ``DIM=CODE`` as (DIM, CODE); None for any other text.

    Raises:
        QueryError: When the text has an ``=`` but not exactly one DIM and one CODE.
    """
    if "=" not in comparator:
        return None
    dim, _, code = comparator.partition("=")
    if not dim or not code or "=" in code:
        raise QueryError(
            f"malformed comparator {comparator!r}",
            field="comparator",
            hint="a cohort comparator is DIM=CODE, e.g. yearesid=Y_GE10",
        )
    return dim, code


def _known(codes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(c for c in codes if c != UNK)
