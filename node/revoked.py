"""The node refuses a caller whose certificate the federation revoked (``[tls] crl``).

gRPC's handshake checks the client certificate's chain and dates but knows nothing of
revocation, and its Python API offers no hook. This server interceptor reads the verified
certificate of each call to the node's service, before the servicer runs, and refuses one
on the CRL: ``CERTIFICATE_REVOKED`` (PERMISSION_DENIED), with an audit entry (the caller
holds a certificate of the federation CA, so its refusals are recorded like the others).

A revoked peer may keep calling, and the audit log is durable and signed, so the entries
are rate-limited (`AuditThrottle`): at most one per revoked certificate serial per
`AUDIT_INTERVAL_SECONDS`; the calls refused in between are refused all the same, counted,
and the count is folded into that serial's next entry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

import grpc
from cryptography import x509

from common.errors import ERROR_METADATA_KEY, AccessError, FedstatsError, Reason
from node.service import NodeService
from node.servicer import Unary, error_detail, wrap_node_unary
from security.certificates import parse_identity, uris
from security.revocation import RevocationList

__all__ = ["AUDIT_INTERVAL_SECONDS", "AuditThrottle", "RevocationGuard"]

log = logging.getLogger(__name__)

AUDIT_INTERVAL_SECONDS = 60.0
"""At most one audit entry per revoked certificate serial in this many seconds."""


class AuditThrottle:
    """Decides which refusals of a revoked certificate get an audit entry of their own.

    Only revoked serials are tracked, so the memory is bounded by the CRL's length.

    Args:
        interval: Seconds between two entries for one serial.
        clock: Monotonic seconds (``time.monotonic``).
    """

    def __init__(
        self, interval: float = AUDIT_INTERVAL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[int, float] = {}
        self._folded: dict[int, int] = {}

    def admit(self, serial: int) -> int | None:
        """None when this refusal is only counted; else how many were folded since the last.

        The first refusal of a serial, and the first after ``interval`` seconds, is
        admitted: it returns the number of refusals counted (not written) since the
        previous entry, which that entry then reports.
        """
        now = self.clock()
        with self._lock:
            last = self._last.get(serial)
            if last is not None and now - last < self.interval:
                self._folded[serial] = self._folded.get(serial, 0) + 1
                return None
            self._last[serial] = now
            return self._folded.pop(serial, 0)


class RevocationGuard(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Refuse calls to the node's service from a revoked certificate."""

    def __init__(
        self,
        service: NodeService,
        revocations: RevocationList,
        throttle: AuditThrottle | None = None,
    ) -> None:
        self.service = service
        self.revocations = revocations
        self.throttle = throttle or AuditThrottle()

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
        message = (
            f"the client certificate (serial {cert.serial_number:x}) was revoked on "
            f"{when:%Y-%m-%d %H:%M} UTC"
        )
        hint = "the federation CA revoked it: request and have signed a new certificate"
        folded = self.throttle.admit(cert.serial_number)
        if folded is not None:
            more = (
                f"; {folded} more calls with it were refused since its previous entry"
                if folded
                else ""
            )
            entry = AccessError(message + more, reason=Reason.CERTIFICATE_REVOKED, hint=hint)
            try:
                self.service.record_refusal("", who, "", entry)
            except Exception as audit_error:
                log.error("could not audit a revoked certificate's refusal", exc_info=audit_error)
        _abort(context, AccessError(message, reason=Reason.CERTIFICATE_REVOKED, hint=hint))


def _abort(context: grpc.ServicerContext, error: FedstatsError) -> NoReturn:
    detail = error_detail(error)
    context.set_trailing_metadata(((ERROR_METADATA_KEY, detail.SerializeToString()),))
    context.abort(grpc.StatusCode[error.reason.status], f"{error.reason}: {detail.message}")
