"""A node's side of one secure-aggregation round (Bonawitz et al. 2017, semi-honest server).

The steps, each answered with one signed envelope (``security.roundkeys``):

1. ``advertise``: fresh X25519 keys ``c`` (share encryption) and ``s`` (pair masks).
2. ``shares``: after checking every advertised key against the pinned identity of its
   node, Shamir-share the private ``s`` key and a fresh self-mask seed ``b`` among the
   advertised nodes (threshold ``t``), one sealed bundle per peer.
3. ``masked``: open the bundles addressed to this node, agree a pair seed with every node
   that sent shares, and send the noisy vector masked in Z/2^64. The vector is consumed:
   a round masks exactly one vector, once; a new attempt is a new round with new keys and
   a new (newly charged) noisy vector.
4. ``confirm``: sign the survivor set; the node goes on only when at least ``t`` survivors
   signed the same set, so a coordinator cannot tell nodes different stories.
5. ``unmask``: answered once per round. For each survivor it reveals its share of the
   survivor's ``b``; for each node that dropped after sharing, its share of that node's
   ``s`` key; never both for one node, so a dropped node that reappears late cannot be
   unmasked (its vector would still carry ``b``).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from node.ledger import Ledger, Request, StoredAnswer
from privacy import ddg, secagg, shamir
from security.roundkeys import (
    Envelope,
    RoundError,
    RoundKeys,
    Verifier,
    b64,
    open_share,
    pair_seed,
    private_bytes,
    public_bytes,
    round_context,
    seal,
    seal_share,
    unb64,
)

__all__ = ["NodeRound", "charge_and_noise"]


def charge_and_noise(
    ledger: Ledger,
    request: Request,
    round_id: str,
    tables: Sequence[npt.NDArray[np.int64]],
    plans: Sequence[ddg.SharePlan],
) -> npt.NDArray[np.int64]:
    """Charge the ledger for a secure attempt, then draw this node's noisy share vector.

    A secure release is never answered from the ledger: the spec hash is salted with the
    round id (no identical-query cache hit), and a known query id is refused rather than
    answered (its stored record is a marker, never the vector). The vector returned is
    the tables' scaled counts plus each table's share noise, concatenated; it exists only
    in the caller's round and is masked once (``NodeRound.masked_input``).

    Args:
        ledger: The dataset's ledger.
        request: The query's ledger request (rho: the whole query's charge).
        round_id: The round this attempt belongs to.
        tables: True integer counts of each table.
        plans: Each table's share plan; their rho must add up to at most the request's.

    Raises:
        RoundError: The query id was answered before.
        BudgetError: The charge passes a cap or the remaining budget (nothing spent).
    """
    if sum(p.rho for p in plans) > request.rho:
        raise ValueError("the share plans spend more than the query's rho")
    salted = hashlib.sha256(f"{request.spec_hash}\x00secure\x00{round_id}".encode()).hexdigest()
    outcome = ledger.reserve(replace(request, spec_hash=salted))
    if isinstance(outcome, StoredAnswer):
        raise RoundError(
            f"query {request.query_id} was answered before; a secure attempt needs a new id"
        )
    try:
        noisy = np.concatenate([ddg.noisy_share(t, p) for t, p in zip(tables, plans, strict=True)])
        record = {"secure_round": round_id, "shares": [vars(p) for p in plans]}
        ledger.commit(outcome, json.dumps(record).encode())
    except BaseException:
        ledger.cancel(outcome)
        raise
    return noisy


@dataclass
class _Received:
    """Shares this node holds of one peer's secrets."""

    s_key: int
    b_seed: int


