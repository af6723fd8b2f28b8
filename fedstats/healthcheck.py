"""A gRPC health check for probes that run a command (a container's HEALTHCHECK).

``python -m fedstats.healthcheck HOST:PORT [SERVICE]`` asks the standard gRPC health
service (the node's plaintext ``[node] health_listen``) and exits 0 when it answers
SERVING, 1 otherwise, printing one line. Kubernetes needs none of this: its native
``grpc:`` probe asks the same service.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = ["check", "main"]


def check(address: str, service: str = "", timeout: float = 3.0) -> str:
    """The health status name the server at ``address`` reports (or the call's error)."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            code: grpc.StatusCode = exc.code()
            return str(code.name)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def main(argv: Sequence[str] | None = None) -> int:
    """Check one address; exit 0 when SERVING."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not 1 <= len(args) <= 2:
        print("usage: python -m fedstats.healthcheck HOST:PORT [SERVICE]", file=sys.stderr)
        return 2
    status = check(args[0], args[1] if len(args) > 1 else "")
    print(f"{args[0]}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
