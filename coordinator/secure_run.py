"""A secure pooled query: one round of secure aggregation over every node that can join.

The coordinator describes the nodes, invites those whose release advertises secure
aggregation and whose key its config holds (the others are left out, and the pooled rows
flagged ``n``), signs one round description with the query for each node, and drives the
round's five steps (``node.secure_service``), each call with the config's deadline. A node
that fails a step drops out: before its masked vector arrived its pair masks are removed,
after it its vector stays in the sum. The coordinator learns the sum of the survivors'
noisy share vectors and nothing else; the rows are pooled rows only, built by
``coordinator.combine.pooled_rows`` from the unmasked sum divided by the public scale.
Every attempt is a new round with a new query id: each node charges it, no cache answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
import numpy as np

from common.errors import QueryError, Reason
from coordinator.client import (
    Dialer,
    NodeFailure,
    ProgressFn,
    QuerySigner,
    describe_all,
    failure_of,
)
from coordinator.combine import pooled_rows
from coordinator.compat import release_of
from coordinator.config import CoordinatorConfig, NodeAddress
from coordinator.flags import NONE
from coordinator.kinds import Harmonised, kind_of, plan_nodes
from coordinator.results import NodeTables
from coordinator.rows import BenchmarkRow
from coordinator.run import new_query_id, prepare, record_query
from coordinator.secure import Aggregator
from indicators.catalogue import BELOW_LINE
from indicators.concepts import UNMAPPED_AS_UNKNOWN
from indicators.spec import Plan, Query
from privacy import ddg
from privacy.budget import split_rho
from privacy.disclosure import DisclosureRules
from privacy.estimators import Cells
from protos import node_pb2 as pb
from protos import node_pb2_grpc as pb_grpc
from security.roundkeys import Envelope, RoundError
from security.roundwire import envelope_of, envelopes_of, query_sha256, wire_of

__all__ = ["SecureOutcome", "default_threshold", "run_secure_query"]

SENSITIVITY = 1
"""Secure rounds take unweighted tables: one person changes one count by one."""


@dataclass(frozen=True)
class SecureOutcome:
    """What one secure round produced.

    Attributes:
        query_id: The attempt's query id (new per attempt).
        round_id: The round's id.
        plan: The compiled query.
        rows: Pooled rows only.
        participants: The nodes invited to the round.
        survivors: The nodes whose vectors are in the sum.
        threshold: ``t``.
        failures: Nodes left out, dropped, or refusing, and why.
        rho_charged: What each node that opened the round charged (its charge stands
            even when it dropped later).
        pooled_sd: SD of each table's pooled noise (unscaled counts), by table key.
        requests: The coordinator's signed request to each participant (for provenance).
    """

    query_id: str
    round_id: str
    plan: Plan
    rows: list[BenchmarkRow]
    participants: tuple[str, ...]
    survivors: tuple[str, ...]
    threshold: int
    failures: dict[str, NodeFailure]
    rho_charged: dict[str, float]
    pooled_sd: dict[str, float]
    requests: dict[str, pb.SignedQuery]

    @property
    def answers(self) -> dict[str, NodeTables]:
        """No node's table: a secure round sees only the masked sum (the outputs' protocol)."""
        return {}

    @property
    def missing(self) -> dict[str, dict[str, str]]:
        """No per-node indicators: a node that cannot answer all of them is left out."""
        return {}


def default_threshold(count: int) -> int:
    """``t`` for ``count`` nodes: the fewest above half (K - t of them may drop)."""
    return count // 2 + 1


StepHook = Callable[[str, str], None]
"""Told ``(node_id, step)`` after each node's step returned (tests stop nodes here)."""


