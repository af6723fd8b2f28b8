"""Kinds of query: what to ask each node, and how its answers become rows.

As in Flower, where a strategy says what to ask each client and how to aggregate the
results and failures, a query kind supplies the two things that differ between kinds;
`coordinator.run` (asking) and `coordinator.provenance` (verifying later) share
everything else:

- planning per node: the plan of the whole query for one node, from what it says it
  serves (its Describe entry) or, when verifying, from its signed result;
- row building: the benchmark rows of the answers.

Two kinds:

- `Harmonised`: a group dimension of the catalogue. One plan serves every node; rows per
  node, then pooled.
- `Local`: a node's own ``local:NAME`` group dimension. Each node's plan uses its own
  code list; its rows are its own, never pooled, and every one is flagged ``d``. A node
  that does not provide the variable is not asked (``VARIABLE_NOT_PROVIDED``) and has no
  rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace

from common.errors import FedstatsError, Reason
from coordinator.client import NodeFailure
from coordinator.combine import benchmark_rows
from coordinator.compat import unanswerable
from coordinator.flags import DEVIATES, Flags
from coordinator.pooling import Pooling, check_pooling
from coordinator.results import NodeTables
from coordinator.rowmeta import RowMeta, describe_rows
from coordinator.rows import BenchmarkRow
from indicators.catalogue import BELOW_LINE, CATALOGUE
from indicators.spec import Plan, Query, compile_query, is_local
from indicators.variables import UNK, Variable
from protos import node_pb2 as pb

__all__ = [
    "Gathered",
    "Harmonised",
    "Local",
    "NodePlans",
    "QueryKind",
    "kind_of",
    "local_variable",
    "narrow",
    "plan_nodes",
]


class QueryKind(ABC):
    """What differs between kinds of query: planning per node and row building."""

    @abstractmethod
    def plan_described(self, node_id: str, description: pb.NodeDescription) -> Plan | NodeFailure:
        """The node's plan of the whole query from what it serves, or why it cannot answer."""

    @abstractmethod
    def plan_answered(self, result: pb.QueryResult) -> Plan:
        """The node's plan of the whole query, from its signed result.

        Raises:
            FedstatsError: When the result does not say enough to plan from.
        """

    @abstractmethod
    def rows(self, gathered: Gathered) -> list[BenchmarkRow]:
        """The benchmark rows of what the nodes answered."""

    @abstractmethod
    def outcome_plan(self, gathered: Gathered) -> Plan:
        """The plan an outcome names, for the outputs."""


@dataclass(frozen=True)
class Gathered:
    """What came back from the nodes of one query, asked now or read from provenance.

    Attributes:
        order: Every node's id, in output order.
        plans: Each planned node's plan of the whole query.
        answers: The tables of the nodes that answered.
        geos: Geo codes of nodes known without an answer (their rows still name one).
        not_provided: Nodes not asked because they provide none of the query's variables.
        periods: Latest reference periods of nodes known without an answer.
        levels: Territorial levels of the geo codes of nodes known without an answer.
    """

    order: list[str]
    plans: dict[str, Plan]
    answers: dict[str, NodeTables]
    geos: dict[str, str]
    not_provided: frozenset[str] = frozenset()
    periods: dict[str, str] = field(default_factory=dict)
    levels: dict[str, str] = field(default_factory=dict)

    @property
    def answering(self) -> list[str]:
        """The nodes that answered, in output order."""
        return [n for n in self.order if n in self.answers]


@dataclass(frozen=True)
class Harmonised(QueryKind):
    """A query by a harmonised group dimension: one plan for every node, pooled rows."""

    plan: Plan
    pooling: Pooling = field(default_factory=Pooling)

    def plan_described(self, node_id: str, description: pb.NodeDescription) -> Plan | NodeFailure:
        """The query's plan: the same for every node."""
        return self.plan

    def plan_answered(self, result: pb.QueryResult) -> Plan:
        """The query's plan: the same for every node."""
        return self.plan

    def rows(self, gathered: Gathered) -> list[BenchmarkRow]:
        """Per indicator: each node's rows (without values where it did not answer), pooled."""
        meta = RowMeta(self.plan, gathered.answers, self.pooling, gathered.levels)
        rows = benchmark_rows(
            self.plan, gathered.order, gathered.answers, gathered.geos,
            periods=gathered.periods, pooled=self.pooling, not_provided=gathered.not_provided,
            described=meta.node_fields,
        )  # fmt: skip
        return meta.describe(rows)

    def outcome_plan(self, gathered: Gathered) -> Plan:
        """The query's plan."""
        return self.plan


@dataclass(frozen=True)
class Local(QueryKind):
    """A query by a node's own ``local:NAME`` group dimension: a plan per node."""

    query: Query

    def plan_described(self, node_id: str, description: pb.NodeDescription) -> Plan | NodeFailure:
        """The plan over the code list the node describes, or ``VARIABLE_NOT_PROVIDED``."""
        variable = local_variable(description, self.query.group_dim)
        if variable is None:
            return NodeFailure.of(
                Reason.VARIABLE_NOT_PROVIDED,
                f"node {node_id} does not provide the local variable {self.query.group_dim}",
            )
        return self._plan(variable)

    def plan_answered(self, result: pb.QueryResult) -> Plan:
        """The plan over the code list of the group dimension of the node's first table."""
        if not result.tables or not result.tables[0].dims:
            raise FedstatsError(
                f"node {result.node_id} answered with no table", reason=Reason.MALFORMED_RESULT
            )
        name = self.query.group_dim
        try:
            return self._plan(Variable(name, tuple(result.tables[0].dims[0].codes), name))
        except ValueError as exc:
            raise FedstatsError(str(exc), reason=Reason.MALFORMED_RESULT) from None

    def _plan(self, variable: Variable) -> Plan:
        return compile_query(self.query, {self.query.group_dim: variable})

    def rows(self, gathered: Gathered) -> list[BenchmarkRow]:
        """Per answering node, its own rows, flagged ``d``; no pooled rows."""
        rows: list[BenchmarkRow] = []
        for node_id in gathered.answering:
            answers = {node_id: gathered.answers[node_id]}
            plan = gathered.plans[node_id]
            own = benchmark_rows(plan, [node_id], answers, pooled=False, flagged=Flags(DEVIATES))
            rows += describe_rows(own, plan, answers, Pooling(enabled=False))
        return rows

    def outcome_plan(self, gathered: Gathered) -> Plan:
        """The first answering node's plan; with none, a plan whose group holds ``UNK`` only."""
        if gathered.answering:
            return gathered.plans[gathered.answering[0]]
        return self._plan(Variable(self.query.group_dim, (UNK,), ""))


