"""Coordinator configuration: identity, keys, and the nodes it queries."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.tomlfile import Section, read_toml
from security.certificates import TlsFiles
from security.config import parse_key_files, public_key
from security.signing import key_id

__all__ = ["CoordinatorConfig", "NodeAddress", "load_coordinator_config"]


@dataclass(frozen=True)
class NodeAddress:
    """One node the coordinator queries, and the key its results must be signed with."""

    id: str
    address: str
    public_key: Ed25519PublicKey | None = None

    @cached_property
    def key_id(self) -> str | None:
        """The id of the node's key (`security.signing.key_id`), read once; None without one."""
        return None if self.public_key is None else key_id(self.public_key)


@dataclass(frozen=True)
class CoordinatorConfig:
    """A whole coordinator configuration.

    Attributes:
        file: The config file.
        id: The coordinator's id (its certificate says ``fedstats://coordinator/<id>``).
        state_dir: Where the log of queries asked is kept.
        timeout_seconds: Deadline of one node's answer.
        query_timeout_seconds: Deadline of the fan-out as a whole (each node's
            describe, then its answer, retries included); default four times
            ``timeout_seconds``.
        nodes: The nodes to ask.
        tls: CA, certificate and key for mutual TLS; None dials plaintext (loopback only).
        signing_key: The Ed25519 key that signs queries.
        issuer: The issuing body named in every release's citation (default: ``id``).
        release_version: The version cited with each release (``[coordinator]
            release_version``, default ``"1"``; raise it for a corrected release).
    """

    file: Path
    id: str
    state_dir: Path
    timeout_seconds: float
    nodes: tuple[NodeAddress, ...]
    tls: TlsFiles | None = None
    signing_key: Path | None = None
    issuer: str = ""
    release_version: str = "1"
    query_timeout_seconds: float | None = None

    @property
    def total_timeout(self) -> float:
        """The deadline of a whole fan-out, in seconds."""
        return self.query_timeout_seconds or 4 * self.timeout_seconds


def load_coordinator_config(path: str | Path) -> CoordinatorConfig:
    """Read and validate a coordinator configuration.

    Raises:
        ConfigError: Naming the file and key that is wrong.
    """
    top = read_toml(path)
    top.check_keys({"coordinator", "nodes", "tls", "signing"})
    coord = top.sub("coordinator")
    coord.check_keys(
        {"id", "state_dir", "timeout_seconds", "query_timeout_seconds", "issuer", "release_version"}
    )
    keys = parse_key_files(top)
    coordinator_id = coord.text("id", hint='e.g. id = "eurostat"')
    return CoordinatorConfig(
        file=top.file,
        id=coordinator_id,
        issuer=coord.get("issuer", str, "").strip() or coordinator_id,
        release_version=coord.get("release_version", str, "1"),
        state_dir=top.file.parent / coord.get("state_dir", str, "state"),
        timeout_seconds=coord.positive("timeout_seconds", 60.0),
        nodes=_nodes(top),
        tls=keys.tls,
        signing_key=keys.signing_key,
        query_timeout_seconds=(
            coord.positive("query_timeout_seconds", 1.0)
            if "query_timeout_seconds" in coord.table
            else None
        ),
    )


def _nodes(top: Section) -> tuple[NodeAddress, ...]:
    entries = top.tables("nodes")
    if not entries:
        raise top.error(
            "nodes", "no [[nodes]] given", hint='add [[nodes]] id = "..." address = "..."'
        )
    seen: set[str] = set()
    parsed = []
    for sec in entries:
        sec.check_keys({"id", "address", "public_key"})
        node_id = sec.text("id")
        if node_id in seen:
            raise sec.error("id", f"node id {node_id!r} appears twice")
        seen.add(node_id)
        public = public_key(sec, "public_key") if "public_key" in sec.table else None
        parsed.append(NodeAddress(node_id, sec.text("address"), public))
    return tuple(parsed)
