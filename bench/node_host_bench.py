"""A node host's CPU per node and query: N node configs served by K processes.

Sets up N nodes as the federation benchmark does (`federation_bench.setup`: a CA, one
certificate and signing key per node, the demo's synthetic cities copied to N nodes),
serves the first N of them from ``--hosts K`` processes (default: one per core; node i
in process i mod K; ``--hosts 1``: ONE process), each exactly as ``fedstats node serve
--config DIR`` does (this script's ``--host`` mode calls the CLI's own ``main``), then plays the
coordinator over mutual TLS: per round, a fresh channel per node (one TLS handshake, as
one ``fedstats query`` opens), ``DescribeSigned`` to every node at once, then one
signed ``RunQuery`` (``employment_rate --group citizen --by sex,age``: one 120-cell
table) to every node at once. Each round asks its own rho, so no node answers from its
stored answers and every round costs the nodes their full work.

It reports the hosts' CPU time (user + system, from ``/proc/PID/stat``: every thread of
every host, gRPC's C-core and the TLS handshakes included) per node and round (the mean
of the rounds), split into describe and query, the fastest round's wall time and the
host's CPU while idle. ``--baseline DIR`` measures other node code (e.g. ``git archive``
of main) at each size too, alternating with this checkout's, under the same load. The
client runs in this process: its CPU is not in the figures. ``--profile FILE`` runs the
host under cProfile (thread CPU time) in every thread (`threading.setprofile`), so the
handlers in the servers' worker threads are seen; the stats are written when the host
stops (read them with ``python -m pstats FILE``). ``--perf FILE`` records the host with
``perf record`` during the rounds (C-core, TLS, OpenDP and the kernel included).

Run:  .venv/bin/python bench/node_host_bench.py [--sizes 1,100,300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = Path(os.environ.get("NODE_HOST_CODE", str(ROOT)))  # a baseline's host runs its own
sys.path.insert(0, str(CODE))
sys.path.insert(0, str(CODE / "bench"))

import grpc  # noqa: E402
from federation_bench import (  # noqa: E402
    COORDINATOR,
    INDICATOR,
    await_ports,
    free_ports,
    setup,
)

from fedstats.certs import party_files  # noqa: E402
from indicators.spec import Query  # noqa: E402
from protos import node_pb2 as pb  # noqa: E402
from protos import node_pb2_grpc as pb_grpc  # noqa: E402
from security.signing import load_private_key, sign  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all its threads (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def host_dirs(work: Path, n: int, hosts: int) -> list[tuple[Path, list[tuple[str, str]]]]:
    """The first ``n`` node configs, node i in directory i mod ``hosts``, each on a port free now.

    The ports are picked just before the hosts start (another process may have taken one
    since the setup), and every node starts with an empty ledger. ``../data`` and the
    other relative paths still resolve.
    """
    shutil.rmtree(work / "state", ignore_errors=True)  # fresh ledgers: the cap is whole
    (work / "state").mkdir()
    paths = sorted((work / "nodes").glob("*.toml"))[:n]
    shares: list[tuple[Path, list[tuple[str, str]]]] = []
    for h in range(hosts):
        directory = work / (f"host-{n}" if hosts == 1 else f"host-{n}-{hosts}-{h}")
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
        shares.append((directory, []))
    for i, (path, port) in enumerate(zip(paths, free_ports(n), strict=True)):
        directory, nodes = shares[i % hosts]
        text = re.sub(r'(?m)^listen = ".*"$', f'listen = "127.0.0.1:{port}"', path.read_text())
        (directory / path.name).write_text(text, encoding="utf-8")
        nodes.append((path.stem, f"127.0.0.1:{port}"))
    return [share for share in shares if share[1]]


def start_host(
    directory: Path, addresses: list[str], profile: Path | None, code: Path | None = None
) -> subprocess.Popen[bytes]:
    """This script's ``--host`` mode on ``directory``; returns once every port answers.

    ``code``: another checkout whose node code the host runs (a baseline), else this one.
    """
    argv = [sys.executable, __file__, "--host", str(directory)]
    env = dict(os.environ)
    if code is not None:
        env["NODE_HOST_CODE"] = str(code)
    if profile is not None:
        argv += ["--profile", str(profile)]
    log = (directory / "serve.log").open("wb")
    host = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    return await_ports(host, addresses, directory / "serve.log")


class Client:
    """The coordinator's side of a round: mutual TLS, describe all, query all."""

    def __init__(self, work: Path, nodes: list[tuple[str, str]]) -> None:
        files = party_files(work / "pki", "coordinator", COORDINATOR)
        self.credentials = grpc.ssl_channel_credentials(
            (work / "pki" / "ca.pem").read_bytes(),
            private_key=files["key"].read_bytes(),
            certificate_chain=files["cert"].read_bytes(),
        )
        self.key = load_private_key(files["sign_key"], "bench")
        self.nodes = nodes

    def signed(self, node_id: str, query_id: str, query: Query) -> pb.SignedQuery:
        """A query addressed to one node, signed now."""
        request = pb.QueryRequest(
            query_id=query_id, spec=query.to_wire(), issuer=COORDINATOR, audience=node_id,
            issued_at_ms=int(time.time() * 1000),
        ).SerializeToString()  # fmt: skip
        return pb.SignedQuery(request=request, signature=sign(self.key, request))

    async def round(self, pids: list[int], rho: float, tag: str) -> tuple[float, float]:
        """Describe then query every node on fresh channels; the hosts' CPU for each."""
        channels = [
            grpc.aio.secure_channel(a, self.credentials, [("grpc.ssl_target_name_override", i)])
            for i, a in self.nodes
        ]
        stubs = [pb_grpc.NodeServiceStub(c) for c in channels]
        query = Query((INDICATOR,), "citizen", ("sex", "age"), "NAT", rho)
        requests = [self.signed(i, tag, query) for i, _ in self.nodes]
        try:
            start = sum(map(cpu_seconds, pids))
            described = await asyncio.gather(
                *(s.DescribeSigned(pb.DescribeRequest(), timeout=120) for s in stubs)
            )
            middle = sum(map(cpu_seconds, pids))
            answered = await asyncio.gather(
                *(s.RunQuery(r, timeout=120) for s, r in zip(stubs, requests, strict=True))
            )
            end = sum(map(cpu_seconds, pids))
        finally:
            await asyncio.gather(*(c.close(None) for c in channels))
        assert len(described) == len(answered) == len(self.nodes)
        for signed in answered:
            result = pb.QueryResult.FromString(signed.result)
            assert not result.cached and len(result.tables) == 1, "a stored or empty answer"
        return middle - start, end - middle