def kind_of(query: Query, pooling: Pooling | None = None) -> QueryKind:
    """The kind of a query, checked before any node is asked.

    Args:
        query: The query.
        pooling: How pooled rows aggregate the nodes (a local query has none).

    Raises:
        QueryError: When the query is malformed, or its breakdowns cannot carry the pooling.
    """
    if is_local(query.group_dim):
        query.validate()
        return Local(query)
    plan = compile_query(query)
    pooling = pooling or Pooling()
    check_pooling(pooling, plan)
    return Harmonised(plan, pooling)


def local_variable(description: pb.NodeDescription, name: str) -> Variable | None:
    """A node's own local variable from its Describe entry, or None when it has none."""
    for entry in description.variables:
        if entry.name == name:
            codes = [c for c in entry.codes if c != UNK]
            if codes and len(set(codes)) == len(codes):
                return Variable(name, (*codes, UNK), name)
    return None


def narrow(plan: Plan, asked: Query) -> Plan:
    """The plan of the query a node was asked, with the group codes of ``plan``.

    The node may have been asked fewer indicators than ``plan`` holds.
    """
    group = plan.tables[0].dims[0]
    if not is_local(group.name):
        return compile_query(asked)
    return compile_query(asked, {group.name: Variable(group.name, group.codes, group.name)})


@dataclass(frozen=True)
class NodePlans:
    """What to ask each node.

    Attributes:
        plans: Each planned node's plan of the whole query.
        asked: Each node to ask, with the plan of what it is asked: the indicators whose
            variables it provides.
        missing: Per planned node, the indicators it cannot answer and why (its rows are
            without values, status ``not_provided``).
        failures: The nodes that cannot be asked at all, and why.
    """

    plans: dict[str, Plan] = field(default_factory=dict)
    asked: dict[str, Plan] = field(default_factory=dict)
    missing: dict[str, dict[str, str]] = field(default_factory=dict)
    failures: dict[str, NodeFailure] = field(default_factory=dict)


def plan_nodes(
    kind: QueryKind, descriptions: dict[str, pb.NodeDescription | NodeFailure]
) -> NodePlans:
    """Each node's plan and what to ask it, from what it said it serves."""
    out = NodePlans()
    for node_id, description in descriptions.items():
        if isinstance(description, NodeFailure):
            out.failures[node_id] = description
            continue
        plan = kind.plan_described(node_id, description)
        if isinstance(plan, NodeFailure):
            out.failures[node_id] = plan
            continue
        unknown = unanswerable(node_id, description, plan.query.indicators)
        if isinstance(unknown, NodeFailure):  # its release cannot be asked this query
            out.failures[node_id] = unknown
            continue
        out.plans[node_id] = plan
        period = plan.query.time_period
        if period and period not in description.time_periods:
            out.failures[node_id] = NodeFailure.of(
                Reason.PERIOD_NOT_SERVED,
                f"node {node_id} serves no data for {period} "
                f"(it serves {', '.join(description.time_periods) or 'none'})",
            )
            continue
        provided = {v.name for v in description.variables}
        lacking = {**_lacking(plan, node_id, provided), **unknown}  # unknown to its release
        lacking |= _without_line(plan, node_id, description)
        out.missing[node_id] = lacking
        answerable = tuple(n for n in plan.query.indicators if n not in lacking)
        if answerable:
            out.asked[node_id] = narrow(plan, replace(plan.query, indicators=answerable))
        else:
            out.failures[node_id] = NodeFailure.of(
                Reason.VARIABLE_NOT_PROVIDED, "; ".join(dict.fromkeys(lacking.values()))
            )
    return out


def _without_line(plan: Plan, node_id: str, description: pb.NodeDescription) -> dict[str, str]:
    """Poverty rates of a node that has no national poverty line (none asked, none spent).

    A node lists a poverty rate among its indicators only when it has a national line; a
    release that advertises no capabilities is asked and answers with its own rule.
    """
    if plan.query.poverty_line is not None or not description.HasField("capabilities"):
        return {}
    listed = set(description.indicators)
    return {
        name: f"node {node_id} has no national poverty line"
        for name in plan.query.indicators
        if CATALOGUE[name].kind == BELOW_LINE and name not in listed
    }


def _lacking(plan: Plan, node_id: str, provided: set[str]) -> dict[str, str]:
    """The indicators of the plan whose variables the node does not provide, and why."""
    lacking: dict[str, str] = {}
    for name in plan.query.indicators:
        _, spec = plan.indicator(name)
        absent = [v for v in spec.variables() if v not in provided]
        if absent:
            lacking[name] = f"node {node_id} does not provide {', '.join(absent)}"
    return lacking
