"""SDMX outputs: SDMX-CSV 1.0 in Eurostat's dissemination layout, and its structure.

One dataflow per target-group dimension (``FEDSTATS:MIGINT_CBIRTH(1.0)`` and
``FEDSTATS:MIGINT_CITIZEN(1.0)``), like Eurostat's separate tables by country of birth and
by citizenship. The dimensions, in column order, are ``freq``, ``stat``, ``unit``,
``indic``, ``sex``, ``age``, the group dimension (``c_birth`` or ``citizen``), ``geo``
and ``TIME_PERIOD``; then ``OBS_VALUE`` and the attributes ``OBS_FLAG``, ``CONF_STATUS``
``OBS_STATUS``, ``COMPARATOR`` and the row attributes of ``ROW_ATTRIBUTES``: on AROP
observations ``POVERTY_LINE`` (the line the rate used, in the node's currency), and on
every observation of a node that answered ``SOURCE_TYPE``, ``DEVIATION`` (concept codes
and notes), ``GEO_LEVEL`` and ``RELEASE`` (the citable release id). The structure
message's header ``Source`` says how to cite the release.

Each benchmark row becomes several observations that differ only in ``stat``: ``VALUE``
(the indicator, unit ``PC``), ``CI_LOW`` and ``CI_HIGH`` (its 95% interval), ``DENOM``
(the noisy denominator, unit ``NR``) and, for every group but the comparator, ``GAP``,
``GAP_CI_LOW`` and ``GAP_CI_HIGH`` (value minus the comparator group's value, unit ``PP``;
``COMPARATOR`` names that group). The comparator's own value is its ``VALUE``
observation. Without a breakdown, ``sex`` is ``T`` and ``age`` the indicator's age range
(``Y20-64``). Pooled rows have ``geo`` = ``FEDSTATS_POOL``; their ``TIME_PERIOD`` is an
SDMX time range when the nodes' reference periods differ. A node that did not answer a
query naming no period has no known period: its rows (no values) stay in benchmark.csv
and are left out of SDMX, which needs a ``TIME_PERIOD``.

``OBS_FLAG`` keeps Eurostat's letters (``c``, ``d``, ``u``, ``z``; several may combine, as
in Eurostat's own files). ``CONF_STATUS`` is ``C`` for a confidential value (``c``), else
``F`` (free). ``OBS_STATUS`` carries the SDMX cross-domain code (CL_OBS_STATUS) of the
row's ``status``: ``A`` normal, ``Q`` missing value, suppressed; ``L`` missing, data exist
but are not collected (the node does not provide the variable or has no national poverty
line); ``O`` missing value (the node did not answer); ``M`` missing, data cannot exist (not
applicable). A value that is not published has an empty ``OBS_VALUE``. A gap inherits the
flags of both groups it compares, and is missing when either value is.

The structure (codelists, concept scheme, data structure definitions, dataflows) is built
and written as an SDMX-ML 2.1 Structure message with the ``sdmx1`` library. The SDMX-CSV
rows are written directly (`write_sdmx_csv`), one line per observation, with the columns
read from that same data structure definition: its dimensions, ``OBS_VALUE``, then its
attributes, in order. An attribute added to the DSD (and given a value in
`attribute_values`) appears in the CSV with no change to the writer. Going through the
library's key and observation objects instead cost one ``make_key`` per observation and
grew to most of a 100-city query's time.
"""

from __future__ import annotations

import csv
import functools
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from sdmx.message import Header, StructureMessage
from sdmx.model import common, v21
from sdmx.writer.xml import to_xml

from common.errors import FedstatsError, Reason
from coordinator.publish.citation import Citation
from coordinator.publish.numbers import published
from coordinator.rows import POOLED, TOTAL, BenchmarkRow
from indicators.catalogue import CATALOGUE
from indicators.spec import COMPARATORS, DERIVED_GROUPS, GROUP_DIMS
from indicators.variables import CATEGORICAL

