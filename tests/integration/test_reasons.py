"""Every catalogued reason, provoked through a real party, with the status it travels with.

`CASES` holds one case per member of `Reason`, so a new reason without a case fails. A
case provokes its reason the way it happens in use and returns what it saw: a node's
refusal over mutual TLS (its gRPC status and the ErrorDetail in the trailing metadata), a
failure the coordinator's `run_query` finds against real servers (`NodeFailure`), a
transport failure on a real channel, or an error of starting a node or of publishing,
through the Python entry point (its reason) and the command line (exit code 2).

The nodes are real servers on 127.0.0.1:0 from the production factory, serving synthetic
Vienna data (`fedstats.synth`), shared by every case; their budgets are set so that the
cases do not depend on each other's order (see `node_toml`).
"""

from __future__ import annotations

import hashlib
import socket
import textwrap
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.errors import ERROR_METADATA_KEY, FedstatsError, Reason
from coordinator.client import Dialer, QuerySigner, ask_node
from coordinator.config import CoordinatorConfig, NodeAddress
from coordinator.described import DESCRIPTIONS_FILE
from coordinator.provenance import publish
from coordinator.run import run_pathway, run_query
from fedstats import synth
from fedstats.certs import init_ca, issue, party_files
from fedstats.certs_lifecycle import revoke
from fedstats.cli import main
from indicators.spec import Query, compile_query
from node.config import load_config
from node.ledger import Request, Reservation
from node.server import NodeServer, build_server
from node.service import NodeService
from protos import node_pb2 as pb
from protos import node_pb2_grpc as pb_grpc
from security.certificates import TlsFiles
from security.roundwire import query_sha256
from security.signing import load_private_key, parse_public_key, sign

NODE = "vienna"
COORDINATOR = "reasons-coordinator"
OTHER = "other-coordinator"  # listed by the node, with a grant that allows nothing
QUERY = Query(("employment_rate",), "citizen", rho=0.01)
ODD_PERIOD = "2024-W1"  # a period the node serves but SDMX has no form for

# Raised before any call, so no gRPC status carries them: the command line exits with 2.
OFF_THE_WIRE = {
    Reason.INVALID_CONFIG,
    Reason.INVALID_DATA,
    Reason.MISSING_COLUMN,
    Reason.EMPTY_DATASET,
    Reason.UNSUPPORTED_FORMAT,
    Reason.UNSUPPORTED_TIME_PERIOD,
    Reason.DUPLICATE_OBSERVATION,
    Reason.LEDGER_INCONSISTENT,
    Reason.COVERAGE_BELOW_THRESHOLD,
    Reason.UNMAPPED_OUTCOME,
}
# A bare status the catalogue has no reason for is read as UNKNOWN and keeps its status.
BARE_STATUS = {Reason.UNKNOWN: "RESOURCE_EXHAUSTED"}


@dataclass(frozen=True)
class Seen:
    """One observation of a failure.

    Attributes:
        where: What was observed, for the assertion message.
        reason: The catalogued reason found.
        status: The gRPC status name it travelled with; None when no call carried it.
        exit_code: The command line's exit code, for errors raised before any call.
    """

    where: str
    reason: Reason
    status: str | None = None
    exit_code: int | None = None


# --- the federation ---------------------------------------------------------------------


@dataclass
class Keys:
    """The federation CA in ``root / "pki"``, and each party's certificate and keys."""

    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "pki" / "ca.pem"

    def files(self, role: str, ident: str) -> dict[str, Path]:
        """A party's certificate and keys, issued by the federation CA on first use."""
        files = party_files(self.root / "pki", role, ident)
        return files if files["cert"].exists() else issue(self.root / "pki", role, ident)

    def tls(self, role: str, ident: str) -> TlsFiles:
        files = self.files(role, ident)
        return TlsFiles(self.ca, files["cert"], files["key"])

    def public_key(self, role: str, ident: str) -> str:
        return self.files(role, ident)["sign_pub"].read_text().strip()

    def signer(self, ident: str = COORDINATOR, key_of: str | None = None) -> QuerySigner:
        """The production signer of a coordinator id, with the key of ``key_of``."""
        key = load_private_key(self.files("coordinator", key_of or ident)["sign_key"], "test")
        return QuerySigner(ident, key)


