"""The ledger under fire (issue 3): concurrent processes and SIGKILLs.

Two claims of DESIGN section 4 are tested with real OS processes on one SQLite file:

- 8 processes spending against one budget at the same moment spend exactly up to the
  budget and never past it, with every release logged once in a valid audit chain;
- a node process SIGKILLed at random moments during real queries leaves a readable
  database, a valid audit chain and no query charged twice, and a retry of a query whose
  charge was taken but never released adopts that charge instead of paying again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from indicators.spec import Query, compile_query
from node.audit import AuditEntry, read_entries, verify_log
from node.config import load_config
from node.ledger import Ledger, Request, Reservation
from node.service import NodeService
from privacy.budget import from_micro, to_micro
from security.signing import load_private_key, parse_public_key
from tests.support.cities import SyntheticCities
from tests.support.pki import COORDINATOR, pki

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
WORKERS = 8
STARTUP_TIMEOUT = 90.0  # 8 interpreters importing OpenDP, pandas and the data on 2 cores
RUN_TIMEOUT = 90.0
# One BLAS thread: the fork server below forks a process that must hold no busy threads.
SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def digest(query_id: str) -> str:
    """The request hash every process uses for a query id (a retry must resend it)."""
    return hashlib.sha256(query_id.encode()).hexdigest()


class Lines:
    """Whole lines from a child's pipe; a child that stays silent fails the test."""

    def __init__(self, stream: IO[bytes] | None, what: str) -> None:
        assert stream is not None
        self.fd = stream.fileno()
        self.what = what
        self.buffer = b""

    def next(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"{self.what}: nothing within {timeout:g} s")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 1 << 16)
                if not chunk:
                    pytest.fail(f"{self.what} closed its output (it died)")
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()


def integrity(path: Path) -> str:
    """``PRAGMA integrity_check`` from a fresh connection (which recovers the WAL)."""
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        rows = db.execute("PRAGMA integrity_check").fetchall()
    return "\n".join(str(r[0]) for r in rows)


@dataclass(frozen=True)
class Row:
    query_id: str
    spec_hash: str
    request_sha256: str
    micro_rho: int
    state: str
    has_answer: bool


def ledger_rows(path: Path, dataset: str) -> dict[str, Row]:
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        rows = db.execute(
            "SELECT query_id, spec_hash, request_sha256, micro_rho, state, answer IS NOT NULL"
            " FROM releases WHERE dataset = ?",
            (dataset,),
        ).fetchall()
    out = {
        str(q): Row(str(q), str(h), str(r), int(m), str(s), bool(a)) for q, h, r, m, s, a in rows
    }
    assert len(out) == len(rows), "a query id has two ledger rows"
    return out


def releases_by_query(entries: list[AuditEntry]) -> dict[str, AuditEntry]:
    """The 'release' audit entry of each query; fails if a query was released twice."""
    released = [e for e in entries if e.event == "release"]
    twice = [q for q, n in Counter(e.query_id for e in released).items() if n > 1]
    assert not twice, f"released (and charged) more than once: {twice}"
    return {e.query_id: e for e in released}


# --- 8 processes, one budget ------------------------------------------------------------

# Each spender opens its own Ledger on the shared file, reports "ready", blocks until the
# parent writes one byte to its stdin (the barrier), then reserves and commits distinct
# queries until the budget refuses. It reports what it committed and why it stopped.
LEDGER_SPENDER = """
import hashlib, json, sys, traceback
from pathlib import Path
from common.errors import FedstatsError
from node.ledger import Ledger, Request, Reservation
from security.signing import load_private_key

path, dataset, total, rho, key, worker = sys.argv[1:]
signer = load_private_key(Path(key), "test")
ledger = Ledger(Path(path), dataset, float(total), float(total), signer)
print("ready", flush=True)
if sys.stdin.buffer.read(1) != b"g":
    sys.exit("no go signal")
committed, outcome = [], "never refused"
try:
    for n in range(100_000):
        qid = f"w{worker}-{n}"
        request_sha256 = hashlib.sha256(qid.encode()).hexdigest()
        got = ledger.reserve(Request(qid, "spec-" + qid, float(rho), "fire", request_sha256))
        if not isinstance(got, Reservation):
            outcome = f"{qid}: a stored answer instead of a reservation"
            break
        ledger.commit(got, f"answer of {qid}".encode())
        committed.append(qid)
except FedstatsError as error:
    outcome = error.reason
except Exception:
    outcome = traceback.format_exc()
print(json.dumps({"committed": committed, "outcome": outcome}), flush=True)
"""

