"""Node configuration (DESIGN section 6): parsed strictly, errors name file and key.

A node config has ``[node]``, ``[dataset]`` (or one ``[[datasets]]`` per reference
period), ``[privacy]``, ``[disclosure]``, ``[variables.*]`` (`node.mappings`: the kinds of
mapping and their keys), ``[policy]`` and ``[[coordinators]]`` (`node.policy`), and the
party's key files ``[tls]`` and ``[signing]`` (`security.config`). Every file is read by
the one TOML reader, `common.tomlfile`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.errors import QueryError, Reason
from common.net import is_loopback, metrics_address
from common.tomlfile import Section, read_toml
from indicators.concepts import GEO_LEVELS, UNMAPPED_AS_UNKNOWN, concept_text, harmonised_code
from indicators.derived import DERIVED
from indicators.spec import LOCAL_PREFIX
from indicators.variables import ISO_3166_ALPHA2, Variable
from node.concepts import parse_concepts, parse_unmapped, without_declarations
from node.mappings import (
    FromArrivalYear,
    FromParents,
    LocalColumn,
    VariableMapping,
    parse_variables,
)
from node.policy import Policy, parse_policy
from privacy.disclosure import NAMED_RULES, DisclosureRules
from security.certificates import TlsFiles
from security.config import parse_key_files, public_key

__all__ = ["DatasetConfig", "NodeConfig", "PrivacyConfig", "VariableMapping", "load_config"]

SOURCES = ("register", "survey", "census")
ENGINES = ("memory", "duckdb", "postgresql", "spark")  # `node.engines`
_PASSWORD = re.compile(r"(?i)(password\s*=|://[^/@]*:[^/@]*@)")


@dataclass(frozen=True)
class DatasetConfig:
    """Where the microdata are and what they are.

    ``engine`` says where tables are counted (`node.engines`): ``memory`` and ``duckdb``
    read ``path`` (duckdb: globs allowed), ``postgresql`` reads ``table`` through the
    libpq connection string ``url``, ``spark`` reads ``table`` from its catalogue or the
    Parquet files at ``path``, on ``spark_master`` (local mode by default).
    """

    path: Path | None
    time_period: str
    source: str
    weight: str | None
    where: dict[str, tuple[str, ...]]  # rows kept: column value (as text) is one of these
    design_effect: float
    poverty_line: float | None = None  # the national at-risk-of-poverty line, if known
    poverty_line_currency: str = ""
    poverty_line_source: str = ""
    poverty_line_rho: float | None = None  # set: the node computes the line at this rho
    rho_budget: float | None = None  # this period's own budget ([privacy] rho_budget if None)
    population: str = "default"  # datasets of one population share [privacy] rho_budget
    engine: str = "memory"
    url: str | None = None
    table: str | None = None
    spark_master: str = "local[1]"
    where_not: dict[str, tuple[str, ...]] = field(default_factory=dict)  # rows left out
    # Refuse to serve when a variable has more unmapped rows, or clipping removes more of
    # the weight, than these shares (`node.coverage`); 1.0 = never refuse.
    max_unmapped_share: float = 1.0
    max_clipped_weight_share: float = 1.0


@dataclass(frozen=True)
class PrivacyConfig:
    """The node's budget and the clipping bound for weights."""

    rho_budget: float
    max_rho_per_query: float
    max_weight: float
    sample_rho_share: float
    margin_rho_share: float = 0.1


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
    chain_head: Path | None = None  # mirror of the audit chain's head, outside state_dir
    # Secure rounds: the other nodes' Ed25519 keys this node pins ([[peers]]); when none
    # are given it takes the keys its coordinator vouches for in the signed round.
    peers: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    metrics_listen: str | None = None  # Prometheus endpoint; a bare port means loopback
    metrics_allow_remote: bool = False  # metrics_listen may be off loopback (plain HTTP)
    geo_level: str = "city"  # the territorial level of geo (indicators.concepts.GEO_LEVELS)
    concepts: dict[str, str] = field(default_factory=dict)  # variable: declared concept code
    # Outcome variables declared ``unmapped = "unknown"``: their unmapped values are an
    # unknown outcome (rows flagged d); any other outcome with unmapped values is refused.
    unmapped_unknown: frozenset[str] = frozenset()

    @property
    def dataset_id(self) -> str:
        """Key of the dataset's budget in the ledger."""
        return f"{self.id}/{self.dataset.time_period}"

    def population_of(self, period: str) -> tuple[str, ...]:
        """Dataset keys of every period whose persons are those of ``period``'s dataset.

        They share ``[privacy] rho_budget`` and each coordinator's cap: the privacy unit
        is a person across periods (DESIGN section 4), unless ``population`` says that
        two datasets hold different people.
        """
        population = self.for_period(period).dataset.population
        return tuple(
            f"{self.id}/{d.time_period}"
            for d in self.datasets or (self.dataset,)
            if d.population == population
        )

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
            if isinstance(m, LocalColumn)
        }

    def _inputs(self, name: str) -> tuple[str, ...]:
        """The configured variables behind ``name`` (itself, or a derived one's inputs)."""
        if name in DERIVED:
            return DERIVED[name].inputs
        if isinstance(self.variables.get(name), FromParents):
            return (name, "c_birth")
        return (name,)

    def concepts_of(self, name: str) -> list[tuple[str, str]]:
        """The non-harmonised codes behind a variable, its inputs' included: ``(input, code)``.

        A declared concept other than the harmonised one, then ``unmapped_as_unknown`` for
        an input declared ``unmapped = "unknown"``.
        """
        inputs = self._inputs(name)
        found = [
            (n, self.concepts[n])
            for n in inputs
            if n in self.concepts and self.concepts[n] != harmonised_code(n)
        ]
        return found + [(n, UNMAPPED_AS_UNKNOWN.code) for n in inputs if n in self.unmapped_unknown]

    def deviation_of(self, name: str) -> str | None:
        """The deviation notes behind a variable, its inputs' included, or None.

        A derived outcome (``elet`` ...) deviates when an input does; ``mig_background``
        derived from the parents also carries the note of ``c_birth``. A concept other
        than the harmonised one is a deviation: its code and meaning come first.
        """
        inputs = self._inputs(name)
        notes = [(n, self._note(n)) for n in inputs if n in self.variables and self._note(n)]
        if not notes:
            return None
        if len(notes) == 1 and notes[0][0] == name:
            return notes[0][1]
        return "; ".join(f"{n}: {note}" for n, note in notes)

    def _note(self, name: str) -> str:
        """One configured variable's concept (when not harmonised) and free-text note."""
        code = self.concepts.get(name, harmonised_code(name))
        concept = "" if code == harmonised_code(name) else f"{code}: {concept_text(name, code)}"
        note = self.variables[name].deviation or ""
        return f"{concept} ({note})" if concept and note else concept or note


