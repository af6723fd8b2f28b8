"""The node's domain logic: describe, answer a query through the ledger, report budget.

This module knows nothing of gRPC: the servicer turns protos into these calls and back.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from common.errors import ConfigError, FedstatsError, QueryError, Reason
from common.versions import software_version
from indicators.catalogue import CATALOGUE, CATALOGUE_VERSION
from indicators.spec import Plan, Query, TableSpec, compile_query
from indicators.variables import AGE
from node.config import NodeConfig
from node.engine import TableCounts, sensitivity
from node.engines import ENGINES, TableEngine, open_engine
from node.engines.memory import MemoryEngine
from node.harmonise import Harmonised
from node.ledger import BudgetState, Ledger, Request, Reservation, StoredAnswer
from node.ledger_schema import SCHEMA_VERSION
from node.policy import CoordinatorGrant
from privacy.budget import from_micro, split_rho
from privacy.disclosure import RULE_SETS
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


@dataclass(frozen=True)
class QueryAnswer:
    """A node's answer to one query."""

    query_id: str
    tables: list[TableRelease]
    rho_charged: float
    cached: bool
    time_period: str = ""  # the reference period answered (set per call, not stored)

    def to_bytes(self) -> bytes:
        """Stored form in the ledger (query id and charge are per call, not stored)."""
        return json.dumps([asdict(t) for t in self.tables]).encode()

    @classmethod
    def from_stored(cls, query_id: str, stored: bytes) -> QueryAnswer:
        """An answer read back from the ledger: no charge for this call."""
        tables = []
        for t in json.loads(stored):
            t["dims"] = [(name, codes) for name, codes in t["dims"]]
            tables.append(TableRelease(**t))
        return cls(query_id=query_id, tables=tables, rho_charged=0.0, cached=True)


@dataclass
class _Period:
    """One reference period's dataset: its config view, engine, budget ledger, sensitivity."""

    config: NodeConfig
    engine: TableEngine
    ledger: Ledger
    sensitivity: int


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
        ledger = Ledger(
            Path(config.state_dir) / "ledger.sqlite",
            dataset=config.dataset_id,
            total_rho=config.privacy.rho_budget,
            max_rho_per_query=config.privacy.max_rho_per_query,
            signer=self.signing_key,
        )
        delta = sensitivity(config.privacy.max_weight if engine.weighted else None)
        return _Period(config, engine, ledger, delta)

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
        """Catalogue entries whose outcome variable this node provides."""
        return [n for n, i in CATALOGUE.items() if i.outcome in self.engine.provided]

    @staticmethod
    def capabilities() -> Capabilities:
        """What this release can do (the same for every node running it)."""
        return Capabilities(
            software_version=software_version(),
            catalogue_version=CATALOGUE_VERSION,
            catalogue=tuple(CATALOGUE),
            engines=ENGINES,
            disclosure_rules=RULE_SETS,
            secure_aggregation=False,
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
        if not _QUERY_ID.match(query_id):
            raise QueryError(
                "query_id must be 1-128 characters of letters, digits, '.', '_', ':' or '-'",
                field="query_id",
            )
        plan = compile_query(query, self.config.local)
        served = self.period(plan.query.time_period)
        self._check_answerable(plan, served)
        if grant is not None:
            self.config.policy.check(grant, plan)
        request = Request(
            query_id=query_id,
            spec_hash=plan.spec_hash(),
            rho=plan.query.rho,
            coordinator=grant.id if grant else "",
            request_sha256=request_sha256,
            coordinator_cap=grant.rho_cap if grant else None,
        )
        outcome = served.ledger.reserve(request)
        if isinstance(outcome, StoredAnswer):
            log.info("query %s answered from the ledger (%s)", query_id, outcome.answered_by)
            answer = QueryAnswer.from_stored(query_id, outcome.answer)
        else:
            answer = self._compute_and_commit(outcome, plan, served)
        return replace(answer, time_period=served.config.dataset.time_period)

    def _check_answerable(self, plan: Plan, served: _Period) -> None:
        if plan.n_cells > MAX_CELLS_PER_QUERY:
            raise QueryError(
                f"the query would release {plan.n_cells} cells, over {MAX_CELLS_PER_QUERY}",
                reason=Reason.TOO_MANY_CELLS,
                field="breakdowns",
                hint="ask for fewer breakdowns or indicators",
            )
        for table in plan.tables:
            served.engine.require(table)

    def _compute_and_commit(
        self, reservation: Reservation, plan: Plan, served: _Period
    ) -> QueryAnswer:
        try:
            rhos = split_rho(plan.query.rho, [1.0] * len(plan.tables))
            tables = [self._release(t, r, served) for t, r in zip(plan.tables, rhos, strict=True)]
            answer = QueryAnswer(
                query_id=reservation.query_id,
                tables=tables,
                rho_charged=from_micro(reservation.micro_rho),
                cached=False,
            )
            served.ledger.commit(reservation, answer.to_bytes())
        except BaseException:
            # Nothing has left the node: the noisy values die with this frame.
            served.ledger.cancel(reservation)
            raise
        log.info("query %s released %d tables", reservation.query_id, len(tables))
        return answer

    def _release(self, spec: TableSpec, rho: float, served: _Period) -> TableRelease:
        true = served.engine.count(spec)
        dims = [(d.name, list(d.codes)) for d in spec.all_dims]
        if true.samples is None:
            noisy = release(true.counts, served.sensitivity, rho)
            flags = self._flags(spec, noisy.values, None)
            return TableRelease(
                spec.key, dims, noisy.values.tolist(), noisy.sigma, noisy.rho,
                noisy.sensitivity, cell_flags=flags,
            )  # fmt: skip
        share = self.config.privacy.sample_rho_share
        rho_counts, rho_samples = split_rho(rho, [1.0 - share, share])
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
            cell_flags=self._flags(spec, noisy.values, samples.values),
        )

    def _flags(self, spec: TableSpec, counts: np.ndarray, samples: np.ndarray | None) -> list[str]:
        """Disclosure flag of each population cell, from noisy values only."""
        outcome = len(spec.outcome.codes)
        totals = counts.reshape(-1, outcome).sum(axis=1)
        sample_totals = totals if samples is None else samples.reshape(-1, outcome).sum(axis=1)
        rules = self.config.disclosure
        return [
            rules.cell_flag(float(t), float(s)) for t, s in zip(totals, sample_totals, strict=True)
        ]

    def record_refusal(
        self, query_id: str, coordinator: str, request_sha256: str, error: FedstatsError
    ) -> None:
        """Append a refusal to the audit log (nothing was charged)."""
        request = Request(query_id, "", 0.0, coordinator, request_sha256)
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

    def deviations(self) -> dict[str, str]:
        """Variables whose local definition deviates from the harmonised one, with notes."""
        notes = {n: self.config.deviation_of(n) for n in self.provided() if n != AGE}
        return {n: note for n, note in notes.items() if note}

    def variable_codes(self, name: str) -> list[str]:
        """Public code list of a provided variable, or of a local one (age: none)."""
        return [] if name == AGE else list(self.engine.variable(name).codes)