@dataclass
class Federation(Keys):
    """The keys, and the node every case talks to (with a plaintext health port)."""

    service: NodeService
    server: NodeServer

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def signed(self, query_id: str, query: Query = QUERY) -> pb.SignedQuery:
        return self.signer().sign_for(NODE, query_id, query)

    def channel(self, tls: TlsFiles | None = None) -> grpc.Channel:
        """Mutual TLS to the node, as the coordinator unless ``tls`` says otherwise."""
        dialer = Dialer(tls or self.tls("coordinator", COORDINATOR))
        return dialer.channel(NodeAddress(NODE, self.address))

    def node(
        self, address: str | None = None, key_of: str | None = NODE, ident: str = NODE
    ) -> NodeAddress:
        """A node as the coordinator knows it, with the public key of ``key_of``."""
        key = parse_public_key(self.public_key("node", key_of), "test") if key_of else None
        return NodeAddress(ident, address or self.address, key)

    def coordinator(
        self, node: NodeAddress | None = None, *, tls: bool = True, timeout: float = 10.0
    ) -> CoordinatorConfig:
        return CoordinatorConfig(
            file=self.root / "coordinator.toml",
            id=COORDINATOR,
            state_dir=self.root / "coordinator-state",
            timeout_seconds=timeout,
            nodes=(node or self.node(),),
            tls=self.tls("coordinator", COORDINATOR) if tls else None,
            signing_key=self.files("coordinator", COORDINATOR)["sign_key"],
        )

    def coordinator_toml(self) -> Path:
        """The coordinator's config file, for `fedstats query`."""
        path = self.root / "coordinator.toml"
        tls = self.tls("coordinator", COORDINATOR)
        path.write_text(
            f'[coordinator]\nid = "{COORDINATOR}"\nstate_dir = "coordinator-state"\n\n'
            f'[tls]\nca = "{tls.ca}"\ncert = "{tls.cert}"\nkey = "{tls.key}"\n\n'
            f'[signing]\nkey = "{self.files("coordinator", COORDINATOR)["sign_key"]}"\n\n'
            f'[[nodes]]\nid = "{NODE}"\naddress = "{self.address}"\n'
            f'public_key = "{self.public_key("node", NODE)}"\n'
        )
        return path


def node_toml(fed: Keys, node_id: str, datasets: str, cells: int = 10_000) -> str:
    """A node serving the synthetic Vienna file.

    Budgets, so that every refusal can be provoked in any order: the dataset's rho_budget
    (1) is below the coordinator's rho_cap (2), itself below the per-query cap (3). The
    queries that are answered ask for rho 0.01 on one spec (repeats are free), so a query
    of rho 1.5 passes the caps but not the budget, and one of 2.5 passes the per-query cap
    but not the coordinator's. The coordinator's grant allows tables of 20 population
    cells: the plain query has 5 (15 cells, the node's limit per query), by sex 10 (30
    cells: too many for the node), by sex and age 50 (too fine for the grant).
    """
    tls = fed.tls("node", node_id)
    node = f'[node]\nid = "{node_id}"\ngeo = "AT13"\ncountry = "AT"\nstate_dir = "state"\n\n'
    rest = f"""
        [privacy]
        rho_budget = 1.0
        max_rho_per_query = 3.0

        [policy]
        max_cells_per_query = {cells}

        [[coordinators]]
        id = "{COORDINATOR}"
        public_key = "{fed.public_key("coordinator", COORDINATOR)}"
        rho_cap = 2.0
        indicators = ["employment_rate"]
        group_dims = ["citizen"]
        breakdowns = ["sex", "age"]
        max_cells = 20

        [[coordinators]]
        id = "{OTHER}"
        public_key = "{fed.public_key("coordinator", OTHER)}"
        rho_cap = 1.0
        indicators = []
        group_dims = []

        [tls]
        ca = "{tls.ca}"
        cert = "{tls.cert}"
        key = "{tls.key}"

        [signing]
        key = "{fed.files("node", node_id)["sign_key"]}"
        """
    return node + datasets + textwrap.dedent(rest) + synth.variables_toml(NODE)


def dataset(period: str = "2025", extra: str = "", header: str = "[dataset]") -> str:
    """A dataset table over the synthetic file (configs sit one directory below it)."""
    lines = f'path = "../vienna.csv"\ntime_period = "{period}"\n{synth.dataset_toml(NODE)}'
    return f"{header}\n{lines}{extra}\n"


def write_config(fed: Keys, name: str, text: str) -> Path:
    config = fed.root / name / "node.toml"
    config.parent.mkdir()
    config.write_text(text)
    return config


