"""The ``fedstats`` command line: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import atexit
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from common.collector import collector_paused
from common.errors import ConfigError, FedstatsError, QueryError
from fedstats.logs import LOG_FORMATS, configure

if TYPE_CHECKING:
    from coordinator.run import QueryOutcome
    from indicators.spec import Query

__all__ = ["EXIT_BAD_USAGE", "EXIT_NO_ANSWER", "EXIT_SOME_FAILED", "main"]

# Exit codes of `fedstats query` (DESIGN section 6).
EXIT_NO_ANSWER = 1  # no node answered
EXIT_BAD_USAGE = 2  # bad usage or configuration
EXIT_SOME_FAILED = 3  # --strict: some node failed


def _node_serve(args: argparse.Namespace) -> int:
    from node.hosting import config_paths, host_all, load_all, stop_all
    from security.revocation import renewal_warnings

    hosted = host_all(
        load_all(config_paths(args.config)), insecure=args.insecure, workers=args.workers
    )
    mode = "plaintext (--insecure)" if args.insecure else "mutual TLS"
    log = logging.getLogger("fedstats")
    for node in hosted:
        config, server = node.config, node.server
        log.info(
            "node %s serving %s on %s (%d rows) over %s on %s:%d", config.id,
            config.dataset.table or config.dataset.path, config.dataset.engine,
            node.service.engine.rows, mode, config.listen.rsplit(":", 1)[0], server.port,
            extra={"event": {"event": "start", "node": config.id, "port": server.port,
                             "health_port": server.health_port, "tls": not args.insecure}},
        )  # fmt: skip
        if server.health_server is not None:
            log.info("node %s: plaintext health service on port %d", config.id,
                     server.health_port)  # fmt: skip
        if node.metrics_port is not None:
            log.info("node %s: Prometheus metrics on http://%s:%d/metrics", config.id,
                     node.metrics_host, node.metrics_port)  # fmt: skip
        if config.tls is not None:
            for warning in renewal_warnings(config.tls):
                log.warning("node %s: %s", config.id, warning)
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    # Python runs a signal's handler in the main thread, but the kernel may deliver the
    # signal to any thread (gRPC's, the metrics server's): then nothing wakes a main thread
    # blocked in an untimed wait. Waking twice a second runs the handler within 0.5 s.
    while not stop.wait(0.5):
        pass
    ids = ", ".join(node.config.id for node in hosted)
    log.info(
        "node %s stopping on %s: no new calls; calls in flight have %g s to finish",
        ids, received[0], args.grace,
        extra={"event": {"event": "stopping", "node": ids, "signal": received[0]}},
    )  # fmt: skip
    abandoned = stop_all(hosted, grace=args.grace)
    log.info(
        "node %s stopped%s", ids,
        f": {abandoned} calls still running after the grace period are abandoned (their "
        "answers were not sent; a retry with the same query id is answered from the ledger)"
        if abandoned else "",
        extra={"event": {"event": "stop", "node": ids, "abandoned": abandoned}},
    )  # fmt: skip
    if abandoned:
        # Their threads would hold the process open: end it. The ledger is SQLite (WAL,
        # synchronous=FULL): a transaction cut short rolls back, a committed one stays.
        logging.shutdown()
        os._exit(0)
    return 0


def _node_audit(args: argparse.Namespace) -> int:
    from fedstats.report import audit_report
    from node.audit import verify_log
    from node.chainhead import read_head
    from node.config import load_config
    from security.signing import load_private_key

    config = load_config(args.config)
    path = config.state_dir / "ledger.sqlite"
    if not path.exists():
        head = read_head(config.chain_head) if config.chain_head else None
        if head is not None and head.seq > 0:
            print(
                f"audit log FAILED verification: no ledger at {path}, but {config.chain_head} "
                f"says the node has written {head.seq} audit entries (deleted or rolled back)"
            )
            return 1
        raise ConfigError(f"no ledger at {path}", field="node.state_dir")
    print(audit_report(path))
    if not args.verify:
        return 0
    if config.signing_key is None:
        raise ConfigError("[signing] key is needed to verify the log", field="signing.key")
    public = load_private_key(config.signing_key, "signing.key").public_key()
    check = verify_log(path, public, config.chain_head)
    if check.ok:
        print(f"\naudit log verified: {check.entries} entries, chain and signatures intact")
        return 0
    print(f"\naudit log FAILED verification ({len(check.problems)} problems):")
    for problem in check.problems:
        print(f"  {problem}")
    return 1


def _node_backup(args: argparse.Namespace) -> int:
    from node.backup import backup
    from node.config import load_config

    config = load_config(args.config)
    info = backup(config.state_dir / "ledger.sqlite", Path(args.out))
    print(f"backed up the ledger and audit log to {args.out}: audit entry {info.head.seq}, "
          f"{info.size} bytes, sha256 {info.sha256}")  # fmt: skip
    return 0


def _node_restore(args: argparse.Namespace) -> int:
    from node.backup import restore
    from node.config import load_config

    config = load_config(args.config)
    done = restore(Path(args.source), config.state_dir / "ledger.sqlite", config.chain_head,
                   allow_rollback=args.allow_rollback)  # fmt: skip
    print(f"restored the ledger at audit entry {done.head.seq}")
    if done.replaced is not None:
        print(f"the ledger it replaced is kept as {done.replaced}")
    if done.rolled_back:
        print(f"WARNING: rolled back {done.rolled_back} audit entries (--allow-rollback)")
    for dataset, rho in done.given_back.items():
        print(f"WARNING: dataset {dataset}: {rho:g} rho spent before is no longer "
              "charged; those releases are still out in the world")  # fmt: skip
    return 0


def _certs_init(args: argparse.Namespace) -> int:
    from fedstats.certs import init_ca

    path = init_ca(Path(args.dir), days=args.days)
    print(f"wrote {path} and its key {path.with_suffix('.key')} (mode 0600)")
    return 0


def _party(args: argparse.Namespace) -> tuple[str, str]:
    """The role and id a certs command names (``--node ID`` or ``--coordinator ID``)."""
    return ("node", args.node) if args.node else ("coordinator", args.coordinator)


def _certs_issue(args: argparse.Namespace) -> int:
    from fedstats.certs import issue

    role, ident = _party(args)
    files = issue(Path(args.dir), role, ident, tuple(args.host or ()), args.days)
    for name, path in files.items():
        print(f"{name:<9} {path}")
    print(f"public signing key: {files['sign_pub'].read_text().strip()}")
    return 0


def _certs_request(args: argparse.Namespace) -> int:
    from fedstats.certs_lifecycle import request

    role, ident = _party(args)
    files = request(Path(args.out), role, ident, tuple(args.host or ()),
                    signing_key=args.signing_key)  # fmt: skip
    for name, path in files.items():
        print(f"{name:<9} {path}")
    print(f"send {files['csr']} to the CA (`fedstats certs sign`); the key stays here")
    return 0


def _certs_sign(args: argparse.Namespace) -> int:
    from fedstats.certs_lifecycle import sign

    role, ident = _party(args)
    out = Path(args.out) if args.out else None
    path = sign(Path(args.dir), Path(args.csr), role, ident, days=args.days, out=out)
    print(f"signed {path} for {role} {ident}")
    return 0


def _certs_revoke(args: argparse.Namespace) -> int:
    from fedstats.certs_lifecycle import revoke

    cert = Path(args.cert) if args.cert else None
    path = revoke(Path(args.dir), cert, reason=args.reason, days=args.days)
    print(f"wrote {path}: copy it to every party's [tls] crl (they re-read it on change)")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from coordinator.config import load_coordinator_config
    from coordinator.provenance import verify_outputs

    trusted = None
    if args.config:
        config = load_coordinator_config(args.config)
        trusted = {n.id: n.public_key for n in config.nodes if n.public_key is not None}
    report = verify_outputs([Path(d) for d in args.dir], trusted, public=args.public)
    for line in report.checked:
        print(f"ok   {line}")
    for line in report.unchecked:
        print(f"not checked: {line}")
    for line in report.notices:
        print(f"note {line}")
    for line in report.problems:
        print(f"FAIL {line}")
    if report.ok and trusted is None:
        print(
            "note: verified against the node keys recorded in the provenance file itself: they "
            "were NOT checked against a trusted list (pass --config coordinator.toml to check them)"
        )
    print("verified" if report.ok else f"verification FAILED ({len(report.problems)} problems)")
    return 0 if report.ok else 1


def _node_init(args: argparse.Namespace) -> int:
    from fedstats.node_init import init_config

    data = Path(args.data)
    out = Path(args.out) if args.out else data.with_suffix(".toml")
    if out.exists():
        raise ConfigError(
            f"{out} exists: node init never overwrites a config",
            field="out",
            hint="give another --out, or move the file away",
        )
    node_id = args.id or data.stem.lower()
    same_place = out.resolve().parent == data.resolve().parent
    where = data.name if same_place else str(data.resolve())  # paths: from the config
    text = init_config(data, args.kind, node_id, args.country.upper(), where, args.weight)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}: fill in the TODOs, then `fedstats node check --config {out}`")
    return 0


def _node_check(args: argparse.Namespace) -> int:
    from fedstats.report import coverage_report
    from node.config import load_config
    from node.coverage import check_thresholds
    from node.engines import open_engine
    from security.crl_seen import CRL_SEEN_FILE
    from security.revocation import renewal_warnings

    config = load_config(args.config)
    seen = config.state_dir / CRL_SEEN_FILE
    for warning in renewal_warnings(config.tls, seen=seen) if config.tls is not None else []:
        print(f"WARNING: {warning}")
    refusals: list[ConfigError] = []
    for period in config.periods:  # every reference period's dataset
        served = config.for_period(period)
        engine = open_engine(served)  # SQL engines count the coverage in their database
        try:
            print(coverage_report(served, engine))
            check_thresholds(served, engine)  # what `node serve` would refuse, after the report
        except ConfigError as exc:
            refusals.append(exc)  # every period's report is printed before the errors
        finally:
            engine.close()
    for earlier in refusals[:-1]:
        print(
            f"error: {earlier.message}\n  where: {earlier.field}\n  fix: {earlier.hint}",
            file=sys.stderr,
        )
    if refusals:
        raise refusals[-1]
    return 0


def _budget(args: argparse.Namespace) -> int:
    from fedstats.report import budget_report
    from node.config import load_config
    from node.ledger import Ledger

    node = load_config(args.config)
    for period in node.periods:  # each reference period has its own budget
        config = node.for_period(period)
        ledger = Ledger(
            config.state_dir / "ledger.sqlite",
            config.dataset_id,
            config.privacy.rho_budget,
            config.privacy.max_rho_per_query,
        )
        print(budget_report(config.dataset_id, ledger))
    return 0


def _query(args: argparse.Namespace) -> int:
    # Importing what a query needs (numpy, gRPC, pandas, pyarrow ...) makes some 190,000
    # lasting objects; the collector's passes over them while they are made, and later,
    # find nothing to free (a seventh of the imports' CPU): they are made with it
    # paused, then frozen (`gc.freeze`: no later pass walks them).
    with collector_paused():
        from coordinator.config import load_coordinator_config
        from coordinator.pooling import AGGREGATES, Pooling
        from coordinator.progress import FanOutProgress
        from coordinator.provenance import citation_for, publish
        from coordinator.publish.outputs import check_formats
        from coordinator.publish.summary import names_of, outcome_notes, summary
        from coordinator.run import run_pathway, run_query
        from security.signing import load_private_key
    gc.freeze()
    _frozen_at_exit()
    try:
        if args.secure:
            return _query_secure(args)
        if args.threshold is not None:
            raise QueryError("--threshold is for a secure round", field="--threshold",
                             hint="add --secure, or drop --threshold")  # fmt: skip
        formats = check_formats(args.format.split(","))  # before any node is asked
        config = load_coordinator_config(args.config)
        query = _query_of(args)
        pooling = Pooling(
            aggregate=AGGREGATES[args.pooled],
            min_coverage=0.5 if args.pool_min_coverage is None else args.pool_min_coverage,
            deviations=args.pool_deviations,
        )
        progress = FanOutProgress()
        if args.pathway:
            periods = list(_listed(args.pathway))
            outcomes = run_pathway(config, query, periods, progress=progress, pooling=pooling)
        else:
            outcomes = [run_query(config, query, progress=progress, pooling=pooling)]
        assert config.signing_key is not None  # run_query checked it
        citation = citation_for(
            [o.query_id for o in outcomes], config.id, config.issuer, config.release_version
        )
        written = publish(
            outcomes, Path(args.out), formats, config.id,
            load_private_key(config.signing_key, "signing.key").public_key(),
            {n.id: n.public_key for n in config.nodes if n.public_key is not None}, citation,
        )  # fmt: skip
        names = names_of(outcomes)
        for outcome in outcomes:
            notes = outcome_notes(outcome)
            print(summary(outcome.rows, outcome.failures, notes=notes, names=names))
            print(f"\nquery {outcome.query_id}: {len(outcome.rows)} rows")
        _print_written(written)
        return _exit_code(outcomes, args.strict)
    finally:  # a process that goes on (a test, an embedding program) collects them again
        gc.unfreeze()


def _frozen_at_exit() -> None:
    """At exit, leave what is still alive to the process's end instead of collecting it.

    The interpreter's last collections walk every object still alive (every module a
    query imports: numpy, pandas, pyarrow, gRPC ...) for cycles, to free them only as the
    process ends: about a sixth of a short query's CPU. Frozen (`gc.freeze`, run by
    `atexit` before those collections), they are skipped. Every file is written and
    closed before the command returns; atexit's other handlers (the log's flush) run.
    """
    atexit.unregister(gc.freeze)  # once, however often main runs in one process
    atexit.register(gc.freeze)


def _exit_code(outcomes: Sequence[QueryOutcome], strict: bool) -> int:
    """DESIGN section 6: 1 when no node answered; 3 under --strict when any node failed."""
    if not all(o.answers for o in outcomes):
        return EXIT_NO_ANSWER
    if strict and any(o.failures for o in outcomes):
        return EXIT_SOME_FAILED
    return 0


def _query_of(args: argparse.Namespace) -> Query:
    from indicators.spec import Query

    return Query(
        indicators=_listed(args.indicators),
        group_dim=args.group,
        breakdowns=_listed(args.by),
        comparator=args.comparator,
        rho=args.rho,
        poverty_line=args.poverty_line,
        time_period=args.time_period,
    )


def _query_secure(args: argparse.Namespace) -> int:
    """``fedstats query --secure``: one secure round, pooled rows only, and its provenance."""
    from coordinator.config import load_coordinator_config
    from coordinator.progress import FanOutProgress
    from coordinator.provenance import check_secure_formats, publish_secure
    from coordinator.publish.summary import summary
    from coordinator.secure_run import run_secure_query
    from security.signing import load_private_key

    refused = {
        "--pooled city-mean": args.pooled == "city-mean",
        "--pooled standardised": args.pooled == "standardised",
        "--pathway": bool(args.pathway),
    }
    for option, given in refused.items():
        if given:
            raise QueryError(
                f"{option} cannot be used with --secure: a secure round learns only the sum "
                "of the nodes' tables (population-weighted pooled rows), never a city's "
                "own table, so it cannot form a mean of cities or standardise each city",
                field="--secure",
                hint="drop --secure to pool the nodes' released tables, or drop " + option,
            )
    formats = check_secure_formats(args.format.split(","))  # before any node is asked
    config = load_coordinator_config(args.config)
    outcome = run_secure_query(
        config, _query_of(args), threshold=args.threshold, deviations=args.pool_deviations,
        min_coverage=0.5 if args.pool_min_coverage is None else args.pool_min_coverage,
        progress=FanOutProgress(),
    )  # fmt: skip
    assert config.signing_key is not None  # run_secure_query checked it
    written = publish_secure(
        outcome, Path(args.out), formats, config.id,
        load_private_key(config.signing_key, "signing.key").public_key(),
        {n.id: n.public_key for n in config.nodes if n.public_key is not None},
    )  # fmt: skip
    print(summary(outcome.rows, outcome.failures))
    print(
        f"\nsecure round {outcome.round_id} (query {outcome.query_id}): t = "
        f"{outcome.threshold} of {len(outcome.participants)} participants; "
        f"{len(outcome.survivors)} in the sum: {', '.join(outcome.survivors)}"
    )
    print(f"{len(outcome.rows)} pooled rows only: no node's table is seen, so none is published")
    _print_written(written)
    return EXIT_SOME_FAILED if args.strict and outcome.failures else 0


def _print_written(written: list[Path]) -> None:
    print("wrote")
    for path in written:
        print(f"  {path}")


def _listed(text: str | None) -> tuple[str, ...]:
    """The items of a comma-separated option, stripped; none for an absent option."""
    return tuple(item.strip() for item in (text or "").split(",") if item.strip())


def _synth(args: argparse.Namespace) -> int:
    from fedstats.synth import generate, write

    frame = generate(args.city, args.persons, args.seed)
    write(frame, Path(args.out))
    print(f"wrote {len(frame)} persons of {args.city} to {args.out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from fedstats.demo import run_demo

    if args.secure:
        from fedstats.demo_secure import run_secure_demo

        return run_secure_demo(Path(args.out), cities=args.cities, persons=args.persons)
    return run_demo(Path(args.out), cities=args.cities, persons=args.persons)


def _positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fedstats",
        description="Federated, differentially private indicators of migrant integration.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=os.environ.get("FEDSTATS_LOG_FORMAT", "text"),
        help="log lines as text or as one JSON object each (default: $FEDSTATS_LOG_FORMAT "
        "or text); logs never hold data values",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run a whole federation on this machine")
    demo.add_argument("--out", default="demo-out", help="output directory (default demo-out)")
    demo.add_argument("--cities", type=int, default=5, help="number of cities, 1-5")
    demo.add_argument("--persons", type=int, default=100_000, help="persons per city")
    demo.add_argument(
        "--secure",
        action="store_true",
        help="pool the cities by secure aggregation and print it next to the plain sum",
    )
    demo.set_defaults(run=_demo)

    synth = sub.add_parser("synth", help="generate synthetic register microdata for a city")
    synth.add_argument("--city", required=True)
    synth.add_argument("--persons", type=int, required=True)
    synth.add_argument("--out", required=True, help="a .csv or .parquet file")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(run=_synth)

    node = sub.add_parser("node", help="run or inspect a data holder's node")
    node_sub = node.add_subparsers(dest="node_command", required=True)
    serve = node_sub.add_parser("serve", help="serve the node's gRPC API over mutual TLS")
    serve.add_argument(
        "--config", required=True, action="append",
        help="node.toml; repeat it, or name a directory of *.toml, to host several nodes "
        "in this process (each with its own port, keys, ledger, audit log and budget)",
    )  # fmt: skip
    serve.add_argument(
        "--insecure", action="store_true", help="plaintext, allowed on a loopback address only"
    )
    serve.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="threads answering calls, shared by the nodes of this process (default: 2 for "
        "several nodes, measured best on 2 cores at 300 nodes: more threads only take turns "
        "at Python's interpreter lock; 8 for one node). With several nodes, "
        "one node runs at most N-1 calls at once (and never more than 8): a node whose calls "
        "hang (an engine that does not answer) leaves the other nodes the one worker left, "
        "so they answer one call at a time, and two such nodes hold every worker until "
        "their calls end; where nodes must never hold each other up, serve each from its "
        "own process",
    )
    serve.add_argument(
        "--grace",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="on SIGTERM or SIGINT, stop taking calls and give those in flight this long "
        "to finish before exiting (default 20; keep it under the orchestrator's kill timeout)",
    )
    serve.set_defaults(run=_node_serve)
    audit = node_sub.add_parser("audit", help="print the node's audit log")
    audit.add_argument("--config", required=True)
    audit.add_argument("--verify", action="store_true", help="check the chain and signatures")
    audit.set_defaults(run=_node_audit)
    node_init = node_sub.add_parser(
        "init", help="write a commented node config from a data file's columns"
    )
    node_init.add_argument("--data", required=True, help="the CSV or Parquet file to serve")
    node_init.add_argument("--kind", required=True, choices=["register", "survey"])
    node_init.add_argument("--id", help="the node's id (default: the file's name)")
    node_init.add_argument(
        "--country", required=True, help="ISO 3166 alpha-2 of the node's country"
    )
    node_init.add_argument("--out", help="the config to write (default: beside the data)")
    node_init.add_argument("--weight", help="survey: the weight column (default: recognised)")
    node_init.set_defaults(run=_node_init)
    check = node_sub.add_parser("check", help="mapping coverage report; spends no budget")
    check.add_argument("--config", required=True)
    check.set_defaults(run=_node_check)
    backup = node_sub.add_parser("backup", help="consistent copy of ledger and audit log")
    backup.add_argument("--config", required=True)
    backup.add_argument("--out", required=True, help="a new directory for the copy")
    backup.set_defaults(run=_node_backup)
    restore = node_sub.add_parser("restore", help="put a backup back (node stopped)")
    restore.add_argument("--config", required=True)
    restore.add_argument("--from", dest="source", required=True, help="a backup directory")
    restore.add_argument(
        "--allow-rollback",
        action="store_true",
        help="restore even a backup behind the chain head: gives spent budget back",
    )
    restore.set_defaults(run=_node_restore)

    query = sub.add_parser("query", help="run a federated query")
    query.add_argument("--config", required=True, help="coordinator.toml")
    query.add_argument("--indicators", required=True, help="comma-separated catalogue names")
    query.add_argument("--group", required=True, help="target-group dimension")
    query.add_argument(
        "--by", help="comma-separated breakdowns: sex, age, yearesid, arrival_cohort"
    )
    query.add_argument(
        "--comparator",
        default="NAT",
        help="NAT (the group dimension's native group, default), TOTAL (the whole population "
        "of the same cell), or DIM=CODE, a cohort: each group against the same group with "
        "breakdown DIM set to CODE, e.g. --by yearesid --comparator yearesid=Y_GE10",
    )
    query.add_argument("--rho", type=float, required=True, help="zCDP budget per node")
    when = query.add_mutually_exclusive_group()
    when.add_argument("--time-period", help="reference period (default: each node's latest)")
    when.add_argument(
        "--pathway",
        help="comma-separated periods: the same query for each, e.g. to follow arrival "
        "cohorts over time (--by arrival_cohort)",
    )
    query.add_argument(
        "--poverty-line",
        type=float,
        help="arop_rate: one line for every node (default: each node's national line; "
        "without one a node gives no arop_rate)",
    )
    query.add_argument(
        "--pooled",
        choices=("population", "city-mean", "standardised"),
        default="population",
        help="how pooled rows aggregate the nodes: population (the summed tables, default), "
        "city-mean (the unweighted mean of the cities' values) or standardised (direct "
        "age-sex standardisation to the 2013 European Standard Population; needs --by sex,age)",
    )
    query.add_argument(
        "--pool-min-coverage",
        type=float,
        metavar="SHARE",
        help="pooled rows only when at least this share of the nodes is pooled (default "
        "0.5; with --secure, the share of nodes that must join the round, checked before "
        "any is charged)",
    )
    query.add_argument(
        "--strict",
        action="store_true",
        help=f"exit {EXIT_SOME_FAILED} when any node failed (without it: 0 when at least one "
        f"node answered; {EXIT_NO_ANSWER} when none did)",
    )
    query.add_argument(
        "--pool-deviations",
        action="store_true",
        help="also pool nodes whose definitions differ (flag d); left out by default",
    )
    query.add_argument(
        "--secure",
        action="store_true",
        help="pool the nodes by secure aggregation: pooled rows only (population-weighted), "
        "one node's worth of noise, no node's table seen; formats csv, parquet, sdmx",
    )
    query.add_argument(
        "--threshold",
        type=int,
        metavar="T",
        help="with --secure: the fewest surviving nodes that can unmask the sum (default: "
        "the fewest above half of the nodes that join)",
    )
    query.add_argument("--out", required=True, help="output directory")
    query.add_argument(
        "--format",
        default="csv",
        help="comma-separated: csv, parquet, sdmx, html (benchmark.csv is always written)",
    )
    query.set_defaults(run=_query)

    certs = sub.add_parser("certs", help="federation CA, certificates and signing keys")
    certs_sub = certs.add_subparsers(dest="certs_command", required=True)
    init = certs_sub.add_parser("init-ca", help="create the federation CA")
    init.add_argument("--dir", required=True, help="where ca.pem and ca.key go")
    init.add_argument("--days", type=int, default=5 * 365)
    init.set_defaults(run=_certs_init)
    issue = certs_sub.add_parser("issue", help="issue a party's certificate and signing key")
    issue.add_argument("--dir", required=True, help="the CA's directory; files are written there")
    who = issue.add_mutually_exclusive_group(required=True)
    who.add_argument("--node", help="node id")
    who.add_argument("--coordinator", help="coordinator id")
    issue.add_argument("--host", action="append", help="extra DNS name or IP (repeatable)")
    issue.add_argument("--days", type=int, default=397)
    issue.set_defaults(run=_certs_issue)
    req = certs_sub.add_parser("request", help="make a key and a CSR where the key will live")
    req.add_argument("--out", required=True, help="a directory for the key and the CSR")
    who = req.add_mutually_exclusive_group(required=True)
    who.add_argument("--node", help="node id")
    who.add_argument("--coordinator", help="coordinator id")
    req.add_argument("--host", action="append", help="extra DNS name or IP (repeatable)")
    req.add_argument("--signing-key", action="store_true", help="also make the Ed25519 key")
    req.set_defaults(run=_certs_request)
    csr = certs_sub.add_parser("sign", help="sign a party's CSR at the CA")
    csr.add_argument("--dir", required=True, help="the CA's directory")
    csr.add_argument("--csr", required=True, help="the request file")
    who = csr.add_mutually_exclusive_group(required=True)
    who.add_argument("--node", help="the node id the request must name")
    who.add_argument("--coordinator", help="the coordinator id the request must name")
    csr.add_argument("--days", type=int, default=397)
    csr.add_argument("--out", help="certificate file (default: the CSR's name, .pem)")
    csr.set_defaults(run=_certs_sign)
    rev = certs_sub.add_parser("revoke", help="revoke a certificate: re-issue crl.pem")
    rev.add_argument("--dir", required=True, help="the CA's directory (crl.pem goes there)")
    rev.add_argument("--cert", help="the certificate to revoke (none: re-issue the list)")
    rev.add_argument("--reason", default="key_compromise", help="RFC 5280 reason")
    rev.add_argument("--days", type=int, default=30, help="until the list's next update")
    rev.set_defaults(run=_certs_revoke)

    verify = sub.add_parser("verify", help="verify an output directory's provenance")
    verify.add_argument(
        "dir",
        nargs="+",
        help="directories with provenance.json and benchmark.csv; given together, the "
        "nodes' audit positions are also checked across them (a rollback between runs)",
    )
    verify.add_argument("--config", help="coordinator.toml whose node keys are trusted")
    verify.add_argument(
        "--public",
        action="store_true",
        help="verify provenance.public.json (the form without node results) even where "
        "provenance.json is present; a directory with only the public form is verified so",
    )
    verify.set_defaults(run=_verify)

    budget = sub.add_parser("budget", help="summary of a node's budget ledger")
    budget.add_argument("--config", required=True)
    budget.set_defaults(run=_budget)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    # gRPC core logs connection teardowns at INFO on stderr; operators want errors only.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    parser = _parser()
    args = parser.parse_args(argv)
    if args.log_format not in LOG_FORMATS:  # a default from the environment is not checked
        parser.error(f"FEDSTATS_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
    quiet = logging.INFO if args.run is _node_serve else logging.WARNING
    configure(logging.DEBUG if args.verbose else quiet, args.log_format)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except BrokenPipeError:  # the reader went away (`fedstats budget | head`): no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing more to flush at exit
        return 1
    except FedstatsError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.field:
            print(f"  where: {exc.field}", file=sys.stderr)
        if exc.hint:
            print(f"  fix: {exc.hint}", file=sys.stderr)
        return EXIT_BAD_USAGE


if __name__ == "__main__":
    sys.exit(main())
