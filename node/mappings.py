"""How a node's local columns become harmonised variables: one kind of mapping per shape.

A ``[variables.NAME]`` table takes one of five shapes, each read into its own frozen
type, so that a mapping can only hold the keys of its kind (`VariableMapping`):

`NumericColumn`: ``age`` and the binned numeric variables (``income``)::

    [variables.age]
    column = "alter"

`CodedColumn`: a column of local codes mapped onto a harmonised code list (DESIGN
section 6)::

    [variables.wstatus]
    column = "erwerb"
    map = { 1 = "EMP", 2 = "UNE", 3 = "INAC" }
    default = "INAC"        # optional: code of values not in map (else counted UNK)
    missing = "UNK"         # optional: code of empty values

  ``c_birth`` and ``citizen`` may hold ISO 3166 alpha-2 codes instead
  (``iso_country = true``, with or without a ``map`` for local exceptions): the node groups
  them by its ``[node] country`` and the EU27 list.

`FromParents`: ``mig_background`` from the parents' countries of birth (instead of
``column``)::

    [variables.mig_background]
    from_parents = { father = "fcob", mother = "mcob" }
    iso_country = true      # the parents' columns hold ISO 3166 alpha-2 codes
    # or: map = { NL = "NAT", MA = "NEU27_2020_FOR" }, default = "NEU27_2020_FOR",
    #     missing = "UNK": the parents' values mapped to c_birth codes

  The person's own country of birth is the node's ``[variables.c_birth]``, which must be
  mapped. A parent whose country is missing or unmapped makes a native-born person
  ``UNK`` (counted); see `indicators.derived.migration_background`.

`FromArrivalYear`: ``yearesid`` and ``arrival_cohort`` from an arrival year (instead of
``column``)::

    [variables.yearesid]
    arrival_year = "year_of_arrival"   # a column of 4-digit years
    missing = "NAP"                    # optional; the code of an empty arrival year

  Years of residence count from the arrival year to the first four digits of
  ``[dataset] time_period``. The native-born (``c_birth`` ``NAT``, or a native-born
  ``mig_background``) are ``NAP`` whatever the column says; an empty arrival year is
  ``missing`` (default ``UNK``): set ``missing = "NAP"`` on a node that does not map
  the country of birth when its register records an arrival year for every immigrant.
  Values that are not plausible years (not a whole number, before 1900, after the
  reference year) are reported by ``fedstats node check`` and counted as ``UNK``.

`LocalColumn`: a city's own group dimension (never pooled, always flagged ``d``)::

    [variables."local:mother_tongue"]
    column = "aidinkieli"
    codes = ["fi", "sv", "ru", "so", "ar", "other"]   # public, unique; UNK is appended
    map = { fin = "fi", swe = "sv" }   # optional: by default the values are the codes
    default = "other"                  # optional: code of values not in map / codes
    missing = "UNK"                    # optional

  The name after ``local:`` is 1-32 characters ``a-z 0-9 _``; a local variable can only
  be a query's group dimension (with comparator ``TOTAL``), never a breakdown or outcome.

Every kind takes ``deviation = "free text"``: a note that this node's definition deviates
from the harmonised one, e.g. ``deviation = "stateless persons are recorded as Other
(NEU27_2020_FOR)"``. It is carried to the benchmark rows that use the variable, flagged
``d``.

The derived outcomes ``elet``, ``neet`` and ``overqual`` are never configured: the node
derives them whenever it maps their inputs (`indicators.derived`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from common.tomlfile import Section
from indicators.derived import DERIVED
from indicators.spec import LOCAL_PREFIX, is_local
from indicators.variables import AGE, CATEGORICAL, COUNTRY_GROUPS, NAP, UNK

__all__ = [
    "CodeMap",
    "CodedColumn",
    "FromArrivalYear",
    "FromParents",
    "LocalColumn",
    "NumericColumn",
    "VariableMapping",
    "parse_variables",
]

ARRIVAL_VARIABLES = ("yearesid", "arrival_cohort")  # may be derived from an arrival year
MAX_DEVIATION_CHARS = 500
LOCAL_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
LOCAL_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


@dataclass(frozen=True)
class CodeMap:
    """Local values (as text) to codes, and the codes of unlisted and empty values.

    Attributes:
        map: Local value to code.
        default: Code of values not in ``map``; None counts them as unmapped (``UNK``).
        missing: Code of empty values.
        iso_country: Values not in ``map`` are ISO 3166 alpha-2 codes, grouped by the
            node's country (``c_birth`` and ``citizen`` codes only).
    """

    map: dict[str, str] = field(default_factory=dict)
    default: str | None = None
    missing: str = UNK
    iso_country: bool = False


@dataclass(frozen=True)
class NumericColumn:
    """``age``, or a variable binned at public edges (``income``), read as numbers."""

    name: str
    column: str
    deviation: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """The local columns read."""
        return (self.column,)


@dataclass(frozen=True)
class CodedColumn:
    """A column of local codes mapped onto a harmonised variable's code list."""

    name: str
    column: str
    coding: CodeMap
    deviation: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """The local columns read."""
        return (self.column,)