def serve(
    keys: Keys, node_id: str, datasets: str, cells: int = 10_000, health: str | None = None
) -> tuple[NodeService, NodeServer]:
    """Start a node through the production factory, over mutual TLS on a free port."""
    config = write_config(keys, node_id, node_toml(keys, node_id, datasets, cells))
    service = NodeService(load_config(config))
    server = build_server(service, "127.0.0.1:0", tls=service.config.tls, health_address=health)
    return service, server


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    root = tmp_path_factory.mktemp("reasons")
    init_ca(root / "pki")
    synth.write(synth.generate(NODE, 3000, seed=8), root / "vienna.csv")
    cells = compile_query(QUERY).n_cells  # the plain query passes, a broken-down one not
    assert compile_query(replace(QUERY, breakdowns=("sex",))).n_cells > cells
    periods = dataset("2025", header="[[datasets]]") + dataset(ODD_PERIOD, header="[[datasets]]")
    fed = Federation(root, *serve(Keys(root), NODE, periods, cells, health="127.0.0.1:0"))
    yield fed
    fed.server.stop()


# --- how a failure is seen --------------------------------------------------------------


def on_the_wire(where: str, error: grpc.RpcError) -> Seen:
    """A node's refusal: its status, and the reason of the ErrorDetail it must carry."""
    assert isinstance(error, grpc.Call)
    raw = dict(error.trailing_metadata() or ()).get(ERROR_METADATA_KEY)
    assert isinstance(raw, bytes), f"{where}: {error.code()} came without an ErrorDetail"
    detail = pb.ErrorDetail.FromString(raw)
    name = pb.Reason.Name(detail.code).removeprefix("REASON_")
    assert detail.reason == name, "the enum and the name of the reason disagree"
    assert "Traceback" not in (error.details() or "") + detail.message + detail.hint
    return Seen(where, Reason[name], error.code().name)


def refused(where: str, channel: grpc.Channel, request: pb.SignedQuery) -> Seen:
    """Send a query the node must refuse over ``channel``."""
    with channel, pytest.raises(grpc.RpcError) as info:
        pb_grpc.NodeServiceStub(channel).RunQuery(request, timeout=30)
    return on_the_wire(where, info.value)


def node_refusal(fed: Federation, request: pb.SignedQuery, tls: TlsFiles | None = None) -> Seen:
    return refused("node, RunQuery", fed.channel(tls), request)


def coordinator_failure(config: CoordinatorConfig, query: Query = QUERY) -> Seen:
    """Run a query; the (only) node's failure as the coordinator records it."""
    failure = run_query(config, query).failures[config.nodes[0].id]
    return Seen("coordinator, run_query", failure.reason, failure.status)


def restamped(fed: Federation, request: pb.SignedQuery, seconds: float) -> pb.SignedQuery:
    """The request issued ``seconds`` later, signed again by the coordinator."""
    envelope = pb.QueryRequest.FromString(request.request)
    envelope.issued_at_ms += int(seconds * 1000)
    data = envelope.SerializeToString()
    return pb.SignedQuery(request=data, signature=sign(fed.signer().key, data))


Case = Callable[[Federation], list[Seen]]
CASES: dict[Reason, Case] = {}


def case(reason: Reason) -> Callable[[Case], Case]:
    """Register the case that provokes ``reason``."""

    def register(provoke: Case) -> Case:
        assert reason not in CASES, f"two cases for {reason}"
        CASES[reason] = provoke
        return provoke

    return register


# --- the query, the ledger, the grant ---------------------------------------------------


def _refused_query(fed: Federation, query_id: str, query: Query) -> list[Seen]:
    return [node_refusal(fed, fed.signed(query_id, query))]


# Queries the node refuses for what they ask (`node_toml` sets the budgets and the grant).
REFUSED_QUERIES = {
    Reason.MALFORMED_QUERY: ("not an id!", QUERY),
    Reason.UNKNOWN_INDICATOR: ("q", replace(QUERY, indicators=("no_such_rate",))),
    Reason.UNKNOWN_DIMENSION: ("q", replace(QUERY, group_dim="nationality")),
    Reason.TOO_MANY_CELLS: ("q", replace(QUERY, breakdowns=("sex",))),
    Reason.TABLE_TOO_FINE: ("q", replace(QUERY, breakdowns=("sex", "age"))),
    Reason.BUDGET_EXCEEDED: ("q", replace(QUERY, rho=1.5)),
    Reason.QUERY_CAP_EXCEEDED: ("q", replace(QUERY, rho=4.0)),
    Reason.COORDINATOR_CAP_EXCEEDED: ("q", replace(QUERY, rho=2.5)),
    Reason.INDICATOR_NOT_ALLOWED: ("q", replace(QUERY, indicators=("unemployment_rate",))),
    Reason.DIMENSION_NOT_ALLOWED: ("q", replace(QUERY, group_dim="yearesid")),
}
for _reason, (_query_id, _query) in REFUSED_QUERIES.items():
    case(_reason)(partial(_refused_query, query_id=_query_id, query=_query))


