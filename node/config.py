"""Node configuration (DESIGN section 6): parsed strictly, errors name file and key.

Beyond DESIGN's ``[variables.NAME]`` keys (``column``, ``map``, ``default``, ``missing``,
``iso_country``) a mapping may take these forms and keys:

``deviation = "free text"`` (every variable)
    A note that this node's definition deviates from the harmonised one, e.g.
    ``deviation = "stateless persons are recorded as Other (NEU27_2020_FOR)"``. It is
    carried to the benchmark rows that use the variable, flagged ``d``.

``mig_background`` from the parents' countries of birth (instead of ``column``)::

    [variables.mig_background]
    from_parents = { father = "fcob", mother = "mcob" }
    iso_country = true      # the parents' columns hold ISO 3166 alpha-2 codes
    # or: map = { NL = "NAT", MA = "NEU27_2020_FOR" }, default = "NEU27_2020_FOR",
    #     missing = "UNK": the parents' values mapped to c_birth codes

  The person's own country of birth is the node's ``[variables.c_birth]``, which must be
  mapped. A parent whose country is missing or unmapped makes a native-born person
  ``UNK`` (counted); see `indicators.derived.migration_background`.

``yearesid`` and ``arrival_cohort`` from an arrival year (instead of ``column``)::

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

A city's own group dimension (never pooled, always flagged ``d``)::

    [variables."local:mother_tongue"]
    column = "aidinkieli"
    codes = ["fi", "sv", "ru", "so", "ar", "other"]   # public, unique; UNK is appended
    map = { fin = "fi", swe = "sv" }   # optional: by default the values are the codes
    default = "other"                  # optional: code of values not in map / codes
    missing = "UNK"                    # optional

  The name after ``local:`` is 1-32 characters ``a-z 0-9 _``; a local variable can only
  be a query's group dimension (with comparator ``TOTAL``), never a breakdown or outcome.

The derived outcomes ``elet``, ``neet`` and ``overqual`` are never configured: the node
derives them whenever it maps their inputs (`indicators.derived`).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from common.errors import ConfigError, QueryError, Reason
from common.tomlfile import Section
from indicators.derived import DERIVED
from indicators.spec import LOCAL_PREFIX, is_local
from indicators.variables import (
    AGE,
    CATEGORICAL,
    COUNTRY_GROUPS,
    ISO_3166_ALPHA2,
    NAP,
    UNK,
    Variable,
)
from node.policy import Policy, parse_policy
from privacy.disclosure import DisclosureRules
from security.certificates import TlsFiles

__all__ = ["DatasetConfig", "NodeConfig", "PrivacyConfig", "VariableMapping", "load_config"]

SOURCES = ("register", "survey", "census")
ARRIVAL_VARIABLES = ("yearesid", "arrival_cohort")  # may be derived from an arrival year
MAX_DEVIATION_CHARS = 500
LOCAL_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
LOCAL_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


@dataclass(frozen=True)
class VariableMapping:
    """How one local column becomes a harmonised variable.

    Attributes:
        name: Harmonised variable.
        column: Local column name ("" when the variable is derived from other columns).
        map: Local value (as text) to harmonised code; for ``from_parents``, to the
            parents' ``c_birth`` codes.
        default: Code for values not in ``map``; None counts them as unmapped (``UNK``).
        missing: Code for empty values.
        iso_country: Values are ISO 3166 alpha-2 codes grouped by the node's country.
        parents: ``mig_background`` only: the father's and the mother's country-of-birth
            columns it is derived from, with the node's ``c_birth``.
        arrival_year: ``yearesid`` and ``arrival_cohort`` only: the arrival-year column
            they are derived from, with ``[dataset] time_period``.
        deviation: How this node's definition deviates from the harmonised one, if it does.
        codes: A ``local:NAME`` variable only: its public code list, ``UNK`` last.
    """

    name: str
    column: str
    map: dict[str, str] = field(default_factory=dict)
    default: str | None = None
    missing: str = UNK
    iso_country: bool = False
    parents: tuple[str, str] | None = None
    arrival_year: str | None = None
    deviation: str | None = None
    codes: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """Every local column the mapping reads."""
        named = (self.column, *(self.parents or ()), self.arrival_year or "")
        return tuple(c for c in named if c)


@dataclass(frozen=True)
class DatasetConfig:
    """Where the microdata are and what they are."""

    path: Path
    time_period: str
    source: str
    weight: str | None
    where: dict[str, str]
    design_effect: float
    poverty_line: float | None = None  # the national at-risk-of-poverty line, if known
    rho_budget: float | None = None  # this period's own budget ([privacy] rho_budget if None)


@dataclass(frozen=True)
class PrivacyConfig:
    """The node's budget and the clipping bound for weights."""

    rho_budget: float
    max_rho_per_query: float
    max_weight: float
    sample_rho_share: float


