"""Three hundred cities: one federated query with every output, through the real CLI.

Sets up a federation on loopback (a CA, one certificate and signing key per node, the
demo's synthetic cities copied to N distinct nodes), serves the nodes from ``--hosts K``
``fedstats node serve --config DIR_i`` processes over mutual TLS (default: one per core,
as an office would run them on such a machine; node i is served by process i mod K, so
every size spreads over all of them; ``--hosts 1`` serves every node from ONE process),
then runs

    fedstats query --indicators employment_rate --group citizen --by sex,age \\
        --format csv,parquet,sdmx,html

for N = 1, 10, 100, 300 nodes (one 120-cell table per node). For each N it prints the
federated query (and its fan-out: the time on the wire, the nodes' work included), each
output format, the provenance files and the whole command (wall
clock of the process, interpreter start included), the coordinator's peak memory, the
cost per node, and the growth exponent between the last two sizes (1 = linear).
The HTML report is rendered in a forked writer process while the coordinator writes the
other formats (`coordinator.publish.beside`): its time is the writer's own and overlaps
theirs, and the whole command's CPU and peak memory include the writer's.
The baseline is the same command at N = 1 in the same run: ratios are against it. Each
size runs a first query that describes every node (no description kept from before, as a
coordinator's first query), printed on its own at the end, then ``--repeats`` more
(default 3) that plan from the descriptions kept (as every later query does), and each
phase keeps its fastest of those.

Beside the wall-clock times it prints CPU seconds, which a shared machine disturbs less:
the coordinator's CPU per phase (all its threads: the TLS handshakes of the fan-out run in
gRPC's own threads) and for the whole command (interpreter start and imports included),
and the node hosts' CPU per query (all K processes together, read from
``/proc/<pid>/stat`` before and after).

By default every node answers the same queries, so the nodes of one host share a budget
history and their answers' (epsilon, delta) figures are converted once per host and query;
``--own-histories`` gives each node one release at a rho of its own first (and a budget of
100 instead of 1e6), so each answer converts its own, as separate offices' nodes do.

The machine may be shared: the figures are what this run saw (say so with them).

Run:  .venv/bin/python bench/federation_bench.py [--sizes 1,10,100,300] [--persons 20000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coordinator.config import load_coordinator_config  # noqa: E402
from coordinator.described import DESCRIPTIONS_FILE  # noqa: E402
from fedstats import configs  # noqa: E402
from fedstats.certs import init_ca, issue, party_files  # noqa: E402
from fedstats.synth import CITIES, city_facts, generate, write  # noqa: E402

COORDINATOR = "bench-coordinator"
INDICATOR = "employment_rate"
RHO = 0.01
PHASES = ("fan-out", "query", "csv", "parquet", "sdmx", "html", "provenance", "whole")
"""``fan-out`` is the part of ``query`` spent on the wire (describe and ask every node, the
nodes' own work included); the rest of ``query`` is planning and combining."""


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports below the kernel's ephemeral range.

    Other processes on a shared machine take ephemeral ports (port 0, and every outgoing
    connection) all the time: a port picked there is often taken again before the node
    host binds it. A gRPC server binds with SO_REUSEPORT off (`node.server`), so a port
    taken since is an error at start.
    """
    ports: list[int] = []
    for port in random.sample(range(20_000, 32_000), 12_000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise SystemExit(f"no {count} free ports")


def setup(work: Path, nodes: int, persons: int, budget: float = 1e6) -> list[tuple[str, str]]:
    """CA, keys, data and node configs for ``nodes`` nodes; returns (id, address) pairs."""
    for sub in ("data", "nodes", "state", "pki"):
        shutil.rmtree(work / sub, ignore_errors=True)
        (work / sub).mkdir(parents=True)
    pki = work / "pki"
    init_ca(pki, name="fedstats bench federation")
    key = issue(pki, "coordinator", COORDINATOR)["sign_pub"].read_text().strip()
    for seed, city in enumerate(CITIES):
        write(generate(city, persons, seed=seed), work / "data" / f"{city}.csv")
    addresses = []
    for i, port in enumerate(free_ports(nodes)):
        city = CITIES[i % len(CITIES)]
        node_id, address = f"city{i:03d}", f"127.0.0.1:{port}"
        issue(pki, "node", node_id)
        period = city_facts(city).time_period
        text = configs.node_toml(
            city, [(f"../data/{city}.csv", period)], (COORDINATOR, key), [INDICATOR], budget,
            node=(node_id, f"{city_facts(city).geo}{i:03d}", address),
        )  # fmt: skip
        (work / "nodes" / f"{node_id}.toml").write_text(text, encoding="utf-8")
        addresses.append((node_id, address))
    return addresses


def coordinator_toml(work: Path, nodes: list[tuple[str, str]]) -> Path:
    """The coordinator's config over the first nodes."""
    pki = work / "pki"
    keys = [party_files(pki, "node", i)["sign_pub"].read_text().strip() for i, _ in nodes]
    entries = [(i, a, k) for (i, a), k in zip(nodes, keys, strict=True)]
    text = configs.coordinator_toml(COORDINATOR, entries)
    path = work / f"coordinator-{len(nodes)}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def serve(work: Path, nodes: list[tuple[str, str]], hosts: int) -> list[subprocess.Popen[bytes]]:
    """``hosts`` ``fedstats node serve --config DIR_i`` processes; once every port answers.

    Node i is served by process i mod ``hosts``: ``work/host-K-i`` holds its configs (their
    relative paths, ``../data`` and ``../state``, resolve as from ``nodes/``).
    """
    fedstats = Path(sys.executable).parent / "fedstats"
    configs = sorted((work / "nodes").glob("*.toml"))
    started = []
    try:
        for h in range(hosts):
            directory = work / f"host-{hosts}-{h}"
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            for path in configs[h::hosts]:
                shutil.copyfile(path, directory / path.name)
            log = (directory / "serve.log").open("wb")
            argv = [str(fedstats), "node", "serve", "--config", str(directory)]
            started.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
        for h, host in enumerate(started):
            await_ports(
                host, [a for _, a in nodes[h::hosts]], work / f"host-{hosts}-{h}" / "serve.log"
            )
    except BaseException:
        for host in started:
            host.kill()
        raise
    return started


def await_ports(
    host: subprocess.Popen[bytes], addresses: list[str], log: Path
) -> subprocess.Popen[bytes]:
    """``host`` once every one of ``addresses`` (``host:port``) takes a connection."""
    deadline = time.monotonic() + 900
    waiting = [int(a.rsplit(":", 1)[1]) for a in addresses]
    while waiting:
        if host.poll() is not None:
            raise SystemExit(f"node host exited: see {log}")
        if time.monotonic() > deadline:
            raise SystemExit("node host did not start in 15 minutes")
        try:
            socket.create_connection(("127.0.0.1", waiting[0]), timeout=1).close()
            waiting.pop(0)
        except OSError:
            time.sleep(0.2)
    return host


def rss_mib(pid: int) -> float:
    """Resident memory of a process (MiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(argv: list[str], timings: Path) -> None:
    """Run `fedstats query` in this process with its phases timed (wrapped, not changed)."""
    import coordinator.client as client
    import coordinator.provenance as provenance
    import coordinator.publish.outputs as outputs
    import coordinator.publish.sdmx as sdmx
    import coordinator.run as run
    from fedstats.cli import main

    spent: dict[str, float] = {}
    parent = os.getpid()

    def timed(module: object, name: str, phase: str) -> None:
        inner = getattr(module, name)

        def wrapper(*args: object, **kwargs: object) -> object:
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[phase] = spent.get(phase, 0.0) + time.perf_counter() - started
                spent[f"cpu {phase}"] = spent.get(f"cpu {phase}", 0.0) + time.process_time() - cpu
                if os.getpid() != parent:  # the report's writer process: its own file
                    side = timings.with_name(f"{timings.name}.{os.getpid()}")
                    side.write_text(json.dumps(spent), encoding="utf-8")

        setattr(module, name, wrapper)

    timed(run, "run_query", "query")
    timed(client.Session, "describe_then_ask", "fan-out")
    timed(outputs, "write_csv", "csv")
    timed(outputs, "write_parquet", "parquet")
    timed(sdmx, "prepare_sdmx", "sdmx")
    timed(sdmx.SdmxRelease, "write", "sdmx")
    timed(outputs, "write_report", "html")
    timed(provenance, "write_provenance", "provenance")
    timed(provenance, "write_public", "provenance")
    code = main(argv)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the report's writer process
    spent["rss_mib"] = max(usage.ru_maxrss, children.ru_maxrss) / 1024
    spent["cpu whole"] = sum(u.ru_utime + u.ru_stime for u in (usage, children))
    for side in timings.parent.glob(f"{timings.name}.*"):  # phases timed in writer processes
        for key, value in json.loads(side.read_text(encoding="utf-8")).items():
            if key not in spent or key.endswith("html"):
                spent[key] = value
        side.unlink()
    spent["exit"] = code
    timings.write_text(json.dumps(spent), encoding="utf-8")


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far (user and system, all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def query(
    work: Path, nodes: list[tuple[str, str]], rho: float = RHO, hosts: tuple[int, ...] = ()
) -> dict[str, float]:
    """Time one `fedstats query` over the nodes, in a fresh process."""
    out = work / f"out-{len(nodes)}"
    shutil.rmtree(out, ignore_errors=True)
    timings = work / f"timings-{len(nodes)}.json"
    argv = ["query", "--config", str(coordinator_toml(work, nodes)), "--indicators", INDICATOR,
            "--group", "citizen", "--by", "sex,age", "--rho", str(rho), "--out", str(out),
            "--format", "csv,parquet,sdmx,html"]  # fmt: skip
    host_before = sum(map(cpu_seconds, hosts))
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(timings), "--", *argv],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    whole = time.perf_counter() - started
    host_cpu = sum(map(cpu_seconds, hosts)) - host_before
    if done.returncode != 0 or not timings.exists():
        raise SystemExit(f"fedstats query failed ({done.returncode}):\n{done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(timings.read_text())
    figures["whole"] = whole
    figures["cpu host"] = host_cpu
    rows = sum(1 for _ in (out / "benchmark.csv").open()) - 1
    figures["rows"] = rows
    return figures


def own_histories(work: Path, nodes: list[tuple[str, str]]) -> None:
    """Give each node a history of its own: one release at a rho no other node spent.

    By default every node answers the same queries, so the nodes of one host have spent
    the same: the (epsilon, delta) figures each answer reports (`privacy.budget.epsilon_for`)
    are then converted once per host and query. A node with a history of its own converts
    its own (about 0.45 ms each here), as separate offices' nodes do.
    """
    from coordinator.run import run_query
    from indicators.spec import Query

    for i, node in enumerate(nodes):
        config = load_coordinator_config(coordinator_toml(work, [node]))
        rho = RHO / 4 * (1 + i / len(nodes))
        outcome = run_query(config, Query((INDICATOR,), "citizen", (), "NAT", rho))
        if outcome.failures:
            raise SystemExit(f"node {node[0]} did not answer its own first query")


def first_and_best(
    work: Path, nodes: list[tuple[str, str]], repeats: int, run: int, hosts: tuple[int, ...]
) -> tuple[dict[str, float], dict[str, float]]:
    """A first query, then each phase's fastest of ``repeats`` more runs.

    The first query finds no kept description (`coordinator.described`: the file is
    removed before it), so it describes every node, as a coordinator's very first query
    does; the runs after it plan from the descriptions it kept, as every later query of a
    coordinator does. The fastest is kept because the machine is shared: contention only
    ever adds time. Every run asks a slightly different rho, so no node answers from its
    cache of identical queries: each run costs the nodes the full work.
    """
    config = load_coordinator_config(coordinator_toml(work, nodes))
    (config.state_dir / DESCRIPTIONS_FILE).unlink(missing_ok=True)
    rhos = [RHO * (1 + (run * (repeats + 1) + i + 1) / 1000) for i in range(repeats + 1)]
    first, *runs = [query(work, nodes, rho, hosts) for rho in rhos]
    return first, {key: min(r[key] for r in runs) for key in runs[0]}


def report(results: dict[int, dict[str, float]], host_mib: float, nodes: int, hosts: int) -> None:
    """Print the table, per-node costs and growth exponents."""
    head = f"{'N':>4} " + " ".join(f"{p:>10}" for p in PHASES) + f" {'coord MiB':>10} {'rows':>7}"
    print(head)
    for n, f in results.items():
        cells = " ".join(f"{f.get(p, 0.0):9.3f}s" for p in PHASES)
        print(f"{n:>4} {cells} {f['rss_mib']:10.0f} {int(f['rows']):>7}")
    sizes = sorted(results)
    big = sizes[-1]
    print(f"\nper node at N={big} (ms):  " + "  ".join(
        f"{p} {1000 * results[big].get(p, 0.0) / big:.1f}" for p in PHASES))  # fmt: skip
    if len(sizes) >= 2:
        a, b = sizes[-2], sizes[-1]
        print(f"growth exponent {a}->{b} (1 = linear, from t ~ N^k):")
        for p in PHASES:
            ta, tb = results[a].get(p, 0.0), results[b].get(p, 0.0)
            if ta > 0 and tb > 0:
                print(f"  {p:<11} k = {math.log(tb / ta) / math.log(b / a):5.2f}")
    print(
        "\nCPU seconds (the coordinator's per phase and whole command; the node host's per query):"
    )
    cpu = [f"cpu {p}" for p in PHASES if p != "fan-out"] + ["cpu fan-out", "cpu host"]
    print(f"{'N':>4} " + " ".join(f"{c[4:]:>10}" for c in cpu))
    for n, f in results.items():
        print(f"{n:>4} " + " ".join(f"{f.get(c, 0.0):9.3f}s" for c in cpu))
    print(f"CPU per node at N={big} (ms):  " + "  ".join(
        f"{c[4:]} {1000 * results[big].get(c, 0.0) / big:.1f}" for c in cpu))  # fmt: skip
    if len(sizes) >= 2:
        a, b = sizes[-2], sizes[-1]
        exponents = []
        for c in cpu:
            ta, tb = results[a].get(c, 0.0), results[b].get(c, 0.0)
            if ta > 0 and tb > 0:
                exponents.append(f"{c[4:]} {math.log(tb / ta) / math.log(b / a):.2f}")
        print(f"CPU growth exponent {a}->{b}: " + "  ".join(exponents))
    base = results[sizes[0]]
    ratios = [f"{p} x{results[big].get(p, 0.0) / base[p]:.1f}" for p in PHASES if base.get(p)]
    print(f"\nratio to the N={sizes[0]} baseline of this run: " + "  ".join(ratios))
    print(f"\nnode hosts: {nodes} nodes in {hosts} process(es), {host_mib:.0f} MiB resident "
          f"({host_mib / nodes:.1f} MiB per node); load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores (shared machine)")  # fmt: skip


def machine_speed() -> float:
    """OpenDP's sampler in the benchmark's own process, us per value: the machine's speed now.

    The shared machine's speed drifts by a tenth or more within minutes; read the
    figures of a run against it. Imported here, not at the top: the ``--child`` process
    that runs ``fedstats query`` loads only what the CLI loads.
    """
    from noise_bench import per_value_us

    from privacy.gaussian import closed_form_sigma, on_grid

    return per_value_us(on_grid(closed_form_sigma(1, RHO)), values=300, rounds=5)


def main() -> None:
    """Set up, serve, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100,300")
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3, help="runs per size; best is kept")
    parser.add_argument("--work", help="working directory (default: a temporary one)")
    parser.add_argument(
        "--hosts", type=int, default=len(os.sched_getaffinity(0)),
        help="node host processes, the nodes shared among them (default: one per core)",
    )  # fmt: skip
    parser.add_argument(
        "--own-histories", action="store_true",
        help="each node a history of its own (one release at its own rho before the runs) "
        "and a budget of 100 instead of 1e6, so every answer converts its own budget "
        "figures to (epsilon, delta), as separate offices' nodes do",
    )  # fmt: skip
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.work or tempfile.mkdtemp(prefix="fedbench-"))
    started = time.perf_counter()
    nodes = setup(work, max(sizes), args.persons, 100.0 if args.own_histories else 1e6)
    print(f"set up {len(nodes)} nodes in {time.perf_counter() - started:.0f} s ({work})")
    started = time.perf_counter()
    hosts = serve(work, nodes, args.hosts)
    print(f"{args.hosts} `fedstats node serve` process(es) serve {len(nodes)} nodes after "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    probe = []
    try:
        probe.append(machine_speed())  # the hosts up and idle, as after the runs
        host_mib = sum(rss_mib(host.pid) for host in hosts)
        pids = tuple(host.pid for host in hosts)
        if args.own_histories:
            started = time.perf_counter()
            own_histories(work, nodes)
            print(f"each node given a history of its own in {time.perf_counter() - started:.0f} s")
        for h in range(min(args.hosts, len(nodes))):  # warm each host's first-call paths
            query(work, nodes[h : h + 1])
        measured = {
            n: first_and_best(work, nodes[:n], args.repeats, i, pids) for i, n in enumerate(sizes)
        }
        probe.append(machine_speed())
    finally:
        for host in hosts:
            host.terminate()
        for host in hosts:
            host.wait(60)
    report({n: best for n, (_, best) in measured.items()}, host_mib, len(nodes), args.hosts)
    print("\nfirst query of each size (no kept description: every node is described first):")
    for n, (first, _) in measured.items():
        print(f"{n:>4}  fan-out {first['fan-out']:.3f}s  query {first['query']:.3f}s  whole "
              f"{first['whole']:.3f}s  cpu: query {first['cpu query']:.3f}s  fan-out "
              f"{first['cpu fan-out']:.3f}s  host {first['cpu host']:.3f}s")  # fmt: skip
    print(f"\nthe machine's speed: OpenDP's sampler {probe[0]:.2f} us per value before the "
          f"runs, {probe[1]:.2f} after (one core, the hosts idle; see noise_bench)")  # fmt: skip
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[4:], Path(sys.argv[2]))
    else:
        main()