# The same through the whole node: NodeService.run_query computes real noisy tables
# between the reservation and the commit, so charges stay reserved for a while.
SERVICE_SPENDER = """
import hashlib, json, sys, traceback
from common.errors import FedstatsError
from indicators.spec import Query
from node.config import load_config
from node.service import NodeService

config, rho, worker = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
service = NodeService(load_config(config))
grant = service.config.policy.grant("test-coordinator")
print("ready", flush=True)
if sys.stdin.buffer.read(1) != b"g":
    sys.exit("no go signal")
committed, outcome = [], "never refused"
try:
    for n in range(1000):
        qid = f"s{worker}-{n}"
        # A distinct rho makes a distinct spec (no answer from the cache), but each one
        # is charged exactly the same whole number of micro-rho.
        tiny = (1000 * worker + n) * 1e-10
        query = Query(("employment_rate",), "citizen", (), "NAT", rho=rho - tiny)
        request_sha256 = hashlib.sha256(qid.encode()).hexdigest()
        answer = service.run_query(qid, query, grant=grant, request_sha256=request_sha256)
        if answer.cached:
            outcome = f"{qid}: answered from the cache"
            break
        committed.append(qid)
except FedstatsError as error:
    outcome = error.reason
except Exception:
    outcome = traceback.format_exc()
print(json.dumps({"committed": committed, "outcome": outcome}), flush=True)
"""


def run_spenders(tmp_path: Path, script: str, args: list[str]) -> list[dict[str, Any]]:
    """Start WORKERS processes, release them together, and collect their reports."""
    procs: list[subprocess.Popen[bytes]] = []
    errs = [tmp_path / f"spender-{w}.stderr" for w in range(WORKERS)]

    def stderr(w: int) -> str:
        return errs[w].read_text(errors="replace")[-3000:]

    try:
        for w in range(WORKERS):
            with errs[w].open("wb") as err:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-c", script, *args, str(w)],
                        cwd=REPO,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=err,
                    )
                )
        lines = [Lines(p.stdout, f"spender {w}") for w, p in enumerate(procs)]
        for w, line in enumerate(lines):
            assert line.next(STARTUP_TIMEOUT) == "ready", stderr(w)
        for p in procs:  # the barrier: everyone is ready, release them all at once
            assert p.stdin is not None
            p.stdin.write(b"g")
            p.stdin.flush()
        reports: list[dict[str, Any]] = [json.loads(line.next(RUN_TIMEOUT)) for line in lines]
        for w, p in enumerate(procs):
            assert p.wait(timeout=RUN_TIMEOUT) == 0, stderr(w)
        return reports
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
            for stream in (p.stdin, p.stdout):
                if stream is not None:
                    stream.close()


def check_spent_exactly(
    path: Path, dataset: str, reports: list[dict[str, Any]], micro: int, expected: int
) -> None:
    assert [r["outcome"] for r in reports] == ["BUDGET_EXCEEDED"] * WORKERS, reports
    committed = [q for r in reports for q in r["committed"]]
    per_process = [len(r["committed"]) for r in reports]
    assert len(set(committed)) == len(committed), Counter(committed).most_common(3)
    assert len(committed) == expected, f"committed {per_process}, expected {expected} in all"

    assert integrity(path) == "ok"
    rows = ledger_rows(path, dataset)
    assert set(rows) == set(committed)
    assert {r.state for r in rows.values()} == {"committed"}
    assert all(r.micro_rho == micro and r.has_answer for r in rows.values())
    # No charge is ever taken back here (every process only succeeded or was refused),
    # so the final sum is the most that was ever spent.
    assert sum(r.micro_rho for r in rows.values()) == expected * micro

    public = parse_public_key(pki().public_key("node", "fire"), "test")
    check = verify_log(path, public)
    assert check.ok, check.problems
    entries = read_entries(path)
    released = releases_by_query(entries)
    assert set(released) == set(committed)
    assert all(e.micro_rho == micro and e.dataset == dataset for e in released.values())
    assert len(entries) == expected  # refusals are the server's to log, not the ledger's


