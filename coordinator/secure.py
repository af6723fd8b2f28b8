"""The coordinator's side of one secure-aggregation round: relay, then unmask the sum only.

The coordinator verifies every envelope against the node identity keys its config holds,
relays the advertisements and the sealed share bundles (it cannot open them), collects
the masked vectors, fixes the survivor set once (after which a late masked vector is
refused), and from at least ``t`` unmask answers rebuilds the survivors' self-mask seeds
and the dropped nodes' mask keys. What it learns is the sum of the survivors' noisy
vectors; each single vector stays masked by a seed it never sees.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from privacy import secagg, shamir
from security.roundkeys import Envelope, RoundError, Verifier, pair_seed, round_context, unb64

__all__ = ["Aggregator"]


@dataclass
class Aggregator:
    """One round at the coordinator.

    Attributes:
        round_id: The round.
        query_sha256: The query it answers.
        identities: Ed25519 keys of the nodes invited (from the coordinator's config).
        threshold: ``t``.
        dim: Entries of the vectors.
    """

    round_id: str
    query_sha256: str
    identities: dict[str, Ed25519PublicKey]
    threshold: int
    dim: int
    _ads: dict[str, Envelope] = field(default_factory=dict)
    _s_keys: dict[str, bytes] = field(default_factory=dict)
    _bundles: dict[str, list[Envelope]] = field(default_factory=lambda: defaultdict(list))
    _sharers: set[str] = field(default_factory=set)
    _masked: dict[str, secagg.Ring] = field(default_factory=dict)
    _survivors: list[str] | None = None
    _confirmations: dict[str, Envelope] = field(default_factory=dict)
    _unmask: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not len(self.identities) < 2 * self.threshold <= 2 * len(self.identities):
            raise ValueError(
                f"threshold {self.threshold} must exceed half of the {len(self.identities)} "
                "nodes (so that no K - t colluders hold t shares) and not exceed their number"
            )
        self._verifier = Verifier(self.round_id, self.query_sha256, self.identities)

    def add_advertisement(self, envelope: Envelope) -> None:
        """Step 1 in: a node's signed round keys."""
        if self._sharers:
            raise RoundError("the key list is closed")
        content = self._verifier.accept(envelope, "advertise")
        self._ads[envelope.sender] = envelope
        self._s_keys[envelope.sender] = unb64(content["s"])

    def advertisements(self) -> list[Envelope]:
        """Step 1 out: every advertisement, as signed by its node."""
        if len(self._ads) < self.threshold:
            raise RoundError(f"{len(self._ads)} nodes advertised keys, fewer than t")
        return [self._ads[n] for n in sorted(self._ads)]

    def add_shares(self, sender: str, bundles: list[Envelope]) -> None:
        """Step 2 in: a node's sealed bundles, one to every other advertised node."""
        if sender not in self._ads or self._masked:
            raise RoundError(f"shares from {sender} are not expected now")
        recipients = set()
        for envelope in bundles:
            if envelope.sender != sender:
                raise RoundError(f"a bundle in {sender}'s shares is signed as {envelope.sender}")
            recipients.add(self._verifier.accept(envelope, "shares", slot="to")["to"])
        if recipients != set(self._ads) - {sender}:
            raise RoundError(f"{sender} did not send shares to every advertised node")
        self._sharers.add(sender)
        for envelope in bundles:
            self._bundles[envelope.content()["to"]].append(envelope)

    def bundles_for(self, node: str) -> list[Envelope]:
        """Step 2 out: the bundles addressed to ``node`` from the nodes that shared."""
        if len(self._sharers) < self.threshold:
            raise RoundError(f"{len(self._sharers)} nodes shared, fewer than t")
        return [b for b in self._bundles[node] if b.sender in self._sharers]

    def add_masked(self, envelope: Envelope) -> None:
        """Step 3 in: a masked vector; refused once the survivor set is fixed."""
        if self._survivors is not None:
            raise RoundError(f"the round is closed to masked vectors; {envelope.sender} is late")
        if envelope.sender not in self._sharers:
            raise RoundError(f"{envelope.sender} did not share keys in this round")
        raw = unb64(self._verifier.accept(envelope, "masked")["values"])
        values = np.frombuffer(raw, dtype=np.uint64)
        if len(values) != self.dim:
            raise RoundError(f"{envelope.sender} sent {len(values)} entries, not {self.dim}")
        self._masked[envelope.sender] = values.copy()

    def close_inputs(self) -> list[str]:
        """Fix the survivors (the nodes whose masked vectors arrived); fails under ``t``."""
        if self._survivors is None:
            if len(self._masked) < self.threshold:
                raise RoundError(f"{len(self._masked)} masked vectors, fewer than t: round fails")
            self._survivors = sorted(self._masked)
        return list(self._survivors)

    def add_confirmation(self, envelope: Envelope) -> None:
        """Step 4 in: a survivor's signature of the survivor set."""
        survivors = self.close_inputs()
        content = self._verifier.accept(envelope, "confirm")
        if envelope.sender not in survivors or content["survivors"] != survivors:
            raise RoundError(f"{envelope.sender} confirmed another survivor set")
        self._confirmations[envelope.sender] = envelope

    def confirmations(self) -> list[Envelope]:
        """Step 4 out: the survivors' signatures, once at least ``t`` arrived."""
        if len(self._confirmations) < self.threshold:
            raise RoundError(f"{len(self._confirmations)} confirmations, fewer than t")
        return [self._confirmations[n] for n in sorted(self._confirmations)]

    def add_unmask(self, envelope: Envelope) -> None:
        """Step 4 in: a survivor's shares for unmasking."""
        survivors = self.close_inputs()
        content = self._verifier.accept(envelope, "unmask")
        if envelope.sender not in survivors or content["survivors"] != survivors:
            raise RoundError(f"the unmask answer of {envelope.sender} is for another survivor set")
        self._unmask[envelope.sender] = {"b": content["b"], "s": content["s"]}

    def total(self) -> npt.NDArray[np.int64]:
        """The unmasked sum of the survivors' vectors, as signed integers."""
        survivors = self.close_inputs()
        if len(self._unmask) < self.threshold:
            raise RoundError(f"{len(self._unmask)} unmask answers, fewer than t")
        points = shamir.points_of(list(self._ads))
        holders = sorted(self._unmask)[: self.threshold]
        weights = shamir.lagrange_at_zero([points[h] for h in holders])

        def rebuild(kind: str, owner: str) -> bytes:
            shares = [shamir.Share(points[h], int(self._unmask[h][kind][owner])) for h in holders]
            return shamir.reconstruct(shares, weights).to_bytes(32, "big")

        total = np.zeros(self.dim, dtype=np.uint64)
        for node in survivors:
            total += self._masked[node]
        total = secagg.remove_self_masks(total, [rebuild("b", u) for u in survivors])
        context = round_context(self.round_id, self.query_sha256)
        for v in sorted(self._sharers - set(survivors)):
            key = X25519PrivateKey.from_private_bytes(rebuild("s", v))
            seeds = {u: pair_seed(key, self._s_keys[u], context, v, u) for u in survivors}
            total = secagg.remove_pair_masks(total, v, seeds)
        return secagg.from_ring(total)
