"""gRPC servicer: proto in, domain call, proto out. Errors become status plus reason.

Requests are parsed by `node_handlers` without ever raising: bytes that are not the
method's message reach the method as `Malformed` and are answered ``INVALID_ARGUMENT``
with an ErrorDetail, never ``INTERNAL``. Every ErrorDetail is bounded in size
(`MAX_DETAIL_CHARS` per text), whatever the request echoed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, NoReturn, TypeVar

import grpc
from cryptography import x509
from google.protobuf.message import DecodeError, Message

from common.errors import ERROR_METADATA_KEY, AccessError, FedstatsError, QueryError, Reason
from node.coverage import CoverageFacts, ceil_share, unmapped_shares_ceil
from node.gatekeeper import Admitted, Gatekeeper, RequestInfo
from node.ledger import BudgetState
from node.secure_service import SecureRounds, refusal
from node.service import Capabilities, NodeService, QueryAnswer
from privacy.budget import DEFAULT_DELTA, epsilon_for
from privacy.disclosure import DisclosureRules
from protos import node_pb2 as pb
from protos import node_pb2_grpc as pb_grpc
from security.certificates import parse_identity, uris
from security.signing import DESCRIPTION_DOMAIN, IDENTITY_METADATA_KEY

__all__ = [
    "MAX_DETAIL_CHARS",
    "Malformed",
    "NodeServicer",
    "budget_proto",
    "capabilities_proto",
    "disclosure_proto",
    "error_detail",
    "node_handlers",
]

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Resp = TypeVar("Resp")

MAX_DETAIL_CHARS = 512
"""The longest text of an ErrorDetail: a refusal never echoes a whole request back."""


@dataclass(frozen=True)
class Malformed:
    """Request bytes that do not parse as the method's message."""

    method: str
    size: int


def _internal(exc: BaseException, method: str) -> FedstatsError:
    """Log an unexpected error with its trace; the wire gets only a generic message."""
    log.error("internal error in %s", method, exc_info=exc)
    return FedstatsError("internal error; the node's log has the details", reason=Reason.INTERNAL)


def error_detail(error: FedstatsError) -> pb.ErrorDetail:
    """The wire form of an error: its catalogued reason as the enum, and its texts."""
    return pb.ErrorDetail(
        reason=error.reason.value,
        code=f"REASON_{error.reason.value}",
        message=_bounded(error.message),
        hint=_bounded(error.hint),
        field=_bounded(error.field),
    )


def _bounded(text: str) -> str:
    if len(text) <= MAX_DETAIL_CHARS:
        return text
    return f"{text[: MAX_DETAIL_CHARS - 40]}... ({len(text)} characters, cut)"


def _abort(context: grpc.ServicerContext, error: FedstatsError) -> NoReturn:
    """End the call with the reason's status and the ErrorDetail in trailing metadata."""
    detail = error_detail(error)
    context.set_trailing_metadata(((ERROR_METADATA_KEY, detail.SerializeToString()),))
    context.abort(grpc.StatusCode[error.reason.status], f"{error.reason}: {detail.message}")


def _signed_identity(context: grpc.ServicerContext) -> tuple[bytes, bytes]:
    """The request bytes and signature of the caller's signed identity (metadata).

    Raises:
        AccessError: The call carries none, or one that does not parse (UNAUTHENTICATED).
    """
    values = [v for k, v in context.invocation_metadata() if k == IDENTITY_METADATA_KEY]
    signed = None
    if values and isinstance(values[0], bytes):
        with contextlib.suppress(DecodeError):
            signed = pb.SignedQuery.FromString(values[0])
    if signed is None:
        raise AccessError(
            "without TLS, Describe and GetBudget need the coordinator's signed identity",
            reason=Reason.UNAUTHENTICATED,
            hint=f"send a signed QueryRequest with no spec as metadata {IDENTITY_METADATA_KEY} "
            "(fedstats query does)",
        )
    return signed.request, signed.signature


def coordinator_of(context: grpc.ServicerContext, tls: bool) -> str | None:
    """The coordinator id of the TLS peer; None when the node serves plaintext.

    gRPC's handshake has already verified the peer's certificate against the federation
    CA and its dates (a peer without one never gets here); this reads the identity.

    Raises:
        AccessError: A certificate that names no fedstats identity, or not a coordinator.
    """
    if not tls:
        return None
    pem = (context.auth_context().get("x509_pem_cert") or [b""])[0]
    if not isinstance(pem, bytes) or not pem:
        raise AccessError(
            "no verified client certificate on this connection",
            reason=Reason.UNAUTHENTICATED,
            hint="connect with mutual TLS and a certificate issued by the federation CA",
        )
    identities = _identities(pem)
    if not identities:
        raise AccessError(
            "the client certificate names no fedstats:// identity",
            reason=Reason.NO_IDENTITY,
            hint="issue the coordinator's certificate with `fedstats certs issue --coordinator ID`",
        )
    role, ident = identities[0]
    if role != "coordinator":
        raise AccessError(
            f"the client certificate names a {role}, not a coordinator",
            reason=Reason.NOT_A_COORDINATOR,
            hint="issue the coordinator's certificate with `fedstats certs issue --coordinator ID`",
        )
    return ident