@pytest.mark.parametrize(
    ("rho", "expected"),
    [
        (0.1, 30),  # 3.0 / 0.1: the budget is spent to the last micro-rho
        (0.07, 42),  # floor(3.0 / 0.07): 0.06 stays unspent, a 43rd query would overspend
    ],
)
def test_eight_processes_spend_exactly_the_budget_and_never_past_it(
    tmp_path: Path, rho: float, expected: int
) -> None:
    total = 3.0
    micro = to_micro(rho)
    assert to_micro(total, round_up=False) // micro == expected
    path = tmp_path / "ledger.sqlite"
    dataset = "fire/2006"
    key = pki().files("node", "fire")["sign_key"]

    reports = run_spenders(
        tmp_path, LEDGER_SPENDER, [str(path), dataset, str(total), str(rho), str(key)]
    )

    check_spent_exactly(path, dataset, reports, micro, expected)
    state = Ledger(path, dataset, total, total).state()
    assert state.spent == from_micro(expected * micro) <= state.total


def test_eight_node_processes_running_queries_spend_exactly_the_budget(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    config_path = tmp_path / "fire.toml"
    config_path.write_text(cities.node_toml("fire", "vienna", rho_budget=1.0, max_rho=1.0))
    config = load_config(config_path)
    rho = 0.07
    micro = to_micro(rho)
    assert to_micro(rho - 8000 * 1e-10) == micro  # every spender's rho costs the same

    reports = run_spenders(tmp_path, SERVICE_SPENDER, [str(config_path), str(rho)])

    path = config.state_dir / "ledger.sqlite"
    check_spent_exactly(path, config.dataset_id, reports, micro, expected=14)  # floor(1/0.07)


# --- 25 SIGKILLs ------------------------------------------------------------------------

KILL_ROUNDS = 25
BREAKDOWNS: tuple[tuple[str, ...], ...] = ((), ("sex",), ("age",))

# A fork server: it loads the node's data once, then on "fork TAG" forks a process that
# opens its own NodeService (its own ledger owner: its own pid) and runs queries TAG-0,
# TAG-1, ... until it is killed, writing "R id" before and "D id" after each query to
# LOGS/TAG.log; on "reap PID" it reaps that process and reports its wait status. Forking
# from a loaded process keeps 25 rounds fast; each round is still a new OS process.
FORK_SERVER = """
import hashlib, os, sys, traceback
from indicators.spec import Query
from node.config import load_config
from node.harmonise import harmonise
from node.service import NodeService
from node.source import load_frame

BREAKDOWNS = ((), ("sex",), ("age",))
config = load_config(sys.argv[1])
logs = sys.argv[2]
data = harmonise(load_frame(config), config)


def query(tag, i):  # the same as fire_query in the test
    rnd = int(tag[1:])
    return Query(("employment_rate",), "citizen", BREAKDOWNS[i % 3], "NAT",
                 rho=0.01 + (1000 * rnd + i) * 1e-6)


def run_queries(tag, log):
    service = NodeService(config, data=data)
    grant = service.config.policy.grant("test-coordinator")
    for i in range(1_000_000):
        qid = f"{tag}-{i}"
        os.write(log, f"R {qid}\\n".encode())
        service.run_query(qid, query(tag, i), grant=grant,
                          request_sha256=hashlib.sha256(qid.encode()).hexdigest())
        os.write(log, f"D {qid}\\n".encode())


print("ready", flush=True)
for line in sys.stdin:
    command, arg = line.split()
    if command == "fork":
        log = os.open(os.path.join(logs, arg + ".log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        pid = os.fork()
        if pid == 0:
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)  # the server's protocol pipe is not the child's
            try:
                run_queries(arg, log)
            except BaseException:
                os.write(log, ("E " + traceback.format_exc()).encode())
            os._exit(1)
        os.close(log)
        print("pid", pid, flush=True)
    elif command == "reap":
        _, status = os.waitpid(int(arg), 0)
        print("status", status, flush=True)
"""


def fire_query(query_id: str) -> Query:
    """The query a killed process ran under an id ``k<round>-<i>`` (as in FORK_SERVER)."""
    tag, i = query_id.rsplit("-", 1)
    rnd, n = int(tag[1:]), int(i)
    return Query(
        ("employment_rate",),
        "citizen",
        BREAKDOWNS[n % 3],
        "NAT",
        rho=0.01 + (1000 * rnd + n) * 1e-6,
    )


class ForkServer:
    """The FORK_SERVER process, in its own process group so that a failure can end it all."""

    def __init__(self, config_path: Path, logs: Path, stderr: Path) -> None:
        self.stderr = stderr
        with stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", FORK_SERVER, str(config_path), str(logs)],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env={**os.environ, **SINGLE_THREADED},
                start_new_session=True,
            )
        self.lines = Lines(self.proc.stdout, "fork server")
        self.child: int | None = None
        self.expect("ready", STARTUP_TIMEOUT)

    def expect(self, word: str, timeout: float) -> str:
        line = self.lines.next(timeout)
        head, _, rest = line.partition(" ")
        assert head == word, f"{line!r}; stderr: {self.stderr.read_text()[-3000:]}"
        return rest

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def fork(self, tag: str) -> int:
        self.send(f"fork {tag}")
        self.child = int(self.expect("pid", 30))
        return self.child

    def reap(self, pid: int) -> int:
        self.send(f"reap {pid}")
        status = int(self.expect("status", 30))
        self.child = None
        return status

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self.child is not None:  # a failure between fork and reap
                os.kill(self.child, signal.SIGKILL)
        if self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextlib.contextmanager
