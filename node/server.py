"""The production server factory: the node servicer plus the standard health service.

Mutual TLS is the default and is gRPC's own (C-core, BoringSSL): a client must present a
certificate that chains to the federation CA and is within its dates, or the handshake
fails inside C-core: no Python code runs, nothing is written and no worker thread is held
(docs/tls.md says why and what was measured). The servicer then reads the verified
certificate from the call's auth context and checks the identity it names.
Plaintext is possible only on a loopback address.
An optional second, plaintext port serves the health service alone, for orchestrators.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from common.errors import ConfigError
from common.net import is_loopback
from node.revoked import RevocationGuard
from node.service import NodeService
from node.servicer import NodeServicer, node_handlers
from security.certificates import TlsFiles, check_party_certificate
from security.crl_seen import CRL_SEEN_FILE
from security.revocation import RevocationList

__all__ = ["SERVICE_NAME", "NodeServer", "build_server", "is_loopback", "worker_pool"]

SERVICE_NAME = "fedstats.v1.NodeService"
SERVER_OPTIONS = (
    ("grpc.server_handshake_timeout_ms", 10_000),  # an idle handshake is dropped in 10 s
    ("grpc.max_connection_idle_ms", 300_000),  # a connection with no calls for 5 min
    ("grpc.max_receive_message_length", 4 << 20),
    ("grpc.max_concurrent_streams", 32),
    ("grpc.so_reuseport", 0),  # a port in use is an error, not shared with another server
)
"""C-core limits: a stranger's connection costs a file descriptor for seconds at most.

