"""Runs secure-aggregation rounds in one process, message by message, for tests and bench.

No network: the envelopes the parties would send are handed from one to the other, so
tests can drop, replay, re-sign or delay any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.secure import Aggregator
from node.secure import NodeRound
from security.roundkeys import Envelope

__all__ = ["Party", "make_party"]


@dataclass
class Party:
    """K nodes and the coordinator of one round."""

    nodes: dict[str, NodeRound]
    identities: dict[str, Ed25519PrivateKey]
    coordinator: Aggregator
    wire_bytes: dict[str, int] = field(default_factory=dict)

    def keys_and_shares(self, drop_before_shares: frozenset[str] = frozenset()) -> None:
        """Steps 1 and 2 for every node (those in ``drop_before_shares`` vanish after step 1)."""
        for node in self.nodes.values():
            self.coordinator.add_advertisement(node.advertise())
        ads = self.coordinator.advertisements()
        for name, node in self.nodes.items():
            bundles = node.share(ads)
            if name not in drop_before_shares:
                self.coordinator.add_shares(name, bundles)

    def mask(self, name: str, noisy: npt.NDArray[np.int64]) -> Envelope:
        """Step 3 for one node: its masked vector's envelope."""
        return self.nodes[name].masked_input(self.coordinator.bundles_for(name), noisy)

    def run(
        self,
        vectors: dict[str, npt.NDArray[np.int64]],
        drop_after_shares: frozenset[str] = frozenset(),
    ) -> npt.NDArray[np.int64]:
        """A whole round: the nodes in ``drop_after_shares`` never send their masked vector."""
        self.keys_and_shares()
        for name, vector in vectors.items():
            envelope = self.mask(name, vector)
            if name not in drop_after_shares:
                self.coordinator.add_masked(envelope)
        return self.finish()

    def finish(self) -> npt.NDArray[np.int64]:
        """Steps 4 and 5 once the masked vectors are in: confirm, unmask, total."""
        survivors = self.coordinator.close_inputs()
        for name in survivors:
            self.coordinator.add_confirmation(self.nodes[name].confirm(survivors))
        confirmations = self.coordinator.confirmations()
        for name in survivors:
            self.coordinator.add_unmask(self.nodes[name].unmask(confirmations))
        return self.coordinator.total()


def make_party(count: int, threshold: int, dim: int, round_id: str = "r1") -> Party:
    """Nodes n00..n{count-1} with fresh identities, all pinning each other's keys."""
    identities = {f"n{i:02d}": Ed25519PrivateKey.generate() for i in range(count)}
    public = {name: key.public_key() for name, key in identities.items()}
    query = "ab" * 32
    nodes = {
        name: NodeRound(name, key, round_id, query, dict(public), threshold)
        for name, key in identities.items()
    }
    return Party(nodes, identities, Aggregator(round_id, query, dict(public), threshold, dim))
