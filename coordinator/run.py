"""One federated query, end to end on the coordinator's side."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field, replace

from common.collector import collector_paused
from common.errors import ConfigError, FedstatsError, QueryError, Reason
from common.net import is_loopback
from coordinator.client import (
    Described,
    Dialer,
    NodeFailure,
    NodeReply,
    ProgressFn,
    QuerySigner,
    Session,
)
from coordinator.config import CoordinatorConfig
from coordinator.described import keep, kept
from coordinator.kinds import Gathered, NodePlans, QueryKind, kind_of, plan_nodes
from coordinator.pooling import Pooling
from coordinator.results import NodeTables, read_result
from coordinator.rows import BenchmarkRow
from indicators.spec import Plan, Query
from protos import node_pb2 as pb
from security.certificates import check_party_certificate
from security.crl_seen import CRL_SEEN_FILE
from security.revocation import RevocationList, renewal_warnings
from security.signing import load_private_key

log = logging.getLogger(__name__)

__all__ = [
    "QueryOutcome",
    "new_query_id",
    "prepare",
    "record_query",
    "run_pathway",
    "run_query",
]


@dataclass(frozen=True)
class QueryOutcome:
    """What one query produced.

    Attributes:
        query_id: The query's id (the same on every node).
        plan: The compiled query.
        rows: Benchmark rows.
        answers: Tables of the nodes whose results verified.
        failures: Why the other nodes gave none.
        rho_charged: Rho each answering node charged for this call.
        replies: Every node's signed request and signed result, for provenance.
        missing: Per node, the indicators it could not answer and why (its rows are
            flagged ``n``).
    """

    query_id: str
    plan: Plan
    rows: list[BenchmarkRow]
    answers: dict[str, NodeTables]
    failures: dict[str, NodeFailure]
    rho_charged: dict[str, float]
    replies: dict[str, NodeReply]
    missing: dict[str, dict[str, str]] = field(default_factory=dict)


def new_query_id(coordinator_id: str) -> str:
    """A fresh, unguessable query id."""
    return f"{coordinator_id}-{uuid.uuid4().hex}"


def prepare(config: CoordinatorConfig) -> tuple[QuerySigner, Dialer]:
    """The coordinator's signer and dialer, after checking its own key and certificate.

    Raises:
        ConfigError: No signing key, an invalid certificate, a revocation list not
            signed by the CA, or plaintext off loopback.
    """
    if config.signing_key is None:
        raise ConfigError(
            f"{config.file}: [signing] key is required: nodes accept signed queries only",
            field="signing.key",
            hint="make one with `fedstats certs issue --coordinator ID`",
        )
    signer = QuerySigner(config.id, load_private_key(config.signing_key, "signing.key"))
    if config.tls is not None:
        check_party_certificate(config.tls, "coordinator", config.id, "tls")
        for warning in renewal_warnings(config.tls):
            log.warning("%s", warning)
    else:
        remote = [n.id for n in config.nodes if not is_loopback(n.address)]
        if remote:
            raise ConfigError(
                f"{config.file}: refusing plaintext to non-loopback nodes: {', '.join(remote)}",
                field="tls",
                hint="configure [tls] with the federation CA and this coordinator's certificate",
            )
    crl = config.tls.crl if config.tls is not None else None
    seen = config.state_dir / CRL_SEEN_FILE  # the newest list accepted: never go back
    revocations = RevocationList(crl, config.tls.ca, seen) if config.tls and crl else None
    return signer, Dialer(config.tls, revocations)


def run_query(
    config: CoordinatorConfig,
    query: Query,
    query_id: str | None = None,
    progress: ProgressFn | None = None,
    pooling: Pooling | None = None,
) -> QueryOutcome:
    """Plan per node, ask every node, combine what came back, by the query's kind.

    Args:
        config: The coordinator's configuration.
        query: What to ask.
        query_id: Idempotency key; a fresh one by default.
        progress: Told each node's state as the fan-out goes (for a terminal display).
        pooling: How pooled rows aggregate the nodes (default: population-weighted).

    Raises:
        QueryError: When the query is malformed (before any node is asked).
        ConfigError: When the coordinator's own keys or certificate are not usable.
    """
    kind = kind_of(query, pooling)
    signer, dialer = prepare(config)
    query_id = query_id or new_query_id(config.id)
    with Session(dialer, config.total_timeout) as session:  # one channel per node
        heard, planned = _asked(config, session, signer, kind, query_id, progress)
    return _combined(config, kind, query_id, heard, planned)


def _asked(
    config: CoordinatorConfig,
    session: Session,
    signer: QuerySigner,
    kind: QueryKind,
    query_id: str,
    progress: ProgressFn | None,
) -> tuple[Described, NodePlans]:
    """One query's fan-out in a session: each node planned and asked."""
    each: dict[str, NodePlans] = {}
    planned_from: dict[str, pb.NodeDescription | NodeFailure] = {}

    def plan(node_id: str, description: pb.NodeDescription | NodeFailure) -> Query | None:
        """The node's query, from its own description only (see `plan_nodes`)."""
        planned_from[node_id] = description
        try:
            each[node_id] = plan_nodes(kind, {node_id: description})
        except Exception:  # a fault planning one node: the others' answers are kept
            log.exception("planning the query for node %s failed; it was not asked", node_id)
            failure = NodeFailure.of(
                Reason.INTERNAL, f"the coordinator could not plan node {node_id}'s query"
            )
            each[node_id] = NodePlans(failures={node_id: failure})
        asked = each[node_id].asked.get(node_id)
        return None if asked is None else asked.query

    heard = session.describe_then_ask(
        config.nodes, query_id, plan, signer, config.timeout_seconds, progress, kept(config)
    )
    for node in config.nodes:  # late in Describe (a kept description's plan is not theirs)
        if planned_from.get(node.id) is not heard.descriptions[node.id]:
            each[node.id] = plan_nodes(kind, {node.id: heard.descriptions[node.id]})
    return heard, _merged([each[n.id] for n in config.nodes])