__all__ = [
    "AGENCY",
    "DATAFLOWS",
    "OBS_STATUS",
    "POOLED_GEO",
    "ROW_ATTRIBUTES",
    "STATS",
    "Obs",
    "SdmxRelease",
    "attribute_values",
    "prepare_sdmx",
    "structure_message",
    "write_sdmx_csv",
]

AGENCY = "FEDSTATS"
VERSION = "1.0"
POOLED_GEO = "FEDSTATS_POOL"
STRUCTURE_FILE = "structure.xml"
DATAFLOWS = {"c_birth": "MIGINT_CBIRTH", "citizen": "MIGINT_CITIZEN"}
_ID = re.compile(r"[A-Za-z0-9_@$\-]+")
_FLAG_LETTERS = {
    "c": "confidential: not published",
    "d": "definition differs, see the node's metadata",
    "u": "low reliability",
    "z": "not applicable",
}
# SDMX cross-domain code list CL_OBS_STATUS, for each row status.
OBS_STATUS = {
    "published": "A",
    "suppressed": "Q",
    "not_provided": "L",
    "no_answer": "O",
    "not_applicable": "M",
}
_OBS_STATUS_NAMES = {
    "A": "Normal value",
    "Q": "Missing value; suppressed",
    "L": "Missing value; data exist but were not collected",
    "O": "Missing value",
    "M": "Missing value; data cannot exist",
}
_GROUP_NAMES = {
    "NAT": "Reporting country",
    "EU27_2020_FOR": "EU27 countries (from 2020) except reporting country",
    "NEU27_2020_FOR": "Non-EU27 countries (from 2020) nor reporting country",
    "STLS": "Stateless",
    "FOR": "Foreign country",
    "UNK": "Unknown",
    TOTAL: "Total",
}


@dataclass(frozen=True)
class Stat:
    """One code of the ``stat`` dimension: which number of a benchmark row."""

    code: str
    unit: str
    name: str
    gap: bool = False


STATS = (
    Stat("VALUE", "PC", "Indicator value"),
    Stat("CI_LOW", "PC", "Lower bound of the 95% confidence interval of the value"),
    Stat("CI_HIGH", "PC", "Upper bound of the 95% confidence interval of the value"),
    Stat("GAP", "PP", "Gap: value minus the comparator group's value", gap=True),
    Stat("GAP_CI_LOW", "PP", "Lower bound of the 95% confidence interval of the gap", gap=True),
    Stat("GAP_CI_HIGH", "PP", "Upper bound of the 95% confidence interval of the gap", gap=True),
    Stat("DENOM", "NR", "Denominator: noisy (weighted) number of persons"),
)
_STAT_KEYS = {s.code: (("stat", s.code), ("unit", s.unit)) for s in STATS}
_UNITS = {"PC": "Percentage", "PP": "Percentage points", "NR": "Number of persons"}
_FREQS = {"A": "Annual", "S": "Half-yearly", "Q": "Quarterly", "M": "Monthly"}
_CONF = {"F": "Free", "C": "Confidential statistical information"}
_DIMENSIONS = ("freq", "stat", "unit", "indic", "sex", "age")
_M = TypeVar("_M", bound=common.MaintainableArtefact)
_DESCRIPTION = (
    "fedstats cross-city benchmark of migrant integration. Each benchmark row (node x "
    "indicator x group x breakdown cell) gives one observation per code of the stat "
    "dimension: VALUE (the indicator, percent), CI_LOW and CI_HIGH (its 95% confidence "
    "interval), DENOM (the noisy denominator, persons) and, for every group but the "
    "comparator, GAP, GAP_CI_LOW and GAP_CI_HIGH (value minus the comparator group's value "
    "in percentage points; the COMPARATOR attribute names that group). sex T and age equal "
    "to the indicator's age range mean no breakdown. geo FEDSTATS_POOL is the pooled value "
    "(the sum of every answering node's noisy tables). Suppressed values have an empty "
    "OBS_VALUE, OBS_FLAG c and CONF_STATUS C. Values carry differential-privacy noise and, "
    "for surveys, sampling error; intervals include both."
)


