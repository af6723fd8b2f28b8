"""The public form of provenance: ``provenance.public.json``, without the node results.

``provenance.json`` holds every node's signed result bytes, and with them the noisy
values of the cells the tables suppress (``c``). It is kept by the coordinator and given
to those who verify the tables. ``provenance.public.json``, written beside it, can be
published with the tables: it holds the query, the coordinator's signed requests, each
node result's SHA-256 and signature metadata (key, signature, audit-chain position,
what was charged) but not the result bytes, the SHA-256 of every output file and of
``provenance.json``, and each row's flags and status (no value).

``verify_public`` checks what the public form allows: the coordinator's request
signatures, the output files' hashes, the rows' statuses against ``benchmark.csv``, that
each withheld result is named by a well-formed SHA-256 and signature from the stated key,
the stated audit positions for rollbacks, and, where ``provenance.json`` lies beside it,
that both files agree. It says plainly what it could not check: the nodes' signatures on
their results and the recomputation of ``benchmark.csv`` need the results themselves.

A result's SHA-256 and signature commit to its bytes without showing them; they do not
hide them from someone who guesses every byte, but the suppressed values are noisy DP
releases like the published ones, so even a guessed value is a noisy value, never a
true count.
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.message import DecodeError

from coordinator.chain import ChainPosition
from coordinator.publish.jsontext import dumps_indented
from coordinator.rows import BenchmarkRow
from coordinator.verify_report import VerifyReport, check_request
from protos import node_pb2 as pb
from security.signing import key_id, parse_public_key

__all__ = ["PUBLIC_FILE", "PUBLIC_FORMAT", "public_form", "verify_public", "write_public"]

PUBLIC_FORMAT = "fedstats-provenance-public/1"
PUBLIC_FILE = "provenance.public.json"
FULL_FILE = "provenance.json"
_SHA256 = re.compile(r"[0-9a-f]{64}")
# A withheld result is named by these; everything else of a node entry is copied as is.
_RESULT_FIELDS = ("result", "signature")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _row_status(row: BenchmarkRow) -> dict[str, Any]:
    """A row's identity, flags and status: no value, interval or denominator."""
    return {
        "node": row.node,
        "indicator": row.indicator,
        "group_dim": row.group_dim,
        "group": row.group,
        "breakdown": dict(row.breakdown),
        "comparator": row.comparator,
        "flags": str(row.flags),
        "status": str(row.status),
    }


def _public_node(entry: dict[str, Any]) -> dict[str, Any]:
    """A node entry of ``provenance.json`` with its result bytes replaced by their facts."""
    public = {k: v for k, v in entry.items() if k not in _RESULT_FIELDS}
    if "result" not in entry:
        return public
    raw = base64.b64decode(entry["result"])
    result = pb.QueryResult.FromString(raw)
    public.update(
        result_sha256=_sha256(raw),
        result_signature=entry["signature"],
        audit_seq=result.audit_seq,
        audit_hash=result.audit_hash,
        time_period=result.time_period,
    )
    return public


def public_form(
    document: dict[str, Any], full_sha256: str, rows: list[list[BenchmarkRow]]
) -> dict[str, Any]:
    """The public form of a ``provenance.json`` document.

    Args:
        document: The full document, as ``write_provenance`` wrote it.
        full_sha256: The SHA-256 of ``provenance.json``'s bytes.
        rows: The benchmark rows of each of the document's queries, in its order.
    """
    return {
        "format": PUBLIC_FORMAT,
        "created": document["created"],
        "coordinator": document["coordinator"],
        "coordinator_public_key": document["coordinator_public_key"],
        "withheld": "node results (their table cells, suppressed noisy values included): "
        f"in {FULL_FILE}, kept by the coordinator for verifiers",
        "queries": [
            {
                **{k: v for k, v in query.items() if k != "nodes"},
                "nodes": [_public_node(entry) for entry in query["nodes"]],
                "rows": [_row_status(row) for row in query_rows],
            }
            for query, query_rows in zip(document["queries"], rows, strict=True)
        ],
        "files": {**document["files"], FULL_FILE: full_sha256},
    }


def write_public(full: Path, rows: list[list[BenchmarkRow]]) -> Path:
    """Write ``provenance.public.json`` beside the ``provenance.json`` at ``full``."""
    raw = full.read_bytes()
    document = public_form(json.loads(raw), _sha256(raw), rows)
    path = full.parent / PUBLIC_FILE
    path.write_text(dumps_indented(document) + "\n", encoding="utf-8")
    return path


