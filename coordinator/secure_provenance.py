"""Provenance of a secure pooled round: what can be recorded, and what can be checked later.

A secure round publishes the sum of the survivors' masked, noisy share vectors; no node's
table is ever seen, by the coordinator or anyone else, so no signed node result exists
from which ``fedstats verify`` could recompute the pooled rows. What the record holds
instead: the query, the round id, the threshold ``t``, the participants and survivors,
the coordinator's signed request to each participant (the round description with the
query, as each node received it), each node's charge, and the nodes left out of the pool
with their reasons. ``check_secure_query`` verifies the requests' signatures and that each
binds the recorded query, round, ``t`` and participants; the caller checks the output
files' hashes and says that the rows themselves cannot be recomputed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.message import DecodeError

from common.errors import FedstatsError
from coordinator.secure_run import SecureOutcome
from indicators.spec import Query
from protos import node_pb2 as pb
from security.signing import public_key_text, verify

__all__ = ["NOT_RECOMPUTABLE", "SecureCheck", "check_secure_query", "secure_query_record"]

NOT_RECOMPUTABLE = (
    "the pooled rows of a secure round cannot be recomputed from node results: no node's "
    "table is ever seen, only the masked sum; the coordinator's signed requests and the "
    "files' hashes are what can be checked"
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def secure_query_record(
    outcome: SecureOutcome, node_keys: dict[str, Ed25519PublicKey]
) -> dict[str, Any]:
    """The provenance record of one secure round (one entry of ``queries``)."""
    record = outcome.plan.query.to_record()
    nodes: list[dict[str, Any]] = []
    for node_id in outcome.participants:
        signed = outcome.requests[node_id]
        entry: dict[str, Any] = {
            "node": node_id,
            "status": "pooled" if node_id in outcome.survivors else "dropped",
            "request": _b64(signed.request),
            "request_signature": _b64(signed.signature),
            "rho_charged": outcome.rho_charged.get(node_id, 0.0),
        }
        if node_id in node_keys:
            entry["public_key"] = public_key_text(node_keys[node_id])
        if (failure := outcome.failures.get(node_id)) is not None:  # dropped, maybe after masking
            entry.update(reason=failure.reason, message=failure.message)
        nodes.append(entry)
    for node_id, failure in sorted(outcome.failures.items()):
        if node_id not in outcome.participants:
            nodes.append({
                "node": node_id, "status": "left_out", "reason": failure.reason,
                "message": failure.message, "rho_charged": 0.0,
            })  # fmt: skip
    return {
        "query_id": outcome.query_id,
        "spec": record,
        "query_sha256": hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest(),
        "secure": {
            "round_id": outcome.round_id,
            "threshold": outcome.threshold,
            "participants": list(outcome.participants),
            "survivors": list(outcome.survivors),
            "pooled_sd": outcome.pooled_sd,
            "note": NOT_RECOMPUTABLE,
        },
        "nodes": nodes,
    }


@dataclass
class SecureCheck:
    """What ``check_secure_query`` found: lines for people, and the requests that verified."""

    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    requests: int = 0


def check_secure_query(
    query: dict[str, Any],
    coordinator_key: Ed25519PublicKey,
    trusted: dict[str, Ed25519PublicKey] | None = None,
) -> SecureCheck:
    """Check a secure round's record: each request signed, and bound to what is recorded.

    Args:
        query: One entry of the provenance's ``queries`` with a ``secure`` record.
        coordinator_key: The coordinator's public key, from the provenance.
        trusted: Node public keys from a trusted source; when given, the keys each signed
            round lists for its participants must equal them.
    """
    check = SecureCheck()
    secure = query["secure"]
    participants = list(secure.get("participants", []))
    where = f"secure round {secure.get('round_id', '?')}"
    if not set(secure.get("survivors", [])) <= set(participants):
        check.problems.append(f"{where}: survivors that were not participants")
    requested = [e for e in query["nodes"] if "request" in e]
    if sorted(e["node"] for e in requested) != sorted(participants):
        check.problems.append(f"{where}: a signed request is missing for some participant")
    for entry in requested:
        problem = _request_problem(entry, query, coordinator_key, trusted)
        if problem:
            check.problems.append(f"{where} node {entry['node']}: {problem}")
        else:
            check.requests += 1
    if requested and check.requests == len(requested):
        check.checked.append(
            f"{where}: {check.requests} requests signed by the coordinator, each binding the "
            f"query, the round, t = {secure.get('threshold')} and the participants"
        )
    return check


def _request_problem(
    entry: dict[str, Any],
    query: dict[str, Any],
    coordinator_key: Ed25519PublicKey,
    trusted: dict[str, Ed25519PublicKey] | None,
) -> str:
    """Why a participant's recorded request does not verify ('' when it does)."""
    raw = base64.b64decode(entry["request"])
    if not verify(coordinator_key, raw, base64.b64decode(entry["request_signature"])):
        return "the request's signature does not verify"
    try:
        request = pb.QueryRequest.FromString(raw)
        spec = json.loads(json.dumps(Query.from_wire(request.spec).to_record()))
    except (DecodeError, ValueError, FedstatsError) as exc:
        return f"the signed request cannot be read ({exc})"
    secure = query["secure"]
    signed_participants = [p.node_id for p in request.secure.participants]
    if request.audience != entry["node"] or request.query_id != query["query_id"]:
        return "the signed request names another node or query"
    if spec != query["spec"]:
        return "the signed request asks another query than the one recorded"
    if request.secure.round_id != secure["round_id"] or request.secure.threshold != secure[
        "threshold"
    ] or sorted(signed_participants) != sorted(secure["participants"]):  # fmt: skip
        return "the signed round differs from the recorded round id, t or participants"
    if trusted is not None:
        listed = {p.node_id: p.public_key for p in request.secure.participants}
        wrong = sorted(
            n for n, k in listed.items() if n not in trusted or trusted[n].public_bytes_raw() != k
        )
        if wrong:
            return f"the signed round lists untrusted keys for {', '.join(wrong)}"
    return ""