class Obs(NamedTuple):
    """One SDMX observation: its key, its published value (text) and attributes.

    Made one by one only for the sdmx1 library's path (`RowObs.observations`, which the
    tests compare the direct writer with) and to read an observation's attributes.
    """

    key: tuple[tuple[str, str], ...]
    value: str | None
    flags: str
    comparator: str | None
    status: str = "published"
    texts: tuple[tuple[str, str], ...] = ()  # ROW_ATTRIBUTES given for the row


@dataclass(frozen=True)
class RowAttribute:
    """An attribute every observation of a benchmark row carries, read from the row."""

    id: str
    name: str
    value_type: common.FacetValueType
    read: Callable[[BenchmarkRow], str]


ROW_ATTRIBUTES = (
    RowAttribute(
        "POVERTY_LINE",
        "The at-risk-of-poverty line an AROP value used (the node's national line: 60% of "
        "the national median equivalised income), in the node's currency",
        common.FacetValueType.double,
        lambda r: published(r.poverty_line, 0),
    ),
    RowAttribute(
        "POVERTY_LINE_SOURCE",
        "Where the poverty line comes from: the node's stated source, or 'computed, rho=...' "
        "for a line the node computed as a private median",
        common.FacetValueType.string,
        lambda r: (r.poverty_line_source or "") if published(r.poverty_line, 0) else "",
    ),
    RowAttribute(
        "SOURCE_TYPE",
        "Source type of the node's data (register, survey, census; pooled: the members')",
        common.FacetValueType.string,
        lambda r: r.source,
    ),
    RowAttribute(
        "DEVIATION",
        "Concepts other than the harmonised one (variable=code, fedstats vocabulary) and "
        "the node's notes; pooled: node:variable=code of the members",
        common.FacetValueType.string,
        lambda r: r.deviation,
    ),
    RowAttribute(
        "GEO_LEVEL",
        "Territorial level of the geo code: city, lau, fua, nuts3, nuts2 or country",
        common.FacetValueType.string,
        lambda r: r.geo_level,
    ),
    RowAttribute(
        "RELEASE",
        "The citable release id: coordinator-UTC date-short hash of the query ids",
        common.FacetValueType.string,
        lambda r: r.release,
    ),
)
"""The one list the row attributes of the structure and the observations are built from."""


class RowObs(NamedTuple):
    """A benchmark row's SDMX observations, read from the row once.

    The observations of a row differ only in ``stat`` (and its ``unit``), their number
    and, for the gap's, their flags, status and comparator: `observations` makes them one
    by one (the sdmx1 library's path does), `write_sdmx_csv` writes them straight from
    here.

    Attributes:
        group_dim: The row's group dimension (which dataflow it belongs to).
        key: Every dimension of the row's observations but ``stat`` and ``unit``, in the
            DSD's order (``freq`` first).
        numbers: The published text of each ``stat`` code's number ("" for none).
        own: Flags and status of the row's own value, interval and denominator.
        gap: Flags and status of its gap (both groups' flags).
        comparator: The comparator group of its gap; None for the comparator's own row,
            which has no gap.
        texts: The ``ROW_ATTRIBUTES`` given for the row.
    """

    group_dim: str
    key: tuple[tuple[str, str], ...]
    numbers: dict[str, str]
    own: tuple[str, str]
    gap: tuple[str, str]
    comparator: str | None
    texts: tuple[tuple[str, str], ...]

    def observations(self) -> list[Obs]:
        """The row's observations, one per ``stat`` code it has."""
        freq, *rest = self.key
        out = []
        for stat in STATS:
            if stat.gap and self.comparator is None:
                continue  # a group has no gap to itself
            flags, state = self.gap if stat.gap else self.own
            value = (self.numbers[stat.code] or None) if state == "published" else None
            comparator = self.comparator if stat.gap else None
            key = (freq, *_STAT_KEYS[stat.code], *rest)
            out.append(Obs(key, value, flags, comparator, state, self.texts))
        return out


