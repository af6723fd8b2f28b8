"""Shared fixtures: real node servers on 127.0.0.1:0 through the production factory."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from coordinator.config import CoordinatorConfig, NodeAddress
from node.config import load_config
from node.server import build_server
from node.service import NodeService
from protos import node_pb2_grpc as pb_grpc

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LAEKEN = SHARED_DATA / "laeken_eusilc.csv"
SIMPOP = SHARED_DATA / "simPop_eusilcP.csv"
LANDS = (
    "Burgenland", "Carinthia", "Lower Austria", "Salzburg", "Styria", "Tyrol",
    "Upper Austria", "Vienna", "Vorarlberg",
)  # fmt: skip

LAEKEN_VARIABLES = """
[variables.sex]
column = "rb090"
map = { male = "M", female = "F" }

[variables.age]
column = "age"

[variables.citizen]
column = "pb220a"
map = { AT = "NAT", EU = "EU27_2020_FOR", Other = "NEU27_2020_FOR" }

[variables.wstatus]
column = "pl030"
map = { 1 = "EMP", 2 = "EMP", 3 = "UNE", 4 = "INAC", 5 = "INAC", 6 = "INAC", 7 = "INAC" }
"""


def require_laeken() -> Path:
    """The laeken survey file, or skip with the reason."""
    if not LAEKEN.exists():
        pytest.skip(f"reference data not found at {LAEKEN} (../shared/data beside the repo)")
    return LAEKEN


def laeken_node_toml(
    node_id: str,
    land: str,
    *,
    rho_budget: float = 1e9,
    max_rho: float = 1e9,
    extra: str = "",
) -> str:
    """A node config serving one Land of the laeken survey."""
    return (
        textwrap.dedent(f"""
        [node]
        id = "{node_id}"
        geo = "AT-{node_id[:3].upper()}"
        name = "{land}"
        country = "AT"
        listen = "127.0.0.1:0"
        state_dir = "state-{node_id}"

        [dataset]
        path = "{LAEKEN}"
        time_period = "2006"
        source = "survey"
        weight = "rb050"
        where = {{ db040 = "{land}" }}

        [privacy]
        rho_budget = {rho_budget}
        max_rho_per_query = {max_rho}
        max_weight = 2000.0
        """)
        + extra
        + LAEKEN_VARIABLES
    )


@dataclass
class RunningNode:
    """A node served in-process on a free loopback port."""

    service: NodeService
    server: grpc.Server
    address: str
    config_path: Path

    def stub(self) -> pb_grpc.NodeServiceStub:
        return pb_grpc.NodeServiceStub(grpc.insecure_channel(self.address))

    def stop(self) -> None:
        self.server.stop(grace=None).wait()


ServeFn = Callable[[Path], RunningNode]


@pytest.fixture
def serve() -> Iterator[ServeFn]:
    """Start nodes from config files; all are stopped at teardown."""
    running: list[RunningNode] = []

    def start(config_path: Path) -> RunningNode:
        service = NodeService(load_config(config_path))
        server, port = build_server(service, "127.0.0.1:0")
        node = RunningNode(service, server, f"127.0.0.1:{port}", config_path)
        running.append(node)
        return node

    yield start
    for node in running:
        node.stop()


def coordinator_for(tmp_path: Path, nodes: list[tuple[str, str]]) -> CoordinatorConfig:
    """A coordinator config for (node id, address) pairs."""
    return CoordinatorConfig(
        file=tmp_path / "coordinator.toml",
        id="test-coordinator",
        state_dir=tmp_path / "coordinator-state",
        timeout_seconds=30.0,
        nodes=tuple(NodeAddress(i, a) for i, a in nodes),
    )
