"""Real node servers on 127.0.0.1:0 over mutual TLS, started through the production
factory, and the test coordinator that asks them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from coordinator.client import Dialer
from coordinator.config import CoordinatorConfig, NodeAddress
from coordinator.provenance import VerifyReport, publish, verify_provenance
from coordinator.run import QueryOutcome
from node.config import load_config
from node.server import NodeServer, build_server
from node.service import NodeService
from protos import node_pb2 as pb
from protos import node_pb2_grpc as pb_grpc
from security.signing import load_private_key, parse_public_key, verify
from tests.support.pki import COORDINATOR, pki, sign_request


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
"""What the ``serve`` fixture gives: start a node from its config file."""


def start_node(config_path: Path) -> RunningNode:
    """A node from its config, served on a free loopback port with its TLS files."""
    service = NodeService(load_config(config_path))
    server = build_server(service, "127.0.0.1:0", tls=service.config.tls)
    return RunningNode(service, server, f"127.0.0.1:{server.port}", config_path)


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


def publish_and_verify(outcome: QueryOutcome, out: Path) -> VerifyReport:
    """Publish an outcome's CSV and provenance as the test coordinator, then verify it
    against the nodes' keys from the test PKI."""
    keys = pki()
    node_keys = {n: parse_public_key(keys.public_key("node", n), "test") for n in outcome.replies}
    coordinator_key = load_private_key(keys.files("coordinator", COORDINATOR)["sign_key"], "t")
    publish([outcome], out, ["csv"], COORDINATOR, coordinator_key.public_key(), node_keys)
    return verify_provenance(out, node_keys)


def write_coordinator_toml(path: Path, nodes: list[tuple[str, str]]) -> Path:
    """A coordinator.toml for `fedstats query` over mutual TLS, for (node id, address) pairs;
    its state directory is ``cstate`` beside it."""
    keys = pki()
    tls = keys.tls("coordinator", COORDINATOR)
    text = (
        f'[coordinator]\nid = "{COORDINATOR}"\nstate_dir = "cstate"\n\n'
        f'[tls]\nca = "{tls.ca}"\ncert = "{tls.cert}"\nkey = "{tls.key}"\n\n'
        f'[signing]\nkey = "{keys.files("coordinator", COORDINATOR)["sign_key"]}"\n'
    )
    for node_id, address in nodes:
        text += (
            f'\n[[nodes]]\nid = "{node_id}"\naddress = "{address}"\n'
            f'public_key = "{keys.public_key("node", node_id)}"\n'
        )
    path.write_text(text, encoding="utf-8")
    return path