@functools.lru_cache(maxsize=256)
def _identities(pem: bytes) -> tuple[tuple[str, str], ...]:
    """The fedstats identities a certificate's URI SANs name, in order.

    Parsed once per certificate: a coordinator's every call on every connection sends
    the same PEM bytes, and what they name does not change.
    """
    cert = x509.load_pem_x509_certificate(pem)
    return tuple(i for i in map(parse_identity, uris(cert)) if i is not None)


def _refuse_malformed(request: object) -> None:
    if isinstance(request, Malformed):
        raise QueryError(
            f"the {request.method} request ({request.size} bytes) is not a valid message",
            reason=Reason.MALFORMED_QUERY,
            field="request",
            hint="send the message of fedstats.v1 that the method takes",
        )


def _translated(
    method: Callable[[NodeServicer, Req, grpc.ServicerContext], Resp],
) -> Callable[[NodeServicer, Req, grpc.ServicerContext], Resp]:
    """Turn fedstats errors into a status plus ErrorDetail; hide everything else."""

    def wrapper(self: NodeServicer, request: Req, context: grpc.ServicerContext) -> Resp:
        try:
            _refuse_malformed(request)
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

    def __init__(self, service: NodeService, *, tls: bool) -> None:
        self.service = service
        self.tls = tls
        self.gate = Gatekeeper(service.config.id, service.config.policy, tls)
        self.rounds = SecureRounds(service)
        self._lock = threading.Lock()
        self._signed: dict[BudgetState, pb.SignedDescription] = {}

    def _allowed_reader(self, context: grpc.ServicerContext) -> None:
        """Describe and GetBudget: only coordinators the policy lists (refusals logged).

        Over mutual TLS the certificate names the caller; without TLS (``--insecure``) the
        caller's signed identity in the call's metadata does, checked as a query's
        envelope. A call with neither is refused (UNAUTHENTICATED) and, coming from
        nobody, leaves nothing in the audit log.
        """
        coordinator = ""
        try:
            peer = coordinator_of(context, self.tls)
            if peer is None:
                peer = self.gate.identify(*_signed_identity(context))
            coordinator = peer
            self.service.config.policy.grant(peer)
        except FedstatsError as error:
            if error.reason != Reason.UNAUTHENTICATED:
                self.service.record_refusal("", coordinator, "", error)
            raise

    @_translated
    def Describe(  # noqa: N802 - gRPC method name
        self, request: pb.DescribeRequest, context: grpc.ServicerContext
    ) -> pb.NodeDescription:
        """What the node serves."""
        self._allowed_reader(context)
        return self._description(self.service.budget())

    @_translated
    def DescribeSigned(  # noqa: N802 - gRPC method name
        self, request: pb.DescribeRequest, context: grpc.ServicerContext
    ) -> pb.SignedDescription:
        """What the node serves, signed with its result key (``DESCRIPTION_DOMAIN`` first).

        The budget is read from the ledger on every call; the signed bytes are kept and
        sent again while it stays the same (Ed25519 signs deterministically, so they are
        the bytes a fresh signature would give).
        """
        self._allowed_reader(context)
        budget = self.service.budget()
        with self._lock:
            signed = self._signed.get(budget)
        if signed is None:
            description = self._description(budget).SerializeToString()
            signed = pb.SignedDescription(
                description=description,
                signature=self.service.sign(DESCRIPTION_DOMAIN + description),
                key_id=self.service.key_id,
            )
            with self._lock:
                self._signed = {budget: signed}
        return signed

    def _description(self, budget: BudgetState) -> pb.NodeDescription:
        """The node's description with ``budget``: everything else is built once."""
        description = pb.NodeDescription()
        description.CopyFrom(self._static_description)
        description.budget.CopyFrom(budget_proto(self.service.config.dataset_id, budget))
        return description

    @cached_property
    def _static_description(self) -> pb.NodeDescription:
        """The description without its budget: config, data coverage and capabilities.

        None of it changes while the node runs: the config and the data are read once,
        when the service starts.
        """
        svc, cfg = self.service, self.service.config
        shares = svc.coverage_floor()
        problems = svc.coverage_problems()
        deviations, concepts = svc.deviations(), svc.concepts()
        clipping = svc.engine.clipping
        described = pb.NodeDescription(
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
                    deviation=deviations.get(n, ""),
                    concepts=concepts.get(n, ""),
                    **asdict(problems.get(n, CoverageFacts())),
                )
                for n in svc.provided()
            ],
            indicators=svc.indicators(),
            time_periods=list(cfg.periods),
            disclosure=disclosure_proto(cfg.disclosure),
            capabilities=capabilities_proto(svc.capabilities()),
            geo_level=cfg.geo_level,
            clipping=None
            if clipping is None
            else pb.WeightClipping(
                max_weight=clipping.max_weight,
                clipped_share_ceil=ceil_share(clipping.clipped_share),
                weight_removed_share_ceil=ceil_share(clipping.weight_share_removed),
            ),
        )
        described.description_sha256 = description_digest(described, svc.key_id)
        return described

    def _check_described(self, admitted: Admitted) -> str:
        """Refuse a query planned from a description this node no longer serves.

        A coordinator may plan from a description it kept from an earlier query and name
        its digest in the request; if the node's config, data or result key changed since
        (a restart), the plan may not fit it, so nothing is computed or charged. A retry
        of a request the ledger already answered (the same signed bytes, its answer lost
        on the way before the restart) is not refused: the ledger gives back that answer,
        charged once, as it does for any retry.

        Returns:
            The digest the result echoes: the request's when this node serves it, else
            none (a replayed retry), so that the coordinator describes the node again
            rather than keep a description it no longer serves.
        """
        digest = admitted.described_sha256
        if digest and digest != self._static_description.description_sha256:
            if self.service.answered(
                admitted.query_id, admitted.request_sha256, admitted.query.time_period
            ):
                return ""
            raise QueryError(
                "the query was planned from a description this node no longer serves (its "
                "config, data or result key changed since); nothing was charged",
                reason=Reason.DESCRIPTION_CHANGED,
                hint="describe the node again and plan the query from what it says now",
            )
        return digest

    def RunQuery(  # noqa: N802 - gRPC method name
        self, request: pb.SignedQuery, context: grpc.ServicerContext
    ) -> pb.SignedResult:
        """Admit a signed query, answer it, sign the result; log every refusal."""
        if isinstance(request, Malformed):
            _abort(context, _malformed_error(request))
        info = RequestInfo(request_sha256=hashlib.sha256(request.request).hexdigest())
        started = time.monotonic()
        try:
            peer = coordinator_of(context, self.tls)
            admitted = self.gate.admit(request.request, request.signature, peer, info)
            echo = self._check_described(admitted)
            answer = self.service.run_query(
                admitted.query_id,
                admitted.query,
                grant=admitted.grant,
                request_sha256=admitted.request_sha256,
            )
            built = self._result(answer)
            built.described_sha256 = echo
            result = built.SerializeToString()
            signed = pb.SignedResult(
                result=result, signature=self.service.sign(result), key_id=self.service.key_id
            )
        except Exception as exc:
            self._refuse(context, info, exc, "RunQuery")
        _log_answer(answer, info.coordinator, time.monotonic() - started)
        return signed

    def SecureStep(  # noqa: N802 - gRPC method name
        self, request: pb.SecureStepRequest, context: grpc.ServicerContext
    ) -> pb.SecureStepReply:
        """One step of a secure round (``node.secure_service``); refusals are logged."""
        if isinstance(request, Malformed):
            _abort(context, _malformed_error(request))
        info = RequestInfo(request_sha256=hashlib.sha256(request.query.request).hexdigest())
        try:
            peer = coordinator_of(context, self.tls)
            if request.step != "advertise":
                info.coordinator = peer or ""
                return self.rounds.step(request, peer or "")
            signed = request.query
            admitted = self.gate.admit(signed.request, signed.signature, peer, info)
            secure = pb.QueryRequest.FromString(signed.request).secure
            if secure.round_id != request.round_id:
                raise refusal("the signed query carries no description of this round")
            return self.rounds.open(admitted, secure)
        except Exception as exc:
            self._refuse(context, info, exc, "SecureStep")

    def _refuse(
        self, context: grpc.ServicerContext, info: RequestInfo, exc: Exception, method: str
    ) -> NoReturn:
        """End a signed call refused by ``exc``: log it in the audit log, then abort."""
        error = exc if isinstance(exc, FedstatsError) else _internal(exc, method)
        try:
            self.service.record_refusal(info.query_id, info.coordinator, info.request_sha256, error)
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
        line = self.service.poverty_line(served)
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
            poverty_line=line.value if line else 0.0,
            poverty_line_source=line.source if line else "",
            deviations=self.service.deviations(),
            audit_seq=answer.audit_seq,
            audit_hash=answer.audit_hash,
            country=cfg.country,
            concepts=self.service.concepts(),
            geo_level=cfg.geo_level,
            name=cfg.name,
            fingerprint=answer.fingerprint,
            unmapped_share_ceil=unmapped_shares_ceil(served.engine.coverage),
        )


