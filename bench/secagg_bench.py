"""Benchmark of a secure-aggregation round with distributed discrete Gaussian noise.

For K nodes and tables of d cells, one whole round (advertise, shares, masked vectors,
survivor confirmation, unmask) runs in one process, message by message, through the
production round code (``node.secure.NodeRound``, ``coordinator.secure.Aggregator``):
no network, so the times are the protocol's computation and the bytes are the signed
envelopes each party would put on the wire. Reported per configuration:

- time per node (mean over the K nodes, all steps) and at the coordinator (all steps);
- bytes each node sends and receives, and the coordinator's total;
- the noise: one node's OpenDP noise share timed against the plain (full-noise) release
  of the same table in the same process, and the pooled table's noise SD as a multiple
  of one node's noise, secure (all K survive; t survive) against today's plain sum
  (sqrt(K)). At K = 10 the secure SD is also measured on a real noisy round.

The threshold is t = ceil(0.85 K) (the round survives K - t dropouts or colluders).
Run from the repository root::

    .venv/bin/python bench/secagg_bench.py [--nodes 10,100,300] [--cells 1000,12896]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from privacy import ddg
from privacy.gaussian import release
from security.roundkeys import Envelope
from tests.support.secagg import Party, make_party

RHO = 0.02
P = ParamSpec("P")
R = TypeVar("R")
Vector = npt.NDArray[np.int64]


def size(envelope: Envelope) -> int:
    """Bytes of an envelope on the wire (ids, step, body, signature)."""
    head = len(envelope.round_id) + len(envelope.query_sha256) + len(envelope.step)
    return head + len(envelope.sender) + len(envelope.body) + len(envelope.signature)


class Meter:
    """Accumulates time per party and bytes per direction."""

    def __init__(self) -> None:
        """Nothing measured yet."""
        self.node_s: dict[str, float] = defaultdict(float)
        self.coord_s = 0.0
        self.up: dict[str, int] = defaultdict(int)
        self.down: dict[str, int] = defaultdict(int)

    def node(self, name: str, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a node's step, adding its time to the node's."""
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        self.node_s[name] += time.perf_counter() - start
        return out

    def coord(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a coordinator step, adding its time to the coordinator's."""
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        self.coord_s += time.perf_counter() - start
        return out


def timed_round(party: Party, vectors: dict[str, Vector], meter: Meter) -> Vector:
    """One round with every message metered."""
    c = party.coordinator
    for name, node in party.nodes.items():
        ad = meter.node(name, node.advertise)
        meter.up[name] += size(ad)
        meter.coord(c.add_advertisement, ad)
    ads = meter.coord(c.advertisements)
    for name, node in party.nodes.items():
        meter.down[name] += sum(map(size, ads))
        bundles = meter.node(name, node.share, ads)
        meter.up[name] += sum(map(size, bundles))
        meter.coord(c.add_shares, name, bundles)
    for name, node in party.nodes.items():
        mine = meter.coord(c.bundles_for, name)
        meter.down[name] += sum(map(size, mine))
        masked = meter.node(name, node.masked_input, mine, vectors[name])
        meter.up[name] += size(masked)
        meter.coord(c.add_masked, masked)
    survivors = meter.coord(c.close_inputs)
    for name in survivors:
        meter.down[name] += sum(len(s) for s in survivors)
        confirmation = meter.node(name, party.nodes[name].confirm, survivors)
        meter.up[name] += size(confirmation)
        meter.coord(c.add_confirmation, confirmation)
    confirmations = meter.coord(c.confirmations)
    for name in survivors:
        meter.down[name] += sum(map(size, confirmations))
        answer = meter.node(name, party.nodes[name].unmask, confirmations)
        meter.up[name] += size(answer)
        meter.coord(c.add_unmask, answer)
    return meter.coord(c.total)


def one(k: int, d: int) -> None:
    """Measure one configuration and print its table row."""
    t = math.ceil(0.85 * k)
    plan = ddg.plan_shares(1.0, RHO, t, d)
    rng = np.random.default_rng(k * d)
    party = make_party(k, t, d)
    tables = {n: rng.integers(0, 10_000, size=d, dtype=np.int64) for n in party.nodes}
    first = min(tables)
    start = time.perf_counter()
    share = ddg.noisy_share(tables[first], plan)
    share_s = time.perf_counter() - start
    start = time.perf_counter()
    release(tables[first], 1, RHO)
    plain_s = time.perf_counter() - start
    # Only K = 10 noises every node (OpenDP samples ~1e4 values/s); elsewhere the noise
    # is not in the timed round, whose cost does not depend on the values.
    noisy = k == 10
    vectors = {
        n: (ddg.noisy_share(v, plan) if noisy else v * plan.gamma) for n, v in tables.items()
    }
    vectors[first] = share if noisy else vectors[first]
    meter = Meter()
    total = timed_round(party, vectors, meter)
    truth = sum(tables.values())
    central = 1.0 / math.sqrt(2 * RHO)  # one node's noise SD on its own release
    if noisy:
        measured = f"{float(np.std(total / plan.gamma - truth)) / central:.3f}"
    else:
        assert np.array_equal(total, truth * plan.gamma)
        measured = "-"
    coord_bytes = sum(meter.up.values()) + sum(meter.down.values())
    print(
        f"| {k} | {t} | {d} | {1e3 * sum(meter.node_s.values()) / k:.1f} "
        f"| {meter.coord_s:.2f} | {max(meter.up.values()) / 1e3:.0f} "
        f"| {max(meter.down.values()) / 1e3:.0f} | {coord_bytes / 1e6:.1f} "
        f"| {1e3 * share_s:.0f} / {1e3 * plain_s:.0f} "
        f"| {math.sqrt(k / t):.3f} ({measured}) | 1.000 | {math.sqrt(k):.2f} |",
        flush=True,
    )


def main() -> None:
    """Print the table for every configuration asked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", default="10,100,300")
    parser.add_argument("--cells", default="1000,12896")
    args = parser.parse_args()
    print(
        "| K | t | cells | ms per node | s at coordinator | kB sent per node "
        "| kB received per node | MB through coordinator | ms noise share / plain release "
        "| pooled SD, K survive (measured) | t survive | plain sum |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for k in map(int, args.nodes.split(",")):
        for d in map(int, args.cells.split(",")):
            one(k, d)


if __name__ == "__main__":
    main()
