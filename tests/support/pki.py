"""The test federation's PKI and the test coordinator's signed query requests."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from fedstats.certs import init_ca, issue
from protos import node_pb2 as pb
from security.certificates import TlsFiles
from security.signing import load_private_key, sign

COORDINATOR = "test-coordinator"


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