@dataclass
class NodeRound:
    """One node in one round.

    Attributes:
        me: This node's id.
        identity: Its Ed25519 identity key.
        round_id: The round.
        query_sha256: The query the round answers.
        pinned: Ed25519 keys of every node this node accepts as a peer (its own included).
        threshold: ``t``: the fewest nodes whose shares rebuild a secret, and the fewest
            survivors the node agrees to unmask.
    """

    me: str
    identity: Ed25519PrivateKey
    round_id: str
    query_sha256: str
    pinned: dict[str, Ed25519PublicKey]
    threshold: int
    keys: RoundKeys = field(default_factory=RoundKeys)
    _self_seed: bytes = field(default_factory=lambda: secrets.token_bytes(secagg.SEED_BYTES))
    _step: str = "new"
    _advertised: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    _held: dict[str, _Received] = field(default_factory=dict)
    _survivors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._context = round_context(self.round_id, self.query_sha256)
        self._verifier = Verifier(self.round_id, self.query_sha256, self.pinned)

    def _seal(self, step: str, content: dict[str, object]) -> Envelope:
        return seal(self.identity, self.round_id, self.query_sha256, step, self.me, content)

    def _advance(self, expected: str, to: str) -> None:
        if self._step != expected:
            raise RoundError(f"{self.me} is at step {self._step}; {to} needs {expected}")
        self._step = to

    def advertise(self) -> Envelope:
        """Step 1: the round's public keys, signed."""
        self._advance("new", "advertised")
        c, s = public_bytes(self.keys.c.public_key()), public_bytes(self.keys.s.public_key())
        return self._seal("advertise", {"c": b64(c), "s": b64(s)})

    def share(self, advertisements: list[Envelope]) -> list[Envelope]:
        """Step 2: check the advertised keys, then send each peer its sealed shares."""
        self._advance("advertised", "shared")
        for envelope in advertisements:
            content = self._verifier.accept(envelope, "advertise")
            self._advertised[envelope.sender] = (unb64(content["c"]), unb64(content["s"]))
        mine = (public_bytes(self.keys.c.public_key()), public_bytes(self.keys.s.public_key()))
        if self._advertised.get(self.me) != mine:
            raise RoundError(f"the coordinator's key list does not carry {self.me}'s keys")
        if not self.threshold <= len(self._advertised) < 2 * self.threshold:
            raise RoundError(
                f"{len(self._advertised)} nodes advertised: t = {self.threshold} must be at "
                "most their number and more than half of it"
            )
        points = shamir.points_of(list(self._advertised))
        s_int = int.from_bytes(private_bytes(self.keys.s), "big")
        b_int = int.from_bytes(self._self_seed, "big")
        s_shares = shamir.split(s_int, self.threshold, list(points.values()))
        b_shares = shamir.split(b_int, self.threshold, list(points.values()))
        out = []
        for peer, (peer_c, _) in sorted(self._advertised.items()):
            x = points[peer]
            plain = json.dumps({"s": s_shares[x].y, "b": b_shares[x].y}).encode()
            if peer == self.me:
                self._held[self.me] = _Received(s_shares[x].y, b_shares[x].y)
                continue
            sealed = seal_share(self.keys.c, peer_c, self._context, self.me, peer, plain)
            out.append(self._seal("shares", {"to": peer, "sealed": b64(sealed)}))
        return out

    def masked_input(self, bundles: list[Envelope], noisy: npt.NDArray[np.int64]) -> Envelope:
        """Step 3: open the shares sent to this node and mask the noisy vector."""
        self._advance("shared", "masked")
        for envelope in bundles:
            content = self._verifier.accept(envelope, "shares")
            sender = envelope.sender
            if content.get("to") != self.me or sender not in self._advertised:
                raise RoundError(f"a share bundle from {sender} is not for {self.me}")
            peer_c = self._advertised[sender][0]
            plain = open_share(self.keys.c, peer_c, self._context, sender, self.me,
                               unb64(content["sealed"]))  # fmt: skip
            values = json.loads(plain)
            self._held[sender] = _Received(int(values["s"]), int(values["b"]))
        if len(self._held) < self.threshold:
            raise RoundError(f"{len(self._held)} nodes shared, fewer than t; round abandoned")
        seeds = {
            peer: pair_seed(self.keys.s, self._advertised[peer][1], self._context, self.me, peer)
            for peer in self._held
            if peer != self.me
        }
        masked = secagg.mask(noisy, self.me, self._self_seed, seeds)
        return self._seal("masked", {"values": b64(masked.tobytes())})

    def confirm(self, survivors: list[str]) -> Envelope:
        """Step 4: sign the survivor set the coordinator announced.

        This is Bonawitz's consistency check: a node reveals nothing until ``t`` survivors
        signed the same set.
        """
        self._advance("masked", "confirmed")
        alive = set(survivors)
        if self.me not in alive or not alive <= set(self._held):
            raise RoundError("the survivor list names nodes that did not share with this node")
        if len(alive) < self.threshold:
            raise RoundError(f"{len(alive)} survivors, fewer than t; nothing is revealed")
        self._survivors = sorted(alive)
        return self._seal("confirm", {"survivors": self._survivors})

    def unmask(self, confirmations: list[Envelope]) -> Envelope:
        """Step 5 (once): shares of survivors' self-mask seeds and dropped nodes' mask keys."""
        self._advance("confirmed", "unmasked")
        agreeing = set()
        for envelope in confirmations:
            if self._verifier.accept(envelope, "confirm")["survivors"] != self._survivors:
                raise RoundError(f"{envelope.sender} confirmed another survivor set")
            agreeing.add(envelope.sender)
        if len(agreeing & set(self._survivors)) < self.threshold:
            raise RoundError("fewer than t survivors confirmed the survivor set")
        alive = set(self._survivors)
        dropped = sorted(set(self._held) - alive)
        return self._seal(
            "unmask",
            {
                "survivors": self._survivors,
                "b": {u: str(self._held[u].b_seed) for u in self._survivors},
                "s": {v: str(self._held[v].s_key) for v in dropped},
            },
        )
