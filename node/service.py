"""The node's domain logic: describe, answer a query through the ledger, report budget.

This module knows nothing of gRPC: the servicer turns protos into these calls and back.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import numpy.typing as npt

from common.errors import ConfigError, FedstatsError, QueryError, Reason
from common.versions import software_version
from indicators.catalogue import BELOW_LINE, CATALOGUE, CATALOGUE_VERSION
from indicators.spec import Plan, Query, TableSpec, compile_query
from indicators.variables import AGE, UNK
from node.chainhead import ChainHead
from node.config import NodeConfig
from node.coverage import CoverageFacts, check_thresholds, coverage_facts, log_coverage
from node.engine import TableCounts, sensitivity
from node.engines import ENGINES, TableEngine, open_engine
from node.engines.memory import MemoryEngine
from node.fingerprint import file_digest, fingerprint, fingerprint_key
from node.harmonise import Harmonised
from node.ledger import BudgetState, Ledger, Request, Reservation, StoredAnswer
from node.ledger_schema import SCHEMA_VERSION
from node.margins import MarginRelease, release_margins
from node.national_line import LINE_QUERY, NationalLine, configured, obtain
from node.policy import CoordinatorGrant
from privacy.budget import from_micro, split_rho
from privacy.disclosure import FLAG_CODES, RULE_SETS
from privacy.gaussian import release
from security.signing import key_id, load_private_key, sign

__all__ = [
    "ENGINES",
    "MAX_CELLS_PER_QUERY",
    "Capabilities",
    "NodeService",
    "QueryAnswer",
    "TableRelease",
]

log = logging.getLogger(__name__)

MAX_CELLS_PER_QUERY = 100_000
_QUERY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True)
class Capabilities:
    """What this node's release can do, for a coordinator of any release to read.

    Attributes:
        software_version: The fedstats release, from the package metadata.
        catalogue_version: Version of the indicator catalogue's definitions.
        catalogue: Every indicator the catalogue defines.
        engines: Table engines the node runs.
        disclosure_rules: Disclosure rule sets it applies.
        secure_aggregation: Whether it can take part in secure aggregation.
        ledger_schema: Schema version of its budget ledger.
    """

    software_version: str
    catalogue_version: int
    catalogue: tuple[str, ...]
    engines: tuple[str, ...]
    disclosure_rules: tuple[str, ...]
    secure_aggregation: bool
    ledger_schema: int


@dataclass(frozen=True)
class TableRelease:
    """One released table: noisy cells and what they cost. Everything here is public."""

    key: str
    dims: list[tuple[str, list[str]]]
    counts: list[int]
    sigma: float
    rho: float
    sensitivity: int
    samples: list[int] | None = None
    sample_sigma: float = 0.0
    sample_rho: float = 0.0
    cell_flags: list[str] = field(default_factory=list)
    margins: list[MarginRelease] = field(default_factory=list)


@dataclass(frozen=True)
class QueryAnswer:
    """A node's answer to one query."""

    query_id: str
    tables: list[TableRelease]
    rho_charged: float  # charged to the node's budget, or to the asking coordinator's cap
    cached: bool  # the asking coordinator was served this answer (or paid for it) before
    time_period: str = ""  # the reference period answered (set per call, not stored)
    audit_seq: int = 0  # this call's entry in the audit chain (set per call, not stored)
    audit_hash: str = ""
    fingerprint: str = ""  # the data and config the tables came from (kept by the ledger)

    def to_bytes(self) -> bytes:
        """Stored form in the ledger (query id and charge are per call, not stored).

        The JSON of ``dataclasses.asdict`` of each table, built without its deep copy
        of every list (a test checks the bytes are the same).
        """
        return json.dumps([_record(t) for t in self.tables]).encode()

    @classmethod
    def from_stored(cls, query_id: str, stored: bytes) -> QueryAnswer:
        """An answer read back from the ledger: no charge for this call."""
        tables = []
        for t in json.loads(stored):
            t["dims"] = [(name, codes) for name, codes in t["dims"]]
            t["margins"] = [MarginRelease(**m) for m in t.get("margins", [])]
            tables.append(TableRelease(**t))
        return cls(query_id=query_id, tables=tables, rho_charged=0.0, cached=True)


