"""Shared fixtures: a test federation PKI and real node servers on 127.0.0.1:0 over mutual
TLS, started through the production factory."""

from __future__ import annotations

import os

# gRPC core logs every connection teardown at INFO; keep the test output readable.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import atexit
import shutil
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from coordinator.client import Dialer
from coordinator.config import CoordinatorConfig, NodeAddress
from coordinator.provenance import VerifyReport, publish, verify_provenance
from coordinator.run import QueryOutcome
from fedstats.certs import init_ca, issue
from node.config import load_config
from node.server import NodeServer, build_server
from node.service import NodeService
from protos import node_pb2 as pb
from protos import node_pb2_grpc as pb_grpc
from security.certificates import TlsFiles
from security.signing import load_private_key, parse_public_key, sign, verify

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LAEKEN = SHARED_DATA / "laeken_eusilc.csv"
SIMPOP = SHARED_DATA / "simPop_eusilcP.csv"
LANDS = (
    "Burgenland", "Carinthia", "Lower Austria", "Salzburg", "Styria", "Tyrol",
    "Upper Austria", "Vienna", "Vorarlberg",
)  # fmt: skip
COORDINATOR = "test-coordinator"

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


@dataclass
class Pki:
    """A federation CA with certificates and signing keys issued on demand."""

    directory: Path
    parties: dict[tuple[str, str], dict[str, Path]] = field(default_factory=dict)

    def files(self, role: str, ident: str) -> dict[str, Path]:
        if (role, ident) not in self.parties:
            self.parties[(role, ident)] = issue(self.directory, role, ident)
        return self.parties[(role, ident)]

    def tls(self, role: str, ident: str) -> TlsFiles:
        files = self.files(role, ident)
        return TlsFiles(self.directory / "ca.pem", files["cert"], files["key"])

    def public_key(self, role: str, ident: str) -> str:
        return self.files(role, ident)["sign_pub"].read_text().strip()

    def node_trust_toml(
        self, node_id: str, rho_cap: float = 1e12, coordinator: str = COORDINATOR
    ) -> str:
        """The [tls], [signing] and [[coordinators]] sections of a test node."""
        tls = self.tls("node", node_id)
        return textwrap.dedent(f"""
            [tls]
            ca = "{tls.ca}"
            cert = "{tls.cert}"
            key = "{tls.key}"

            [signing]
            key = "{self.files("node", node_id)["sign_key"]}"

            [[coordinators]]
            id = "{coordinator}"
            public_key = "{self.public_key("coordinator", coordinator)}"
            rho_cap = {rho_cap}
            """)


_PKI: Pki | None = None


def pki() -> Pki:
    """The test session's federation PKI (made once, removed at exit)."""
    global _PKI
    if _PKI is None:
        directory = Path(tempfile.mkdtemp(prefix="fedstats-pki-"))
        atexit.register(shutil.rmtree, directory, True)
        init_ca(directory)
        _PKI = Pki(directory)
    return _PKI


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
    """A node config serving one Land of the laeken survey, trusting the test coordinator."""
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
        + pki().node_trust_toml(node_id)
    )


def query_request(
    query_id: str = "q-1",
    *,
    indicators: tuple[str, ...] = ("employment_rate",),
    group_dim: str = "citizen",
    breakdowns: tuple[str, ...] = (),
    comparator: str = "NAT",
    rho: float = 0.5,
) -> pb.QueryRequest:
    """An unsigned query request (the envelope fields are filled by ``sign_request``)."""
    return pb.QueryRequest(
        query_id=query_id,
        spec=pb.QuerySpec(
            indicators=list(indicators),
            group_dim=group_dim,
            breakdowns=list(breakdowns),
            comparator=comparator,
            rho=rho,
        ),
    )


def sign_request(
    req: pb.QueryRequest, audience: str, coordinator: str = COORDINATOR
) -> pb.SignedQuery:
    """Fill the envelope fields a test left empty and sign as the coordinator."""
    filled = pb.QueryRequest()
    filled.CopyFrom(req)
    filled.issuer = filled.issuer or coordinator
    filled.audience = filled.audience or audience
    filled.issued_at_ms = filled.issued_at_ms or int(time.time() * 1000)
    data = filled.SerializeToString()
    key = load_private_key(pki().files("coordinator", coordinator)["sign_key"], "test")
    return pb.SignedQuery(request=data, signature=sign(key, data))


@dataclass
class RunningNode:
    """A node served in-process on a free loopback port, over mutual TLS."""

    service: NodeService
    server: NodeServer
    address: str
    config_path: Path

    @property
    def node_id(self) -> str:
        return self.service.config.id

    def channel(self, coordinator: str = COORDINATOR) -> grpc.Channel:
        address = NodeAddress(self.node_id, self.address)
        return Dialer(pki().tls("coordinator", coordinator)).channel(address)

    def stub(self) -> pb_grpc.NodeServiceStub:
        return pb_grpc.NodeServiceStub(self.channel())

    def ask(self, req: pb.QueryRequest | pb.SignedQuery, timeout: float = 30) -> pb.QueryResult:
        """Send a request (signed now as the test coordinator unless it is signed already)
        and check the node's signature on the result."""
        if isinstance(req, pb.QueryRequest):
            req = sign_request(req, self.node_id)
        with self.channel() as channel:
            signed = pb_grpc.NodeServiceStub(channel).RunQuery(req, timeout=timeout)
        public = parse_public_key(pki().public_key("node", self.node_id), "test")
        assert verify(public, signed.result, signed.signature), "result signature"
        return pb.QueryResult.FromString(signed.result)

    def stop(self) -> None:
        self.server.stop(grace=None)


ServeFn = Callable[[Path], RunningNode]


def publish_and_verify(outcome: QueryOutcome, out: Path) -> VerifyReport:
    """Publish an outcome's CSV and provenance as the test coordinator, then verify it
    against the nodes' keys from the test PKI."""
    keys = pki()
    node_keys = {n: parse_public_key(keys.public_key("node", n), "test") for n in outcome.replies}
    coordinator_key = load_private_key(keys.files("coordinator", COORDINATOR)["sign_key"], "t")
    publish([outcome], out, ["csv"], COORDINATOR, coordinator_key.public_key(), node_keys)
    return verify_provenance(out, node_keys)


def start_node(config_path: Path) -> RunningNode:
    """A node from its config, served on a free loopback port with its TLS files."""
    service = NodeService(load_config(config_path))
    server = build_server(service, "127.0.0.1:0", tls=service.config.tls)
    return RunningNode(service, server, f"127.0.0.1:{server.port}", config_path)


@pytest.fixture
def serve() -> Iterator[ServeFn]:
    """Start nodes from config files; all are stopped at teardown."""
    running: list[RunningNode] = []

    def start(config_path: Path) -> RunningNode:
        node = start_node(config_path)
        running.append(node)
        return node

    yield start
    for node in running:
        node.stop()


def coordinator_for(
    tmp_path: Path, nodes: list[tuple[str, str]], timeout: float = 30.0
) -> CoordinatorConfig:
    """A coordinator config over mutual TLS for (node id, address) pairs."""
    keys = pki()
    return CoordinatorConfig(
        file=tmp_path / "coordinator.toml",
        id=COORDINATOR,
        state_dir=tmp_path / "coordinator-state",
        timeout_seconds=timeout,
        nodes=tuple(
            NodeAddress(i, a, parse_public_key(keys.public_key("node", i), "test"))
            for i, a in nodes
        ),
        tls=keys.tls("coordinator", COORDINATOR),
        signing_key=keys.files("coordinator", COORDINATOR)["sign_key"],
    )
