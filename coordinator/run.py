"""One federated query, end to end on the coordinator's side."""

from __future__ import annotations

import ipaddress
import json
import time
import uuid
from dataclasses import dataclass, field, replace

from common.errors import ConfigError, FedstatsError, QueryError, Reason
from coordinator.client import (
    Dialer,
    NodeFailure,
    NodeReply,
    ProgressFn,
    QuerySigner,
    describe_all,
    fan_out,
)
from coordinator.combine import BenchmarkRow, NodeTables, benchmark_rows, local_rows, read_result
from coordinator.compat import unanswerable
from coordinator.config import CoordinatorConfig
from indicators.spec import Plan, Query, compile_query, is_local
from indicators.variables import UNK, Variable
from protos import node_pb2 as pb
from security.certificates import check_party_certificate
from security.signing import load_private_key

__all__ = [
    "QueryOutcome",
    "local_variable",
    "new_query_id",
    "plan_nodes",
    "prepare",
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


def _loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def prepare(config: CoordinatorConfig) -> tuple[QuerySigner, Dialer]:
    """The coordinator's signer and dialer, after checking its own key and certificate.

    Raises:
        ConfigError: No signing key, an invalid certificate, or plaintext off loopback.
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
    else:
        remote = [n.id for n in config.nodes if not _loopback(n.address)]
        if remote:
            raise ConfigError(
                f"{config.file}: refusing plaintext to non-loopback nodes: {', '.join(remote)}",
                field="tls",
                hint="configure [tls] with the federation CA and this coordinator's certificate",
            )
    return signer, Dialer(config.tls)


def run_query(
    config: CoordinatorConfig,
    query: Query,
    query_id: str | None = None,
    progress: ProgressFn | None = None,
) -> QueryOutcome:
    """Compile locally, ask every node, combine what came back.

    Args:
        config: The coordinator's configuration.
        query: What to ask.
        query_id: Idempotency key; a fresh one by default.
        progress: Told each node's state as the fan-out goes (for a terminal display).

    Raises:
        QueryError: When the query is malformed (before any node is asked).
        ConfigError: When the coordinator's own keys or certificate are not usable.
    """
    if is_local(query.group_dim):
        return _run_local(config, query, query_id, progress)
    plan = compile_query(query)
    signer, dialer = prepare(config)
    query_id = query_id or new_query_id(config.id)
    descriptions = describe_all(config.nodes, dialer, config.timeout_seconds)
    queries, missing, failures = plan_nodes(plan, descriptions)
    replies = fan_out(
        config.nodes, query_id, queries, signer, dialer, config.timeout_seconds, progress,
        not_asked=tuple(failures),
    )  # fmt: skip
    answers: dict[str, NodeTables] = {}
    charged: dict[str, float] = {}
    for node_id, reply in replies.items():
        _collect(node_id, reply, compile_query(queries[node_id]), answers, failures, charged)
    order = [n.id for n in config.nodes]
    geos = {n: d.geo for n, d in descriptions.items() if isinstance(d, pb.NodeDescription)}
    rows = benchmark_rows(plan, order, answers, failures, geos)
    _record(config, query_id, plan, failures, charged)
    return QueryOutcome(query_id, plan, rows, answers, failures, charged, replies, missing)


def _run_local(
    config: CoordinatorConfig,
    query: Query,
    query_id: str | None,
    progress: ProgressFn | None,
) -> QueryOutcome:
    """A query by a node's own ``local:NAME`` group dimension: one plan per node.

    Each node's plan uses the code list from its Describe entry; its rows are its own
    (`local_rows`: never pooled, all flagged ``d``). A node that does not provide the
    local variable has no code list, so it is not asked: it gets a
    ``VARIABLE_NOT_PROVIDED`` failure and no rows. ``QueryOutcome.plan`` is the first
    answering node's plan.
    """
    query.validate()
    signer, dialer = prepare(config)
    query_id = query_id or new_query_id(config.id)
    descriptions = describe_all(config.nodes, dialer, config.timeout_seconds)
    plans: dict[str, Plan] = {}
    variables: dict[str, Variable] = {}
    queries: dict[str, Query] = {}
    missing: dict[str, dict[str, str]] = {}
    failures: dict[str, NodeFailure] = {}
    for node_id, description in descriptions.items():
        if isinstance(description, NodeFailure):
            failures[node_id] = description
            continue
        variable = local_variable(description, query.group_dim)
        if variable is None:
            failures[node_id] = NodeFailure.of(
                Reason.VARIABLE_NOT_PROVIDED,
                f"node {node_id} does not provide the local variable {query.group_dim}",
            )
            continue
        variables[node_id] = variable
        plans[node_id] = compile_query(query, {query.group_dim: variable})
        asked, lacking, refused = plan_nodes(plans[node_id], {node_id: description})
        queries.update(asked)
        missing.update(lacking)
        failures.update(refused)
    replies = fan_out(
        config.nodes, query_id, queries, signer, dialer, config.timeout_seconds, progress,
        not_asked=tuple(failures),
    )  # fmt: skip
    answers: dict[str, NodeTables] = {}
    charged: dict[str, float] = {}
    for node_id, reply in replies.items():
        node_plan = compile_query(queries[node_id], {query.group_dim: variables[node_id]})
        _collect(node_id, reply, node_plan, answers, failures, charged)
    order = [n.id for n in config.nodes]
    rows = local_rows(plans, order, answers)
    answering = [n for n in order if n in answers]
    plan = plans[answering[0]] if answering else _placeholder_plan(query)
    _record(config, query_id, plan, failures, charged)
    return QueryOutcome(query_id, plan, rows, answers, failures, charged, replies, missing)


def local_variable(description: pb.NodeDescription, name: str) -> Variable | None:
    """A node's own local variable from its Describe entry, or None when it has none."""
    for entry in description.variables:
        if entry.name == name:
            codes = [c for c in entry.codes if c != UNK]
            if codes and len(set(codes)) == len(codes):
                return Variable(name, (*codes, UNK), name)
    return None


def _placeholder_plan(query: Query) -> Plan:
    """A valid plan for a local query no node answered: the group holds ``UNK`` only."""
    return compile_query(query, {query.group_dim: Variable(query.group_dim, (UNK,), "")})


def run_pathway(
    config: CoordinatorConfig,
    query: Query,
    periods: list[str],
    progress: ProgressFn | None = None,
) -> list[QueryOutcome]:
    """The same query for each reference period: a pathway through time.

    With ``arrival_cohort`` as the group or a breakdown, the rows follow each arrival
    cohort's indicator from period to period (each period is charged on its own budget).
    """
    if not periods:
        raise QueryError("a pathway needs at least one period", field="--pathway")
    return [
        run_query(config, replace(query, time_period=period), progress=progress)
        for period in periods
    ]


def plan_nodes(
    plan: Plan, descriptions: dict[str, pb.NodeDescription | NodeFailure]
) -> tuple[dict[str, Query], dict[str, dict[str, str]], dict[str, NodeFailure]]:
    """Each node's query: the indicators whose variables it provides.

    Returns:
        The query per node that can answer something; per node, the indicators it
        cannot answer and why; the nodes that cannot be asked at all, and why.
    """
    queries: dict[str, Query] = {}
    missing: dict[str, dict[str, str]] = {}
    failures: dict[str, NodeFailure] = {}
    for node_id, description in descriptions.items():
        if isinstance(description, NodeFailure):
            failures[node_id] = description
            continue
        lacking = unanswerable(node_id, description, plan.query.indicators)
        if isinstance(lacking, NodeFailure):  # its release cannot be asked this query
            failures[node_id] = lacking
            continue
        period = plan.query.time_period
        if period and period not in description.time_periods:
            failures[node_id] = NodeFailure.of(
                Reason.PERIOD_NOT_SERVED,
                f"node {node_id} serves no data for {period} "
                f"(it serves {', '.join(description.time_periods) or 'none'})",
            )
            continue
        provided = {v.name for v in description.variables}
        for name in plan.query.indicators:
            _, spec = plan.indicator(name)
            absent = [v for v in spec.variables() if v not in provided]
            if absent:
                lacking[name] = f"node {node_id} does not provide {', '.join(absent)}"
        missing[node_id] = lacking
        answerable = tuple(n for n in plan.query.indicators if n not in lacking)
        if answerable:
            queries[node_id] = replace(plan.query, indicators=answerable)
        else:
            failures[node_id] = NodeFailure.of(
                Reason.VARIABLE_NOT_PROVIDED, "; ".join(dict.fromkeys(lacking.values()))
            )
    return queries, missing, failures


def _collect(
    node_id: str,
    reply: NodeReply,
    plan: Plan,
    answers: dict[str, NodeTables],
    failures: dict[str, NodeFailure],
    charged: dict[str, float],
) -> None:
    if reply.result is None:
        assert reply.failure is not None
        failures[node_id] = reply.failure
        return
    if reply.result.node_id != node_id:
        failures[node_id] = NodeFailure.of(
            Reason.WRONG_NODE, f"the node at this address says it is {reply.result.node_id!r}"
        )
        return
    try:
        answers[node_id] = read_result(reply.result, plan)
    except FedstatsError as exc:
        failures[node_id] = NodeFailure.of(exc.reason, exc.message, exc.hint)
        return
    charged[node_id] = reply.result.rho_charged


def _record(
    config: CoordinatorConfig,
    query_id: str,
    plan: Plan,
    failures: dict[str, NodeFailure],
    charged: dict[str, float],
) -> None:
    """Append the query to the coordinator's own log of what it asked and what it cost."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    entry = {
        "query_id": query_id,
        "time": time.time(),
        "indicators": list(plan.query.indicators),
        "group_dim": plan.query.group_dim,
        "breakdowns": list(plan.query.breakdowns),
        "comparator": plan.query.comparator,
        "rho": plan.query.rho,
        "rho_charged": charged,
        "failures": {n: f.reason for n, f in failures.items()},
    }
    with (config.state_dir / "queries.jsonl").open("a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")