@dataclass(frozen=True)
class FromParents:
    """``mig_background`` from the node's ``c_birth`` and both parents' countries.

    Attributes:
        father: The father's country-of-birth column.
        mother: The mother's country-of-birth column.
        coding: The parents' values to ``c_birth`` codes.
        deviation: How this node's definition deviates, if it does.
    """

    father: str
    mother: str
    coding: CodeMap
    deviation: str | None = None

    @property
    def name(self) -> str:
        """The variable derived: always ``mig_background``."""
        return "mig_background"

    @property
    def columns(self) -> tuple[str, ...]:
        """The local columns read: father's, then mother's."""
        return (self.father, self.mother)


@dataclass(frozen=True)
class FromArrivalYear:
    """``yearesid`` or ``arrival_cohort`` from a column of arrival years.

    Attributes:
        name: ``yearesid`` or ``arrival_cohort``.
        column: The arrival-year column.
        missing: Code of an empty arrival year: ``UNK``, or ``NAP`` (born in the country).
        deviation: How this node's definition deviates, if it does.
    """

    name: str
    column: str
    missing: str = UNK
    deviation: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """The local columns read."""
        return (self.column,)


@dataclass(frozen=True)
class LocalColumn:
    """A node's own ``local:NAME`` variable: a column onto the node's own code list.

    Attributes:
        name: ``local:NAME``.
        column: The local column.
        codes: The public code list, ``UNK`` last.
        coding: Local values to codes (by default each code stands for itself).
        deviation: A note on the definition, if any.
    """

    name: str
    column: str
    codes: tuple[str, ...]
    coding: CodeMap
    deviation: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """The local columns read."""
        return (self.column,)


VariableMapping = NumericColumn | CodedColumn | FromParents | FromArrivalYear | LocalColumn
"""How one harmonised (or local) variable is read: exactly one of the five kinds."""


def parse_variables(sec: Section) -> dict[str, VariableMapping]:
    """Read ``[variables]``: every table checked against the keys of its kind.

    Raises:
        ConfigError: Naming the file and key that is wrong, and how to fix it.
    """
    known = {AGE, *CATEGORICAL} - set(DERIVED)
    out: dict[str, VariableMapping] = {}
    for name in sec.table:
        if is_local(name):
            out[name] = _local(name, sec)
            continue
        if name in DERIVED:
            inputs = " and ".join(DERIVED[name].inputs)
            raise sec.error(
                name,
                f"{name} is derived by the node from {inputs}, never mapped from a column",
                hint=f"map {inputs} instead; {name} then exists on its own",
            )
        if name not in known:
            raise sec.error(
                name,
                "unknown harmonised variable",
                hint=f"known: {', '.join(sorted(known))}, or a node's own local:NAME",
            )
        out[name] = _mapping(name, sec.sub(name))
    if AGE not in out:
        raise sec.error(
            AGE, "missing: every indicator needs age", hint='[variables.age] column = "..."'
        )
    if isinstance(out.get("mig_background"), FromParents) and "c_birth" not in out:
        raise sec.error(
            "mig_background.from_parents",
            "deriving mig_background needs the person's own country of birth, and c_birth "
            "is not mapped",
            hint="add [variables.c_birth], or map mig_background from a column",
        )
    return out


def _mapping(name: str, sec: Section) -> VariableMapping:
    deviation = _deviation(sec)
    if name == AGE or CATEGORICAL[name].binned:
        sec.check_keys({"column", "deviation"})
        return NumericColumn(name, sec.get("column", str), deviation)
    if name == "mig_background" and "from_parents" in sec.table:
        return _from_parents(sec, deviation)
    if name in ARRIVAL_VARIABLES and "column" not in sec.table:
        return _from_arrival_year(name, sec, deviation)
    sec.check_keys({"column", "map", "default", "missing", "iso_country", "deviation"})
    iso = bool(sec.get("iso_country", bool, False))
    if iso and name not in COUNTRY_GROUPS:
        raise sec.error("iso_country", f"only {' and '.join(COUNTRY_GROUPS)} hold country codes")
    coding = _codes(sec, name, iso)
    return CodedColumn(name, sec.get("column", str), coding, deviation)