@dataclass(frozen=True)
class SdmxRelease:
    """The rows' observations per dataflow and the geo codes they use, ready to write."""

    rows: dict[str, list[RowObs]]
    geos: dict[str, str]
    citation: Citation | None = None

    @property
    def observations(self) -> dict[str, list[Obs]]:
        """Every observation per dataflow, one object each (for the sdmx1 library's path)."""
        return {
            group_dim: [obs for row in rows for obs in row.observations()]
            for group_dim, rows in self.rows.items()
        }

    def write(self, directory: Path) -> list[Path]:
        """Write the structure message and one SDMX-CSV file per dataflow."""
        directory.mkdir(parents=True, exist_ok=True)
        message = structure_message(self.geos, self.citation)
        structure = directory / STRUCTURE_FILE
        structure.write_bytes(to_xml(message, pretty_print=True))
        paths = [structure]
        for group_dim, rows in self.rows.items():
            flow = message.dataflow[DATAFLOWS[group_dim]]
            path = directory / f"{flow.id}.csv"
            write_sdmx_csv(flow, rows, path)
            paths.append(path)
        return paths


def write_sdmx_csv(flow: v21.DataflowDefinition, rows: list[RowObs], path: Path) -> None:
    """SDMX-CSV 1.0 of one dataflow's observations, laid out by its DSD.

    Columns: ``DATAFLOW`` (the flow's ``AGENCY:ID(VERSION)``), every dimension of the DSD
    in order, ``OBS_VALUE``, every attribute of the DSD in order; an attribute without a
    value for an observation is left empty. Each row's observations are written from
    what they share (no object per observation): the same lines, byte for byte, as
    `RowObs.observations` written one by one.
    """
    dsd = flow.structure
    dimensions = [d.id for d in dsd.dimensions.components]
    attributes = [a.id for a in dsd.attributes.components]
    measure = [m.id for m in dsd.measures.components]
    agency = flow.maintainer.id if flow.maintainer is not None else AGENCY
    reference = f"{agency}:{flow.id}({flow.version})"
    stat_at, unit_at = 1 + dimensions.index("stat"), 1 + dimensions.index("unit")
    fields: dict[str, str] = {}  # each text as a csv field, quoted once

    def field(text: str) -> str:
        if (quoted := fields.get(text)) is None:
            quoted = fields[text] = _csv_field(text)
        return quoted

    stats = [(stat, field(stat.code), field(stat.unit)) for stat in STATS]
    tails: dict[tuple[object, ...], str] = {}  # the attribute columns, per state

    def tail(flags: str, state: str, comparator: str | None, texts: _Texts) -> str:
        key = (flags, state, comparator, texts)
        if (text := tails.get(key)) is None:
            values = attribute_values(Obs((), None, flags, comparator, state, texts))
            text = tails[key] = "".join("," + field(values.get(a, "")) for a in attributes)
        return text

    lines = [",".join(field(c) for c in ["DATAFLOW", *dimensions, *measure, *attributes])]
    for row in rows:
        key = dict(row.key)
        head = [field(reference), *[field(key.get(d, "")) for d in dimensions]]
        # the row's line with a hole for stat and one for unit, each line filled in
        head[stat_at], head[unit_at] = _HOLE, _HOLE
        pieces = ",".join(head).split(_HOLE)  # 3 unless a text holds the hole's character
        own, gap = tail(*row.own, None, row.texts), ""
        if row.comparator is not None:
            gap = tail(*row.gap, row.comparator, row.texts)
        for stat, code, unit in stats:
            if stat.gap and row.comparator is None:
                continue  # a group has no gap to itself
            attributes_text, state = (gap, row.gap[1]) if stat.gap else (own, row.own[1])
            value = field(row.numbers[stat.code]) if state == "published" else ""
            if len(pieces) == 3:
                first, middle, last = pieces
                line = "".join((first, code, middle, unit, last, ",", value, attributes_text))
            else:
                parts = head.copy()
                parts[stat_at], parts[unit_at] = code, unit
                line = ",".join(parts) + "," + value + attributes_text
            lines.append(line)
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8", newline="")


_HOLE = "\x00"
_Texts = tuple[tuple[str, str], ...]
_QUOTED = re.compile(r'[,"\r\n]')