@dataclass(frozen=True)
class NodeConfig:
    """A whole node configuration."""

    file: Path
    id: str
    geo: str
    name: str
    country: str
    listen: str
    health_listen: str | None
    state_dir: Path
    dataset: DatasetConfig  # the dataset served when a query names no period: the latest
    privacy: PrivacyConfig
    disclosure: DisclosureRules
    variables: dict[str, VariableMapping]
    policy: Policy = field(default_factory=Policy)
    tls: TlsFiles | None = None
    signing_key: Path | None = None
    datasets: tuple[DatasetConfig, ...] = ()  # every reference period, oldest first

    @property
    def dataset_id(self) -> str:
        """Key of the dataset's budget in the ledger."""
        return f"{self.id}/{self.dataset.time_period}"

    @property
    def periods(self) -> tuple[str, ...]:
        """The reference periods served, oldest first."""
        return tuple(d.time_period for d in self.datasets) or (self.dataset.time_period,)

    def for_period(self, period: str) -> NodeConfig:
        """The same node serving one reference period's dataset (with its own budget)."""
        for dataset in self.datasets or (self.dataset,):
            if dataset.time_period == period:
                privacy = self.privacy
                if dataset.rho_budget is not None:
                    privacy = replace(privacy, rho_budget=dataset.rho_budget)
                return replace(self, dataset=dataset, privacy=privacy)
        raise QueryError(
            f"this node serves no data for time period {period!r}",
            reason=Reason.PERIOD_NOT_SERVED,
            field="time_period",
            hint=f"periods served: {', '.join(self.periods)}",
        )

    @property
    def provided(self) -> tuple[str, ...]:
        """Harmonised variables the node serves: mapped ones, then derived outcomes."""
        derived = [
            name for name, d in DERIVED.items() if all(i in self.variables for i in d.inputs)
        ]
        return (*self.variables, *derived)

    @property
    def local(self) -> dict[str, Variable]:
        """The node's own ``local:NAME`` variables, by name."""
        return {
            name: Variable(name, m.codes, f"{name.removeprefix(LOCAL_PREFIX)} (this node's own)")
            for name, m in self.variables.items()
            if is_local(name)
        }

    def deviation_of(self, name: str) -> str | None:
        """The deviation notes behind a variable, its inputs' included, or None.

        A derived outcome (``elet`` ...) deviates when an input does; ``mig_background``
        derived from the parents also carries the note of ``c_birth``.
        """
        inputs: tuple[str, ...] = (name,)
        if name in DERIVED:
            inputs = DERIVED[name].inputs
        elif name in self.variables and self.variables[name].parents:
            inputs = (name, "c_birth")
        notes = [
            (n, self.variables[n].deviation)
            for n in inputs
            if n in self.variables and self.variables[n].deviation
        ]
        if not notes:
            return None
        if len(notes) == 1 and notes[0][0] == name:
            return notes[0][1]
        return "; ".join(f"{n}: {note}" for n, note in notes)