gRPC binds with ``SO_REUSEPORT`` by default: a second node started on a port already
served would start without a word and take half of the connections."""


def worker_pool(max_workers: int) -> futures.ThreadPoolExecutor:
    """Threads answering calls; `node.hosting` shares one among the nodes of a process."""
    return futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fedstats-call")


class _CallPool:
    """One server's calls, run on a worker pool (its own, or the process's) and counted.

    At most ``limit`` of them run at once; more wait in the server's own queue, so a
    server sharing the process's pool (`node.hosting`) never holds more than ``limit``
    of its workers, however many calls it gets. The count is the server's own, so its
    shutdown reports its own calls still running.
    """

    def __init__(self, workers: futures.ThreadPoolExecutor, limit: int) -> None:
        self.workers = workers
        self.limit = limit
        self._lock = threading.Lock()
        self._waiting: collections.deque[Callable[[], object]] = collections.deque()
        self.running = 0

    def submit(
        self, fn: Callable[..., object], /, *args: object, **kwargs: object
    ) -> futures.Future[object]:
        """Run ``fn`` on a worker, counted while it runs (queued while ``limit`` run)."""
        done: futures.Future[object] = futures.Future()

        def counted() -> object:
            result: object = None
            error: BaseException | None = None
            if done.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    error = exc
            try:
                with self._lock:
                    follow = self._waiting.popleft() if self._waiting else None
                    if follow is None:
                        self.running -= 1
                if follow is not None:  # the next waiting call takes this one's place
                    self.workers.submit(follow)
            finally:  # counted first, then done: a caller sees the count already down
                if error is not None:
                    done.set_exception(error)
                elif not done.cancelled():
                    done.set_result(result)
            return None

        with self._lock:
            start = self.running < self.limit
            if start:
                self.running += 1
            else:
                self._waiting.append(counted)
        if start:
            self.workers.submit(counted)
        return done


@dataclass
class NodeServer:
    """A running node: its gRPC server and the ports it listens on.

    Attributes:
        server: The gRPC server.
        port: The node's public port.
        health_server: The plaintext health-only server, if any.
        health_port: Its port.
        health_states: The health services' states (both servers'), turned NOT_SERVING on stop.
    """

    server: grpc.Server
    port: int
    health_server: grpc.Server | None = None
    health_port: int = 0
    health_states: list[health.HealthServicer] = field(default_factory=list)
    pool: _CallPool | None = None

    @property
    def calls_running(self) -> int:
        """Calls whose handlers are still running (after ``stop``: those past the grace)."""
        return 0 if self.pool is None else self.pool.running

    def stop(self, grace: float | None = None) -> None:
        """Stop serving and wait for the servers to finish (see `begin_stop`)."""
        for event in self.begin_stop(grace):
            event.wait()

    def begin_stop(self, grace: float | None = None) -> list[threading.Event]:
        """Start stopping; the events are set once the servers have finished.

        The health services report NOT_SERVING at once (probes and load balancers move
        away), new calls are refused (UNAVAILABLE), and calls in flight have ``grace``
        seconds to finish before they are cancelled (None: cancelled now). Several
        servers stopped together (`node.hosting`) share one grace period.
        """
        for servicer in self.health_states:
            servicer.enter_graceful_shutdown()
        events = [self.server.stop(grace)]
        if self.health_server is not None:
            events.append(self.health_server.stop(grace))
        return events


def _health() -> health.HealthServicer:
    servicer = health.HealthServicer()
    servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    return servicer


def _bind(server: grpc.Server, address: str, credentials: grpc.ServerCredentials | None) -> int:
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        raise ConfigError(f"cannot listen on {address}: {exc}", field="node.listen") from None
    if port == 0:
        raise ConfigError(f"cannot listen on {address}", field="node.listen")
    return port


def build_server(
    service: NodeService,
    address: str,
    *,
    tls: TlsFiles | None,
    health_address: str | None = None,
    max_workers: int = 8,
    interceptors: Sequence[grpc.ServerInterceptor[Any, Any]] = (),
    workers: futures.ThreadPoolExecutor | None = None,
) -> NodeServer:
    """Build and start a node server on ``address`` (port 0 picks a free port).

    Args:
        service: The node.
        address: ``host:port`` to listen on.
        tls: The node's CA, certificate and key; None serves plaintext, loopback only.
        health_address: Where to serve the health service alone in plaintext, if anywhere.
        max_workers: Threads answering calls (when ``workers`` is not given).
        interceptors: Wrap the node's calls (the metrics count them).
        workers: A worker pool shared with the other servers of the process
            (`node.hosting`) instead of a pool of the server's own; the server still
            runs at most ``max_workers`` calls at once (more wait their turn).

    Raises:
        ConfigError: For plaintext off loopback, a certificate that is not valid for
            this node, a revocation list not signed by the CA, or an address that cannot
            be bound.
    """
    if tls is None and not is_loopback(address):
        raise ConfigError(
            f"refusing to serve plaintext on {address}: not a loopback address",
            field="node.listen",
            hint="configure [tls] (mutual TLS), or listen on 127.0.0.1 with --insecure",
        )
    if tls is not None:
        check_party_certificate(tls, "node", service.config.id, "tls")
    if tls is not None and tls.crl is not None:  # innermost: the metrics count its refusals
        seen = Path(service.config.state_dir) / CRL_SEEN_FILE  # survives a restart
        revocations = RevocationList(tls.crl, tls.ca, seen)
        interceptors = (*interceptors, RevocationGuard(service, revocations))
    pool = _CallPool(workers or worker_pool(max_workers), max_workers)
    server = grpc.server(
        pool,  # type: ignore[arg-type]
        options=SERVER_OPTIONS,
        interceptors=list(interceptors),
    )
    states = _health()
    health_pb2_grpc.add_HealthServicer_to_server(states, server)
    server.add_generic_rpc_handlers((node_handlers(NodeServicer(service, tls=tls is not None)),))
    running = NodeServer(
        server, _bind(server, address, _credentials(tls)), health_states=[states], pool=pool
    )
    if health_address:
        running.health_server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=1), options=SERVER_OPTIONS
        )
        states = _health()
        running.health_states.append(states)
        health_pb2_grpc.add_HealthServicer_to_server(states, running.health_server)
        running.health_port = _bind(running.health_server, health_address, None)
        running.health_server.start()
    server.start()
    return running


def _credentials(tls: TlsFiles | None) -> grpc.ServerCredentials | None:
    """Server credentials for mutual TLS: a certificate of the federation CA is required."""
    if tls is None:
        return None
    ca, cert, key = tls.read()
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=True
    )
