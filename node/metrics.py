"""A Prometheus endpoint for the node's operator (``[node] metrics_listen``; off by default).

What it shows: calls answered and refused by method and reason, how long answering took,
rho spent, remaining and total per dataset (read from the ledger at each scrape, with the
same function as ``fedstats budget``), and the days left on the node's certificate, its CA
and its revocation list. Never a data value, a query's content or a coordinator's query id.

Counting happens in a gRPC server interceptor, so the servicer does not know about it: a
call that returns is answered; one that ends in an abort is refused with the reason of the
ErrorDetail the servicer put in the trailing metadata.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

import grpc
from cryptography import x509
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from common.errors import ERROR_METADATA_KEY, ConfigError
from common.net import metrics_address
from node.service import NodeService
from node.servicer import Unary, wrap_node_unary
from protos import node_pb2 as pb

__all__ = ["MetricsServer", "NodeMetrics", "metrics_address", "serve_metrics"]

PREFIX = "fedstats_node"


class NodeMetrics(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """The node's metrics, in a registry of their own, and the interceptor that counts."""

    def __init__(self, service: NodeService) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.answered = Counter(
            f"{PREFIX}_calls_answered", "Calls answered, by method", ["method"],
            registry=self.registry,
        )  # fmt: skip
        self.refused = Counter(
            f"{PREFIX}_calls_refused", "Calls refused, by method and reason",
            ["method", "reason"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            f"{PREFIX}_call_seconds", "Time to answer or refuse a call, by method", ["method"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )  # fmt: skip
        self.registry.register(_StateCollector(service))

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Wrap the node's unary methods (the health service is not counted)."""
        return wrap_node_unary(continuation, handler_call_details, self._counted)

    def _counted(self, method: str, behaviour: Unary) -> Unary:
        def counted(request: Any, context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            try:
                reply = behaviour(request, context)
            except BaseException:
                self.refused.labels(method, _reason(context)).inc()
                raise
            finally:
                self.latency.labels(method).observe(time.perf_counter() - start)
            self.answered.labels(method).inc()
            return reply

        return counted


def _reason(context: grpc.ServicerContext) -> str:
    """The reason of the ErrorDetail the servicer attached, or INTERNAL."""
    for key, value in context.trailing_metadata() or ():
        if key == ERROR_METADATA_KEY and isinstance(value, bytes):
            code = pb.ErrorDetail.FromString(value).code
            return pb.Reason.Name(code).removeprefix("REASON_")
    return "INTERNAL"


class _StateCollector(Collector):
    """Budget per dataset and certificate lifetimes, read fresh at every scrape."""

    def __init__(self, service: NodeService) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["dataset"]
        spent = GaugeMetricFamily(f"{PREFIX}_rho_spent", "zCDP rho spent", labels=labels)
        left = GaugeMetricFamily(f"{PREFIX}_rho_remaining", "zCDP rho left", labels=labels)
        total = GaugeMetricFamily(f"{PREFIX}_rho_total", "zCDP rho budget", labels=labels)
        config = self.service.config
        for period in config.periods:
            state = self.service.budget(period)
            dataset = config.for_period(period).dataset_id
            spent.add_metric([dataset], state.spent)
            left.add_metric([dataset], state.remaining)
            total.add_metric([dataset], state.total)
        yield from (spent, left, total)
        days = GaugeMetricFamily(
            f"{PREFIX}_certificate_days_left",
            "Days until the file's certificate (or revocation list) expires",
            labels=["file"],
        )
        tls = config.tls
        if tls is not None:
            for name, path in (("cert", tls.cert), ("ca", tls.ca), ("crl", tls.crl)):
                left_days = _days_left(path) if path is not None else None
                if left_days is not None:
                    days.add_metric([name], left_days)
        yield days


def _days_left(path: Path) -> float | None:
    """Days until a PEM certificate's or CRL's end; None when it cannot be read."""
    try:
        data = path.read_bytes()
        if b"X509 CRL" in data:
            end = x509.load_pem_x509_crl(data).next_update_utc
        else:
            end = x509.load_pem_x509_certificate(data).not_valid_after_utc
    except (OSError, ValueError):
        return None
    if end is None:
        return None
    return (end - dt.datetime.now(dt.UTC)).total_seconds() / 86400


@dataclass
class MetricsServer:
    """The HTTP server of ``/metrics`` and its port."""

    server: WSGIServer
    port: int

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self.server.shutdown()
        self.server.server_close()


def serve_metrics(metrics: NodeMetrics, listen: str) -> MetricsServer:
    """Serve ``/metrics`` over HTTP on ``listen`` (a bare port: loopback), in a thread.

    Raises:
        ConfigError: The address cannot be bound.
    """
    address = metrics_address(listen)
    host, _, port = address.rpartition(":")
    try:
        server, _thread = start_http_server(int(port), host.strip("[]"), metrics.registry)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot serve metrics on {address}: {exc}",
            field="node.metrics_listen",
            hint='e.g. metrics_listen = "9464" (loopback) or "0.0.0.0:9464"',
        ) from None
    return MetricsServer(server, int(server.server_port))