def _codes(sec: Section, target: str, iso: bool) -> CodeMap:
    """``map``, ``default`` and ``missing``, every code checked against ``target``'s codes."""
    codes = CATEGORICAL[target].codes
    mapping = {str(k): v for k, v in sec.sub("map", required=False).table.items()}
    if not mapping and not iso:
        raise sec.error("map", "missing: give a map of local values or iso_country = true")
    for local, code in mapping.items():
        if not isinstance(code, str) or code not in codes:
            raise sec.error(
                f"map.{local}",
                f"{code!r} is not a code of {target}",
                hint=f"codes: {', '.join(codes)}",
            )
    for key in ("default", "missing"):
        value = sec.get(key, str, None)
        if value is not None and value not in codes:
            raise sec.error(
                key, f"{value!r} is not a code of {target}", hint=f"codes: {', '.join(codes)}"
            )
    return CodeMap(mapping, sec.get("default", str, None), sec.get("missing", str, UNK), iso)


def _from_parents(sec: Section, deviation: str | None) -> FromParents:
    if "column" in sec.table:
        raise sec.error(
            "from_parents",
            "give either column (a mapped migration background) or from_parents, not both",
        )
    sec.check_keys({"from_parents", "map", "default", "missing", "iso_country", "deviation"})
    parents = sec.sub("from_parents")
    parents.check_keys({"father", "mother"})
    father, mother = parents.get("father", str), parents.get("mother", str)
    iso = bool(sec.get("iso_country", bool, False))
    return FromParents(father, mother, _codes(sec, "c_birth", iso), deviation)


def _from_arrival_year(name: str, sec: Section, deviation: str | None) -> FromArrivalYear:
    if "arrival_year" not in sec.table:
        raise sec.error(
            "arrival_year",
            f"missing: derive {name} from a column of arrival years, or map a column",
            hint='arrival_year = "year_of_arrival", or column = "..." with a map',
        )
    sec.check_keys({"arrival_year", "missing", "deviation"})
    missing = sec.get("missing", str, UNK)
    if missing not in (NAP, UNK):
        raise sec.error(
            "missing",
            f"an empty arrival year is {NAP} (born in the country) or {UNK}, not {missing!r}",
            hint=f'missing = "{NAP}" when the register records an arrival for every immigrant',
        )
    return FromArrivalYear(name, sec.get("arrival_year", str), missing, deviation)


def _local(name: str, variables: Section) -> LocalColumn:
    """A ``[variables."local:NAME"]`` mapping: a column onto the node's own code list."""
    if not LOCAL_NAME.match(name.removeprefix(LOCAL_PREFIX)):
        raise variables.error(
            name,
            "the name after local: must be 1-32 characters a-z, 0-9 or _",
            hint='e.g. [variables."local:mother_tongue"]',
        )
    sec = variables.sub(name)
    sec.check_keys({"column", "codes", "map", "default", "missing", "deviation"})
    deviation = _deviation(sec)
    raw = sec.get("codes", list)
    if not raw:
        raise sec.error("codes", "is empty", hint='e.g. codes = ["fi", "sv", "other"]')
    for code in raw:
        if not isinstance(code, str) or not LOCAL_CODE.match(code) or code == UNK:
            raise sec.error(
                "codes",
                f"{code!r} is not a code: 1-32 characters A-Z, a-z, 0-9, _ or -, not {UNK}",
                hint=f"{UNK} is appended to every code list",
            )
    if len(set(raw)) != len(raw):
        dup = next(c for c in raw if raw.count(c) > 1)
        raise sec.error("codes", f"{dup!r} is listed twice", hint="codes must be unique")
    codes = (*raw, UNK)
    mapping = {str(k): v for k, v in sec.sub("map", required=False).table.items()}
    shown = ", ".join(codes)
    for value, code in mapping.items():
        if not isinstance(code, str) or code not in codes:
            raise sec.error(f"map.{value}", f"{code!r} is not in codes", hint=f"codes: {shown}")
    if not mapping:
        mapping = {c: c for c in raw}  # the column holds the codes themselves
    for key in ("default", "missing"):
        value = sec.get(key, str, None)
        if value is not None and value not in codes:
            raise sec.error(key, f"{value!r} is not in codes", hint=f"codes: {shown}")
    coding = CodeMap(mapping, sec.get("default", str, None), sec.get("missing", str, UNK))
    return LocalColumn(name, sec.get("column", str), codes, coding, deviation)


def _deviation(sec: Section) -> str | None:
    note: str | None = sec.get("deviation", str, None)
    if note is None:
        return None
    note = " ".join(note.split())
    if not note:
        raise sec.error(
            "deviation",
            "is empty",
            hint="say how this node's definition differs, or leave the key out",
        )
    if len(note) > MAX_DEVIATION_CHARS:
        raise sec.error(
            "deviation",
            f"is {len(note)} characters long, over {MAX_DEVIATION_CHARS}",
            hint="a short note; put the details in the node's documentation",
        )
    return note
