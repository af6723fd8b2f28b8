"""The production server factory: the node servicer plus the standard health service."""

from __future__ import annotations

import ipaddress
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from indicators.errors import ConfigError
from node.service import NodeService
from node.servicer import NodeServicer
from protos import node_pb2_grpc as pb_grpc

__all__ = ["SERVICE_NAME", "build_server", "is_loopback"]

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


def build_server(
    service: NodeService, address: str, *, max_workers: int = 8
) -> tuple[grpc.Server, int]:
    """Build and start a node server on ``address`` (port 0 picks a free port).

    Until mutual TLS exists, a node only listens in plaintext on loopback.

    Returns:
        The started server and the port it listens on.

    Raises:
        ConfigError: When the address is not a loopback address, or cannot be bound.
    """
    if not is_loopback(address):
        raise ConfigError(
            f"refusing to serve plaintext on {address}: not a loopback address",
            field="node.listen",
            hint="listen on 127.0.0.1; mutual TLS for other addresses is not built yet",
        )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers))
    pb_grpc.add_NodeServiceServicer_to_server(NodeServicer(service), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise ConfigError(f"cannot listen on {address}: {exc}", field="node.listen") from None
    if port == 0:
        raise ConfigError(f"cannot listen on {address}", field="node.listen")
    server.start()
    return server, port