class _Round:
    """Calls one step on many nodes concurrently; a node that fails drops out."""

    def __init__(
        self, nodes: dict[str, NodeAddress], dialer: Dialer, timeout: float, round_id: str
    ) -> None:
        self.nodes, self.dialer, self.timeout, self.round_id = nodes, dialer, timeout, round_id
        self.failures: dict[str, NodeFailure] = {}
        self.hook: StepHook | None = None

    def call(
        self, step: str, requests: dict[str, pb.SecureStepRequest]
    ) -> dict[str, pb.SecureStepReply]:
        def one(node_id: str) -> pb.SecureStepReply | NodeFailure:
            node = self.nodes[node_id]
            with self.dialer.channel(node) as channel:
                try:
                    reply: pb.SecureStepReply = pb_grpc.NodeServiceStub(channel).SecureStep(
                        requests[node_id], timeout=self.timeout
                    )
                except grpc.RpcError as error:
                    return failure_of(error, node, self.dialer.tls is not None)
            if self.hook is not None:
                self.hook(node_id, step)
            return reply

        live = [n for n in requests if n not in self.failures]
        with ThreadPoolExecutor(max_workers=max(1, min(32, len(live)))) as pool:
            answers = dict(zip(live, pool.map(one, live), strict=True))
        replies = {}
        for node_id, answer in answers.items():
            if isinstance(answer, NodeFailure):
                self.drop(node_id, answer)
            else:
                replies[node_id] = answer
        return replies

    def request(self, step: str, **fields: object) -> pb.SecureStepRequest:
        return pb.SecureStepRequest(step=step, round_id=self.round_id, **fields)  # type: ignore[arg-type]

    def drop(self, node_id: str, failure: NodeFailure) -> None:
        self.failures.setdefault(node_id, failure)

    def accept(self, node_id: str, step: str, add: Callable[..., None], *args: object) -> None:
        """Hand a node's message to the aggregator; a refused message drops the node."""
        try:
            add(*args)
        except RoundError as exc:
            self.drop(node_id, NodeFailure.of(Reason.SECURE_ROUND_REFUSED, f"{step}: {exc}"))


def _only(reply: pb.SecureStepReply) -> Envelope:
    if len(reply.envelopes) != 1:
        raise RoundError(f"expected one envelope, got {len(reply.envelopes)}")
    return envelope_of(reply.envelopes[0])


