"""The production server factory: the node servicer plus the standard health service.

Mutual TLS is the default: the node's TLS front presents its certificate from the
federation CA, asks every client for one and judges it in the node's own code, so that a
refused certificate is answered with a gRPC status and logged (see ``node.tlsfront``).
Plaintext is possible only on a loopback address.
An optional second, plaintext port serves the health service alone, for orchestrators.
"""

from __future__ import annotations

import ipaddress
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from common.errors import ConfigError
from node.service import NodeService
from node.servicer import NodeServicer
from node.tlsfront import TlsFront
from protos import node_pb2_grpc as pb_grpc
from security.certificates import TlsFiles, check_party_certificate

__all__ = ["SERVICE_NAME", "NodeServer", "build_server", "is_loopback"]

SERVICE_NAME = "fedstats.v1.NodeService"


def is_loopback(address: str) -> bool:
    """Whether ``host:port`` names a loopback host."""
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class NodeServer:
    """A running node: its gRPC server, its TLS front, the ports they listen on.

    Attributes:
        server: The gRPC server (behind the TLS front when there is one).
        port: The node's public port.
        front: The mutual-TLS front, None when serving plaintext.
        health_server: The plaintext health-only server, if any.
        health_port: Its port.
    """

    server: grpc.Server
    port: int
    front: TlsFront | None = None
    health_server: grpc.Server | None = None
    health_port: int = 0

    def stop(self, grace: float | None = None) -> None:
        """Stop serving; waits for the servers to finish."""
        if self.front is not None:
            self.front.stop()
        events = [self.server.stop(grace)]
        if self.health_server is not None:
            events.append(self.health_server.stop(grace))
        for event in events:
            event.wait()


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
) -> NodeServer:
    """Build and start a node server on ``address`` (port 0 picks a free port).

    Args:
        service: The node.
        address: ``host:port`` to listen on.
        tls: The node's CA, certificate and key; None serves plaintext, loopback only.
        health_address: Where to serve the health service alone in plaintext, if anywhere.
        max_workers: Threads answering calls.

    Raises:
        ConfigError: For plaintext off loopback, a certificate that is not valid for
            this node, or an address that cannot be bound.
    """
    if tls is None and not is_loopback(address):
        raise ConfigError(
            f"refusing to serve plaintext on {address}: not a loopback address",
            field="node.listen",
            hint="configure [tls] (mutual TLS), or listen on 127.0.0.1 with --insecure",
        )
    if tls is not None:
        check_party_certificate(tls, "node", service.config.id, "tls")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers))
    health_pb2_grpc.add_HealthServicer_to_server(_health(), server)
    if tls is None:
        pb_grpc.add_NodeServiceServicer_to_server(NodeServicer(service, None), server)
        running = NodeServer(server, _bind(server, address, None))
    else:
        # gRPC listens on a private loopback port; the front owns the public address.
        internal = _bind(server, "127.0.0.1:0", None)
        try:
            front = TlsFront(address, internal, tls)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {address}: {exc}", field="node.listen") from None
        pb_grpc.add_NodeServiceServicer_to_server(NodeServicer(service, front.verdict_for), server)
        running = NodeServer(server, front.port, front)
    if health_address:
        running.health_server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        health_pb2_grpc.add_HealthServicer_to_server(_health(), running.health_server)
        running.health_port = _bind(running.health_server, health_address, None)
        running.health_server.start()
    server.start()
    if running.front is not None:
        running.front.start()
    return running
