"""`fedstats demo --secure`: the demo's cities pooled by secure aggregation and by the plain sum.

The same federation as `fedstats demo` (CA, keys, synthetic cities, nodes over mutual
TLS); one query is asked twice at the same rho: once as today (every node releases its
table with full noise, the coordinator sums them) and once as a secure round (each node
adds its share of the noise and masks its table; the coordinator unmasks only the sum).
Both pooled intervals are printed side by side.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from common.errors import FedstatsError
from coordinator.config import load_coordinator_config
from coordinator.pooling import Pooling
from coordinator.rows import POOLED, BenchmarkRow
from coordinator.run import run_query
from coordinator.secure_run import run_secure_query
from fedstats.demo import _coordinator_toml, _prepare
from fedstats.synth_profiles import CITIES
from indicators.spec import Query
from node.config import load_config
from node.server import NodeServer, build_server
from node.service import NodeService

__all__ = ["run_secure_demo"]

INDICATORS = ("employment_rate", "unemployment_rate")
RHO = 0.05


def _interval(row: BenchmarkRow | None) -> str:
    if row is None or row.value is None or row.ci_low is None or row.ci_high is None:
        return f"{'(' + (row.flags if row else '-') + ')':>22}"
    return f"{row.value:6.2f} [{row.ci_low:6.2f}, {row.ci_high:6.2f}]"


def run_secure_demo(out: Path, cities: int = 5, persons: int = 100_000) -> int:
    """Run the secure pooled query next to the plain one; print both intervals.

    Returns:
        The process exit code.
    """
    if not 2 <= cities <= len(CITIES):
        raise FedstatsError(
            f"--cities must be between 2 and {len(CITIES)} for a secure round", field="--cities"
        )
    started = time.perf_counter()
    names = list(CITIES[:cities])
    print(f"fedstats demo --secure: {cities} cities x {persons:,} synthetic persons in {out}/")
    servers: list[NodeServer] = []
    try:
        nodes = []
        for config_path in _prepare(out, names, persons):
            service = NodeService(load_config(config_path))
            server = build_server(service, "127.0.0.1:0", tls=service.config.tls)
            servers.append(server)
            nodes.append((service.config.id, f"127.0.0.1:{server.port}"))
        (out / "coordinator.toml").write_text(
            _coordinator_toml(nodes, out / "pki"), encoding="utf-8"
        )
        config = load_coordinator_config(out / "coordinator.toml")
        query = Query(INDICATORS, "citizen", (), "NAT", RHO)
        # Helsinki and Ghent measure labour status from registers (concept codes, flag d):
        # both pools take them, and their rows say so
        secure = run_secure_query(config, query, deviations=True)
        # the plain sum over the same nodes, for a like-for-like comparison
        same = tuple(n for n in config.nodes if n.id in secure.survivors)
        plain = run_query(replace(config, nodes=same), query, pooling=Pooling(deviations=True))
    finally:
        for server in servers:
            server.stop()
    print(
        f"\nrho {RHO:g} per node and query; secure round {secure.round_id[:8]}: "
        f"t = {secure.threshold} of {len(secure.participants)} nodes, "
        f"{len(secure.survivors)} in the sum"
    )
    plain_rows = {(r.indicator, r.group): r for r in plain.rows if r.node == POOLED}
    header = f"{'indicator':<18} {'group':<14} {'plain sum (95% CI)':>24} {'secure (95% CI)':>24}"
    print(header + "  width ratio")
    for row in secure.rows:
        other = plain_rows.get((row.indicator, row.group))
        ratio = ""
        if other and None not in (row.ci_low, row.ci_high, other.ci_low, other.ci_high):
            width = (other.ci_high or 0.0) - (other.ci_low or 0.0)
            if width > 0:
                ratio = f"{((row.ci_high or 0.0) - (row.ci_low or 0.0)) / width:8.2f}"
        intervals = f"{_interval(other):>24} {_interval(row):>24}"
        print(f"{row.indicator:<18} {row.group:<14} {intervals}  {ratio}")
    secure_sd = max(secure.pooled_sd.values())
    plain_sd = (len(secure.survivors) / (2 * RHO / len(secure.plan.tables))) ** 0.5
    print(f"pooled noise SD per cell: secure {secure_sd:.2f}, plain sum {plain_sd:.2f} persons")
    for node_id, failure in sorted(secure.failures.items()):
        print(f"  {node_id}: {failure.reason} {failure.message}")
    print(f"\ndone in {time.perf_counter() - started:.1f} s")
    return 0 if secure.survivors else 1