def description_digest(description: pb.NodeDescription, key_id: str) -> str:
    """SHA-256 (hex) of a description without its budget, and of the node's result key id.

    Everything a coordinator plans from, and the key it checks answers with: when any of
    it changes, so does the digest (`NodeServicer._check_described`).
    """
    static = pb.NodeDescription()
    static.CopyFrom(description)
    static.ClearField("budget")
    static.ClearField("description_sha256")
    body = static.SerializeToString(deterministic=True)
    return hashlib.sha256(key_id.encode() + b"\n" + body).hexdigest()


def _log_answer(answer: QueryAnswer, coordinator: str, seconds: float) -> None:
    """The node's one log line for an answered query: ids, charge and timing, no values."""
    log.info(
        "query %s from %s answered: period %s, %d tables, rho %.6g charged%s, audit #%d, "
        "%.0f ms", answer.query_id, coordinator, answer.time_period, len(answer.tables),
        answer.rho_charged, " (stored answer)" if answer.cached else "", answer.audit_seq,
        seconds * 1000,
        extra={"event": {
            "event": "query", "query_id": answer.query_id, "coordinator": coordinator,
            "time_period": answer.time_period, "tables": len(answer.tables),
            "rho_charged": answer.rho_charged, "cached": answer.cached,
            "audit_seq": answer.audit_seq, "ms": round(seconds * 1000, 1),
        }},
    )  # fmt: skip