def load_config(path: str | Path) -> NodeConfig:
    """Read and validate a node configuration file.

    Raises:
        ConfigError: Naming the file and the key that is wrong, and how to fix it.
    """
    top = read_toml(path)
    top.check_keys(
        {"node", "dataset", "datasets", "privacy", "disclosure", "variables", "tls", "signing"}
        | {"policy"}
        | {"coordinators", "peers"}
    )
    node = top.sub("node")
    node.check_keys(
        {"id", "geo", "name", "country", "listen", "state_dir", "health_listen", "chain_head"}
        | {"metrics_listen", "metrics_allow_remote"}
        | {"geo_level"}
    )
    country = node.get("country", str).upper()
    if country not in ISO_3166_ALPHA2:
        raise node.error("country", f"{country!r} is not an ISO 3166 alpha-2 code")
    base = top.file.parent
    node_id = node.get("id", str)
    if not node_id or not node_id.replace("-", "").replace("_", "").isalnum():
        raise node.error("id", "must be letters, digits, '-' or '_'", hint='e.g. id = "vienna"')
    variables = parse_variables(without_declarations(top.sub("variables")))
    concepts = parse_concepts(top.sub("variables"))
    unmapped_unknown = parse_unmapped(top.sub("variables"))
    datasets = _datasets(top, base)
    for section, dataset in datasets:
        _check_reference_year(variables, section, dataset.time_period)
    geo, name = node.get("geo", str), node.get("name", str, node_id)
    geo_level = node.get("geo_level", str, "city")
    if geo_level not in GEO_LEVELS:
        raise node.error(
            "geo_level",
            f"{geo_level!r} is not a territorial level",
            hint=f"one of: {', '.join(GEO_LEVELS)}",
        )
    listen = node.get("listen", str, "127.0.0.1:50051")
    health_listen = node.get("health_listen", str, None)
    state_dir = base / node.get("state_dir", str, "state")
    default_head = state_dir.with_name(f"{state_dir.name}.chain-head.json")  # beside it
    chain_head = base / node.get("chain_head", str, str(default_head))
    if chain_head.resolve().is_relative_to(state_dir.resolve()):
        raise node.error(
            "chain_head",
            f"{chain_head} lies inside state_dir: a rolled-back state directory would take "
            "the head with it",
            hint="put it on other storage than state_dir",
        )
    metrics_listen = node.get("metrics_listen", str, None)
    metrics_allow_remote = node.get("metrics_allow_remote", bool, False)
    if metrics_listen and not (
        metrics_allow_remote or is_loopback(metrics_address(metrics_listen))
    ):
        raise node.error(
            "metrics_listen",
            f"{metrics_listen!r} is not a loopback address: the metrics endpoint is plain "
            "HTTP without authentication and shows the privacy budget",
            hint='keep it on loopback (metrics_listen = "9464"), or, behind a firewall or '
            "NetworkPolicy, set metrics_allow_remote = true",
        )
    privacy = _privacy(top.sub("privacy"))
    disclosure = _disclosure(top.sub("disclosure", required=False))
    policy = parse_policy(top)
    keys = parse_key_files(top)
    return NodeConfig(
        file=top.file,
        id=node_id,
        geo=geo,
        name=name,
        country=country,
        listen=listen,
        health_listen=health_listen,
        state_dir=state_dir,
        dataset=datasets[-1][1],
        datasets=tuple(d for _, d in datasets),
        privacy=privacy,
        disclosure=disclosure,
        variables=variables,
        policy=policy,
        tls=keys.tls,
        signing_key=keys.signing_key,
        chain_head=chain_head,
        peers=_peers(top),
        metrics_listen=metrics_listen,
        metrics_allow_remote=metrics_allow_remote,
        geo_level=geo_level,
        concepts=concepts,
        unmapped_unknown=unmapped_unknown,
    )