@case(Reason.VARIABLE_NOT_PROVIDED)
def _variable_not_provided(fed: Federation) -> list[Seen]:
    query = replace(QUERY, group_dim="c_birth")  # the Vienna register has no country of birth
    return [
        node_refusal(fed, fed.signed("q", query)),
        coordinator_failure(fed.coordinator(), query),
    ]


@case(Reason.PERIOD_NOT_SERVED)
def _period_not_served(fed: Federation) -> list[Seen]:
    query = replace(QUERY, time_period="1999")
    return [
        node_refusal(fed, fed.signed("q", query)),
        coordinator_failure(fed.coordinator(), query),
    ]


@case(Reason.QUERY_ID_REUSED)
def _query_id_reused(fed: Federation) -> list[Seen]:
    with fed.channel() as channel:
        pb_grpc.NodeServiceStub(channel).RunQuery(fed.signed("reused"), timeout=30)
    return [node_refusal(fed, fed.signed("reused"))]  # signed again: other bytes, same id


@case(Reason.DATA_CHANGED)
def _data_changed(fed: Federation) -> list[Seen]:
    """A node answers, a mapping line is fixed, the node restarts; the old id is retried."""
    service, server = serve(fed, "bregenz", dataset())
    request = fed.signer().sign_for("bregenz", "before-the-fix", QUERY)
    channel = Dialer(fed.tls("coordinator", COORDINATOR)).channel
    address = NodeAddress("bregenz", f"127.0.0.1:{server.port}")
    with channel(address) as open_channel:
        pb_grpc.NodeServiceStub(open_channel).RunQuery(request, timeout=30)
    server.stop(None)
    config = service.config.file
    config.write_text(config.read_text().replace('2 = "EMP"\n', '2 = "UNE"\n', 1))
    restarted = NodeService(load_config(config))
    server = build_server(restarted, "127.0.0.1:0", tls=restarted.config.tls)
    try:
        address = NodeAddress("bregenz", f"127.0.0.1:{server.port}")
        return [refused("node, RunQuery (a retry after a fix)", channel(address), request)]
    finally:
        server.stop(None)


@case(Reason.QUERY_IN_PROGRESS)
def _query_in_progress(fed: Federation) -> list[Seen]:
    """The node is answering the same request right now: its ledger holds the reservation."""
    query = replace(QUERY, rho=0.02)
    request = fed.signed("in-progress", query)
    ledger, policy = fed.service.ledger, fed.service.config.policy
    reservation = ledger.reserve(
        Request(
            query_id="in-progress",
            spec_hash=compile_query(query).spec_hash(),
            rho=query.rho,
            coordinator=COORDINATOR,
            request_sha256=hashlib.sha256(request.request).hexdigest(),
            coordinator_cap=policy.grant(COORDINATOR).rho_cap,
        )
    )
    assert isinstance(reservation, Reservation)
    try:
        return [node_refusal(fed, request)]
    finally:
        ledger.cancel(reservation)


# --- identity: the TLS peer and the signature -------------------------------------------


@case(Reason.UNAUTHENTICATED)
def _unauthenticated(fed: Federation) -> list[Seen]:
    """A node served with --insecure: Describe and GetBudget without a signed identity."""
    server = build_server(fed.service, "127.0.0.1:0", tls=None)
    seen = []
    try:
        for name in ("Describe", "GetBudget"):
            channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
            stub = pb_grpc.NodeServiceStub(channel)
            with channel, pytest.raises(grpc.RpcError) as info:
                if name == "Describe":
                    stub.Describe(pb.DescribeRequest(), timeout=30)
                else:
                    stub.GetBudget(pb.BudgetRequest(), timeout=30)
            seen.append(on_the_wire(f"--insecure node, {name} without identity", info.value))
    finally:
        server.stop(grace=None)
    return seen