def _malformed_error(request: Malformed) -> FedstatsError:
    try:
        _refuse_malformed(request)
    except FedstatsError as error:
        return error
    raise AssertionError("not malformed")


def _lenient(message: type[Message], method: str) -> Callable[[bytes], object]:
    """A request deserializer that returns `Malformed` instead of raising."""

    def parse(data: bytes) -> object:
        try:
            return message.FromString(data)
        except (DecodeError, RuntimeError, ValueError):
            return Malformed(method, len(data))

    return parse


def node_handlers(servicer: NodeServicer) -> grpc.GenericRpcHandler:  # type: ignore[type-arg]
    """The NodeService methods, with requests parsed by `_lenient`."""
    methods: dict[str, tuple[type[Message], type[Message], Any]] = {
        "Describe": (pb.DescribeRequest, pb.NodeDescription, servicer.Describe),
        "DescribeSigned": (pb.DescribeRequest, pb.SignedDescription, servicer.DescribeSigned),
        "RunQuery": (pb.SignedQuery, pb.SignedResult, servicer.RunQuery),
        "GetBudget": (pb.BudgetRequest, pb.BudgetStatus, servicer.GetBudget),
        "SecureStep": (pb.SecureStepRequest, pb.SecureStepReply, servicer.SecureStep),
    }
    service = pb.DESCRIPTOR.services_by_name["NodeService"]
    assert set(methods) == {m.name for m in service.methods}, "a NodeService method is unserved"
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            call,
            request_deserializer=_lenient(request, name),
            response_serializer=response.SerializeToString,
        )
        for name, (request, response, call) in methods.items()
    }
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def budget_proto(dataset: str, state: BudgetState) -> pb.BudgetStatus:
    """The wire form of a budget, with its rho figures also as epsilon at ``DEFAULT_DELTA``."""
    return pb.BudgetStatus(
        dataset=dataset,
        rho_total=state.total,
        rho_spent=state.spent,
        rho_remaining=state.remaining,
        max_rho_per_query=state.max_per_query,
        epsilon_spent=epsilon_for(state.spent),
        delta=DEFAULT_DELTA,
        epsilon_total=epsilon_for(state.total),
        epsilon_remaining=epsilon_for(state.remaining),
        epsilon_per_query=epsilon_for(state.max_per_query),
    )


Unary = Callable[[Any, grpc.ServicerContext], Any]


def wrap_node_unary(
    continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
    handler_call_details: grpc.HandlerCallDetails,
    wrap: Callable[[str, Unary], Unary],
) -> grpc.RpcMethodHandler[Any, Any] | None:
    """A server interceptor's body: ``wrap(method, behaviour)`` around each node method.

    Only the node's own unary methods are wrapped; other services (health) pass through.
    """
    handler = continuation(handler_call_details)
    full = str(handler_call_details.method)
    if handler is None or handler.unary_unary is None or "fedstats" not in full:
        return handler
    return grpc.unary_unary_rpc_method_handler(
        wrap(full.rsplit("/", 1)[-1], handler.unary_unary),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
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
