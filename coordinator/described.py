"""Node descriptions kept between queries, so that a query asks each node in one call.

A node's description (its variables, codes, periods, rules: everything a query is planned
from) changes only when the node restarts with another config, other data or another
result key. The coordinator keeps the last description each node signed, as signed, in
``<state_dir>/descriptions.json``, and plans the next query from it, naming its digest
(``NodeDescription.description_sha256``) in the signed request: a node that no longer
serves that description refuses before anything is computed or charged
(``DESCRIPTION_CHANGED``), and is described again (`coordinator.client.Session`).

Only descriptions signed by the node and checked against its configured key are kept,
with that key's id, and a kept one is checked again when it is used
(`coordinator.identity.checked_description`): an entry kept under another key than the
one configured now, or altered since, is not used. Its budget is not read: the budget
comes with each answer. The file is a cache: when it is missing or unreadable every node
is described, as on the first query, and deleting it is always safe.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from pathlib import Path

from google.protobuf.message import DecodeError

from common.durable import write_durably
from coordinator.config import CoordinatorConfig
from protos import node_pb2 as pb

__all__ = ["DESCRIPTIONS_FILE", "keep", "kept"]

log = logging.getLogger("fedstats.coordinator")

DESCRIPTIONS_FILE = "descriptions.json"
_FORMAT = 2


def kept(config: CoordinatorConfig) -> dict[str, pb.SignedDescription]:
    """The kept signed description of each configured node kept under its configured key.

    Read, not checked: each is checked when its node is asked (`Session.describe_then_ask`).
    """
    entries = _read(config.state_dir / DESCRIPTIONS_FILE)
    out: dict[str, pb.SignedDescription] = {}
    for node in config.nodes:
        entry = entries.get(node.id)
        if not isinstance(entry, dict) or node.key_id is None or entry.get("key_id") != node.key_id:
            continue
        try:
            out[node.id] = pb.SignedDescription.FromString(base64.b64decode(entry["signed"]))
        except (KeyError, TypeError, ValueError, DecodeError):  # binascii.Error is a ValueError
            continue
    return out


def keep(config: CoordinatorConfig, fresh: Mapping[str, pb.SignedDescription | None]) -> None:
    """Keep the signed descriptions heard now; forget those mapped to None.

    The entries of other nodes (another config sharing the state directory) are left as
    they were. Nothing is written when no node was described.
    """
    if not fresh:
        return
    path = config.state_dir / DESCRIPTIONS_FILE
    entries = _read(path)
    keys = {node.id: node.key_id for node in config.nodes}
    for node_id, signed in fresh.items():
        if signed is None or keys.get(node_id) is None:
            entries.pop(node_id, None)
            continue
        entries[node_id] = {
            "key_id": keys[node_id],
            "signed": base64.b64encode(signed.SerializeToString()).decode("ascii"),
        }
    text = json.dumps({"format": _FORMAT, "nodes": entries}, sort_keys=True)
    write_durably(path, text.encode("utf-8"))


def _read(path: Path) -> dict[str, object]:
    """The file's entries by node; none (logged) when it is missing or unreadable."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable (%s); every node is described again", path, exc)
        return {}
    nodes = document.get("nodes") if isinstance(document, dict) else None
    if not isinstance(nodes, dict) or document.get("format") != _FORMAT:
        log.warning("%s: not a descriptions file of this release; every node is described", path)
        return {}
    return nodes