def _peers(top: Section) -> dict[str, Ed25519PublicKey]:
    """Optional ``[[peers]]`` id and public_key: the nodes a secure round may list."""
    peers: dict[str, Ed25519PublicKey] = {}
    for sec in top.tables("peers"):
        sec.check_keys({"id", "public_key"})
        peer = sec.text("id")
        if peer in peers:
            raise sec.error("id", f"peer {peer!r} appears twice")
        peers[peer] = public_key(sec, "public_key")
    return peers


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
    sections = top.tables("datasets")
    if not sections:
        raise top.error("datasets", "no [[datasets]] given")
    parsed = [(section, _dataset(section, base, multi=True)) for section in sections]
    periods = [d.time_period for _, d in parsed]
    if len(set(periods)) != len(periods):
        raise top.error("datasets", "two [[datasets]] have the same time_period")
    return sorted(parsed, key=lambda sd: sd[1].time_period)


def _dataset(sec: Section, base: Path, multi: bool) -> DatasetConfig:
    keys = {"path", "time_period", "source", "weight", "where", "design_effect", "poverty_line"}
    keys |= {"where_not", "max_unmapped_share", "max_clipped_weight_share"}
    keys |= {"population"}
    keys |= {"poverty_line_currency", "poverty_line_source", "poverty_line_rho"}
    keys |= {"engine", "url", "table", "spark_master"}
    sec.check_keys(keys | ({"rho_budget"} if multi else set()))
    engine = sec.get("engine", str, "memory")
    if engine not in ENGINES:
        raise sec.error("engine", f"unknown engine {engine!r}", hint=f"use one of {ENGINES}")
    path, url, table = _location(sec, base, engine)
    source = sec.get("source", str, "register")
    if source not in SOURCES:
        raise sec.error("source", f"unknown source {source!r}", hint=f"use one of {SOURCES}")
    line, line_rho = _poverty_line(sec, bool(sec.table.get("where") or sec.table.get("where_not")))
    return DatasetConfig(
        path=path,
        time_period=str(sec.get("time_period", str)),
        source=source,
        weight=sec.get("weight", str, None),
        where=_row_filter(sec, "where"),
        where_not=_row_filter(sec, "where_not"),
        max_unmapped_share=_share(sec, "max_unmapped_share"),
        max_clipped_weight_share=_share(sec, "max_clipped_weight_share"),
        design_effect=sec.positive("design_effect", 1.0),
        poverty_line=line,
        poverty_line_currency=str(sec.get("poverty_line_currency", str, "EUR")),
        poverty_line_source=str(sec.get("poverty_line_source", str, "")),
        poverty_line_rho=line_rho,
        rho_budget=sec.positive("rho_budget", None) if "rho_budget" in sec.table else None,
        population=sec.get("population", str, "default"),
        engine=engine,
        url=url,
        table=table,
        spark_master=sec.get("spark_master", str, "local[1]"),
    )


