"""The servicer's inputs fuzzed on the wire (hypothesis): whatever bytes an authenticated
coordinator sends, the node answers with a catalogued status and an ErrorDetail, never
``INTERNAL`` and never a traceback, and a refusal never echoes more than a bounded text."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.errors import ERROR_METADATA_KEY
from node.servicer import MAX_DETAIL_CHARS
from protos import node_pb2 as pb
from tests.support.cities import ServeCityFn
from tests.support.nodes import RunningNode
from tests.support.pki import query_request, sign_request

METHODS = ("Describe", "RunQuery", "GetBudget")


@pytest.fixture
def node(serve_city: ServeCityFn) -> Iterator[RunningNode]:
    yield serve_city("vienna", rho_budget=1e6, max_rho=10.0)


def raw_call(node: RunningNode, method: str, data: bytes) -> grpc.Call | None:
    """Send raw bytes to a method; the error (None when it was answered)."""
    with node.channel() as channel:
        call = channel.unary_unary(f"/fedstats.v1.NodeService/{method}", None, None)
        try:
            call(data, timeout=30)
        except grpc.RpcError as exc:
            assert isinstance(exc, grpc.Call)
            return exc
    return None


def check_refusal(error: grpc.Call | None) -> None:
    if error is None:
        return
    assert error.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), error
    assert "Traceback" not in (error.details() or "")
    raw = dict(error.trailing_metadata() or ()).get(ERROR_METADATA_KEY)
    assert isinstance(raw, bytes), f"no ErrorDetail with {error.code()}"
    detail = pb.ErrorDetail.FromString(raw)
    assert max(len(detail.message), len(detail.hint), len(detail.field)) <= MAX_DETAIL_CHARS


def test_bytes_that_are_no_protobuf_are_invalid_argument(node: RunningNode) -> None:
    error = raw_call(node, "RunQuery", b"\xff\xff\xff")
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    check_refusal(error)
    raw = dict(error.trailing_metadata() or ())[ERROR_METADATA_KEY]
    assert isinstance(raw, bytes)
    assert pb.ErrorDetail.FromString(raw).reason == "MALFORMED_QUERY"


def test_a_huge_input_is_not_echoed(node: RunningNode) -> None:
    signed = sign_request(query_request("x" * 1_000_000), "vienna")
    check_refusal(raw_call(node, "RunQuery", signed.SerializeToString()))


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(method=st.sampled_from(METHODS), data=st.binary(max_size=256))
def test_random_bytes(node: RunningNode, method: str, data: bytes) -> None:
    check_refusal(raw_call(node, method, data))


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    position=st.integers(min_value=0, max_value=10_000),
    value=st.integers(min_value=0, max_value=255),
    cut=st.booleans(),
)
def test_mutated_signed_queries(node: RunningNode, position: int, value: int, cut: bool) -> None:
    data = bytearray(sign_request(query_request("fuzz", rho=0.01), "vienna").SerializeToString())
    i = position % len(data)
    data[i] = value
    check_refusal(raw_call(node, "RunQuery", bytes(data[:i] if cut else data)))


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    query_id=st.text(max_size=40),
    indicators=st.lists(st.text(max_size=20), max_size=3),
    group_dim=st.text(max_size=12),
    breakdowns=st.lists(st.sampled_from(["sex", "age", "x", ""]), max_size=3),
    rho=st.floats(allow_nan=True, allow_infinity=True),
    period=st.text(max_size=8),
)
def test_signed_queries_with_any_fields(
    node: RunningNode,
    query_id: str,
    indicators: list[str],
    group_dim: str,
    breakdowns: list[str],
    rho: float,
    period: str,
) -> None:
    """Correctly signed by the coordinator, with whatever it puts in the spec."""
    req = pb.QueryRequest(
        query_id=query_id,
        spec=pb.QuerySpec(
            indicators=indicators,
            group_dim=group_dim,
            breakdowns=breakdowns,
            rho=min(rho, 0.01) if rho == rho else rho,
            time_period=period,
        ),
    )
    check_refusal(raw_call(node, "RunQuery", sign_request(req, "vienna").SerializeToString()))
