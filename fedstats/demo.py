"""``fedstats demo``: a whole federation on this machine, from registers to benchmarks.

Each city gets its own synthetic register in its own local format and its own node
config mapping that format to the harmonised variables. Every node runs as a real gRPC
server on loopback with its own SQLite ledger; the coordinator asks them over gRPC and
combines the noisy tables. No microdata cross a node's boundary.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from common.errors import FedstatsError
from coordinator.config import CoordinatorConfig, load_coordinator_config
from coordinator.progress import FanOutProgress
from coordinator.provenance import citation_for, publish, verify_provenance
from coordinator.publish.outputs import FORMATS
from coordinator.publish.summary import outcome_notes, summary
from coordinator.run import QueryOutcome, run_query
from fedstats import configs
from fedstats.certs import init_ca, issue, party_files
from fedstats.demo_cohorts import FORMATS as COHORT_FORMATS
from fedstats.demo_cohorts import cohort_lines, run_cohort_queries
from fedstats.synth import (
    CITIES,
    city_facts,
    earlier,
    generate,
    write,
)
from indicators.spec import Query
from node.config import load_config
from node.server import NodeServer, build_server
from node.service import NodeService
from privacy.budget import epsilon_for
from security.signing import load_private_key

__all__ = ["DEMO_INDICATORS", "run_demo"]

DEMO_INDICATORS = (
    "employment_rate",
    "unemployment_rate",
    "activity_rate",
    "attainment_low",
    "attainment_medium",
    "attainment_high",
    "median_income_ratio",
    "arop_rate",
    "overqualification_rate",
)
SUMMARY_INDICATORS = ("employment_rate", "attainment_low")
RHO_PER_QUERY = 0.07  # two of these and three cohort queries fit the coordinator's cap
RHO_BUDGET = 1.0  # the node's total per person: four coordinators' caps
COORDINATOR = "demo-coordinator"


def previous_period(period: str) -> str:
    """The reference period a year before ``period`` (a year)."""
    return str(int(period) - 1)


def data_file(city: str, period: str) -> str:
    """The demo's file name of a city's data for one period."""
    return f"{city}-{period}.csv"


def node_toml(city: str, coordinator_key: str) -> str:
    """The node config of one demo city; its variable mapping comes from the generator.

    Paths are relative to the ``nodes/`` folder of the demo's output directory.
    """
    latest = city_facts(city).time_period
    periods = (previous_period(latest), latest)
    datasets = [(f"../data/{data_file(city, period)}", period) for period in periods]
    return configs.node_toml(
        city, datasets, (COORDINATOR, coordinator_key), DEMO_INDICATORS, RHO_BUDGET
    )


def _coordinator_toml(nodes: list[tuple[str, str]], pki: Path) -> str:
    """The coordinator's config: its keys and every node's address and result key."""
    keys = [party_files(pki, "node", i)["sign_pub"].read_text().strip() for i, _ in nodes]
    addresses = [(i, a, k) for (i, a), k in zip(nodes, keys, strict=True)]
    return configs.coordinator_toml(COORDINATOR, addresses)


def _prepare(out: Path, cities: list[str], persons: int) -> list[Path]:
    """A fresh federation: CA and keys, data and node configs; returns the config paths."""
    for sub in ("data", "nodes", "state", "pki"):
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True)
    pki = out / "pki"
    init_ca(pki, name="fedstats demo federation")
    coordinator = issue(pki, "coordinator", COORDINATOR)
    coordinator_key = coordinator["sign_pub"].read_text().strip()
    configs = []
    for seed, city in enumerate(cities):
        issue(pki, "node", city_facts(city).id)
        period = city_facts(city).time_period
        write(generate(city, persons, seed=seed), out / "data" / data_file(city, period))
        before = earlier(generate(city, persons, seed=seed + 100), city, 1)
        write(before, out / "data" / data_file(city, previous_period(period)))
        config = out / "nodes" / f"{city}.toml"
        config.write_text(node_toml(city, coordinator_key), encoding="utf-8")
        configs.append(config)
    return configs


def run_demo(out: Path, cities: int = 5, persons: int = 100_000) -> int:
    """Run the demo federation and write its outputs under ``out``.

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
    print(f"  federation CA and keys in {out / 'pki'}/; every node serves mutual TLS")
    servers: list[NodeServer] = []
    try:
        nodes = []
        for config_path in configs:
            service = NodeService(load_config(config_path))
            server = build_server(service, "127.0.0.1:0", tls=service.config.tls)
            servers.append(server)
            nodes.append((service.config.id, f"127.0.0.1:{server.port}"))
            print(f"  node {service.config.id:<10} {service.engine.rows:>9,} rows  {nodes[-1][1]}")
        (out / "coordinator.toml").write_text(
            _coordinator_toml(nodes, out / "pki"), encoding="utf-8"
        )
        config = load_coordinator_config(out / "coordinator.toml")
        progress = FanOutProgress()
        outcomes = [
            run_query(
                config, Query(DEMO_INDICATORS, group, (), "NAT", RHO_PER_QUERY), progress=progress
            )
            for group in ("c_birth", "citizen")
        ]
        periods = [
            previous_period(city_facts(names[0]).time_period),
            outcomes[0].rows[0].time_period,
        ]
        pathway, comparison = run_cohort_queries(config, periods, progress)
    finally:
        for server in servers:
            server.stop()
    written = _write_outputs(out, outcomes, config)
    written += _write_outputs(out / "cohorts", [*pathway, comparison], config, COHORT_FORMATS)
    rows = [row for o in outcomes for row in o.rows]
    shown = [r for r in rows if r.indicator in SUMMARY_INDICATORS]
    notes = [note for o in outcomes for note in outcome_notes(o)]
    print(summary(shown, outcomes[-1].failures, notes=list(dict.fromkeys(notes))))
    print("\n".join(cohort_lines(pathway, comparison)))
    _print_budget([*outcomes, *pathway, comparison])
    report = verify_provenance(out, {n.id: n.public_key for n in config.nodes if n.public_key})
    verdict = "verified" if report.ok else "FAILED: " + "; ".join(report.problems)
    print(f"provenance: {report.results} signed node results and benchmark.csv {verdict}")
    elapsed = time.perf_counter() - started
    print(f"\nwrote in {elapsed:.1f} s:")
    for path in written:
        print(f"  {path}")
    print(f"node configs in {out / 'nodes'}/, ledgers and audit logs in {out / 'state'}/")
    return 0 if all(o.answers for o in outcomes) and report.ok else 1


