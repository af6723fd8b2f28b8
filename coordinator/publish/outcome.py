"""What the publishing floor reads of a query: its plan, its combined rows, its nodes.

The writers sit above the combined rows and import nothing back from the pipeline that
produced them: they read a query's outcome through this protocol, which the pipeline's
own outcome type satisfies as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from coordinator.client import NodeFailure
from coordinator.results import NodeTables
from coordinator.rows import BenchmarkRow
from indicators.spec import Plan

__all__ = ["Outcome"]


class Outcome(Protocol):
    """One query's outcome, as the outputs read it.

    Attributes:
        query_id: The query's id (the same on every node).
        plan: The compiled query.
        rows: Benchmark rows, per indicator: per node in the federation's order, then pooled.
        answers: Tables of the nodes whose results verified.
        failures: Why the other nodes gave none.
        rho_charged: Rho each answering node charged for this call.
        missing: Per node, the indicators it could not answer and why.
    """

    @property
    def query_id(self) -> str: ...  # noqa: D102

    @property
    def plan(self) -> Plan: ...  # noqa: D102

    @property
    def rows(self) -> Sequence[BenchmarkRow]: ...  # noqa: D102

    @property
    def answers(self) -> Mapping[str, NodeTables]: ...  # noqa: D102

    @property
    def failures(self) -> Mapping[str, NodeFailure]: ...  # noqa: D102

    @property
    def rho_charged(self) -> Mapping[str, float]: ...  # noqa: D102

    @property
    def missing(self) -> Mapping[str, Mapping[str, str]]: ...  # noqa: D102
