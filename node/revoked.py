"""The node refuses a caller whose certificate the federation revoked (``[tls] crl``).

gRPC's handshake checks the client certificate's chain and dates but knows nothing of
revocation, and its Python API offers no hook. This server interceptor reads the verified
certificate of each call to the node's service, before the servicer runs, and refuses one
on the CRL: ``CERTIFICATE_REVOKED`` (PERMISSION_DENIED), with an audit entry (the caller
holds a certificate of the federation CA, so its refusals are recorded like the others).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NoReturn

import grpc
from cryptography import x509

from common.errors import ERROR_METADATA_KEY, AccessError, FedstatsError, Reason
from node.service import NodeService
from node.servicer import Unary, error_detail, wrap_node_unary
from security.certificates import parse_identity, uris
from security.revocation import RevocationList

__all__ = ["RevocationGuard"]

log = logging.getLogger(__name__)


class RevocationGuard(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Refuse calls to the node's service from a revoked certificate."""

    def __init__(self, service: NodeService, revocations: RevocationList) -> None:
        self.service = service
        self.revocations = revocations

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Wrap the node's unary methods with the check (the health service is open)."""
        return wrap_node_unary(continuation, handler_call_details, self._guarded)

    def _guarded(self, _method: str, behaviour: Unary) -> Unary:
        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            self._check(context)
            return behaviour(request, context)

        return guarded

    def _check(self, context: grpc.ServicerContext) -> None:
        pem = (context.auth_context().get("x509_pem_cert") or [b""])[0]
        if not isinstance(pem, bytes) or not pem:
            return  # no TLS peer: the servicer refuses or identifies the caller itself
        cert = x509.load_pem_x509_certificate(pem)
        try:
            when = self.revocations.revoked(cert)
        except FedstatsError as unreadable:  # the list cannot be read: refuse, do not guess
            log.error("revocation list: %s", unreadable.message)
            _abort(context, unreadable)
        if when is None:
            return
        identities = [i for i in map(parse_identity, uris(cert)) if i is not None]
        who = identities[0][1] if identities else ""
        error = AccessError(
            f"the client certificate (serial {cert.serial_number:x}) was revoked on "
            f"{when:%Y-%m-%d %H:%M} UTC",
            reason=Reason.CERTIFICATE_REVOKED,
            hint="the federation CA revoked it: request and have signed a new certificate",
        )
        try:
            self.service.record_refusal("", who, "", error)
        except Exception as audit_error:
            log.error("could not log the refusal of a revoked certificate", exc_info=audit_error)
        _abort(context, error)


def _abort(context: grpc.ServicerContext, error: FedstatsError) -> NoReturn:
    detail = error_detail(error)
    context.set_trailing_metadata(((ERROR_METADATA_KEY, detail.SerializeToString()),))
    context.abort(grpc.StatusCode[error.reason.status], f"{error.reason}: {detail.message}")
