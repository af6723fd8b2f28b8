"""Rollbacks seen across signed results: a node's audit-chain positions must move forward.

Every answer a node signs carries its position in the node's audit chain (``audit_seq``
and ``audit_hash`` of the answer's release or replay entry). A node's chain only grows, so
across the results of one node:

- one position (seq) holds one entry: two results at the same seq with different hashes
  (or one hash at two seqs) mean two different chains, i.e. a fork after a rollback;
- a result asked for after another result had been received sits at a later position:
  the same or an earlier seq means the state behind the second answer is older than the
  first answer, i.e. the ledger was rolled back (and spent budget given back) in between.

Results of nodes that do not send a position (release 0.2 and older) are left out.

Each result also carries the node's data fingerprint (what its dataset and effective
config were). Two results of one node with different fingerprints are not an error (the
node's data or mappings changed between them: a fix, a new extract) but their numbers
are not from the same data, and `fingerprint_changes` says so.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations

__all__ = ["ChainPosition", "fingerprint_changes", "rollbacks"]


@dataclass(frozen=True)
class ChainPosition:
    """Where one signed result sits in its node's audit chain.

    Attributes:
        node: The node's id.
        seq: The result's audit entry (``audit_seq``); 0 when the node sent none.
        hash: That entry's hash (``audit_hash``).
        asked_ms: When the coordinator signed the request (Unix ms).
        received_ms: A time (Unix ms) by which the result had been received.
        where: Where the result is, for people (directory, query, node).
        fingerprint: The node's data and config fingerprint of the result ("" when the
            node sent none).
        period: The reference period the result answers.
    """

    node: str
    seq: int
    hash: str
    asked_ms: int
    received_ms: int
    where: str
    fingerprint: str = ""
    period: str = ""


def fingerprint_changes(positions: list[ChainPosition]) -> list[str]:
    """One line per node and period whose results came from different fingerprints."""
    by_node: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(dict)
    for position in positions:
        if position.fingerprint:
            seen = by_node[(position.node, position.period)]
            seen.setdefault(position.fingerprint, []).append(position.where)
    found = []
    for (node, period), seen in sorted(by_node.items()):
        if len(seen) > 1:
            parts = "; ".join(f"{f[:12]}: {', '.join(w)}" for f, w in seen.items())
            label = f"node {node}" + (f" ({period})" if period else "")
            found.append(
                f"{label}: results from {len(seen)} different data fingerprints (its data "
                f"or mappings changed between them; their numbers are not from the same "
                f"data): {parts}"
            )
    return found


def rollbacks(positions: list[ChainPosition]) -> list[str]:
    """Every pair of results of one node whose positions show a rollback, one line each."""
    by_node: dict[str, list[ChainPosition]] = defaultdict(list)
    for position in positions:
        if position.seq > 0:
            by_node[position.node].append(position)
    found: list[str] = []
    for node, results in sorted(by_node.items()):
        for a, b in combinations(sorted(results, key=lambda p: p.asked_ms), 2):
            problem = _between(a, b)
            if problem:
                found.append(f"node {node}: {problem} ({a.where}; {b.where})")
    return found


def _between(a: ChainPosition, b: ChainPosition) -> str:
    """What is wrong between two results of one node (``a`` asked no later than ``b``)."""
    if a.seq == b.seq and a.hash != b.hash:
        return (
            f"rollback: two different audit entries at seq {a.seq} (the node's ledger "
            "forked: its state was rolled back between these results)"
        )
    if a.hash == b.hash and a.seq != b.seq:
        return f"audit entry {a.hash[:16]} at two positions ({a.seq} and {b.seq})"
    if b.asked_ms > a.received_ms and b.seq <= a.seq:
        return (
            f"rollback: a result asked for after another was received sits at audit seq "
            f"{b.seq}, not after {a.seq} (the node's ledger went backwards)"
        )
    return ""