@case(Reason.NO_IDENTITY)
def _no_identity(fed: Federation) -> list[Seen]:
    """A certificate from the federation CA whose names hold no fedstats:// identity."""
    files = fed.files("coordinator", "anonymous")
    issued = x509.load_pem_x509_certificate(files["cert"].read_bytes())
    ca_key = serialization.load_pem_private_key((fed.root / "pki" / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(issued.subject)
        .issuer_name(issued.issuer)
        .public_key(issued.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued.not_valid_before_utc)
        .not_valid_after(issued.not_valid_after_utc)
    )
    for extension in issued.extensions:
        value = extension.value
        if isinstance(value, x509.SubjectAlternativeName):
            value = x509.SubjectAlternativeName([x509.DNSName("anonymous")])
        builder = builder.add_extension(value, extension.critical)
    cert = fed.root / "pki" / "anonymous.pem"
    cert.write_bytes(builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    return [node_refusal(fed, fed.signed("q"), TlsFiles(fed.ca, cert, files["key"]))]


@case(Reason.BAD_SIGNATURE)
def _bad_signature(fed: Federation) -> list[Seen]:
    forger = QuerySigner(COORDINATOR, Ed25519PrivateKey.generate())
    return [node_refusal(fed, forger.sign_for(NODE, "q", QUERY))]


# --- policy -----------------------------------------------------------------------------


@case(Reason.NOT_A_COORDINATOR)
def _not_a_coordinator(fed: Federation) -> list[Seen]:
    return [node_refusal(fed, fed.signed("q"), fed.tls("node", "tyrol"))]


@case(Reason.UNKNOWN_COORDINATOR)
def _unknown_coordinator(fed: Federation) -> list[Seen]:
    request = fed.signer("rogue").sign_for(NODE, "q", QUERY)
    return [node_refusal(fed, request, fed.tls("coordinator", "rogue"))]


@case(Reason.SIGNER_NOT_PEER)
def _signer_not_peer(fed: Federation) -> list[Seen]:
    """Sent by the coordinator, signed by another coordinator the node lists."""
    return [node_refusal(fed, fed.signer(OTHER).sign_for(NODE, "q", QUERY))]


@case(Reason.SIGNER_NOT_ISSUER)
def _signer_not_issuer(fed: Federation) -> list[Seen]:
    """Signed by the coordinator, in the name of another issuer."""
    request = fed.signer("someone-else", key_of=COORDINATOR).sign_for(NODE, "q", QUERY)
    return [node_refusal(fed, request)]


@case(Reason.WRONG_AUDIENCE)
def _wrong_audience(fed: Federation) -> list[Seen]:
    return [node_refusal(fed, fed.signer().sign_for("tyrol", "q", QUERY))]


@case(Reason.DESCRIPTION_CHANGED)
def _description_changed(fed: Federation) -> list[Seen]:
    """Planned from a description the node does not serve (kept from before a restart)."""
    request = fed.signer().sign_for(NODE, "q", QUERY, described_sha256="0" * 64)
    return [node_refusal(fed, request)]


@case(Reason.STALE_QUERY)
def _stale_query(fed: Federation) -> list[Seen]:
    return [node_refusal(fed, restamped(fed, fed.signed("q"), -600))]


def secure_refusal(fed: Federation, where: str, request: pb.SecureStepRequest) -> Seen:
    """Send a secure-round step the node must refuse."""
    with fed.channel() as channel, pytest.raises(grpc.RpcError) as info:
        pb_grpc.NodeServiceStub(channel).SecureStep(request, timeout=30)
    return on_the_wire(where, info.value)


@case(Reason.SECURE_ROUND_REFUSED)
def _secure_round_refused(fed: Federation) -> list[Seen]:
    """A step of a round the node never opened (or forgot in a restart), and a round whose
    description lists the node with a key that is not its own (an invented participant)."""
    forged = pb.SecureRound(
        round_id="r-forged",
        threshold=1,
        participants=[
            pb.RoundParticipant(
                node_id=NODE,
                public_key=Ed25519PrivateKey.generate().public_key().public_bytes_raw(),
            )
        ],
        query_sha256=query_sha256(QUERY),
    )
    signed = fed.signer().sign_for(NODE, "q-secure", QUERY, forged)
    spent = fed.service.budget().spent
    seen = [
        secure_refusal(
            fed, "node, SecureStep share", pb.SecureStepRequest(step="share", round_id="r0")
        ),
        secure_refusal(
            fed,
            "node, SecureStep advertise",
            pb.SecureStepRequest(step="advertise", round_id="r-forged", query=signed),
        ),
    ]
    assert fed.service.budget().spent == spent  # refused before any charge
    return seen


# --- configuration and data: starting a node --------------------------------------------


def refused_start(fed: Federation, name: str, dataset_table: str) -> list[Seen]:
    """Start a node from a config that is wrong in one way, then `fedstats node check` it."""
    config = write_config(fed, name, node_toml(fed, NODE, dataset_table))
    with pytest.raises(FedstatsError) as info:
        service = NodeService(load_config(config))
        build_server(service, "127.0.0.1:0", tls=service.config.tls).stop()
    code = main(["node", "check", "--config", str(config)])
    return [Seen("starting a node; fedstats node check", info.value.reason, exit_code=code)]


# Node configs wrong in one way each: the dataset table, and a directory to write it in.
REFUSED_STARTS = {
    Reason.INVALID_CONFIG: ("typo", dataset(extra='wieght = "rb050"')),
    Reason.INVALID_DATA: ("no-file", dataset().replace("../vienna.csv", "../nowhere.csv")),
    Reason.MISSING_COLUMN: ("no-column", dataset(extra='where = { db040 = "Vienna" }')),
    Reason.EMPTY_DATASET: ("no-rows", dataset(extra='where = { rb090 = "nobody" }')),
}
for _reason, (_name, _table) in REFUSED_STARTS.items():
    case(_reason)(partial(refused_start, name=_name, dataset_table=_table))


@case(Reason.COVERAGE_BELOW_THRESHOLD)
def _coverage_below_threshold(fed: Federation) -> list[Seen]:
    """Part-time workers left unmapped, under a threshold that allows no unmapped value."""
    text = node_toml(fed, NODE, dataset(extra="max_unmapped_share = 0.0"))
    assert text.count('2 = "EMP"\n') == 1
    config = write_config(fed, "unmapped", text.replace('2 = "EMP"\n', ""))
    with pytest.raises(FedstatsError) as info:
        NodeService(load_config(config))
    code = main(["node", "check", "--config", str(config)])
    return [Seen("starting a node; fedstats node check", info.value.reason, exit_code=code)]


@case(Reason.UNMAPPED_OUTCOME)
def _unmapped_outcome(fed: Federation) -> list[Seen]:
    """Part-time workers left unmapped, with no ``unmapped`` declaration on wstatus."""
    text = node_toml(fed, NODE, dataset())
    assert text.count('2 = "EMP"\n') == 1
    config = write_config(fed, "unmapped-outcome", text.replace('2 = "EMP"\n', ""))
    with pytest.raises(FedstatsError) as info:
        NodeService(load_config(config))
    code = main(["node", "serve", "--config", str(config)])
    return [Seen("starting a node; fedstats node serve", info.value.reason, exit_code=code)]


@case(Reason.LEDGER_INCONSISTENT)
def _ledger_inconsistent(fed: Federation) -> list[Seen]:
    """A node that has answered is restarted on an empty state directory."""
    service, server = serve(fed, "linz", dataset())
    service.run_query("before-the-rollback", QUERY)
    server.stop()
    for path in service.ledger.path.parent.glob("ledger.sqlite*"):
        path.unlink()
    config = service.config.file
    with pytest.raises(FedstatsError) as info:
        NodeService(load_config(config))
    code = main(["node", "serve", "--config", str(config)])
    return [Seen("restarting a node on an empty state_dir", info.value.reason, exit_code=code)]


# --- what the coordinator finds in an answer --------------------------------------------


@case(Reason.NO_NODE_KEY)
def _no_node_key(fed: Federation) -> list[Seen]:
    return [coordinator_failure(fed.coordinator(fed.node(key_of=None)))]


@case(Reason.BAD_RESULT_SIGNATURE)
def _bad_result_signature(fed: Federation) -> list[Seen]:
    return [coordinator_failure(fed.coordinator(fed.node(key_of="tyrol")))]


class ModifiedNode(pb_grpc.NodeServiceServicer):
    """A node running modified code: the node's certificate and signing key, its real
    answers relayed, and each result changed by ``change`` before it is signed.

    An honest node cannot send what the coordinator checks for here: it checks the
    query's audience and serialises its own result. The coordinator guards against a node
    it does not control, so the test plays that node.
    """

    def __init__(
        self,
        fed: Federation,
        change: Callable[[pb.QueryResult], bytes],
        describe: Callable[[pb.NodeDescription], None] | None = None,
    ) -> None:
        self.upstream = fed.channel()
        self.key = load_private_key(fed.files("node", NODE)["sign_key"], "test")
        self.change = change
        self.describe = describe

    def Describe(  # noqa: N802 - gRPC method name
        self, request: pb.DescribeRequest, context: grpc.ServicerContext
    ) -> pb.NodeDescription:
        answer: pb.NodeDescription = pb_grpc.NodeServiceStub(self.upstream).Describe(request)
        if self.describe is not None:
            self.describe(answer)
        return answer

    def RunQuery(  # noqa: N802 - gRPC method name
        self, request: pb.SignedQuery, context: grpc.ServicerContext
    ) -> pb.SignedResult:
        signed: pb.SignedResult = pb_grpc.NodeServiceStub(self.upstream).RunQuery(request)
        result = self.change(pb.QueryResult.FromString(signed.result))
        return pb.SignedResult(
            result=result, signature=sign(self.key, result), key_id=signed.key_id
        )


@contextmanager
def modified_node(
    fed: Federation,
    change: Callable[[pb.QueryResult], bytes],
    describe: Callable[[pb.NodeDescription], None] | None = None,
) -> Iterator[NodeAddress]:
    """Serve a `ModifiedNode` over mutual TLS; yields its address as the coordinator's."""
    servicer = ModifiedNode(fed, change, describe)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_NodeServiceServicer_to_server(servicer, server)
    ca, cert, key = fed.tls("node", NODE).read()
    credentials = grpc.ssl_server_credentials([(key, cert)], ca, require_client_auth=True)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    # The coordinator meets this node for the first time: it plans from what the node
    # says, not from the real node's description kept by an earlier case (the relayed
    # queries would reach the real node, which serves that description still).
    (fed.coordinator().state_dir / DESCRIPTIONS_FILE).unlink(missing_ok=True)
    try:
        yield fed.node(f"127.0.0.1:{port}")
    finally:
        server.stop(None).wait()
        servicer.upstream.close()


def _named(node_id: str) -> Callable[[pb.QueryResult], bytes]:
    def change(result: pb.QueryResult) -> bytes:
        result.node_id = node_id
        return result.SerializeToString()

    return change


def _one_cell_short(result: pb.QueryResult) -> bytes:
    """What a node with another catalogue version might send: a table of other cells."""
    del result.tables[0].counts[-1]
    return result.SerializeToString()


def _answered_by_modified_node(
    fed: Federation, change: Callable[[pb.QueryResult], bytes]
) -> list[Seen]:
    with modified_node(fed, change) as node:
        return [coordinator_failure(fed.coordinator(node))]


MODIFIED_RESULTS: dict[Reason, Callable[[pb.QueryResult], bytes]] = {
    Reason.MALFORMED_RESULT: lambda _: b"\xff\xff\xff",
    Reason.WRONG_NODE: _named("tyrol"),
    Reason.PROTOCOL_MISMATCH: _one_cell_short,
}
for _reason, _change in MODIFIED_RESULTS.items():
    case(_reason)(partial(_answered_by_modified_node, change=_change))


def _later_catalogue(description: pb.NodeDescription) -> None:
    """What a node of a later release says: its catalogue has another version."""
    description.capabilities.catalogue_version += 1


@case(Reason.INCOMPATIBLE_RELEASE)
def _incompatible_release(fed: Federation) -> list[Seen]:
    """The coordinator does not ask a node whose catalogue it cannot read."""
    with modified_node(fed, pb.QueryResult.SerializeToString, _later_catalogue) as node:
        return [coordinator_failure(fed.coordinator(node))]


# --- publishing -------------------------------------------------------------------------


def refused_publication(
    fed: Federation, formats: list[str], periods: list[str] | None = None
) -> list[Seen]:
    """Run the query for ``periods`` (the latest when None) and publish it in ``formats``,
    through the Python entry points and through `fedstats query`."""
    config = fed.coordinator()
    coordinator_key = load_private_key(config.signing_key or Path(), "test").public_key()
    node_keys = {NODE: parse_public_key(fed.public_key("node", NODE), "test")}
    out = fed.root / "published"
    with pytest.raises(FedstatsError) as info:
        outcomes = run_pathway(config, QUERY, periods) if periods else [run_query(config, QUERY)]
        publish(outcomes, out, formats, COORDINATOR, coordinator_key, node_keys)
    args = ["query", "--config", str(fed.coordinator_toml()), "--out", str(out)]
    args += ["--indicators", ",".join(QUERY.indicators), "--group", QUERY.group_dim]
    args += ["--rho", str(QUERY.rho), "--format", ",".join(formats)]
    code = main(args + (["--pathway", ",".join(periods)] if periods else []))
    return [Seen("publishing; fedstats query", info.value.reason, exit_code=code)]


# Publications that cannot be written: the formats, and the periods asked for.
REFUSED_PUBLICATIONS: dict[Reason, tuple[list[str], list[str] | None]] = {
    Reason.UNSUPPORTED_FORMAT: (["pdf"], None),
    Reason.UNSUPPORTED_TIME_PERIOD: (["sdmx"], [ODD_PERIOD]),
    Reason.DUPLICATE_OBSERVATION: (["sdmx"], ["2025", "2025"]),  # one query, twice
}
for _reason, (_formats, _periods) in REFUSED_PUBLICATIONS.items():
    case(_reason)(partial(refused_publication, formats=_formats, periods=_periods))


@case(Reason.CERTIFICATE_REVOKED)
def _certificate_revoked(fed: Federation) -> list[Seen]:
    """The CA revokes a coordinator's and a node's certificate; a node loading the CRL
    refuses the coordinator, a coordinator loading it refuses the node before any call."""
    pki = fed.root / "pki"
    crl = revoke(pki, fed.files("coordinator", "revoked-one")["cert"])
    crl = revoke(pki, fed.files("node", "bregenz")["cert"])
    text = node_toml(fed, "bregenz", dataset()).replace("[signing]", f'crl = "{crl}"\n\n[signing]')
    service = NodeService(load_config(write_config(fed, "bregenz-revoked", text)))
    server = build_server(service, "127.0.0.1:0", tls=service.config.tls)
    try:
        bregenz = fed.node(f"127.0.0.1:{server.port}", key_of="bregenz", ident="bregenz")
        channel = Dialer(fed.tls("coordinator", "revoked-one")).channel(bregenz)
        config = fed.coordinator(bregenz)
        assert config.tls is not None
        config = replace(config, tls=replace(config.tls, crl=crl))
        seen = [
            refused("node, RunQuery", channel, fed.signer().sign_for("bregenz", "q", QUERY)),
            coordinator_failure(config),
        ]
    finally:
        server.stop()
    return seen


# --- transport: calls that end with a bare gRPC status ----------------------------------


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@case(Reason.UNAVAILABLE)
def _unavailable(fed: Federation) -> list[Seen]:
    return [coordinator_failure(fed.coordinator(fed.node(f"127.0.0.1:{free_port()}")))]


@case(Reason.DEADLINE_EXCEEDED)
def _deadline_exceeded(fed: Federation) -> list[Seen]:
    """A node that takes the connection and never says anything."""
    with socket.create_server(("127.0.0.1", 0)) as hung:
        node = fed.node(f"127.0.0.1:{hung.getsockname()[1]}")
        return [coordinator_failure(fed.coordinator(node, timeout=0.5))]


@case(Reason.UNIMPLEMENTED)
def _unimplemented(fed: Federation) -> list[Seen]:
    """The coordinator pointed at the node's plaintext health port."""
    node = fed.node(f"127.0.0.1:{fed.server.health_port}")
    return [coordinator_failure(fed.coordinator(node, tls=False))]


@case(Reason.UNKNOWN)
def _unknown(fed: Federation) -> list[Seen]:
    """A request over gRPC's message size limit: the node's gRPC runtime refuses it with
    RESOURCE_EXHAUSTED and no fedstats reason."""
    request = pb.SignedQuery(request=bytes(5 << 20), signature=b"")
    reply = ask_node(fed.node(), request, Dialer(fed.tls("coordinator", COORDINATOR)), 30)
    assert reply.failure is not None
    return [Seen("coordinator, ask_node", reply.failure.reason, reply.failure.status)]


@case(Reason.INTERNAL)
def _internal(fed: Federation) -> list[Seen]:
    """A node whose ledger is pulled out from under it (bytes that are no protobuf are
    MALFORMED_QUERY: tests/attacks/test_fuzz.py)."""
    service, server = serve(fed, "graz", dataset())
    try:
        for path in service.ledger.path.parent.glob("ledger.sqlite*"):
            path.unlink()
        graz = fed.node(f"127.0.0.1:{server.port}", key_of="graz", ident="graz")
        channel = Dialer(fed.tls("coordinator", COORDINATOR)).channel(graz)
        seen = [
            refused("node, RunQuery", channel, fed.signer().sign_for("graz", "q", QUERY)),
            coordinator_failure(fed.coordinator(graz)),
        ]
    finally:
        server.stop()
    return seen


# --- the test ---------------------------------------------------------------------------


def test_every_reason_has_a_case() -> None:
    assert set(CASES) == set(Reason)


@pytest.mark.parametrize(
    "reason",
    [r for r in Reason],
    ids=str,
)
def test_each_reason_is_raised_through_a_real_party(federation: Federation, reason: Reason) -> None:
    seen = CASES[reason](federation)
    assert seen
    for observed in seen:
        if reason in OFF_THE_WIRE:
            want = Seen(observed.where, reason, exit_code=2)
        else:
            status = grpc.StatusCode[BARE_STATUS.get(reason, reason.status)]
            want = Seen(observed.where, reason, status=status.name)
        assert observed == want