def measure(
    work: Path,
    n: int,
    rounds: int,
    profile: Path | None = None,
    perf: Path | None = None,
    code: Path | None = None,
    hosts: int = 1,
) -> dict[str, float]:
    """Serve the first ``n`` nodes from ``hosts`` processes, run ``rounds`` rounds.

    Returns the CPU of all the hosts together per node (ms), the fastest round's wall
    time and the hosts' CPU share while idle. With several hosts, ``profile`` is written
    per host (``FILE.0``, ``FILE.1`` ...) and ``perf`` records them all.
    """
    shares = host_dirs(work, n, hosts)
    started: list[subprocess.Popen[bytes]] = []
    try:
        for h, (directory, share) in enumerate(shares):
            own = profile if profile is None or len(shares) == 1 else Path(f"{profile}.{h}")
            started.append(start_host(directory, [a for _, a in share], own, code))
        pids = [host.pid for host in started]
        client = Client(work, [node for _, share in shares for node in share])
        time.sleep(1.0)
        idle_start, idle_clock = sum(map(cpu_seconds, pids)), time.monotonic()
        time.sleep(5.0)
        idle = (sum(map(cpu_seconds, pids)) - idle_start) / (time.monotonic() - idle_clock)
        seen: list[tuple[float, float, float]] = []
        recorder = None
        if perf is not None:  # perf samples every thread of the hosts, C-core and TLS included
            recorder = subprocess.Popen(
                ["perf", "record", "-F", "499", "-g", "-p", ",".join(map(str, pids)),
                 "-o", str(perf)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1.0)
        for r in range(rounds + 1):  # the first round warms the nodes' first-call paths
            clock = time.monotonic()
            rho = 0.01 * (1 + (time.time_ns() % 10**9) / 1e10)  # new every round
            describe, query = asyncio.run(client.round(pids, rho, f"b{n}-{r}-{time.time_ns()}"))
            if r:
                seen.append((describe, query, time.monotonic() - clock))
        if recorder is not None:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(60)
    finally:
        for host in started:
            host.send_signal(signal.SIGTERM)
        for host in started:
            host.wait(120)
    count = n * len(seen)  # means over the rounds: /proc counts CPU in ticks of 10 ms
    return {
        "describe_ms": 1000 * sum(s[0] for s in seen) / count,
        "query_ms": 1000 * sum(s[1] for s in seen) / count,
        "total_ms": 1000 * sum(s[0] + s[1] for s in seen) / count,
        "wall_s": min(s[2] for s in seen),
        "idle_cpu_share": idle,
    }


def host_main(directory: str, profile: str | None) -> None:
    """``fedstats node serve --config DIR``, through the CLI's own main (optionally profiled)."""
    from fedstats.cli import main

    profiles: list[cProfile.Profile] = []
    if profile:
        lock = threading.Lock()

        def start(_frame: object, _event: str, _arg: object) -> None:
            prof = cProfile.Profile(time.thread_time)
            with lock:
                profiles.append(prof)
            prof.enable()

        threading.setprofile(start)
        main_profile = cProfile.Profile(time.thread_time)
        profiles.append(main_profile)
        main_profile.enable()
    extra = shlex.split(os.environ.get("NODE_HOST_SERVE_ARGS", ""))
    code = main(["node", "serve", "--config", directory, *extra])
    if profile:
        import pstats

        for prof in profiles:
            prof.disable()
        stats = pstats.Stats(profiles[0])
        for prof in profiles[1:]:
            try:
                stats.add(prof)
            except TypeError:  # a thread that never recorded a call
                continue
        stats.dump_stats(profile)
    sys.exit(code)


def row(n: int, f: dict[str, float], label: str) -> None:
    """One size's line of the table."""
    cpu = f"{f['describe_ms']:9.1f} {f['query_ms']:9.1f} {f['total_ms']:9.1f}"
    idle = 100 * f["idle_cpu_share"]
    print(f"{n:>4} {cpu}  {label:<22} {f['wall_s']:7.2f} {idle:8.1f}%", flush=True)


def main() -> None:
    """Set up, serve each size from one host, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,100,300")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per size (CPU: mean)")
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--work", help="working directory (kept; default: a temporary one)")
    parser.add_argument("--profile", help="profile the host of the largest size into FILE")
    parser.add_argument("--perf", help="`perf record` the host of the largest size into FILE")
    parser.add_argument(
        "--baseline", help="a checkout of other node code (e.g. `git archive main`): each size "
        "is measured on it too, alternating with this one, under the same load",
    )  # fmt: skip
    parser.add_argument(
        "--hosts", type=int, default=len(os.sched_getaffinity(0)),
        help="host processes, node i served by process i mod K (default: one per core; "
        "1: every node from ONE process)",
    )  # fmt: skip
    parser.add_argument(
        "--serve-args", default="", help="more options for the host's `fedstats node serve` "
        "(e.g. \"--workers 4\"): each size's host runs with them",
    )  # fmt: skip
    args = parser.parse_args()
    os.environ["NODE_HOST_SERVE_ARGS"] = args.serve_args  # the hosts' environment
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.work or tempfile.mkdtemp(prefix="nodehost-"))
    if not (work / "nodes").is_dir() or len(list((work / "nodes").glob("*.toml"))) < max(sizes):
        started = time.perf_counter()
        setup(work, max(sizes), args.persons)
        print(f"set up {max(sizes)} nodes in {time.perf_counter() - started:.0f} s ({work})")
    print(f"{'N':>4} {'describe':>9} {'query':>9} {'total':>9}  (host CPU ms per node)"
          f" {'wall s':>7} {'idle CPU':>9}")  # fmt: skip
    for n in sizes:
        profile = Path(args.profile) if args.profile and n == max(sizes) else None
        perf = Path(args.perf) if args.perf and n == max(sizes) else None
        if args.baseline:
            baseline = Path(args.baseline).resolve()
            row(n, measure(work, n, args.rounds, code=baseline, hosts=args.hosts), "baseline")
        row(n, measure(work, n, args.rounds, profile, perf, hosts=args.hosts), "")
    print(f"{args.hosts} host process(es); load average {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} cores (shared machine)")  # fmt: skip
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--host":
        host_main(sys.argv[2], sys.argv[4] if sys.argv[3:4] == ["--profile"] else None)
    else:
        main()