def _poverty_line(sec: Section, filtered: bool) -> tuple[float | None, float | None]:
    """``poverty_line``: a number (the national line), or ``"compute"`` with its rho.

    A computed line is the median of the node's whole dataset: a node whose ``where``
    keeps part of it (a city in a national file) cannot compute the national line.
    """
    if "poverty_line" not in sec.table:
        if "poverty_line_rho" in sec.table:
            raise sec.error("poverty_line_rho", 'only with poverty_line = "compute"')
        return None, None
    if sec.table["poverty_line"] != "compute":
        if "poverty_line_rho" in sec.table:
            raise sec.error("poverty_line_rho", 'only with poverty_line = "compute"')
        return sec.positive("poverty_line"), None
    if filtered:
        raise sec.error(
            "poverty_line",
            "a computed line is the median of the whole dataset, but `where` keeps only part of it",
            hint="configure the national line as a number, or compute it on a node whose "
            "dataset is the whole country (register, census or national survey)",
        )
    if "poverty_line_rho" not in sec.table:
        raise sec.error(
            "poverty_line_rho",
            'required with poverty_line = "compute": the rho the line\'s release spends',
            hint="e.g. poverty_line_rho = 0.01 (charged once per reference period)",
        )
    return None, sec.positive("poverty_line_rho")


def _share(sec: Section, key: str) -> float:
    """A threshold share in [0, 1] (1 when not given: never refuse)."""
    value = float(sec.get(key, float, 1.0))
    if not 0.0 <= value <= 1.0:
        raise sec.error(key, f"must be a share between 0 and 1, not {value:g}")
    return value


def _row_filter(sec: Section, key: str) -> dict[str, tuple[str, ...]]:
    """``where`` / ``where_not``: per column, one value or a list of values, compared as text.

    A value is matched against the column's text as the file holds it (``1`` matches the
    integer 1 and the string "1"), like the mappings' keys.
    """
    table = sec.sub(key, required=False).table
    out: dict[str, tuple[str, ...]] = {}
    for column, value in table.items():
        values = value if isinstance(value, list) else [value]
        if not values or any(isinstance(v, (list, dict)) for v in values):
            raise sec.error(
                f"{key}.{column}",
                "needs one value or a non-empty list of values",
                hint=f'{key} = {{ {column} = "X" }} or {{ {column} = ["X", "Y"] }}',
            )
        out[str(column)] = tuple(dict.fromkeys(str(v) for v in values))
    return out


