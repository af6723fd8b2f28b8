"""gRPC servicer: proto in, domain call, proto out. Errors become status plus reason."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import NoReturn, TypeVar

import grpc

from common.errors import ERROR_METADATA_KEY, AccessError, FedstatsError, Reason
from node.gatekeeper import Gatekeeper, RequestInfo
from node.ledger import BudgetState
from node.service import Capabilities, NodeService, QueryAnswer
from node.tlsfront import PeerVerdict
from privacy.budget import DEFAULT_DELTA, epsilon_for
from privacy.disclosure import DisclosureRules
from protos import node_pb2 as pb
from protos import node_pb2_grpc as pb_grpc

__all__ = [
    "NodeServicer",
    "budget_proto",
    "capabilities_proto",
    "disclosure_proto",
    "error_detail",
]

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Resp = TypeVar("Resp")


def _internal(exc: BaseException, method: str) -> FedstatsError:
    """Log an unexpected error with its trace; the wire gets only a generic message."""
    log.error("internal error in %s", method, exc_info=exc)
    return FedstatsError("internal error; the node's log has the details", reason=Reason.INTERNAL)


def error_detail(error: FedstatsError) -> pb.ErrorDetail:
    """The wire form of an error: its catalogued reason as the enum, and its texts."""
    return pb.ErrorDetail(
        reason=error.reason.value,
        code=f"REASON_{error.reason.value}",
        message=error.message,
        hint=error.hint,
        field=error.field,
    )


def _abort(context: grpc.ServicerContext, error: FedstatsError) -> NoReturn:
    """End the call with the reason's status and the ErrorDetail in trailing metadata."""
    detail = error_detail(error)
    context.set_trailing_metadata(((ERROR_METADATA_KEY, detail.SerializeToString()),))
    context.abort(grpc.StatusCode[error.reason.status], f"{error.reason}: {detail.message}")


VerdictLookup = Callable[[str], PeerVerdict | None]


def coordinator_of(context: grpc.ServicerContext, verdicts: VerdictLookup | None) -> str | None:
    """The coordinator id of the TLS peer; None when the node serves plaintext.

    Args:
        context: The call.
        verdicts: The TLS front's verdict of each relayed connection (None: plaintext).

    Raises:
        AccessError: A connection that did not come through the TLS front, a refused
            certificate (missing, untrusted, expired, not yet valid), or one that names
            no coordinator.
    """
    if verdicts is None:
        return None
    verdict = verdicts(context.peer())
    if verdict is None:
        raise AccessError(
            "the connection did not come through the node's TLS front",
            reason=Reason.UNAUTHENTICATED,
            hint="connect to the node's public address with mutual TLS",
        )
    if verdict.reason:
        raise AccessError(
            verdict.detail,
            reason=verdict.reason,
            hint="present a valid certificate issued by the federation CA "
            "(`fedstats certs issue --coordinator ID`)",
        )
    if verdict.role != "coordinator":
        raise AccessError(
            f"the client certificate names a {verdict.role}, not a coordinator",
            reason=Reason.NOT_A_COORDINATOR,
            hint="issue the coordinator's certificate with `fedstats certs issue --coordinator ID`",
        )
    return verdict.ident


def _translated(
    method: Callable[[NodeServicer, Req, grpc.ServicerContext], Resp],
) -> Callable[[NodeServicer, Req, grpc.ServicerContext], Resp]:
    """Turn fedstats errors into a status plus ErrorDetail; hide everything else."""

    def wrapper(self: NodeServicer, request: Req, context: grpc.ServicerContext) -> Resp:
        try:
            return method(self, request, context)
        except FedstatsError as exc:
            _abort(context, exc)
        except Exception as exc:
            _abort(context, _internal(exc, method.__name__))

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


