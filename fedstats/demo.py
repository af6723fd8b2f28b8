"""``fedstats demo``: a whole federation on this machine, from registers to benchmarks.

Each city gets its own synthetic register in its own local format and its own node
config mapping that format to the harmonised variables. Every node runs as a real gRPC
server on loopback with its own SQLite ledger; the coordinator asks them over gRPC and
combines the noisy tables. No microdata cross a node's boundary.
"""

from __future__ import annotations

import shutil
import textwrap
import time
from pathlib import Path

import grpc

from coordinator.config import CoordinatorConfig, NodeAddress
from coordinator.output import summary, write_csv
from coordinator.run import QueryOutcome, run_query
from fedstats.synth import CITIES, city_facts, generate, variables_toml, write
from indicators.errors import FedstatsError
from indicators.spec import Query
from node.config import load_config
from node.server import build_server
from node.service import NodeService
from privacy.budget import epsilon_for

__all__ = ["DEMO_INDICATORS", "run_demo"]

DEMO_INDICATORS = (
    "employment_rate",
    "unemployment_rate",
    "activity_rate",
    "attainment_low",
    "attainment_medium",
    "attainment_high",
)
SUMMARY_INDICATORS = ("employment_rate", "attainment_low")
RHO_PER_QUERY = 0.5
RHO_BUDGET = 5.0


def node_toml(city: str, data_file: str) -> str:
    """The node config of one demo city (its variable mapping comes from the generator)."""
    facts = city_facts(city)
    head = textwrap.dedent(f"""\
        # Node config of {facts.name}: written by `fedstats demo`.
        [node]
        id = "{facts.id}"
        geo = "{facts.geo}"
        name = "{facts.name}"
        country = "{facts.country}"
        listen = "127.0.0.1:0"
        state_dir = "../state/{facts.id}"

        [dataset]
        path = "../data/{data_file}"
        time_period = "{facts.time_period}"
        source = "register"

        [privacy]
        rho_budget = {RHO_BUDGET}
        max_rho_per_query = 1.0

        [disclosure]
        min_count = 10
        unreliable_below = 50
        max_cv = 0.3

        """)
    return head + variables_toml(city)


def _coordinator_toml(nodes: list[NodeAddress]) -> str:
    lines = [
        "# Coordinator config written by `fedstats demo`. The ports were those of this run's",
        "# nodes; start nodes with `fedstats node serve` and put their addresses here.",
        "[coordinator]",
        'id = "demo-coordinator"',
        'state_dir = "state/coordinator"',
        "",
    ]
    for n in nodes:
        lines += ["[[nodes]]", f'id = "{n.id}"', f'address = "{n.address}"', ""]
    return "\n".join(lines)


def _prepare(out: Path, cities: list[str], persons: int) -> list[Path]:
    """Fresh data and node configs for every city; returns the config paths."""
    for sub in ("data", "nodes", "state"):
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True)
    configs = []
    for seed, city in enumerate(cities):
        data_file = f"{city}.csv"
        write(generate(city, persons, seed=seed), out / "data" / data_file)
        config = out / "nodes" / f"{city}.toml"
        config.write_text(node_toml(city, data_file), encoding="utf-8")
        configs.append(config)
    return configs


def run_demo(out: Path, cities: int = 5, persons: int = 100_000) -> int:
    """Run the demo federation and write ``benchmark.csv`` under ``out``.

    Returns:
        The process exit code.
    """
    if not 1 <= cities <= len(CITIES):
        raise FedstatsError(
            f"--cities must be between 1 and {len(CITIES)}", field="--cities", hint="e.g. 5"
        )
    if persons < 1000:
        raise FedstatsError("--persons must be at least 1000", field="--persons")
    started = time.perf_counter()
    names = list(CITIES[:cities])
    print(f"fedstats demo: {cities} cities x {persons:,} synthetic persons in {out}/")
    configs = _prepare(out, names, persons)
    servers: list[grpc.Server] = []
    try:
        nodes = []
        for config_path in configs:
            service = NodeService(load_config(config_path))
            server, port = build_server(service, "127.0.0.1:0")
            servers.append(server)
            nodes.append(NodeAddress(service.config.id, f"127.0.0.1:{port}"))
            print(f"  node {service.config.id:<10} {service.data.rows:>9,} rows  127.0.0.1:{port}")
        (out / "coordinator.toml").write_text(_coordinator_toml(nodes), encoding="utf-8")
        config = CoordinatorConfig(
            out / "coordinator.toml", "demo-coordinator", out / "state" / "coordinator", 60.0,
            tuple(nodes),
        )  # fmt: skip
        outcomes = [
            run_query(config, Query(DEMO_INDICATORS, group, (), "NAT", RHO_PER_QUERY))
            for group in ("c_birth", "citizen")
        ]
    finally:
        for server in servers:
            server.stop(grace=None)
    rows = [row for o in outcomes for row in o.rows]
    write_csv(rows, out / "benchmark.csv")
    shown = [r for r in rows if r.indicator in SUMMARY_INDICATORS]
    print(summary(shown, outcomes[-1].failures))
    _print_budget(outcomes)
    elapsed = time.perf_counter() - started
    print(f"\nwrote {out / 'benchmark.csv'} ({len(rows)} rows) in {elapsed:.1f} s")
    print(f"node configs in {out / 'nodes'}/, ledgers in {out / 'state'}/")
    return 0 if all(o.answers for o in outcomes) else 1


def _print_budget(outcomes: list[QueryOutcome]) -> None:
    spent: dict[str, float] = {}
    for o in outcomes:
        for node, rho in o.rho_charged.items():
            spent[node] = spent.get(node, 0.0) + rho
    if spent:
        rho = max(spent.values())
        print(
            f"\nprivacy: each node spent rho {rho:g} of {RHO_BUDGET:g} "
            f"(about epsilon {epsilon_for(rho):.2f} at delta 1e-9); "
            "each cell carries its own discrete Gaussian noise"
        )
