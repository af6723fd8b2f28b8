"""gRPC servicer: proto in, domain call, proto out. Errors become status plus reason."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import grpc

from indicators.errors import ERROR_METADATA_KEY, FedstatsError
from indicators.spec import Query
from node.ledger import BudgetState
from node.service import NodeService, QueryAnswer
from privacy.budget import DEFAULT_DELTA, epsilon_for
from privacy.disclosure import DisclosureRules
from protos import node_pb2 as pb
from protos import node_pb2_grpc as pb_grpc

__all__ = ["REASON_STATUS", "NodeServicer", "budget_proto", "disclosure_proto"]

log = logging.getLogger(__name__)

# Machine-readable reasons and the gRPC status each travels with.
REASON_STATUS: dict[str, grpc.StatusCode] = {
    "MALFORMED_QUERY": grpc.StatusCode.INVALID_ARGUMENT,
    "UNKNOWN_INDICATOR": grpc.StatusCode.INVALID_ARGUMENT,
    "UNKNOWN_DIMENSION": grpc.StatusCode.INVALID_ARGUMENT,
    "TOO_MANY_CELLS": grpc.StatusCode.INVALID_ARGUMENT,
    "VARIABLE_NOT_PROVIDED": grpc.StatusCode.FAILED_PRECONDITION,
    "QUERY_ID_REUSED": grpc.StatusCode.ALREADY_EXISTS,
    "QUERY_IN_PROGRESS": grpc.StatusCode.ABORTED,
    "BUDGET_EXCEEDED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "QUERY_CAP_EXCEEDED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "INTERNAL": grpc.StatusCode.INTERNAL,
}

Req = TypeVar("Req")
Resp = TypeVar("Resp")


def _translated(
    method: Callable[[NodeServicer, Req, grpc.ServicerContext], Resp],
) -> Callable[[NodeServicer, Req, grpc.ServicerContext], Resp]:
    """Turn fedstats errors into a status plus ErrorDetail; hide everything else."""

    def wrapper(self: NodeServicer, request: Req, context: grpc.ServicerContext) -> Resp:
        try:
            return method(self, request, context)
        except FedstatsError as exc:
            detail = pb.ErrorDetail(
                reason=exc.reason, message=exc.message, hint=exc.hint, field=exc.field
            )
            code = REASON_STATUS.get(exc.reason, grpc.StatusCode.FAILED_PRECONDITION)
        except Exception:
            log.exception("internal error in %s", method.__name__)
            detail = pb.ErrorDetail(
                reason="INTERNAL", message="internal error; the node's log has the details"
            )
            code = grpc.StatusCode.INTERNAL
        context.set_trailing_metadata(((ERROR_METADATA_KEY, detail.SerializeToString()),))
        context.abort(code, f"{detail.reason}: {detail.message}")

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


class NodeServicer(pb_grpc.NodeServiceServicer):
    """Thin adapter from NodeService to the wire."""

    def __init__(self, service: NodeService) -> None:
        self.service = service

    @_translated
    def Describe(  # noqa: N802 - gRPC method name
        self, request: pb.DescribeRequest, context: grpc.ServicerContext
    ) -> pb.NodeDescription:
        """What the node serves."""
        svc, cfg = self.service, self.service.config
        shares = svc.coverage_floor()
        return pb.NodeDescription(
            node_id=cfg.id,
            geo=cfg.geo,
            name=cfg.name,
            time_period=cfg.dataset.time_period,
            source=cfg.dataset.source,
            variables=[
                pb.VariableCoverage(
                    name=n, mapped_share_floor=shares[n], codes=svc.variable_codes(n)
                )
                for n in cfg.variables
            ],
            indicators=svc.indicators(),
            budget=budget_proto(cfg.dataset_id, svc.budget()),
            disclosure=disclosure_proto(cfg.disclosure),
        )

    @_translated
    def RunQuery(  # noqa: N802 - gRPC method name
        self, request: pb.QueryRequest, context: grpc.ServicerContext
    ) -> pb.QueryResult:
        """Answer one query."""
        spec = request.spec
        query = Query(
            indicators=tuple(spec.indicators),
            group_dim=spec.group_dim,
            breakdowns=tuple(spec.breakdowns),
            comparator=spec.comparator,
            rho=spec.rho,
        )
        answer = self.service.run_query(request.query_id, query)
        return self._result(answer)

    @_translated
    def GetBudget(  # noqa: N802 - gRPC method name
        self, request: pb.BudgetRequest, context: grpc.ServicerContext
    ) -> pb.BudgetStatus:
        """The ledger's state."""
        return budget_proto(self.service.config.dataset_id, self.service.budget())

    def _result(self, answer: QueryAnswer) -> pb.QueryResult:
        cfg = self.service.config
        return pb.QueryResult(
            query_id=answer.query_id,
            node_id=cfg.id,
            geo=cfg.geo,
            time_period=cfg.dataset.time_period,
            source=cfg.dataset.source,
            tables=[
                pb.Table(
                    key=t.key,
                    dims=[pb.Dimension(name=n, codes=c) for n, c in t.dims],
                    counts=t.counts,
                    sigma=t.sigma,
                    rho=t.rho,
                    sensitivity=t.sensitivity,
                    sample_counts=t.samples or [],
                    sample_sigma=t.sample_sigma,
                    sample_rho=t.sample_rho,
                    cell_flags=t.cell_flags,
                )
                for t in answer.tables
            ],
            rho_charged=answer.rho_charged,
            cached=answer.cached,
            budget=budget_proto(cfg.dataset_id, self.service.budget()),
            disclosure=disclosure_proto(cfg.disclosure),
            design_effect=cfg.dataset.design_effect,
        )


def budget_proto(dataset: str, state: BudgetState) -> pb.BudgetStatus:
    """The wire form of a budget, with the spent rho as (epsilon, delta)."""
    return pb.BudgetStatus(
        dataset=dataset,
        rho_total=state.total,
        rho_spent=state.spent,
        rho_remaining=state.remaining,
        max_rho_per_query=state.max_per_query,
        epsilon_spent=epsilon_for(state.spent),
        delta=DEFAULT_DELTA,
    )


def disclosure_proto(rules: DisclosureRules) -> pb.Disclosure:
    """The wire form of a node's disclosure rules."""
    return pb.Disclosure(
        min_count=rules.min_count, unreliable_below=rules.unreliable_below, max_cv=rules.max_cv
    )