def verify_public(
    directory: Path, trusted: dict[str, Ed25519PublicKey] | None, report: VerifyReport
) -> None:
    """Verify the public form in ``directory`` as far as it allows, into ``report``."""
    try:
        document = json.loads((directory / PUBLIC_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        report.problems.append(f"cannot read {directory / PUBLIC_FILE}: {exc}")
        return
    if document.get("format") != PUBLIC_FORMAT:
        report.problems.append(f"{PUBLIC_FILE}: not a {PUBLIC_FORMAT} document")
        return
    coordinator_key = parse_public_key(document["coordinator_public_key"], "coordinator key")
    for query in document["queries"]:
        for entry in query["nodes"]:
            where = f"query {query['query_id']} node {entry['node']}"
            check_request(entry, coordinator_key, where, report)
            if entry["status"] == "answered":
                _check_withheld(entry, trusted, where, report, _received(document))
    _check_files(directory, document["files"], report)
    _check_statuses(directory, document, report)
    _check_full(directory, document, report)
    report.unchecked.append(
        "the nodes' signatures on their results and the recomputation of benchmark.csv "
        f"from them: the results are withheld from {PUBLIC_FILE}; they need {FULL_FILE}, "
        "kept by the coordinator for verifiers; the audit positions are as the public "
        "form states them, checked for rollbacks but not against the nodes' signatures"
    )


def _received(document: dict[str, Any]) -> int:
    """A time (Unix ms) by which every result had been received (see ``provenance``)."""
    try:
        return int(dt.datetime.fromisoformat(document["created"]).timestamp() * 1000) + 1000
    except (KeyError, TypeError, ValueError):
        return 2**62


def _check_withheld(
    entry: dict[str, Any],
    trusted: dict[str, Ed25519PublicKey] | None,
    where: str,
    report: VerifyReport,
    received: int,
) -> None:
    """Check that a withheld result is named well, by the right key, and note its position."""
    public = parse_public_key(entry["public_key"], f"{where} key")
    if trusted is not None and (
        entry["node"] not in trusted or key_id(trusted[entry["node"]]) != key_id(public)
    ):
        report.problems.append(f"{where}: signed by a key that is not the node's trusted key")
    try:
        signature = base64.b64decode(entry["result_signature"], validate=True)
    except (KeyError, binascii.Error):
        signature = b""
    if (
        not _SHA256.fullmatch(str(entry.get("result_sha256", "")))
        or len(signature) != 64
        or key_id(public) != entry.get("key_id")
    ):
        report.problems.append(
            f"{where}: the withheld result is not named by a well-formed "
            "SHA-256, signature and key id"
        )
        return
    asked = 0
    if "request" in entry:
        asked = pb.QueryRequest.FromString(base64.b64decode(entry["request"])).issued_at_ms
    report.positions.append(
        ChainPosition(
            entry["node"],
            entry["audit_seq"],
            entry["audit_hash"],
            asked,
            received,
            where,
            fingerprint=entry.get("fingerprint", ""),
            period=entry.get("time_period", ""),
        )
    )
    report.checked.append(
        f"{where}: result withheld, named by SHA-256 {entry['result_sha256'][:16]}"
    )


def _check_files(directory: Path, files: dict[str, str], report: VerifyReport) -> None:
    """Check the output files' hashes; ``provenance.json`` may be absent (withheld)."""
    for name, digest in files.items():
        path = directory / name  # names are relative to the output directory
        if not path.exists():
            if name != FULL_FILE:
                report.problems.append(f"{name}: listed but missing")
        elif _sha256(path.read_bytes()) != digest:
            report.problems.append(f"{name}: changed since it was written (SHA-256 differs)")
        else:
            report.checked.append(f"{name}: SHA-256 matches")


def _status_key(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(row[c]) for c in ("node", "indicator", "group", "comparator", "flags"))


def _check_statuses(directory: Path, document: dict[str, Any], report: VerifyReport) -> None:
    """Compare the rows' flags and statuses with ``benchmark.csv``'s."""
    try:
        with (directory / "benchmark.csv").open(newline="", encoding="utf-8") as handle:
            written = sorted((*_status_key(r), r["status"]) for r in csv.DictReader(handle))
    except (OSError, KeyError) as exc:
        report.problems.append(f"benchmark.csv: cannot read its flags and statuses ({exc})")
        return
    listed = sorted((*_status_key(r), r["status"]) for q in document["queries"] for r in q["rows"])
    if listed == written:
        report.checked.append(f"benchmark.csv: the flags and statuses of {len(listed)} rows match")
    else:
        report.problems.append(f"benchmark.csv: flags or statuses differ from {PUBLIC_FILE}'s")


def _check_full(directory: Path, document: dict[str, Any], report: VerifyReport) -> None:
    """Where ``provenance.json`` lies beside the public form, check that both agree."""
    path = directory / FULL_FILE
    if not path.exists():
        report.unchecked.append(f"{FULL_FILE}: not here; its SHA-256 is listed for later")
        return
    try:
        full = json.loads(path.read_bytes())
        expected = [_public_node(entry) for query in full["queries"] for entry in query["nodes"]]
    except (ValueError, KeyError, DecodeError, binascii.Error) as exc:
        report.problems.append(f"{FULL_FILE}: cannot be read to compare ({exc})")
        return
    stated = [entry for query in document["queries"] for entry in query["nodes"]]
    if stated == expected:
        report.checked.append(f"{FULL_FILE}: its results' hashes and positions match")
    else:
        report.problems.append(f"{FULL_FILE}: its node entries differ from {PUBLIC_FILE}'s")