def _combined(
    config: CoordinatorConfig, kind: QueryKind, query_id: str, heard: Described, planned: NodePlans
) -> QueryOutcome:
    """What the nodes said, combined; their descriptions kept for the next query.

    Called once the session's channels are closed where it can be (a query alone, not a
    pathway's periods): with the 300 channels still open while a 300-city query's rows
    were made, writing SDMX from them afterwards took 0.49 s instead of 0.42 (two runs and
    three; the whole command's CPU the same).
    """
    with collector_paused():  # a 300-city query's rows: many objects, no cycles to find
        outcome = _outcome(config, kind, query_id, heard.descriptions, planned, heard.replies)
    try:  # a cache: the answers and the query log never wait on it
        keep(config, heard.fresh)
    except OSError as exc:
        log.warning("could not keep the nodes' descriptions (%s); the next query describes", exc)
    return outcome


def _merged(parts: list[NodePlans]) -> NodePlans:
    """One node's plans after another's, as `plan_nodes` gives them for all at once."""
    merged = NodePlans()
    for part in parts:
        merged.plans.update(part.plans)
        merged.asked.update(part.asked)
        merged.missing.update(part.missing)
        merged.failures.update(part.failures)
    return merged


def _outcome(
    config: CoordinatorConfig,
    kind: QueryKind,
    query_id: str,
    descriptions: dict[str, pb.NodeDescription | NodeFailure],
    planned: NodePlans,
    replies: dict[str, NodeReply],
) -> QueryOutcome:
    """The query's outcome from what the nodes said: their answers read and combined."""
    failures = dict(planned.failures)
    answers: dict[str, NodeTables] = {}
    charged: dict[str, float] = {}
    for node_id, reply in replies.items():
        answer = _answer(node_id, reply, planned.asked[node_id])
        if isinstance(answer, NodeFailure):
            failures[node_id] = answer
        else:
            answers[node_id], charged[node_id] = answer
    geos = {n: d.geo for n, d in descriptions.items() if isinstance(d, pb.NodeDescription)}
    lacking = frozenset(n for n, f in failures.items() if f.reason == Reason.VARIABLE_NOT_PROVIDED)
    periods = {
        n: d.time_period for n, d in descriptions.items() if isinstance(d, pb.NodeDescription)
    }
    levels = {n: d.geo_level for n, d in descriptions.items() if isinstance(d, pb.NodeDescription)}
    gathered = Gathered(
        [n.id for n in config.nodes], planned.plans, answers, geos, lacking, periods, levels
    )
    plan = kind.outcome_plan(gathered)
    record_query(config, query_id, plan.query, failures, charged)
    return QueryOutcome(
        query_id, plan, kind.rows(gathered), answers, failures, charged, replies, planned.missing
    )


def run_pathway(
    config: CoordinatorConfig,
    query: Query,
    periods: list[str],
    progress: ProgressFn | None = None,
    pooling: Pooling | None = None,
) -> list[QueryOutcome]:
    """The same query for each reference period: a pathway through time.

    With ``arrival_cohort`` as the group or a breakdown, the rows follow each arrival
    cohort's indicator from period to period (each period is charged on its own budget).
    Every period's query is checked before any node is asked, and the periods share one
    session: one channel, so one TLS handshake for the calls, per node for the whole
    pathway (with ``[tls] crl``, each period still checks each node's certificate in a
    handshake of its own first).
    """
    if not periods:
        raise QueryError("a pathway needs at least one period", field="--pathway")
    kinds = [kind_of(replace(query, time_period=period), pooling) for period in periods]
    signer, dialer = prepare(config)
    with Session(dialer, config.total_timeout) as session:
        outcomes: list[QueryOutcome] = []
        for kind in kinds:  # each period combined before the next is asked, as alone
            query_id = new_query_id(config.id)
            heard, planned = _asked(config, session, signer, kind, query_id, progress)
            outcomes.append(_combined(config, kind, query_id, heard, planned))
        return outcomes


def _answer(node_id: str, reply: NodeReply, plan: Plan) -> tuple[NodeTables, float] | NodeFailure:
    """A node's tables, read with the plan of what it was asked, and the rho it charged."""
    if reply.result is None:
        assert reply.failure is not None
        return reply.failure
    if reply.result.node_id != node_id:
        return NodeFailure.of(
            Reason.WRONG_NODE, f"the node at this address says it is {reply.result.node_id!r}"
        )
    try:
        return read_result(reply.result, plan), reply.result.rho_charged
    except FedstatsError as exc:
        return NodeFailure.of(exc.reason, exc.message, exc.hint)


def record_query(
    config: CoordinatorConfig,
    query_id: str,
    query: Query,
    failures: dict[str, NodeFailure],
    charged: dict[str, float],
) -> None:
    """Append the query to the coordinator's own log of what it asked and what it cost."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    entry = {
        "query_id": query_id,
        "time": time.time(),
        **query.to_record(),
        "rho_charged": charged,
        "failures": {n: f.reason for n, f in failures.items()},
    }
    with (config.state_dir / "queries.jsonl").open("a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")