def fork_server(config_path: Path, logs: Path, stderr: Path) -> Iterator[ForkServer]:
    server = ForkServer(config_path, logs, stderr)
    try:
        yield server
    finally:
        server.close()


@dataclass
class Ledgerbook:
    """What the parent knows independently of the ledger: each query's expected charge."""

    dataset: str
    path: Path
    verified: dict[str, int] = field(default_factory=dict)  # query id -> its micro-rho

    def expected(self, row: Row) -> int:
        """The row's charge, after checking it is the query the killed process sent."""
        if row.query_id not in self.verified:
            plan = compile_query(fire_query(row.query_id))
            assert row.spec_hash == plan.spec_hash(), row
            assert row.request_sha256 == digest(row.query_id), row
            self.verified[row.query_id] = to_micro(plan.query.rho)
        return self.verified[row.query_id]


def check_after_kill(book: Ledgerbook, tag: str, log: str) -> str:
    """Check the ledger and the audit log after a kill; say where the kill landed."""
    assert integrity(book.path) == "ok"
    public = load_private_key(Path(pki().files("node", "fire")["sign_key"]), "test").public_key()
    check = verify_log(book.path, public)
    assert check.ok, check.problems

    rows = ledger_rows(book.path, book.dataset)
    assert {r.state for r in rows.values()} <= {"committed", "reserved"}
    for row in rows.values():  # every row charged exactly its query's rho, once
        assert row.micro_rho == book.expected(row), row
        assert row.has_answer == (row.state == "committed"), row
    entries = read_entries(book.path)
    assert {e.event for e in entries} == {"release"}
    released = releases_by_query(entries)
    committed = {q for q, r in rows.items() if r.state == "committed"}
    assert set(released) == committed  # one release entry per committed query, no other
    assert all(released[q].micro_rho == rows[q].micro_rho for q in committed)
    state = Ledger(book.path, book.dataset, 1e9, 1e9).state()
    assert state.spent == from_micro(sum(book.expected(r) for r in rows.values()))

    # This round's process ran its queries one after the other: all it finished are
    # committed, and only the one it was in can be reserved or missing.
    assert "E " not in log, log
    started = [line[2:] for line in log.splitlines() if line.startswith("R ")]
    done = [line[2:] for line in log.splitlines() if line.startswith("D ")]
    assert started[: len(done)] == done == [f"{tag}-{i}" for i in range(len(done))]
    assert len(started) - len(done) <= 1, log
    ours = {q for q in rows if q.startswith(f"{tag}-")}
    assert set(done) <= committed and set(done) <= ours <= set(started)
    reserved = {q for q, r in rows.items() if r.state == "reserved"}
    assert ours & reserved <= set(started[len(done) :])
    if len(started) == len(done):
        return "between queries"
    current = started[-1]
    if current not in rows:
        return "before its charge was durable"
    return "after reserve, before commit" if current in reserved else "after commit"


