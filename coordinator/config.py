"""Coordinator configuration: identity, keys, and the nodes it queries."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.errors import ConfigError
from security.certificates import TlsFiles
from security.signing import parse_public_key

__all__ = ["CoordinatorConfig", "NodeAddress", "load_coordinator_config"]


@dataclass(frozen=True)
class NodeAddress:
    """One node the coordinator queries, and the key its results must be signed with."""

    id: str
    address: str
    public_key: Ed25519PublicKey | None = None


@dataclass(frozen=True)
class CoordinatorConfig:
    """A whole coordinator configuration.

    Attributes:
        file: The config file.
        id: The coordinator's id (its certificate says ``fedstats://coordinator/<id>``).
        state_dir: Where the log of queries asked is kept.
        timeout_seconds: Deadline of one node's answer.
        nodes: The nodes to ask.
        tls: CA, certificate and key for mutual TLS; None dials plaintext (loopback only).
        signing_key: The Ed25519 key that signs queries.
    """

    file: Path
    id: str
    state_dir: Path
    timeout_seconds: float
    nodes: tuple[NodeAddress, ...]
    tls: TlsFiles | None = None
    signing_key: Path | None = None


def _fail(file: Path, key: str, message: str, hint: str = "") -> ConfigError:
    return ConfigError(f"{file}: {key}: {message}", field=key, hint=hint)


def _table(file: Path, raw: dict[str, Any], key: str, allowed: set[str]) -> dict[str, Any]:
    table = raw.get(key)
    if not isinstance(table, dict):
        raise _fail(file, key, f"missing [{key}] table")
    for name in table:
        if name not in allowed:
            raise _fail(
                file, f"{key}.{name}", "unknown key", hint=f"allowed: {', '.join(sorted(allowed))}"
            )
    return table


def _string(file: Path, table: dict[str, Any], where: str, key: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise _fail(file, f"{where}.{key}", "missing or not a string")
    return value


def load_coordinator_config(path: str | Path) -> CoordinatorConfig:
    """Read and validate a coordinator configuration.

    Raises:
        ConfigError: Naming the file and key that is wrong.
    """
    file = Path(path).resolve()
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    for key in raw:
        if key not in ("coordinator", "nodes", "tls", "signing"):
            raise _fail(file, key, "unknown key", hint="allowed: coordinator, nodes, tls, signing")
    base = file.parent
    coord = _table(file, raw, "coordinator", {"id", "state_dir", "timeout_seconds"})
    timeout = coord.get("timeout_seconds", 60.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise _fail(file, "coordinator.timeout_seconds", "must be a positive number")
    tls = None
    if "tls" in raw:
        t = _table(file, raw, "tls", {"ca", "cert", "key"})
        tls = TlsFiles(*(base / _string(file, t, "tls", k) for k in ("ca", "cert", "key")))
    signing = None
    if "signing" in raw:
        signing = base / _string(file, _table(file, raw, "signing", {"key"}), "signing", "key")
    return CoordinatorConfig(
        file=file,
        id=_string(file, coord, "coordinator", "id"),
        state_dir=base / str(coord.get("state_dir", "state")),
        timeout_seconds=float(timeout),
        nodes=_nodes(file, raw.get("nodes")),
        tls=tls,
        signing_key=signing,
    )


def _nodes(file: Path, nodes: object) -> tuple[NodeAddress, ...]:
    if not isinstance(nodes, list) or not nodes:
        raise _fail(
            file, "nodes", "no [[nodes]] given", hint='add [[nodes]] id = "..." address = "..."'
        )
    seen: set[str] = set()
    parsed = []
    for i, node in enumerate(nodes):
        where = f"nodes[{i}]"
        if not isinstance(node, dict):
            raise _fail(file, where, "must be a table")
        for key in node:
            if key not in ("id", "address", "public_key"):
                raise _fail(
                    file, f"{where}.{key}", "unknown key", hint="allowed: address, id, public_key"
                )
        node_id = _string(file, node, where, "id")
        if node_id in seen:
            raise _fail(file, f"{where}.id", f"node id {node_id!r} appears twice")
        seen.add(node_id)
        key_text = node.get("public_key")
        public = None
        if key_text is not None:
            public = parse_public_key(str(key_text), f"{file}: {where}.public_key")
        parsed.append(NodeAddress(node_id, _string(file, node, where, "address"), public))
    return tuple(parsed)