def run_secure_query(
    config: CoordinatorConfig,
    query: Query,
    *,
    threshold: int | None = None,
    deviations: bool = False,
    min_coverage: float = 0.0,
    progress: ProgressFn | None = None,
    hook: StepHook | None = None,
) -> SecureOutcome:
    """Run one secure round of ``query`` and build its pooled rows.

    Args:
        config: The coordinator's configuration.
        query: A harmonised query (every participant answers the same query).
        threshold: ``t``; by default the fewest above half of the participants.
        deviations: Pool nodes whose definition of a variable the query reads deviates
            (rows flagged ``d``); by default they are left out, as in plain pools.
        min_coverage: The share of the configured nodes that must join the round; checked
            before any node is asked to open it (nothing is charged when it fails).
        progress: Told each node's state (``waiting``, ``answered``, ``failed``).
        hook: Told each node's completed step (for tests that stop a node mid-round).

    Raises:
        QueryError: A query a secure round cannot answer, fewer than two nodes that can
            join, or a round that failed (fewer than ``t`` nodes got through a step).
        ConfigError: When the coordinator's own keys or certificate are not usable.
    """
    kind = kind_of(query)
    if not isinstance(kind, Harmonised):
        raise QueryError("a secure round pools harmonised indicators only", field="--secure")
    signer, dialer = prepare(config)
    descriptions = describe_all(config.nodes, dialer, config.timeout_seconds)
    planned = plan_nodes(kind, descriptions)
    failures = dict(planned.failures)
    nodes = {n.id: n for n in config.nodes}
    invited: dict[str, NodeAddress] = {}
    for node_id, asked in planned.asked.items():
        description = descriptions[node_id]
        assert isinstance(description, pb.NodeDescription)
        why = _left_out(nodes[node_id], asked, query, release_of(description).secure_aggregation)
        read = {v for table in asked.tables for v in table.variables()}
        differs = sorted(v.name for v in description.variables if v.deviation and v.name in read)
        if not why and differs and not deviations:
            why = (
                f"node {node_id}'s definition of {', '.join(differs)} deviates; "
                "pooled values leave it out unless deviations are pooled"
            )
        if why:
            failures[node_id] = NodeFailure.of(Reason.SECURE_ROUND_REFUSED, why)
        else:
            invited[node_id] = nodes[node_id]
    plan = next(iter(planned.plans.values()), None)
    if plan is None or len(invited) < 2:
        raise QueryError(
            f"{len(invited)} node(s) can join a secure round; it needs at least two",
            field="--secure",
            hint="; ".join(f"{n}: {f.message}" for n, f in sorted(failures.items())),
        )
    _check_pooled(plan)
    if len(invited) < min_coverage * len(config.nodes):
        raise QueryError(
            f"{len(invited)} of {len(config.nodes)} nodes can join the secure round, "
            f"below the pool coverage {min_coverage:g}; nothing was charged",
            field="--pool-min-coverage",
            hint="; ".join(f"{n}: {f.message}" for n, f in sorted(failures.items()))
            or "lower --pool-min-coverage",
        )
    t = threshold or default_threshold(len(invited))
    query_id = new_query_id(config.id)
    round_id = uuid.uuid4().hex
    rules = DisclosureRules.strictest([_rules(descriptions[n]) for n in invited])
    outcome = _drive(
        invited, plan, query, query_id, round_id, t, signer, dialer, config.timeout_seconds,
        progress, hook,
    )  # fmt: skip
    survivors, total, charged, dropped, requests = outcome
    failures.update(dropped)
    record_query(config, query_id, plan.query, failures, charged)
    shares = _share_plans(plan, t)
    cells, sds, offset = {}, {}, 0
    for spec, share in zip(plan.tables, shares, strict=True):
        part = total[offset : offset + spec.n_cells] / share.gamma
        offset += spec.n_cells
        sds[spec.key] = ddg.pooled_sd(share, len(survivors))
        cells[spec.key] = Cells.of(part, sds[spec.key])
    # Which nodes the sum holds is `SecureOutcome.survivors` (Eurostat has no flag for an
    # incomplete pool: the flag letters keep their Eurostat meanings).
    flagged = NONE
    # Variables that deviate on some member, or count unmapped values as unknown there.
    deviating = frozenset(
        v.name
        for n in invited
        if isinstance(d := descriptions[n], pb.NodeDescription)
        for v in d.variables
        if v.deviation or f"={UNMAPPED_AS_UNKNOWN.code}" in v.concepts
    )
    period = plan.query.time_period or "+".join(
        sorted({_period(descriptions[n]) for n in survivors})
    )
    rows = pooled_rows(plan, cells, rules, period, flagged, deviating)
    return SecureOutcome(
        query_id, round_id, plan, rows, tuple(sorted(invited)), tuple(survivors), t, failures,
        charged, sds, requests,
    )  # fmt: skip


def _left_out(node: NodeAddress, plan: Plan, query: Query, advertises: bool) -> str:
    """Why a node cannot join the round ('' when it can)."""
    if not advertises:
        return f"node {node.id} does not advertise secure aggregation; left out of the pool"
    if node.public_key is None:
        return f"no public key configured for node {node.id}; a secure round lists every key"
    if plan.query.indicators != query.indicators:
        return f"node {node.id} cannot answer every indicator; a secure round needs all of them"
    return ""


def _check_pooled(plan: Plan) -> None:
    for name in plan.query.indicators:
        indicator, _ = plan.indicator(name)
        if indicator.kind == BELOW_LINE and plan.query.poverty_line is None:
            raise QueryError(
                f"{name} needs each node's poverty line; a secure pool has one table",
                field="--poverty-line",
                hint="give the line for every node with --poverty-line",
            )


def _period(description: pb.NodeDescription | NodeFailure) -> str:
    assert isinstance(description, pb.NodeDescription)
    return description.time_period


def _rules(description: pb.NodeDescription | NodeFailure) -> DisclosureRules:
    assert isinstance(description, pb.NodeDescription)
    d = description.disclosure
    return DisclosureRules(d.min_count, d.unreliable_below, d.max_cv)


def _share_plans(plan: Plan, threshold: int) -> list[ddg.SharePlan]:
    """Each table's share plan, as every node computes it from the public query."""
    rhos = split_rho(plan.query.rho, [1.0] * len(plan.tables))
    return [
        ddg.plan_shares(SENSITIVITY, r, threshold, s.n_cells)
        for r, s in zip(rhos, plan.tables, strict=True)
    ]