def _write_outputs(
    out: Path,
    outcomes: list[QueryOutcome],
    config: CoordinatorConfig,
    formats: list[str] | None = None,
) -> list[Path]:
    """The outputs (every format by default) and provenance.json, signed results and all."""
    assert config.signing_key is not None
    coordinator_key = load_private_key(config.signing_key, "signing.key").public_key()
    node_keys = {n.id: n.public_key for n in config.nodes if n.public_key is not None}
    wanted = list(FORMATS) if formats is None else formats
    citation = citation_for(
        [o.query_id for o in outcomes], config.id, config.issuer, config.release_version
    )
    return publish(outcomes, out, wanted, config.id, coordinator_key, node_keys, citation)


def _print_budget(outcomes: list[QueryOutcome]) -> None:
    spent: dict[str, float] = {}  # per node: its periods hold the same persons
    for o in outcomes:
        for node, rho in o.rho_charged.items():
            spent[node] = spent.get(node, 0.0) + rho
    if spent:
        rho = max(spent.values())
        print(
            f"\nprivacy: a node spent at most rho {rho:g} of its {RHO_BUDGET:g} per person "
            f"(about epsilon {epsilon_for(rho):.2f} at delta 1e-9); "
            f"each cell carries its own discrete Gaussian noise; the coordinator's cap is "
            f"rho {configs.RHO_CAP:g} per person (epsilon {epsilon_for(configs.RHO_CAP):.2f})"
        )