def test_sigkills_during_queries_leave_a_valid_ledger_and_no_double_charge(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    config_path = tmp_path / "fire.toml"
    config_path.write_text(cities.node_toml("fire", "vienna"))
    config = load_config(config_path)
    book = Ledgerbook(config.dataset_id, config.state_dir / "ledger.sqlite")
    logs = tmp_path / "logs"
    logs.mkdir()
    rng = random.Random(20240603)
    landed: Counter[str] = Counter()

    with fork_server(config_path, logs, tmp_path / "fork-server.stderr") as server:
        for rnd in range(KILL_ROUNDS):
            tag = f"k{rnd}"
            pid = server.fork(tag)
            time.sleep(rng.uniform(0.05, 0.6))  # the random moment is the point here
            os.kill(pid, signal.SIGKILL)
            status = server.reap(pid)
            log = (logs / f"{tag}.log").read_text()
            assert os.WIFSIGNALED(status), f"round {rnd} ended by itself: {log[-3000:]}"
            assert os.WTERMSIG(status) == signal.SIGKILL
            landed[check_after_kill(book, tag, log)] += 1

    rows = ledger_rows(book.path, book.dataset)
    reserved = sorted(q for q, r in rows.items() if r.state == "reserved")
    spent = sum(r.micro_rho for r in rows.values())
    print(f"\n{len(rows)} queries in {KILL_ROUNDS} killed processes; kills landed: {dict(landed)}")
    assert sum(landed.values()) == KILL_ROUNDS
    assert reserved, "no kill landed between a reservation and its commit"
    assert len(reserved) == landed["after reserve, before commit"]

    # The killed processes are gone: a retry of each reserved query adopts its charge.
    service = NodeService(load_config(config_path))
    grant = service.config.policy.grant(COORDINATOR)
    for query_id in reserved:
        answer = service.run_query(
            query_id, fire_query(query_id), grant=grant, request_sha256=digest(query_id)
        )
        assert not answer.cached  # released now, for the first time
        assert answer.rho_charged == from_micro(rows[query_id].micro_rho)
        assert service.budget().spent == from_micro(spent)  # but not charged again
    after = ledger_rows(book.path, book.dataset)
    assert {r.state for r in after.values()} == {"committed"}
    assert set(after) == set(rows)
    assert {q: r.micro_rho for q, r in after.items()} == {q: r.micro_rho for q, r in rows.items()}
    public = parse_public_key(pki().public_key("node", "fire"), "test")
    check = verify_log(book.path, public)
    assert check.ok, check.problems
    released = releases_by_query(read_entries(book.path))
    assert set(released) == set(after)
    assert sum(e.micro_rho for e in released.values()) == spent
    assert integrity(book.path) == "ok"

    # Any query retried now, adopted or finished by a killed process, is answered free.
    finished = next(q for q, r in rows.items() if r.state == "committed")
    for query_id in (reserved[0], finished):
        again = service.run_query(
            query_id, fire_query(query_id), grant=grant, request_sha256=digest(query_id)
        )
        assert again.cached and again.rho_charged == 0
    assert service.budget().spent == from_micro(spent)
    assert len(releases_by_query(read_entries(book.path))) == len(after)


# A process that reserved a query's charge, reports it, then waits to be killed.
RESERVE_AND_WAIT = """
import sys
from pathlib import Path
from node.ledger import Ledger, Request
from security.signing import load_private_key

path, dataset, key, request_sha256 = sys.argv[1:]
ledger = Ledger(Path(path), dataset, 1.0, 1.0, load_private_key(Path(key), "test"))
ledger.reserve(Request("zombie", "spec-zombie", 0.5, "fire", request_sha256))
print("reserved", flush=True)
sys.stdin.buffer.read()
"""


def test_reservation_of_a_killed_process_is_adopted_before_it_is_reaped(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    dataset = "fire/2006"
    key = pki().files("node", "fire")["sign_key"]
    proc = subprocess.Popen(
        [sys.executable, "-c", RESERVE_AND_WAIT, str(path), dataset, str(key), digest("zombie")],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert Lines(proc.stdout, "reserving process").next(STARTUP_TIMEOUT) == "reserved"
        proc.kill()
        # Wait until it is dead, but leave it unreaped: the state it is in until its parent
        # (a supervisor, a shell) gets round to wait().
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        ledger = Ledger(path, dataset, 1.0, 1.0, load_private_key(key, "test"))

        adopted = ledger.reserve(Request("zombie", "spec-zombie", 0.5, "fire", digest("zombie")))

        assert isinstance(adopted, Reservation)
        assert adopted.micro_rho == to_micro(0.5)
        assert ledger.state().spent == 0.5
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