def _drive(
    invited: dict[str, NodeAddress],
    plan: Plan,
    query: Query,
    query_id: str,
    round_id: str,
    t: int,
    signer: QuerySigner,
    dialer: Dialer,
    timeout: float,
    progress: ProgressFn | None,
    hook: StepHook | None,
) -> tuple[
    list[str], np.ndarray, dict[str, float], dict[str, NodeFailure], dict[str, pb.SignedQuery]
]:
    """The round's five steps; returns survivors, the sum, charges, drop-outs, requests."""
    identities = {n: a.public_key for n, a in invited.items() if a.public_key is not None}
    secure = pb.SecureRound(
        round_id=round_id,
        threshold=t,
        participants=[
            pb.RoundParticipant(node_id=n, public_key=k.public_bytes_raw())
            for n, k in sorted(identities.items())
        ],
        query_sha256=query_sha256(plan.query),
    )
    dim = sum(s.n_cells for s in plan.tables)
    gammas = [p.gamma for p in _share_plans(plan, t)]
    try:
        aggregator = Aggregator(round_id, secure.query_sha256, identities, t, dim)
    except ValueError as exc:
        raise QueryError(str(exc), field="--threshold") from None
    steps = _Round(invited, dialer, timeout, round_id)
    steps.hook = hook
    for node_id in invited:
        if progress is not None:
            progress(node_id, "waiting")
    requests = {n: signer.sign_for(n, query_id, plan.query, secure) for n in invited}
    opened = steps.call(
        "advertise", {n: steps.request("advertise", query=requests[n]) for n in invited}
    )
    charged = {n: r.rho_charged for n, r in opened.items()}
    for node_id, reply in opened.items():
        if list(reply.gammas) != gammas or reply.dim != dim:
            steps.drop(node_id, NodeFailure.of(
                Reason.SECURE_ROUND_REFUSED, f"node {node_id} scaled its share differently",
            ))  # fmt: skip
            continue
        steps.accept(node_id, "advertise", lambda r: aggregator.add_advertisement(_only(r)), reply)
    try:
        ads = [wire_of(e) for e in aggregator.advertisements()]
        shared = steps.call("share", {n: steps.request("share", envelopes=ads)
                                      for n in invited if n not in steps.failures})  # fmt: skip
        for node_id, reply in shared.items():
            bundles = envelopes_of(list(reply.envelopes))
            steps.accept(node_id, "share", aggregator.add_shares, node_id, bundles)
        masked = steps.call("mask", {
            n: steps.request("mask", envelopes=[wire_of(e) for e in aggregator.bundles_for(n)])
            for n in invited if n not in steps.failures
        })  # fmt: skip
        for node_id, reply in masked.items():
            steps.accept(node_id, "mask", lambda r: aggregator.add_masked(_only(r)), reply)
        survivors = aggregator.close_inputs()
        confirmed = steps.call("confirm", {
            n: steps.request("confirm", survivors=survivors) for n in survivors
        })  # fmt: skip
        for node_id, reply in confirmed.items():
            steps.accept(node_id, "confirm", lambda r: aggregator.add_confirmation(_only(r)), reply)
        confirmations = [wire_of(e) for e in aggregator.confirmations()]
        unmasked = steps.call("unmask", {
            n: steps.request("unmask", envelopes=confirmations)
            for n in survivors if n not in steps.failures
        })  # fmt: skip
        for node_id, reply in unmasked.items():
            steps.accept(node_id, "unmask", lambda r: aggregator.add_unmask(_only(r)), reply)
        total = aggregator.total()
    except RoundError as exc:
        detail = "; ".join(f"{n}: {f.message}" for n, f in sorted(steps.failures.items()))
        raise QueryError(
            f"the secure round failed ({exc}); every node that opened it has charged it",
            reason=Reason.SECURE_ROUND_REFUSED,
            hint=detail or "start a new round",
        ) from None
    if progress is not None:
        for node_id in invited:
            progress(node_id, "answered" if node_id in survivors else "failed")
    return survivors, total, charged, steps.failures, requests