_TABLE_FIELDS = tuple(f.name for f in fields(TableRelease))
_MARGIN_FIELDS = tuple(f.name for f in fields(MarginRelease))


def _record(table: TableRelease) -> dict[str, object]:
    """A table as ``asdict`` gives it (fields in order, margins as dicts), sharing its lists."""
    record = {name: getattr(table, name) for name in _TABLE_FIELDS}
    record["margins"] = [{n: getattr(m, n) for n in _MARGIN_FIELDS} for m in table.margins]
    return record


@dataclass
class _Period:
    """One reference period's dataset: its config view, engine, budget ledger, sensitivity.

    ``fingerprint`` is what its answers are keyed on (`node.fingerprint`).
    """

    config: NodeConfig
    engine: TableEngine
    ledger: Ledger
    sensitivity: int
    line: NationalLine | None = None  # configured, or computed (then on first use)
    fingerprint: str = ""


def _data_digest(config: NodeConfig, engine: TableEngine) -> str:
    """The dataset's part of a period's fingerprint (`node.fingerprint` says what per engine)."""
    if isinstance(engine, MemoryEngine) or config.dataset.path is None:
        return engine.content_digest()  # the memory engine's arrays, or a database's scan
    return file_digest(config.dataset.path)  # files a database engine reads


def _known(counts: npt.NDArray[np.int64], n_outcomes: int) -> npt.NDArray[np.int64]:
    """A table's cells without its last outcome code (``UNK``) of ``n_outcomes``."""
    return np.ascontiguousarray(counts.reshape(-1, n_outcomes)[:, :-1]).ravel()


def _below_line(plan: Plan) -> list[str]:
    """The plan's indicators that need a poverty line."""
    return [n for n in plan.query.indicators if CATALOGUE[n].kind == BELOW_LINE]