def _csv_field(text: str) -> str:
    """A field as ``csv.writer`` (``QUOTE_MINIMAL``) writes it.

    As it is unless it holds a comma, a quote or a line break; the csv module itself
    quotes those.
    """
    if _QUOTED.search(text) is None:
        return text
    sink: list[str] = []
    csv.writer(_Sink(sink), lineterminator="\n").writerow([text])  # the file's dialect
    return "".join(sink).removesuffix("\n")


class _Sink:
    """A file-like object collecting what a csv writer writes."""

    def __init__(self, parts: list[str]) -> None:
        self.write = parts.append


def prepare_sdmx(rows: Sequence[BenchmarkRow], citation: Citation | None = None) -> SdmxRelease:
    """Map benchmark rows to SDMX observations, checking everything before any write.

    Rows without a reference period (a silent node, a query naming none) are left out.

    Raises:
        FedstatsError: A group dimension without a dataflow, a cohort comparator or a
            breakdown other than sex and age (``UNSUPPORTED_FORMAT``), a
            reference period SDMX cannot express (``UNSUPPORTED_TIME_PERIOD``), or two rows
            with the same SDMX key, e.g. the same indicator asked twice
            (``DUPLICATE_OBSERVATION``).
    """
    unknown = sorted({r.group_dim for r in rows} - set(DATAFLOWS))
    if unknown:
        raise FedstatsError(
            f"no SDMX dataflow for group dimension(s) {', '.join(unknown)}",
            reason=Reason.UNSUPPORTED_FORMAT,
            field="--format",
            hint=f"SDMX output covers {', '.join(DATAFLOWS)}; use csv or parquet for the others",
        )
    cohorts = sorted({r.comparator for r in rows if "=" in r.comparator})
    if cohorts:
        raise FedstatsError(
            f"no SDMX representation for cohort comparator(s) {', '.join(cohorts)}",
            reason=Reason.UNSUPPORTED_FORMAT,
            field="--format",
            hint=f"SDMX output compares with {' or '.join(COMPARATORS)}; use csv, parquet or "
            "html for cohort comparisons",
        )
    extra = sorted({b for r in rows for b in r.breakdown} - {"sex", "age"})
    if extra:
        raise FedstatsError(
            f"no SDMX dimension for breakdown(s) {', '.join(extra)}",
            reason=Reason.UNSUPPORTED_FORMAT,
            field="--format",
            hint="SDMX output breaks down by sex and age only; use csv or parquet for the others",
        )
    rows = [r for r in rows if r.time_period]
    geos = {_geo(r): _geo_name(r) for r in rows}
    comparators = {_comparator_key(r): r for r in rows if r.group == r.comparator}
    prepared: dict[str, list[RowObs]] = {}
    seen: set[tuple[tuple[str, str], ...]] = set()
    for row in rows:
        comp = comparators.get(_comparator_key(row))
        comp_state = (str(comp.flags), str(comp.status)) if comp else ("", "published")
        obs = _row_observations(row, *comp_state)
        # Every row has a VALUE observation, and the rest of its keys differ from another
        # row's only where this key does: two rows share an observation iff they share it.
        if obs.key in seen:
            freq, *rest = obs.key
            raise FedstatsError(
                "two benchmark rows map to the same SDMX observation "
                f"{dict((freq, *_STAT_KEYS['VALUE'], *rest))}",
                reason=Reason.DUPLICATE_OBSERVATION,
                field="--format",
                hint="write each query's SDMX output to its own directory",
            )
        seen.add(obs.key)
        prepared.setdefault(row.group_dim, []).append(obs)
    return SdmxRelease(prepared, geos, citation)


def _comparator_key(row: BenchmarkRow) -> tuple[object, ...]:
    return (row.node, row.indicator, row.group_dim, tuple(row.breakdown.items()), row.comparator)