def load_config(path: str | Path) -> NodeConfig:
    """Read and validate a node configuration file.

    Raises:
        ConfigError: Naming the file and the key that is wrong, and how to fix it.
    """
    file = Path(path).resolve()
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file", field="") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}", hint="check quoting") from None
    top = Section(file, "", raw)
    top.check_keys(
        {"node", "dataset", "datasets", "privacy", "disclosure", "variables", "tls", "signing"}
        | {"policy"}
        | {"coordinators"}
    )
    node = top.sub("node")
    node.check_keys({"id", "geo", "name", "country", "listen", "state_dir", "health_listen"})
    country = node.get("country", str).upper()
    if country not in ISO_3166_ALPHA2:
        raise node.error("country", f"{country!r} is not an ISO 3166 alpha-2 code")
    base = file.parent
    node_id = node.get("id", str)
    if not node_id or not node_id.replace("-", "").replace("_", "").isalnum():
        raise node.error("id", "must be letters, digits, '-' or '_'", hint='e.g. id = "vienna"')
    variables = _variables(top.sub("variables"))
    datasets = _datasets(top, base)
    for section, dataset in datasets:
        _check_reference_year(variables, section, dataset.time_period)
    return NodeConfig(
        file=file,
        id=node_id,
        geo=node.get("geo", str),
        name=node.get("name", str, node_id),
        country=country,
        listen=node.get("listen", str, "127.0.0.1:50051"),
        health_listen=node.get("health_listen", str, None),
        state_dir=base / node.get("state_dir", str, "state"),
        dataset=datasets[-1][1],
        datasets=tuple(d for _, d in datasets),
        privacy=_privacy(top.sub("privacy")),
        disclosure=_disclosure(top.sub("disclosure", required=False)),
        variables=variables,
        policy=parse_policy(top),
        tls=_tls(top, base),
        signing_key=_signing_key(top, base),
    )


def _tls(top: Section, base: Path) -> TlsFiles | None:
    if "tls" not in top.table:
        return None
    sec = top.sub("tls")
    sec.check_keys({"ca", "cert", "key"})
    return TlsFiles(*(base / sec.get(k, str) for k in ("ca", "cert", "key")))


def _signing_key(top: Section, base: Path) -> Path | None:
    if "signing" not in top.table:
        return None
    sec = top.sub("signing")
    sec.check_keys({"key"})
    key: str = sec.get("key", str)
    return base / key


def _datasets(top: Section, base: Path) -> list[tuple[Section, DatasetConfig]]:
    """``[dataset]``, or one ``[[datasets]]`` table per reference period (oldest first)."""
    if ("dataset" in top.table) == ("datasets" in top.table):
        raise top.error(
            "dataset",
            "give either [dataset] or [[datasets]] (one per reference period)",
            hint="[[datasets]] tables take the keys of [dataset] plus an optional rho_budget",
        )
    if "dataset" in top.table:
        section = top.sub("dataset")
        return [(section, _dataset(section, base, multi=False))]
    tables = top.get("datasets", list)
    if not tables:
        raise top.error("datasets", "no [[datasets]] given")
    parsed = []
    for i, table in enumerate(tables):
        section = Section(top.file, f"datasets[{i}]", table)
        parsed.append((section, _dataset(section, base, multi=True)))
    periods = [d.time_period for _, d in parsed]
    if len(set(periods)) != len(periods):
        raise top.error("datasets", "two [[datasets]] have the same time_period")
    return sorted(parsed, key=lambda sd: sd[1].time_period)


def _dataset(sec: Section, base: Path, multi: bool) -> DatasetConfig:
    keys = {"path", "time_period", "source", "weight", "where", "design_effect", "poverty_line"}
    sec.check_keys(keys | ({"rho_budget"} if multi else set()))
    path = base / sec.get("path", str)
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise sec.error(
            "path", f"unsupported file type {path.suffix!r}", hint="use .csv or .parquet"
        )
    source = sec.get("source", str, "register")
    if source not in SOURCES:
        raise sec.error("source", f"unknown source {source!r}", hint=f"use one of {SOURCES}")
    where = sec.sub("where", required=False).table
    return DatasetConfig(
        path=path,
        time_period=str(sec.get("time_period", str)),
        source=source,
        weight=sec.get("weight", str, None),
        where={str(k): str(v) for k, v in where.items()},
        design_effect=sec.positive("design_effect", 1.0),
        poverty_line=sec.positive("poverty_line", None) if "poverty_line" in sec.table else None,
        rho_budget=sec.positive("rho_budget", None) if "rho_budget" in sec.table else None,
    )


