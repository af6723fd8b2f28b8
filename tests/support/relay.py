"""A node of an earlier release, played by relaying a real node: it answers Describe and
RunQuery as the real node does, but its Describe does not advertise secure aggregation
and it has no SecureStep method (the generated base class answers UNIMPLEMENTED)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc

from protos import node_pb2 as pb
from protos import node_pb2_grpc as pb_grpc
from tests.support.nodes import RunningNode
from tests.support.pki import pki


class EarlierRelease(pb_grpc.NodeServiceServicer):
    """Relays a real node's answers; says nothing of secure aggregation."""

    def __init__(self, upstream: RunningNode) -> None:
        self.channel = upstream.channel()

    def Describe(  # noqa: N802 - gRPC method name
        self, request: pb.DescribeRequest, context: grpc.ServicerContext
    ) -> pb.NodeDescription:
        answer: pb.NodeDescription = pb_grpc.NodeServiceStub(self.channel).Describe(request)
        answer.capabilities.secure_aggregation = False
        return answer

    def RunQuery(  # noqa: N802 - gRPC method name
        self, request: pb.SignedQuery, context: grpc.ServicerContext
    ) -> pb.SignedResult:
        signed: pb.SignedResult = pb_grpc.NodeServiceStub(self.channel).RunQuery(request)
        return signed


@contextmanager
def earlier_release(node: RunningNode) -> Iterator[str]:
    """Serve ``node`` as an earlier release over mutual TLS; yields its address."""
    servicer = EarlierRelease(node)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_NodeServiceServicer_to_server(servicer, server)
    ca, cert, key = pki().tls("node", node.node_id).read()
    credentials = grpc.ssl_server_credentials([(key, cert)], ca, require_client_auth=True)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None).wait()
        servicer.channel.close()