def _row_observations(row: BenchmarkRow, comparator_flags: str, comparator_status: str) -> RowObs:
    """What a row's observations share, and their numbers, flags and statuses."""
    freq, period = _period(row.time_period)
    numbers = {
        "VALUE": published(row.value),
        "CI_LOW": published(row.ci_low),
        "CI_HIGH": published(row.ci_high),
        "GAP": published(row.gap),
        "GAP_CI_LOW": published(row.gap_ci_low),
        "GAP_CI_HIGH": published(row.gap_ci_high),
        "DENOM": published(row.denominator, 0),
    }
    sex = ("sex", row.breakdown.get("sex", "T"))
    age = row.breakdown["age"] if "age" in row.breakdown else _age_range(row.indicator)
    key = (
        ("freq", freq), ("indic", row.indicator.upper()), sex, ("age", age),
        (row.group_dim, row.group), ("geo", _geo(row)), ("TIME_PERIOD", period),
    )  # fmt: skip
    own_flags, status = str(row.flags), str(row.status)
    gap_status = status
    if status == "published" and comparator_status != "published":
        gap_status = "suppressed"  # no gap against a value that is not published
    texts = tuple((a.id, text) for a in ROW_ATTRIBUTES if (text := a.read(row)))
    comparator = None if row.group == row.comparator else row.comparator
    gap = (_merge(own_flags, comparator_flags), gap_status)
    return RowObs(row.group_dim, key, numbers, (own_flags, status), gap, comparator, texts)


@functools.cache
def _age_range(indicator: str) -> str:
    """The indicator's age range code (the ``age`` of a row without an age breakdown)."""
    return CATALOGUE[indicator].population.code


def _merge(*flags: str) -> str:
    return "".join(sorted(set("".join(flags))))


def _geo(row: BenchmarkRow) -> str:
    if row.node == POOLED:
        return POOLED_GEO
    code = row.geo or row.node.upper()
    return code if _ID.fullmatch(code) else re.sub(r"[^A-Za-z0-9_@$\-]", "_", code)


def _geo_name(row: BenchmarkRow) -> str:
    if row.node == POOLED:
        return "Pooled: the sum of every answering node's tables"
    return f"Node {row.node}" + ("" if row.geo else " (did not answer)")


_PERIOD_FORMS = (
    (re.compile(r"(\d{4})"), "A", 12),
    (re.compile(r"(\d{4})-?S([12])"), "S", 6),
    (re.compile(r"(\d{4})-?Q([1-4])"), "Q", 3),
    (re.compile(r"(\d{4})-(0[1-9]|1[0-2])"), "M", 1),
)


def _months(text: str) -> tuple[str, int, int]:
    """Frequency, first month (counted from year 0) and length in months of a period."""
    for pattern, freq, length in _PERIOD_FORMS:
        if match := pattern.fullmatch(text.strip()):
            year = int(match.group(1))
            part = int(match.group(2)) if match.lastindex == 2 else 1
            return freq, year * 12 + (part - 1) * length, length
    raise FedstatsError(
        f"reference period {text!r} is not an SDMX time period",
        reason=Reason.UNSUPPORTED_TIME_PERIOD,
        field="dataset.time_period",
        hint="nodes should give time_period as YYYY, YYYY-Qn, YYYY-Sn or YYYY-MM",
    )


@functools.cache
def _period(text: str) -> tuple[str, str]:
    """``freq`` and ``TIME_PERIOD`` of a node's period, or of pooled periods joined by +."""
    parts = [_months(p) for p in text.split("+")]
    if len(parts) == 1:
        return parts[0][0], text.strip()
    freqs = {p[0] for p in parts}
    start = min(p[1] for p in parts)
    months = max(p[1] + p[2] for p in parts) - start
    year, month = divmod(start, 12)
    duration = f"P{months // 12}Y" if months % 12 == 0 else f"P{months}M"
    return (freqs.pop() if len(freqs) == 1 else "A"), f"{year:04d}-{month + 1:02d}-01/{duration}"


# -- the structure -------------------------------------------------------------------------


def _maintained(cls: type[_M], id_: str, name: str, **extra: Any) -> _M:
    """A final, maintained artefact of the fedstats agency."""
    return cls(
        id=id_,
        name={"en": name},
        maintainer=common.Agency(id=AGENCY),
        version=VERSION,
        is_final=True,
        is_external_reference=False,
        **extra,
    )