def _location(sec: Section, base: Path, engine: str) -> tuple[Path | None, str | None, str | None]:
    """``path``, ``url`` and ``table`` as the engine needs them."""
    wants = {
        "memory": {"path"},
        "duckdb": {"path"},
        "postgresql": {"url", "table"},
        "spark": {"path", "table"},
    }[engine]
    for key in ("path", "url", "table"):
        if key in sec.table and key not in wants:
            raise sec.error(key, f"the {engine} engine takes {' and '.join(sorted(wants))}")
    if engine == "spark" and ("path" in sec.table) == ("table" in sec.table):
        raise sec.error("table", "give either table (in the catalogue) or path (Parquet)")
    if engine == "postgresql":
        url, table = sec.get("url", str), sec.get("table", str)
        if _PASSWORD.search(url):
            raise sec.error(
                "url",
                "holds a password: the password comes from the environment or .pgpass",
                hint="set PGPASSWORD or a ~/.pgpass line; keep user and host in url",
            )
        return None, url, table
    if "table" in sec.table:
        return None, None, sec.get("table", str)
    path = base / sec.get("path", str)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet") or (engine == "spark" and suffix != ".parquet"):
        use = ".parquet" if engine == "spark" else ".csv or .parquet"
        raise sec.error("path", f"unsupported file type {path.suffix!r}", hint=f"use {use}")
    if engine == "memory" and any(c in path.name for c in "*?["):
        raise sec.error("path", "the memory engine reads one file", hint='engine = "duckdb"')
    return path, None, None


def _privacy(sec: Section) -> PrivacyConfig:
    sec.check_keys(
        {"rho_budget", "max_rho_per_query", "max_weight", "sample_rho_share", "margin_rho_share"}
    )
    shares = {}
    for key, default in (("sample_rho_share", 0.2), ("margin_rho_share", 0.1)):
        share = float(sec.get(key, float, default))
        if not 0 < share < 1:
            raise sec.error(key, f"must lie strictly between 0 and 1, got {share}")
        shares[key] = share
    max_weight = sec.positive("max_weight", 1.0)
    if max_weight < 1:
        raise sec.error("max_weight", "must be at least 1 (the weight of one register row)")
    return PrivacyConfig(
        rho_budget=sec.positive("rho_budget"),
        max_rho_per_query=sec.positive("max_rho_per_query"),
        max_weight=max_weight,
        **shares,
    )


def _disclosure(sec: Section) -> DisclosureRules:
    numbers = {"min_count", "unreliable_below", "max_cv", "unknown_flag", "unknown_suppress"}
    sec.check_keys({"rules", "certainty", *numbers})
    name = str(sec.get("rules", str, ""))
    if name and name not in NAMED_RULES:
        raise sec.error(
            "rules", f"unknown rule set {name!r}", hint=f"one of: {', '.join(NAMED_RULES)}"
        )
    base = NAMED_RULES[name] if name else DisclosureRules()
    if base.weighted and not {"min_count", "unreliable_below"} <= set(sec.table):
        raise sec.error(
            "rules",
            'rules = "lfs" reads weighted counts against the office\'s own limits',
            hint="give min_count (limit A: not published below) and unreliable_below "
            "(limit B: flagged u below), in weighted persons",
        )
    given = {k: sec.positive(k) for k in numbers if k in sec.table}
    for k in ("unknown_flag", "unknown_suppress"):
        if given.get(k, 0.0) > 1:
            raise sec.error(k, f"is a share between 0 and 1, got {given[k]}")
    certainty = float(sec.get("certainty", float, base.certainty))
    if not 0.5 <= certainty < 1:
        raise sec.error("certainty", f"must lie in [0.5, 1), got {certainty}")
    return replace(
        base,
        certainty=certainty,
        min_count=given.get("min_count", base.min_count),
        unreliable_below=given.get("unreliable_below", base.unreliable_below),
        max_cv=given.get("max_cv", base.max_cv),
        unknown_flag=given.get("unknown_flag", base.unknown_flag),
        unknown_suppress=given.get("unknown_suppress", base.unknown_suppress),
    )


def _check_reference_year(
    variables: dict[str, VariableMapping], dataset: Section, time_period: str
) -> None:
    users = [n for n, m in variables.items() if isinstance(m, FromArrivalYear)]
    if users and not (len(time_period) >= 4 and time_period[:4].isdigit()):
        raise dataset.error(
            "time_period",
            f"{' and '.join(users)} count years since arrival up to the reference year, but "
            f"time_period {time_period!r} does not start with a 4-digit year",
            hint='e.g. time_period = "2024"',
        )
