"""Node configuration (DESIGN section 6): parsed strictly, errors name file and key."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from indicators.errors import ConfigError
from indicators.variables import AGE, CATEGORICAL, COUNTRY_GROUPS, ISO_3166_ALPHA2, UNK
from node.policy import Policy, parse_policy
from node.sections import Section
from privacy.certificates import TlsFiles
from privacy.disclosure import DisclosureRules

__all__ = ["DatasetConfig", "NodeConfig", "PrivacyConfig", "VariableMapping", "load_config"]

SOURCES = ("register", "survey", "census")


@dataclass(frozen=True)
class VariableMapping:
    """How one local column becomes a harmonised variable.

    Attributes:
        name: Harmonised variable.
        column: Local column name.
        map: Local value (as text) to harmonised code.
        default: Code for values not in ``map``; None counts them as unmapped (``UNK``).
        missing: Code for empty values.
        iso_country: Values are ISO 3166 alpha-2 codes grouped by the node's country.
    """

    name: str
    column: str
    map: dict[str, str] = field(default_factory=dict)
    default: str | None = None
    missing: str = UNK
    iso_country: bool = False


@dataclass(frozen=True)
class DatasetConfig:
    """Where the microdata are and what they are."""

    path: Path
    time_period: str
    source: str
    weight: str | None
    where: dict[str, str]
    design_effect: float


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
    dataset: DatasetConfig
    privacy: PrivacyConfig
    disclosure: DisclosureRules
    variables: dict[str, VariableMapping]
    policy: Policy = field(default_factory=Policy)
    tls: TlsFiles | None = None
    signing_key: Path | None = None

    @property
    def dataset_id(self) -> str:
        """Key of the dataset's budget in the ledger."""
        return f"{self.id}/{self.dataset.time_period}"


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
        {"node", "dataset", "privacy", "disclosure", "variables", "tls", "signing", "policy"}
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
    return NodeConfig(
        file=file,
        id=node_id,
        geo=node.get("geo", str),
        name=node.get("name", str, node_id),
        country=country,
        listen=node.get("listen", str, "127.0.0.1:50051"),
        health_listen=node.get("health_listen", str, None),
        state_dir=base / node.get("state_dir", str, "state"),
        dataset=_dataset(top.sub("dataset"), base),
        privacy=_privacy(top.sub("privacy")),
        disclosure=_disclosure(top.sub("disclosure", required=False)),
        variables=_variables(top.sub("variables")),
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


def _dataset(sec: Section, base: Path) -> DatasetConfig:
    sec.check_keys({"path", "time_period", "source", "weight", "where", "design_effect"})
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
    known = {AGE, *CATEGORICAL}
    out: dict[str, VariableMapping] = {}
    for name in sec.table:
        if name not in known:
            raise sec.error(
                name, "unknown harmonised variable", hint=f"known: {', '.join(sorted(known))}"
            )
        out[name] = _mapping(name, sec.sub(name))
    if AGE not in out:
        raise sec.error(
            AGE, "missing: every indicator needs age", hint='[variables.age] column = "..."'
        )
    return out


def _mapping(name: str, sec: Section) -> VariableMapping:
    if name == AGE:
        sec.check_keys({"column"})
        return VariableMapping(name=name, column=sec.get("column", str))
    sec.check_keys({"column", "map", "default", "missing", "iso_country"})
    codes = CATEGORICAL[name].codes
    iso = bool(sec.get("iso_country", bool, False))
    if iso and name not in COUNTRY_GROUPS:
        raise sec.error("iso_country", f"only {' and '.join(COUNTRY_GROUPS)} hold country codes")
    mapping = {str(k): v for k, v in sec.sub("map", required=False).table.items()}
    if not mapping and not iso:
        raise sec.error("map", "missing: give a map of local values or iso_country = true")
    for local, code in mapping.items():
        if code not in codes:
            raise sec.error(
                f"map.{local}",
                f"{code!r} is not a code of {name}",
                hint=f"codes: {', '.join(codes)}",
            )
    for key in ("default", "missing"):
        value = sec.get(key, str, None)
        if value is not None and value not in codes:
            raise sec.error(
                key, f"{value!r} is not a code of {name}", hint=f"codes: {', '.join(codes)}"
            )
    return VariableMapping(
        name=name,
        column=sec.get("column", str),
        map=mapping,
        default=sec.get("default", str, None),
        missing=sec.get("missing", str, UNK),
        iso_country=iso,
    )