class NodeService:
    """A data holder's node: its data per reference period (each with a budget), its rules.

    Args:
        config: The node's configuration.
        data: Harmonised data to serve instead of loading the (single) dataset's file
            (benchmarks and tests).
    """

    def __init__(self, config: NodeConfig, data: Harmonised | None = None) -> None:
        self.config = config
        if config.signing_key is None:
            raise ConfigError(
                f"{config.file}: [signing] key is required: the node signs every result and "
                "audit entry",
                field="signing.key",
                hint="make one with `fedstats certs issue --node ID`",
            )
        self.signing_key = load_private_key(config.signing_key, "signing.key")
        self.key_id = key_id(self.signing_key.public_key())
        if data is not None and len(config.periods) > 1:
            raise ValueError("data= serves a single dataset; this node has several periods")
        self.periods = {p: self._load(config.for_period(p), data) for p in config.periods}
        self.default_period = config.dataset.time_period

    def _load(self, config: NodeConfig, data: Harmonised | None) -> _Period:
        engine = MemoryEngine(data) if data is not None else open_engine(config)
        log_coverage(config, engine)
        try:
            check_thresholds(config, engine)  # before the ledger: nothing is written
        except BaseException:
            engine.close()
            raise
        ledger = Ledger(
            Path(config.state_dir) / "ledger.sqlite",
            dataset=config.dataset_id,
            total_rho=config.privacy.rho_budget,
            max_rho_per_query=config.privacy.max_rho_per_query,
            signer=self.signing_key,
            chain_head=self.config.chain_head,
            pool=self.config.population_of(config.dataset.time_period),
            pool_rho=self.config.privacy.rho_budget,
        )
        delta = sensitivity(config.privacy.max_weight if engine.weighted else None)
        return _Period(
            config,
            engine,
            ledger,
            delta,
            line=configured(config.dataset),
            fingerprint=fingerprint(
                config, _data_digest(config, engine), fingerprint_key(self.signing_key)
            ),
        )

    def poverty_line(self, served: _Period, *, compute: bool = False) -> NationalLine | None:
        """A period's national line: configured, or computed by this node.

        A computed line is released (once per period, through the ledger) only when
        ``compute`` is set: when a query needs it. Otherwise it is known only once
        computed or read back from the ledger.
        """
        dataset = served.config.dataset
        if served.line is None and compute and dataset.poverty_line_rho is not None:
            served.line = obtain(served.ledger, served.engine, served.sensitivity, dataset)
        return served.line

    def period(self, time_period: str | None = None) -> _Period:
        """A reference period's dataset (the latest when None).

        Raises:
            QueryError: When the node serves no data for that period.
        """
        name = time_period or self.default_period
        if name not in self.periods:
            self.config.for_period(name)  # raises the documented error
        return self.periods[name]

    @property
    def engine(self) -> TableEngine:
        """The latest period's table engine."""
        return self.period().engine

    @property
    def data(self) -> Harmonised:
        """The latest period's harmonised data (memory engine only)."""
        engine = self.engine
        if not isinstance(engine, MemoryEngine):
            raise TypeError(f"the {engine.name} engine keeps no data in the node")
        return engine.data

    def true_counts(self, spec: TableSpec, time_period: str | None = None) -> TableCounts:
        """A table's true counts, for in-process tests and benchmarks only.

        Nothing is released, charged or logged, and no servicer method reaches this: it
        is how tests compare the engines with each other before any noise.
        """
        return self.period(time_period).engine.count(spec)

    @property
    def ledger(self) -> Ledger:
        """The latest period's ledger (every period shares the file and the audit log)."""
        return self.period().ledger

    @property
    def weighted(self) -> bool:
        """Whether tables are weighted (survey weights configured)."""
        return self.engine.weighted

    def indicators(self) -> list[str]:
        """Catalogue entries this node can answer.

        It provides their outcome variable and, for poverty rates, has a national poverty
        line for its latest period.
        """
        dataset = self.period().config.dataset
        line = dataset.poverty_line or dataset.poverty_line_rho
        return [
            n
            for n, i in CATALOGUE.items()
            if i.outcome in self.engine.provided and (i.kind != BELOW_LINE or line is not None)
        ]

    @staticmethod
    def capabilities() -> Capabilities:
        """What this release can do (the same for every node running it)."""
        return Capabilities(
            software_version=software_version(),
            catalogue_version=CATALOGUE_VERSION,
            catalogue=tuple(CATALOGUE),
            engines=ENGINES,
            disclosure_rules=RULE_SETS,
            secure_aggregation=True,
            ledger_schema=SCHEMA_VERSION,
        )

    def budget(self, time_period: str | None = None) -> BudgetState:
        """A period's budget (the latest period's by default)."""
        return self.period(time_period).ledger.state()

    def run_query(
        self,
        query_id: str,
        query: Query,
        *,
        grant: CoordinatorGrant | None = None,
        request_sha256: str = "",
    ) -> QueryAnswer:
        """Answer a query: check everything, charge the ledger, compute, store, commit.

        Args:
            query_id: Idempotency key.
            query: What is asked.
            grant: The asking coordinator's grant, checked against the node's policy
                (None only for the node's own, local use: tests and benchmarks).
            request_sha256: Hash of the signed request bytes: a retry must match it.

        Raises:
            QueryError: A malformed query, or one this node cannot answer (nothing spent).
            AccessError: A query the policy does not allow (nothing spent).
            BudgetError: The query passes a cap or the remaining budget (nothing spent).
        """
        if not _QUERY_ID.match(query_id) or query_id.startswith(LINE_QUERY):
            raise QueryError(
                "query_id must be 1-128 characters of letters, digits, '.', '_', ':' or '-'"
                f", not starting with {LINE_QUERY!r} (the node's own line releases)",
                field="query_id",
            )
        plan = compile_query(query, self.config.local)
        served = self.period(plan.query.time_period)
        self.check_answerable(plan, served)
        if grant is not None:
            self.config.policy.check(grant, plan)
        if plan.query.poverty_line is None and _below_line(plan):
            self.poverty_line(served, compute=True)  # its own release, charged once
        request = Request(
            query_id=query_id,
            spec_hash=plan.spec_hash(),
            legacy_spec_hash=plan.legacy_spec_hash(),
            rho=plan.query.rho,
            coordinator=grant.id if grant else "",
            request_sha256=request_sha256,
            coordinator_cap=grant.rho_cap if grant else None,
            fingerprint=served.fingerprint,
        )
        outcome = served.ledger.reserve(request)
        if isinstance(outcome, StoredAnswer):
            log.debug("query %s answered from the ledger (%s)", query_id, outcome.answered_by)
            answer = QueryAnswer.from_stored(query_id, outcome.answer)
            if outcome.cap_micro:  # paid for by another coordinator: fresh to this one
                answer = replace(answer, rho_charged=from_micro(outcome.cap_micro), cached=False)
            position, fingerprint = outcome.position, outcome.fingerprint
        else:
            answer, position = self._compute_and_commit(outcome, plan, served)
            fingerprint = served.fingerprint
        return replace(
            answer,
            fingerprint=fingerprint,
            time_period=served.config.dataset.time_period,
            audit_seq=position.seq,
            audit_hash=position.hash,
        )

    def check_answerable(self, plan: Plan, served: _Period) -> None:
        """Refuse a plan over the cell limit or reading a variable the node lacks."""
        if plan.n_cells > MAX_CELLS_PER_QUERY:
            raise QueryError(
                f"the query would release {plan.n_cells} cells, over {MAX_CELLS_PER_QUERY}",
                reason=Reason.TOO_MANY_CELLS,
                field="breakdowns",
                hint="ask for fewer breakdowns or indicators",
            )
        for table in plan.tables:
            served.engine.require(table)
        below_line = _below_line(plan)
        dataset = served.config.dataset
        line = plan.query.poverty_line or dataset.poverty_line or dataset.poverty_line_rho
        if below_line and line is None:
            raise QueryError(
                f"this node has no national poverty line for {served.config.dataset.time_period}"
                f", so it does not answer {', '.join(below_line)} (a line pooled across "
                "countries is not Eurostat's)",
                reason=Reason.VARIABLE_NOT_PROVIDED,
                field="dataset.poverty_line",
                hint="set [dataset] poverty_line (60% of the national median equivalised "
                'income of all persons, or "compute" on a national dataset), or ask without '
                "the poverty rate",
            )

    def _compute_and_commit(
        self, reservation: Reservation, plan: Plan, served: _Period
    ) -> tuple[QueryAnswer, ChainHead]:
        try:
            rhos = split_rho(plan.query.rho, [1.0] * len(plan.tables))
            tables = [self._release(t, r, served) for t, r in zip(plan.tables, rhos, strict=True)]
            answer = QueryAnswer(
                query_id=reservation.query_id,
                tables=tables,
                rho_charged=from_micro(reservation.micro_rho),
                cached=False,
            )
            position = served.ledger.commit(reservation, answer.to_bytes())
        except BaseException:
            # Nothing has left the node: the noisy values die with this frame.
            served.ledger.cancel(reservation)
            raise
        log.debug("query %s released %d tables", reservation.query_id, len(tables))
        return answer, position

    def _release(self, spec: TableSpec, rho: float, served: _Period) -> TableRelease:
        """Release one table's cells (and sample counts) and its denominator margins."""
        with_unknown = replace(
            spec, outcome=replace(spec.outcome, codes=(*spec.outcome.codes, UNK))
        )
        full = served.engine.count(with_unknown)
        n = len(with_unknown.outcome.codes)
        observed = None if full.samples is None else _known(full.samples, n)
        true = TableCounts(_known(full.counts, n), observed)
        privacy = self.config.privacy
        rho_cells, rho_margins = split_rho(
            rho, [1.0 - privacy.margin_rho_share, privacy.margin_rho_share]
        )
        margins = release_margins(spec, full, served.sensitivity, rho_margins)
        dims = [(d.name, list(d.codes)) for d in spec.all_dims]
        flags = self._flags(margins)
        if true.samples is None:
            noisy = release(true.counts, served.sensitivity, rho_cells)
            return TableRelease(
                spec.key, dims, noisy.values.tolist(), noisy.sigma, noisy.rho,
                noisy.sensitivity, cell_flags=flags, margins=margins,
            )  # fmt: skip
        share = privacy.sample_rho_share
        rho_counts, rho_samples = split_rho(rho_cells, [1.0 - share, share])
        noisy = release(true.counts, served.sensitivity, rho_counts)
        samples = release(true.samples, 1, rho_samples)
        return TableRelease(
            key=spec.key,
            dims=dims,
            counts=noisy.values.tolist(),
            sigma=noisy.sigma,
            rho=noisy.rho,
            sensitivity=noisy.sensitivity,
            samples=samples.values.tolist(),
            sample_sigma=samples.sigma,
            sample_rho=samples.rho,
            cell_flags=flags,
            margins=margins,
        )

    def _flags(self, margins: list[MarginRelease]) -> list[str]:
        """Disclosure flag of each population cell, from its noisy margins only."""
        whole = margins[0].codes  # every known outcome: the population cell
        counts = next(m for m in margins if m.codes == whole and not m.observations)
        observations = next((m for m in margins if m.codes == whole and m.observations), None)
        value = np.asarray(counts.counts, dtype=np.float64)
        observed = None
        if observations is not None:
            seen = np.asarray(observations.counts, dtype=np.float64)
            observed = (seen, np.full_like(seen, observations.sigma), np.ones(len(seen), bool))
        codes, _ = self.config.disclosure.columns.judge(
            (value, np.full_like(value, counts.sigma)), observed, np.full_like(value, np.nan)
        )
        return [FLAG_CODES[code] for code in codes.tolist()]

    def fingerprint(self, time_period: str | None = None) -> str:
        """The fingerprint a period's answers are keyed on (the latest period's by default)."""
        return self.period(time_period).fingerprint

    def answered(self, query_id: str, request_sha256: str, time_period: str | None) -> bool:
        """Whether the period's ledger answered this exact signed request (a retry).

        False for a period this node does not serve: `run_query` refuses it as always.
        """
        try:
            served = self.period(time_period)
        except QueryError:
            return False
        return served.ledger.answered(query_id, request_sha256)

    def record_refusal(
        self, query_id: str, coordinator: str, request_sha256: str, error: FedstatsError
    ) -> None:
        """Append a refusal to the audit log (nothing was charged) and log one line."""
        log.warning(
            "refused %s from %s: %s: %s", f"query {query_id}" if query_id else "a call",
            coordinator or "an unidentified caller", error.reason, error.message,
            extra={"event": {"event": "refusal", "query_id": query_id,
                             "coordinator": coordinator, "reason": str(error.reason)}},
        )  # fmt: skip
        request = Request(
            query_id, "", 0.0, coordinator, request_sha256, fingerprint=self.fingerprint()
        )
        self.ledger.record_refusal(request, error)

    def sign(self, data: bytes) -> bytes:
        """The node's Ed25519 signature of exactly ``data``."""
        return sign(self.signing_key, data)

    def provided(self) -> list[str]:
        """Harmonised variables this node serves: mapped ones and those derived from them."""
        return [AGE, *self.engine.provided]

    def coverage_floor(self) -> dict[str, float]:
        """Per provided variable, the share of known values floored to 10% (for Describe).

        Mapped variables report their mapping coverage; derived ones the share of rows
        whose value is not ``UNK``.
        """
        shares = self.engine.known_shares()
        return {name: math.floor(share * 10) / 10 for name, share in shares.items()}

    def coverage_problems(self) -> dict[str, CoverageFacts]:
        """Per mapped variable of the latest period, its problems rounded for Describe."""
        return {name: coverage_facts(cov) for name, cov in self.engine.coverage.items()}

    def deviations(self) -> dict[str, str]:
        """Variables whose local definition deviates from the harmonised one, with notes."""
        return dict(self._deviations)

    @cached_property
    def _deviations(self) -> dict[str, str]:
        # config and data are read once, at start: computed once, not per call
        notes = {n: self.config.deviation_of(n) for n in self.provided() if n != AGE}
        return {n: note for n, note in notes.items() if note}

    def concepts(self) -> dict[str, str]:
        """Variables read under a non-harmonised concept: ``input=code`` joined by ``;``."""
        return dict(self._concepts)

    @cached_property
    def _concepts(self) -> dict[str, str]:
        codes = {n: self.config.concepts_of(n) for n in self.provided() if n != AGE}
        return {n: ";".join(f"{i}={c}" for i, c in found) for n, found in codes.items() if found}

    def variable_codes(self, name: str) -> list[str]:
        """Public code list of a provided variable, or of a local one (age: none)."""
        return [] if name == AGE else list(self.engine.variable(name).codes)
