"""Coordinator configuration: its id, state directory and the nodes it queries."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indicators.errors import ConfigError

__all__ = ["CoordinatorConfig", "NodeAddress", "load_coordinator_config"]


@dataclass(frozen=True)
class NodeAddress:
    """One node the coordinator queries."""

    id: str
    address: str


@dataclass(frozen=True)
class CoordinatorConfig:
    """A whole coordinator configuration."""

    file: Path
    id: str
    state_dir: Path
    timeout_seconds: float
    nodes: tuple[NodeAddress, ...]


def _fail(file: Path, key: str, message: str, hint: str = "") -> ConfigError:
    return ConfigError(f"{file}: {key}: {message}", field=key, hint=hint)


def _unknown_keys(file: Path, where: str, table: dict[str, Any], allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise _fail(
                file, f"{where}.{key}", "unknown key", hint=f"allowed: {', '.join(sorted(allowed))}"
            )


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
        if key not in ("coordinator", "nodes"):
            raise _fail(file, key, "unknown key", hint="allowed: coordinator, nodes")
    coord = raw.get("coordinator")
    if not isinstance(coord, dict):
        raise _fail(file, "coordinator", "missing [coordinator] table")
    _unknown_keys(file, "coordinator", coord, {"id", "state_dir", "timeout_seconds"})
    if not isinstance(coord.get("id"), str) or not coord["id"]:
        raise _fail(file, "coordinator.id", "missing or not a string")
    timeout = coord.get("timeout_seconds", 60.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise _fail(file, "coordinator.timeout_seconds", "must be a positive number")
    nodes = raw.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise _fail(
            file,
            "nodes",
            "no [[nodes]] given",
            hint='add [[nodes]] id = "..." address = "host:port"',
        )
    seen: set[str] = set()
    parsed = []
    for i, node in enumerate(nodes):
        where = f"nodes[{i}]"
        if not isinstance(node, dict):
            raise _fail(file, where, "must be a table")
        _unknown_keys(file, where, node, {"id", "address"})
        for key in ("id", "address"):
            if not isinstance(node.get(key), str) or not node[key]:
                raise _fail(file, f"{where}.{key}", "missing or not a string")
        if node["id"] in seen:
            raise _fail(file, f"{where}.id", f"node id {node['id']!r} appears twice")
        seen.add(node["id"])
        parsed.append(NodeAddress(id=node["id"], address=node["address"]))
    return CoordinatorConfig(
        file=file,
        id=coord["id"],
        state_dir=file.parent / str(coord.get("state_dir", "state")),
        timeout_seconds=float(timeout),
        nodes=tuple(parsed),
    )