class NodeServicer(pb_grpc.NodeServiceServicer):
    """Thin adapter from NodeService to the wire."""

    def __init__(self, service: NodeService, verdicts: VerdictLookup | None) -> None:
        self.service = service
        self.verdicts = verdicts
        self.gate = Gatekeeper(service.config.id, service.config.policy, verdicts is not None)

    def _allowed_reader(self, context: grpc.ServicerContext) -> None:
        """Describe and GetBudget: only coordinators the policy lists (refusals logged)."""
        coordinator = ""
        try:
            peer = coordinator_of(context, self.verdicts)
            if peer is not None:
                coordinator = peer
                self.service.config.policy.grant(peer)
        except FedstatsError as error:
            self.service.record_refusal("", coordinator, "", error)
            raise

    @_translated
    def Describe(  # noqa: N802 - gRPC method name
        self, request: pb.DescribeRequest, context: grpc.ServicerContext
    ) -> pb.NodeDescription:
        """What the node serves."""
        self._allowed_reader(context)
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
                    name=n,
                    mapped_share_floor=shares[n],
                    codes=svc.variable_codes(n),
                    deviation=svc.deviations().get(n, ""),
                )
                for n in svc.provided()
            ],
            indicators=svc.indicators(),
            time_periods=list(cfg.periods),
            budget=budget_proto(cfg.dataset_id, svc.budget()),
            disclosure=disclosure_proto(cfg.disclosure),
            capabilities=capabilities_proto(svc.capabilities()),
        )

    def RunQuery(  # noqa: N802 - gRPC method name
        self, request: pb.SignedQuery, context: grpc.ServicerContext
    ) -> pb.SignedResult:
        """Admit a signed query, answer it, sign the result; log every refusal."""
        info = RequestInfo(request_sha256=hashlib.sha256(request.request).hexdigest())
        try:
            peer = coordinator_of(context, self.verdicts)
            admitted = self.gate.admit(request.request, request.signature, peer, info)
            answer = self.service.run_query(
                admitted.query_id,
                admitted.query,
                grant=admitted.grant,
                request_sha256=admitted.request_sha256,
            )
            result = self._result(answer).SerializeToString()
            return pb.SignedResult(
                result=result, signature=self.service.sign(result), key_id=self.service.key_id
            )
        except Exception as exc:
            error = exc if isinstance(exc, FedstatsError) else _internal(exc, "RunQuery")
            try:
                self.service.record_refusal(
                    info.query_id, info.coordinator, info.request_sha256, error
                )
            except Exception as audit_error:
                log.error("could not log the refusal of %r", info.query_id, exc_info=audit_error)
            _abort(context, error)

    @_translated
    def GetBudget(  # noqa: N802 - gRPC method name
        self, request: pb.BudgetRequest, context: grpc.ServicerContext
    ) -> pb.BudgetStatus:
        """The ledger's state."""
        self._allowed_reader(context)
        return budget_proto(self.service.config.dataset_id, self.service.budget())

    def _result(self, answer: QueryAnswer) -> pb.QueryResult:
        served = self.service.period(answer.time_period or None)
        cfg = served.config
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
                    margins=[
                        pb.Margin(
                            codes=m.codes,
                            observations=m.observations,
                            counts=m.counts,
                            sigma=m.sigma,
                            rho=m.rho,
                            sensitivity=m.sensitivity,
                        )
                        for m in t.margins
                    ],
                )
                for t in answer.tables
            ],
            rho_charged=answer.rho_charged,
            cached=answer.cached,
            budget=budget_proto(cfg.dataset_id, served.ledger.state()),
            disclosure=disclosure_proto(cfg.disclosure),
            design_effect=cfg.dataset.design_effect,
            poverty_line=cfg.dataset.poverty_line or 0.0,
            deviations=self.service.deviations(),
            country=cfg.country,
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
        min_count=rules.min_count,
        unreliable_below=rules.unreliable_below,
        max_cv=rules.max_cv,
        rules=rules.name,
        unknown_flag=rules.unknown_flag,
        unknown_suppress=rules.unknown_suppress,
        weighted=rules.weighted,
        certainty=rules.certainty,
    )


def capabilities_proto(capabilities: Capabilities) -> pb.Capabilities:
    """The wire form of what a node can do; the protocol is the proto package served."""
    return pb.Capabilities(
        protocol=pb.DESCRIPTOR.package,
        software_version=capabilities.software_version,
        catalogue_version=capabilities.catalogue_version,
        catalogue=capabilities.catalogue,
        engines=capabilities.engines,
        disclosure_rules=capabilities.disclosure_rules,
        secure_aggregation=capabilities.secure_aggregation,
        ledger_schema=capabilities.ledger_schema,
    )
