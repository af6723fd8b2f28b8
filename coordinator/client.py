"""Concurrent fan-out of one query to every node, with deadlines and safe retries.

A retry reuses the query id, so a node that already answered returns its stored answer
and charges nothing again. A node that is down or refuses becomes a NodeFailure, never
an exception that stops the other nodes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc

from coordinator.config import NodeAddress
from indicators.errors import ERROR_METADATA_KEY
from indicators.spec import Query
from protos import node_pb2 as pb
from protos import node_pb2_grpc as pb_grpc

__all__ = ["NodeFailure", "NodeReply", "ProgressFn", "fan_out", "query_proto"]

_RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
}


@dataclass(frozen=True)
class NodeFailure:
    """Why a node gave no answer.

    Attributes:
        status: gRPC status name, e.g. ``UNAVAILABLE``.
        reason: fedstats' machine-readable reason, or the status name.
        message: What the node (or the transport) said.
        hint: How to fix it, when the node said.
    """

    status: str
    reason: str
    message: str
    hint: str = ""


@dataclass(frozen=True)
class NodeReply:
    """A node's answer or its failure."""

    node_id: str
    result: pb.QueryResult | None = None
    failure: NodeFailure | None = None


def query_proto(query_id: str, query: Query) -> pb.QueryRequest:
    """The wire form of a query."""
    return pb.QueryRequest(
        query_id=query_id,
        spec=pb.QuerySpec(
            indicators=list(query.indicators),
            group_dim=query.group_dim,
            breakdowns=list(query.breakdowns),
            comparator=query.comparator,
            rho=query.rho,
        ),
    )


def _failure(error: grpc.RpcError) -> NodeFailure:
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    metadata: dict[str, str | bytes] = {}
    if isinstance(error, grpc.Call):
        metadata = dict(error.trailing_metadata() or ())
    raw = metadata.get(ERROR_METADATA_KEY)
    if isinstance(raw, bytes):
        detail = pb.ErrorDetail.FromString(raw)
        return NodeFailure(code.name, detail.reason, detail.message, detail.hint)
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    return NodeFailure(code.name, code.name, details or code.name)


def ask_node(
    node: NodeAddress, request: pb.QueryRequest, timeout: float, retries: int = 2
) -> NodeReply:
    """Send one query to one node, retrying transient failures with the same id."""
    with grpc.insecure_channel(node.address) as channel:
        stub = pb_grpc.NodeServiceStub(channel)
        for attempt in range(retries + 1):
            try:
                result = stub.RunQuery(request, timeout=timeout)
                return NodeReply(node.id, result=result)
            except grpc.RpcError as error:
                failure = _failure(error)
                code = error.code() if isinstance(error, grpc.Call) else None
                if code not in _RETRYABLE or attempt == retries:
                    return NodeReply(node.id, failure=failure)
                time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


ProgressFn = Callable[[str, str], None]
"""Called as ``progress(node_id, state)``; state is ``waiting``, ``answered`` or ``failed``."""


def fan_out(
    nodes: tuple[NodeAddress, ...],
    query_id: str,
    query: Query,
    timeout: float,
    progress: ProgressFn | None = None,
) -> dict[str, NodeReply]:
    """Ask every node concurrently; every node gets an entry, answered or failed."""
    request = query_proto(query_id, query)

    def ask(node: NodeAddress) -> NodeReply:
        reply = ask_node(node, request, timeout)
        if progress is not None:
            progress(node.id, "answered" if reply.result is not None else "failed")
        return reply

    if progress is not None:
        for node in nodes:
            progress(node.id, "waiting")
    with ThreadPoolExecutor(max_workers=max(1, min(32, len(nodes)))) as pool:
        futures = {n.id: pool.submit(ask, n) for n in nodes}
        return {node_id: future.result() for node_id, future in futures.items()}
