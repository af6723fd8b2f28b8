"""Provenance of benchmark outputs: signed requests and results, verifiable later.

``provenance.json`` beside ``benchmark.csv`` holds, for every query and node, the exact
request bytes the coordinator signed, the exact result bytes the node signed, both
signatures and both public keys, what the node charged, and the SHA-256 of every output
file. ``verify`` checks every signature, recomputes the benchmark rows from the signed
results alone and compares them with ``benchmark.csv`` byte for byte, and checks the
other files' hashes: changing one byte of any of them is detected. Its public form,
``provenance.public.json``, withholds the node results (and with them the suppressed
noisy cells; see ``public_provenance``).

A secure pooled round (``coordinator.secure_provenance``) has no node result to recompute
from: its record holds the coordinator's signed requests, the round and its charges;
``verify`` checks those and the files' hashes, and says that the rows cannot be recomputed.

Every node entry also states the data fingerprint its signed result carries (what the
node's dataset and effective config were); ``verify`` reports, as a notice, results of
one node and period from different fingerprints.

Every signed result carries the node's audit-chain position (``audit_seq``,
``audit_hash``). Across the results of one node, in one directory or several given
together, positions must only move forward: two different entries at one position, or a
result asked for after another was received that sits at the same or an earlier position,
mean that the node's state was rolled back between them (see ``chain``).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.message import DecodeError

from common.collector import collector_paused
from common.errors import FedstatsError, Reason
from coordinator.chain import ChainPosition, fingerprint_changes, rollbacks
from coordinator.kinds import Gathered, kind_of, narrow
from coordinator.public_provenance import PUBLIC_FILE, verify_public, write_public
from coordinator.publish.citation import Citation, release_id, with_release
from coordinator.publish.jsontext import dumps_indented
from coordinator.publish.outputs import check_formats, output_files, write_outputs
from coordinator.publish.tables import write_csv
from coordinator.results import NodeTables, read_result
from coordinator.rows import POOLED, BenchmarkRow
from coordinator.run import QueryOutcome
from coordinator.secure_provenance import NOT_RECOMPUTABLE, check_secure_query, secure_query_record
from coordinator.secure_run import SecureOutcome
from coordinator.verify_report import VerifyReport, check_request
from indicators.spec import Plan, Query
from protos import node_pb2 as pb
from security.signing import key_id, parse_public_key, public_key_text, verify

__all__ = [
    "FORMAT",
    "SECURE_FORMATS",
    "VerifyReport",
    "check_secure_formats",
    "citation_for",
    "publish",
    "publish_secure",
    "signed_rows",
    "verify_outputs",
    "verify_provenance",
    "write_provenance",
]

FORMAT = "fedstats-provenance/1"
FILE = "provenance.json"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _node_order(outcome: QueryOutcome) -> list[str]:
    """Every node of the query, asked or not, in the order of the rows.

    A local query gives a failed node no rows: such nodes come last.
    """
    rowed = [r.node for r in outcome.rows if r.node != POOLED]
    return list(dict.fromkeys([*rowed, *outcome.answers, *outcome.failures]))


def _node_entry(outcome: QueryOutcome, node_id: str, node_keys: dict[str, str]) -> dict[str, Any]:
    reply = outcome.replies.get(node_id)
    entry: dict[str, Any] = {"node": node_id}
    if reply is not None and reply.request is not None:
        entry["request"] = _b64(reply.request.request)
        entry["request_signature"] = _b64(reply.request.signature)
    if node_id in outcome.answers and reply is not None and reply.signed is not None:
        entry.update(
            status="answered",
            result=_b64(reply.signed.result),
            signature=_b64(reply.signed.signature),
            key_id=reply.signed.key_id,
            public_key=node_keys[node_id],
            rho_charged=outcome.rho_charged.get(node_id, 0.0),
            fingerprint=reply.result.fingerprint if reply.result is not None else "",
        )
    else:
        failure = outcome.failures[node_id]
        entry.update(
            status="failed",
            grpc_status=failure.status,
            reason=failure.reason,
            message=failure.message,
            geo=next((r.geo for r in outcome.rows if r.node == node_id), ""),
            time_period=next((r.time_period for r in outcome.rows if r.node == node_id), ""),
            geo_level=next((r.geo_level for r in outcome.rows if r.node == node_id), ""),
        )
    return entry


def write_provenance(
    outcomes: list[QueryOutcome],
    out_dir: Path,
    files: list[Path],
    coordinator_id: str,
    coordinator_key: Ed25519PublicKey,
    node_keys: dict[str, Ed25519PublicKey],
    citation: Citation | None = None,
) -> Path:
    """Write ``provenance.json`` for the outcomes behind the given output files."""
    keys = {node: public_key_text(key) for node, key in node_keys.items()}
    queries = [
        {
            "query_id": o.query_id,
            "spec": o.plan.query.to_record(),
            "query_sha256": hashlib.sha256(
                json.dumps(o.plan.query.to_record(), sort_keys=True).encode()
            ).hexdigest(),
            "nodes": [_node_entry(o, n, keys) for n in _node_order(o)],
        }
        for o in outcomes
    ]
    return _write_document(queries, out_dir, files, coordinator_id, coordinator_key, citation)


def _write_document(
    queries: list[dict[str, Any]],
    out_dir: Path,
    files: list[Path],
    coordinator_id: str,
    coordinator_key: Ed25519PublicKey,
    citation: Citation | None = None,
) -> Path:
    document = {
        "format": FORMAT,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "coordinator": coordinator_id,
        "coordinator_public_key": public_key_text(coordinator_key),
        **({"release": citation.record()} if citation else {}),
        "queries": queries,
        "files": {str(path.relative_to(out_dir)): _sha256(path) for path in files},
    }
    path = out_dir / FILE
    path.write_text(dumps_indented(document) + "\n", encoding="utf-8")
    return path


def verify_outputs(
    directories: list[Path],
    trusted: dict[str, Ed25519PublicKey] | None = None,
    public: bool = False,
) -> VerifyReport:
    """Verify several output directories, and the nodes' audit positions across them.

    Args:
        directories: Each holds ``provenance.json`` (or its public form) and the files
            it lists.
        trusted: Node public keys from a trusted source, as for ``verify_provenance``.
        public: Verify ``provenance.public.json`` even where ``provenance.json`` exists;
            without it the public form is verified only where the full one is absent.
    """
    report = VerifyReport()
    for directory in directories:
        one = VerifyReport()
        if public or (not (directory / FILE).exists() and (directory / PUBLIC_FILE).exists()):
            verify_public(directory, trusted, one)
        else:
            one = _verify_directory(directory, trusted)
        prefix = f"{directory}: " if len(directories) > 1 else ""
        report.checked += [prefix + line for line in one.checked]
        report.problems += [prefix + line for line in one.problems]
        report.unchecked += [prefix + line for line in one.unchecked]
        report.requests += one.requests
        report.results += one.results
        report.positions += one.positions
    _check_positions(report)
    return report


def verify_provenance(
    directory: Path, trusted: dict[str, Ed25519PublicKey] | None = None
) -> VerifyReport:
    """Verify an output directory written by ``fedstats query`` or ``fedstats demo``.

    Args:
        directory: Holds ``provenance.json`` and the files it lists.
        trusted: Node public keys from a trusted source (a coordinator config); when
            given, the keys recorded in the provenance must equal them.
    """
    return verify_outputs([directory], trusted)


def signed_rows(directory: Path) -> list[BenchmarkRow]:
    """The benchmark rows of an output directory, recomputed from its signed results alone.

    The same recomputation as `fedstats verify` (which then compares them with
    ``benchmark.csv``).

    Raises:
        FedstatsError: When a signature or a result does not verify.
    """
    document = json.loads((directory / FILE).read_text(encoding="utf-8"))
    coordinator_key = parse_public_key(document["coordinator_public_key"], "coordinator key")
    report = VerifyReport()
    received = _answered_by(document)
    rows = [
        row
        for query in document["queries"]
        for row in _verify_query(query, coordinator_key, None, report, received)
    ]
    if report.problems:
        raise FedstatsError(f"{directory / FILE}: {'; '.join(report.problems)}")
    return with_release(rows, document.get("release", {}).get("release", ""))


def _check_positions(report: VerifyReport) -> None:
    """Record every rollback the results' audit positions show, or that they move forward."""
    found = rollbacks(report.positions)
    report.problems += found
    report.notices += fingerprint_changes(report.positions)
    if report.positions and not found:
        nodes = len({p.node for p in report.positions})
        report.checked.append(
            f"audit positions of {len(report.positions)} results from {nodes} nodes: "
            "consistent, no rollback"
        )