def _privacy(sec: Section) -> PrivacyConfig:
    sec.check_keys({"rho_budget", "max_rho_per_query", "max_weight", "sample_rho_share"})
    share = float(sec.get("sample_rho_share", float, 0.2))
    if not 0 < share < 1:
        raise sec.error("sample_rho_share", f"must lie strictly between 0 and 1, got {share}")
    max_weight = sec.positive("max_weight", 1.0)
    if max_weight < 1:
        raise sec.error("max_weight", "must be at least 1 (the weight of one register row)")
    return PrivacyConfig(
        rho_budget=sec.positive("rho_budget"),
        max_rho_per_query=sec.positive("max_rho_per_query"),
        max_weight=max_weight,
        sample_rho_share=share,
    )


def _disclosure(sec: Section) -> DisclosureRules:
    sec.check_keys({"min_count", "unreliable_below", "max_cv"})
    defaults = DisclosureRules()
    return DisclosureRules(
        min_count=sec.positive("min_count", defaults.min_count),
        unreliable_below=sec.positive("unreliable_below", defaults.unreliable_below),
        max_cv=sec.positive("max_cv", defaults.max_cv),
    )


def _variables(sec: Section) -> dict[str, VariableMapping]:
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
    background = out.get("mig_background")
    if background is not None and background.parents and "c_birth" not in out:
        raise sec.error(
            "mig_background.from_parents",
            "deriving mig_background needs the person's own country of birth, and c_birth "
            "is not mapped",
            hint="add [variables.c_birth], or map mig_background from a column",
        )
    return out


def _local(name: str, variables: Section) -> VariableMapping:
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
    return VariableMapping(
        name=name,
        column=sec.get("column", str),
        map=mapping,
        default=sec.get("default", str, None),
        missing=sec.get("missing", str, UNK),
        deviation=deviation,
        codes=codes,
    )


def _check_reference_year(
    variables: dict[str, VariableMapping], dataset: Section, time_period: str
) -> None:
    users = [n for n, m in variables.items() if m.arrival_year]
    if users and not (len(time_period) >= 4 and time_period[:4].isdigit()):
        raise dataset.error(
            "time_period",
            f"{' and '.join(users)} count years since arrival up to the reference year, but "
            f"time_period {time_period!r} does not start with a 4-digit year",
            hint='e.g. time_period = "2024"',
        )


def _mapping(name: str, sec: Section) -> VariableMapping:
    deviation = _deviation(sec)
    if name == AGE or CATEGORICAL[name].binned:
        sec.check_keys({"column", "deviation"})
        return VariableMapping(name=name, column=sec.get("column", str), deviation=deviation)
    if name == "mig_background" and "from_parents" in sec.table:
        return _from_parents(sec, deviation)
    if name in ARRIVAL_VARIABLES and "column" not in sec.table:
        return _from_arrival_year(name, sec, deviation)
    sec.check_keys({"column", "map", "default", "missing", "iso_country", "deviation"})
    iso = bool(sec.get("iso_country", bool, False))
    if iso and name not in COUNTRY_GROUPS:
        raise sec.error("iso_country", f"only {' and '.join(COUNTRY_GROUPS)} hold country codes")
    mapping, default, missing = _codes(sec, name, iso)
    return VariableMapping(
        name=name,
        column=sec.get("column", str),
        map=mapping,
        default=default,
        missing=missing,
        iso_country=iso,
        deviation=deviation,
    )


def _codes(sec: Section, target: str, iso: bool) -> tuple[dict[str, str], str | None, str]:
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
    return mapping, sec.get("default", str, None), sec.get("missing", str, UNK)


def _from_parents(sec: Section, deviation: str | None) -> VariableMapping:
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
    mapping, default, missing = _codes(sec, "c_birth", iso)
    return VariableMapping(
        name="mig_background",
        column="",
        map=mapping,
        default=default,
        missing=missing,
        iso_country=iso,
        parents=(father, mother),
        deviation=deviation,
    )


def _from_arrival_year(name: str, sec: Section, deviation: str | None) -> VariableMapping:
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
    return VariableMapping(
        name=name,
        column="",
        missing=missing,
        arrival_year=sec.get("arrival_year", str),
        deviation=deviation,
    )


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