def _codelist(id_: str, name: str, codes: dict[str, str]) -> common.Codelist:
    codelist = _maintained(common.Codelist, id_, name)
    for code, label in codes.items():
        codelist.append(common.Code(id=code, name={"en": label}))
    return codelist


def _flag_codes() -> dict[str, str]:
    """Every combination of flag letters, as Eurostat writes them (``cu``)."""
    letters = sorted(_FLAG_LETTERS)
    return {
        "".join(combo): "; ".join(_FLAG_LETTERS[c] for c in combo)
        for n in range(1, len(letters) + 1)
        for combo in itertools.combinations(letters, n)
    }


def _age_codes() -> dict[str, str]:
    codes: dict[str, str] = {}
    for indicator in CATALOGUE.values():
        pop = indicator.population
        codes[pop.code] = f"From {pop.age_min} to {pop.age_max} years"
        codes.update({b.code: f"From {b.low} to {b.high} years" for b in pop.bands})
    return codes


def _group_codes(group_dim: str) -> dict[str, str]:
    codes = [*CATEGORICAL[group_dim].codes, *DERIVED_GROUPS.get(group_dim, {}), TOTAL]
    return {c: _GROUP_NAMES.get(c, c) for c in codes}


def _codelists(geos: dict[str, str]) -> dict[str, common.Codelist]:
    """Codelists by the dimension or attribute they represent."""
    return {
        "freq": _codelist("CL_FREQ", "Time frequency", _FREQS),
        "stat": _codelist("CL_STAT", "Statistic of a benchmark row", _stat_codes()),
        "unit": _codelist("CL_UNIT", "Unit of measure", _UNITS),
        "indic": _codelist(
            "CL_INDIC", "fedstats indicator", {n.upper(): i.title for n, i in CATALOGUE.items()}
        ),
        "sex": _codelist("CL_SEX", "Sex", {"T": "Total", "M": "Males", "F": "Females"}),
        "age": _codelist("CL_AGE", "Age class", _age_codes()),
        **{
            dim: _codelist(f"CL_{dim.upper()}", CATEGORICAL[dim].description, _group_codes(dim))
            for dim in GROUP_DIMS
        },
        "geo": _codelist("CL_GEO", "Geopolitical entity (the nodes of this release)", geos),
        "OBS_FLAG": _codelist("CL_OBS_FLAG", "Observation flag", _flag_codes()),
        "CONF_STATUS": _codelist("CL_CONF_STATUS", "Confidentiality status", _CONF),
        "OBS_STATUS": _codelist("CL_OBS_STATUS", "Observation status", _OBS_STATUS_NAMES),
        "COMPARATOR": _codelist(
            "CL_COMPARATOR", "Comparator group of a gap", {c: _GROUP_NAMES[c] for c in COMPARATORS}
        ),
    }


def _stat_codes() -> dict[str, str]:
    return {s.code: f"{s.name} (unit {s.unit})" for s in STATS}


_CONCEPTS = {
    "FREQ": "Time frequency",
    "STAT": "Statistic: which number of a benchmark row the observation is",
    "UNIT": "Unit of measure",
    "INDIC": "Indicator, from the fedstats catalogue",
    "SEX": "Sex",
    "AGE": "Age class",
    "C_BIRTH": "Country of birth group, relative to the node's country",
    "CITIZEN": "Citizenship group, relative to the node's country",
    "GEO": "Geopolitical entity: the node's published geo code, or FEDSTATS_POOL",
    "TIME_PERIOD": "Reference period of the node's dataset",
    "OBS_VALUE": "Observation value",
    "OBS_FLAG": "Observation flag (Eurostat letters)",
    "OBS_STATUS": "Observation status (SDMX cross-domain code list CL_OBS_STATUS)",
    "CONF_STATUS": "Confidentiality status",
    "COMPARATOR": "The group a gap is measured against",
    **{a.id: a.name for a in ROW_ATTRIBUTES},
}