def _verify_directory(directory: Path, trusted: dict[str, Ed25519PublicKey] | None) -> VerifyReport:
    """Verify one output directory's signatures, rows and file hashes."""
    report = VerifyReport()
    try:
        document = json.loads((directory / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        report.problems.append(f"cannot read {directory / FILE}: {exc}")
        return report
    if document.get("format") != FORMAT:
        report.problems.append(f"{FILE}: not a {FORMAT} document")
        return report
    coordinator_key = parse_public_key(document["coordinator_public_key"], "coordinator key")
    received = _answered_by(document)
    rows: list[BenchmarkRow] = []
    secure = [q for q in document["queries"] if "secure" in q]
    for query in document["queries"]:
        if "secure" in query:
            found = check_secure_query(query, coordinator_key, trusted)
            report.checked += found.checked
            report.problems += found.problems
            report.requests += found.requests
        else:
            rows += _verify_query(query, coordinator_key, trusted, report, received)
    if secure:
        report.unchecked.append(f"benchmark.csv: not recomputed: {NOT_RECOMPUTABLE}")
    else:
        release = document.get("release", {}).get("release", "")
        _check_benchmark(directory, with_release(rows, release), report)
    for name, digest in document["files"].items():
        path = directory / name  # names are relative to the output directory
        if not path.exists():
            report.problems.append(f"{name}: listed but missing")
        elif _sha256(path) != digest:
            report.problems.append(f"{name}: changed since it was written (SHA-256 differs)")
        else:
            report.checked.append(f"{name}: SHA-256 matches")
    return report


def _verify_query(
    query: dict[str, Any],
    coordinator_key: Ed25519PublicKey,
    trusted: dict[str, Ed25519PublicKey] | None,
    report: VerifyReport,
    received: int,
) -> list[BenchmarkRow]:
    """Check one query's signatures and recompute its rows from the signed results alone."""
    try:
        kind = kind_of(Query.from_record(query["spec"]))
    except FedstatsError as exc:
        report.problems.append(f"query {query['query_id']}: not a valid query ({exc})")
        return []
    plans: dict[str, Plan] = {}
    answers: dict[str, NodeTables] = {}
    geos: dict[str, str] = {}
    periods: dict[str, str] = {}
    levels: dict[str, str] = {}
    order: list[str] = []
    for entry in query["nodes"]:
        node = entry["node"]
        order.append(node)
        where = f"query {query['query_id']} node {node}"
        check_request(entry, coordinator_key, where, report)
        if entry["status"] != "answered":
            geos[node] = entry.get("geo", "")
            periods[node] = entry.get("time_period", "")
            levels[node] = entry.get("geo_level", "")
            continue
        result = _signed_result(entry, trusted, where, report)
        if result is None:
            continue
        try:
            plans[node] = kind.plan_answered(result)
            answers[node] = read_result(result, _asked_plan(entry, plans[node]))
        except (DecodeError, ValueError, FedstatsError) as exc:
            report.problems.append(f"{where}: the signed result cannot be read ({exc})")
            continue
        report.results += 1
        report.positions.append(_position(entry, result, received, where))
        report.checked.append(f"{where}: result signed by key {entry['key_id'][:16]}")
    lacking = frozenset(
        e["node"] for e in query["nodes"] if e.get("reason") == Reason.VARIABLE_NOT_PROVIDED
    )
    return kind.rows(Gathered(order, plans, answers, geos, lacking, periods, levels))


def _answered_by(document: dict[str, Any]) -> int:
    """A time (Unix ms) by which every result in the document had been received.

    The document was written after its results came back; its ``created`` is cut to
    whole seconds, hence the second added.
    """
    try:
        created = dt.datetime.fromisoformat(document["created"])
    except (KeyError, TypeError, ValueError):
        return 2**62  # unknown: no result counts as received before any other was asked
    return int(created.timestamp() * 1000) + 1000


def _position(
    entry: dict[str, Any], result: pb.QueryResult, received: int, where: str
) -> ChainPosition:
    """Where a verified result sits in its node's audit chain, and when it was asked."""
    asked = 0
    if "request" in entry:
        asked = pb.QueryRequest.FromString(base64.b64decode(entry["request"])).issued_at_ms
    return ChainPosition(
        node=entry["node"],
        seq=result.audit_seq,
        hash=result.audit_hash,
        asked_ms=asked,
        received_ms=received,
        where=where,
        fingerprint=result.fingerprint,
        period=result.time_period,
    )


def _asked_plan(entry: dict[str, Any], plan: Plan) -> Plan:
    """The plan of the query the node was asked (it may hold fewer indicators)."""
    if "request" not in entry:
        return plan
    request = pb.QueryRequest.FromString(base64.b64decode(entry["request"]))
    return narrow(plan, Query.from_wire(request.spec))


def _signed_result(
    entry: dict[str, Any],
    trusted: dict[str, Ed25519PublicKey] | None,
    where: str,
    report: VerifyReport,
) -> pb.QueryResult | None:
    """The node's result if its signature verifies, else None and the problem recorded."""
    public = parse_public_key(entry["public_key"], f"{where} key")
    if trusted is not None and (
        entry["node"] not in trusted or key_id(trusted[entry["node"]]) != key_id(public)
    ):
        report.problems.append(f"{where}: signed by a key that is not the node's trusted key")
    result = base64.b64decode(entry["result"])
    if key_id(public) != entry["key_id"] or not verify(
        public, result, base64.b64decode(entry["signature"])
    ):
        report.problems.append(f"{where}: the result's signature does not verify")
        return None
    try:
        return pb.QueryResult.FromString(result)
    except DecodeError as exc:
        report.problems.append(f"{where}: the signed result cannot be read ({exc})")
        return None


def _check_benchmark(directory: Path, rows: list[BenchmarkRow], report: VerifyReport) -> None:
    """Recompute benchmark.csv from the signed results and compare byte for byte."""
    target = directory / "benchmark.csv"
    if not target.exists():
        report.problems.append("benchmark.csv: missing")
        return
    with tempfile.TemporaryDirectory() as tmp:
        expected = Path(tmp) / "benchmark.csv"
        write_csv(rows, expected)
        if expected.read_bytes() == target.read_bytes():
            report.checked.append("benchmark.csv: recomputed from the signed results, identical")
        elif (shared := _earlier_layout(expected, target)) is not None:
            report.checked.append(
                "benchmark.csv: recomputed from the signed results, identical in the "
                f"{shared} columns of the earlier release's layout"
            )
        else:
            report.problems.append(
                "benchmark.csv: differs from what the signed results give (altered)"
            )


def _earlier_layout(expected: Path, target: Path) -> int | None:
    """The number of columns compared when ``target`` has an earlier release's layout.

    An earlier release wrote fewer columns (before ``status`` and the columns after it,
    flag ``n`` where a node gave no value, ``*`` as the geo of pooled rows). Its file
    verifies when every one of its columns matches the recomputed file, reading its ``n``
    as no flag and its pooled geo as the members; None otherwise.
    """
    with (
        expected.open(newline="", encoding="utf-8") as a,
        target.open(newline="", encoding="utf-8") as b,
    ):
        new, old = list(csv.reader(a)), list(csv.reader(b))
    if not old or len(new) != len(old) or "status" in old[0] or not set(old[0]) < set(new[0]):
        return None
    at = [new[0].index(c) for c in old[0]]
    flags, node, geo = (old[0].index(c) for c in ("flags", "node", "geo"))
    for recomputed, written in zip(new[1:], old[1:], strict=True):
        written[flags] = written[flags].replace("n", "")
        if written[node] == written[geo] == POOLED:  # pooled rows did not name their members
            written[geo] = recomputed[new[0].index("geo")]
        if [recomputed[i] for i in at] != written:
            return None
    return len(old[0])


def citation_for(
    query_ids: list[str], coordinator_id: str, issuer: str = "", version: str = "1"
) -> Citation:
    """The citable release of the given queries, issued now."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    release = release_id(coordinator_id, query_ids, now)
    return Citation(release, issuer or coordinator_id, version, now)


def publish(
    outcomes: list[QueryOutcome],
    out_dir: Path,
    formats: list[str],
    coordinator_id: str,
    coordinator_key: Ed25519PublicKey,
    node_keys: dict[str, Ed25519PublicKey],
    citation: Citation | None = None,
) -> list[Path]:
    """Write the outputs, ``provenance.json`` and its public form; returns every file.

    The two provenance files come last. ``benchmark.csv`` is always written: ``fedstats
    verify`` recomputes it from the signed results. The outputs form one citable release
    (`citation_for` the queries when none is given).
    """
    wanted = check_formats(["csv", *formats])
    citation = citation or citation_for([o.query_id for o in outcomes], coordinator_id)
    written = output_files(write_outputs(outcomes, out_dir, wanted, citation))
    with collector_paused():  # as for the outputs: its passes grew with the cities held
        provenance = write_provenance(
            outcomes, out_dir, written, coordinator_id, coordinator_key, node_keys, citation
        )
        public = write_public(provenance, [o.rows for o in outcomes])
    return [*written, provenance, public]


SECURE_FORMATS = ("csv", "parquet", "sdmx")
"""What a secure round publishes: pooled rows only, so no report comparing the cities."""


def check_secure_formats(formats: list[str]) -> list[str]:
    """The formats a secure round can write (``csv`` always), checked before any node is asked.

    Raises:
        FedstatsError: An unknown format, or ``html`` (reason ``UNSUPPORTED_FORMAT``).
    """
    wanted = check_formats(["csv", *formats])
    if "html" in wanted:
        raise FedstatsError(
            "--format html is not written for a secure round: the report compares each "
            "city, and a secure round has pooled rows only",
            reason=Reason.UNSUPPORTED_FORMAT,
            field="--format",
            hint=f"with --secure choose from {','.join(SECURE_FORMATS)}",
        )
    return wanted


def publish_secure(
    outcome: SecureOutcome,
    out_dir: Path,
    formats: list[str],
    coordinator_id: str,
    coordinator_key: Ed25519PublicKey,
    node_keys: dict[str, Ed25519PublicKey],
) -> list[Path]:
    """Write a secure round's pooled rows and its ``provenance.json``; provenance last."""
    wanted = check_secure_formats(formats)
    citation = citation_for([outcome.query_id], coordinator_id)
    written = output_files(write_outputs([outcome], out_dir, wanted, citation))
    record = secure_query_record(outcome, node_keys)
    provenance = _write_document(
        [record], out_dir, written, coordinator_id, coordinator_key, citation
    )
    return [*written, provenance]