def structure_message(geos: dict[str, str], citation: Citation | None = None) -> StructureMessage:
    """Codelists, concepts, one DSD and one dataflow per group dimension.

    With a citation, the header's ``Source`` says how to cite the release.
    """
    codelists = _codelists(geos)
    concepts = _maintained(common.ConceptScheme, "CS_FEDSTATS", "fedstats concepts")
    for cid, name in _CONCEPTS.items():
        concepts.append(common.Concept(id=cid, name={"en": name}))
    message = StructureMessage(
        header=Header(
            id=f"FEDSTATS_{datetime.now(UTC):%Y%m%dT%H%M%S}",
            prepared=datetime.now(UTC),
            sender=common.Agency(id=AGENCY),
            test=False,
            source=common.InternationalString({"en": citation.text()}) if citation else None,
        )
    )
    for codelist in codelists.values():
        message.add(codelist)
    message.add(concepts)
    for group_dim, flow_id in DATAFLOWS.items():
        dsd = _dsd(flow_id, group_dim, codelists, concepts)
        message.add(dsd)
        message.add(
            _maintained(
                v21.DataflowDefinition,
                flow_id,
                f"Migrant integration benchmark by {group_dim}",
                description={"en": _DESCRIPTION},
                structure=dsd,
            )
        )
    return message


def _dsd(
    flow_id: str,
    group_dim: str,
    codelists: dict[str, common.Codelist],
    concepts: common.ConceptScheme,
) -> v21.DataStructureDefinition:
    dsd = _maintained(
        v21.DataStructureDefinition,
        f"DSD_{flow_id}",
        f"fedstats benchmark by {group_dim}",
        description={"en": _DESCRIPTION},
    )
    dsd.dimensions.id = "DimensionDescriptor"
    dsd.measures.id = "MeasureDescriptor"
    dsd.attributes.id = "AttributeDescriptor"
    for order, dim in enumerate((*_DIMENSIONS, group_dim, "geo"), start=1):
        dsd.dimensions.getdefault(
            dim,
            concept_identity=concepts[dim.upper()],
            local_representation=common.Representation(enumerated=codelists[dim]),
            order=order,
        )
    dsd.dimensions.getdefault(
        "TIME_PERIOD",
        cls=common.TimeDimension,
        concept_identity=concepts["TIME_PERIOD"],
        local_representation=_text(common.FacetValueType.observationalTimePeriod),
        order=len(_DIMENSIONS) + 3,
    )
    dsd.measures.getdefault(
        "OBS_VALUE",
        concept_identity=concepts["OBS_VALUE"],
        local_representation=_text(common.FacetValueType.double),
    )
    for attr, status in (
        ("OBS_FLAG", common.UsageStatus.conditional),
        ("CONF_STATUS", common.UsageStatus.mandatory),
        ("OBS_STATUS", common.UsageStatus.mandatory),
        ("COMPARATOR", common.UsageStatus.conditional),
    ):
        dsd.attributes.getdefault(
            attr,
            concept_identity=concepts[attr],
            local_representation=common.Representation(enumerated=codelists[attr]),
            related_to=v21.PrimaryMeasureRelationship(),
            usage_status=status,
        )
    for row_attribute in ROW_ATTRIBUTES:
        dsd.attributes.getdefault(
            row_attribute.id,
            concept_identity=concepts[row_attribute.id],
            local_representation=_text(row_attribute.value_type),
            related_to=v21.PrimaryMeasureRelationship(),
            usage_status=common.UsageStatus.conditional,
        )
    return dsd


def _text(value_type: common.FacetValueType) -> common.Representation:
    return common.Representation(non_enumerated=[common.Facet(value_type=value_type)])


def attribute_values(obs: Obs) -> dict[str, str]:
    """The attributes an observation carries, by the DSD's attribute id."""
    values = {
        "CONF_STATUS": "C" if "c" in obs.flags else "F",
        "OBS_STATUS": OBS_STATUS[obs.status],
    }
    if obs.flags:
        values["OBS_FLAG"] = obs.flags
    if obs.comparator:
        values["COMPARATOR"] = obs.comparator
    values.update(obs.texts)
    return values
