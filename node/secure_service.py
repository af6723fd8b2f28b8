"""A node's secure-aggregation rounds behind the ``SecureStep`` RPC.

The first step (``advertise``) carries the coordinator's signed query with its signed
round description. The node admits it like any query (signature, audience, freshness,
policy), checks the round (fresh id, participants it accepts, the query hash), charges
its ledger for the whole query (``node.secure.charge_and_noise``: every attempt a new
charge, never answered from a cache), draws its noisy share vector and keeps it, with
the round's state, in memory only. The later steps (``share``, ``mask``, ``confirm``,
``unmask``) advance that state. A node that restarts forgets its rounds: a later step
is refused (the round goes on without it or fails), and its charge stands.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.errors import FedstatsError, Reason
from indicators.spec import compile_query
from node.gatekeeper import Admitted
from node.ledger import Request
from node.secure import NodeRound, charge_and_noise
from node.service import NodeService
from privacy import ddg
from privacy.budget import split_rho
from protos import node_pb2 as pb
from security.roundkeys import Envelope, RoundError
from security.roundwire import envelopes_of, participants_of, query_sha256, wire_of

__all__ = ["SecureRounds", "refusal"]

STEPS = ("advertise", "share", "mask", "confirm", "unmask")


def refusal(message: str, hint: str = "") -> FedstatsError:
    """A secure round or step this node refuses, with its catalogued reason."""
    return FedstatsError(message, reason=Reason.SECURE_ROUND_REFUSED, hint=hint)


@dataclass
class _Open:
    """One round this node takes part in: who runs it, its state, its unmasked vector."""

    coordinator: str
    round: NodeRound
    noisy: npt.NDArray[np.int64] | None
    lock: threading.Lock


class SecureRounds:
    """The rounds of one node, in memory (a restart abandons them)."""

    def __init__(self, service: NodeService) -> None:
        self.service = service
        self._rounds: dict[str, _Open] = {}
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def open(self, admitted: Admitted, secure: pb.SecureRound) -> pb.SecureStepReply:
        """The ``advertise`` step: check the round, charge, draw the share, send keys."""
        svc, me = self.service, self.service.config.id
        with self._lock:
            if not secure.round_id or secure.round_id in self._seen:
                raise refusal(
                    f"round {secure.round_id!r} is not new", "every attempt is a new round"
                )
            self._seen.add(secure.round_id)
        expected = query_sha256(admitted.query)
        if secure.query_sha256 != expected:
            raise refusal("the round is for another query than the one signed with it")
        pinned = self._participants(secure)
        plan = compile_query(admitted.query, svc.config.local)
        served = svc.period(plan.query.time_period)
        svc.check_answerable(plan, served)
        svc.config.policy.check(admitted.grant, plan)
        if served.engine.weighted:
            raise refusal(
                "secure rounds take unweighted (register) tables only",
                "survey tables are pooled by the plain sum (`fedstats query` without --secure)",
            )
        tables = [served.engine.count(spec).counts for spec in plan.tables]
        rhos = split_rho(plan.query.rho, [1.0] * len(plan.tables))
        shares = [
            ddg.plan_shares(served.sensitivity, r, secure.threshold, s.n_cells)
            for r, s in zip(rhos, plan.tables, strict=True)
        ]
        request = Request(
            query_id=admitted.query_id,
            spec_hash=plan.spec_hash(),
            rho=plan.query.rho,
            coordinator=admitted.grant.id,
            request_sha256=admitted.request_sha256,
            coordinator_cap=admitted.grant.rho_cap,
        )
        try:
            node_round = NodeRound(
                me, svc.signing_key, secure.round_id, expected, pinned, secure.threshold
            )
            noisy = charge_and_noise(served.ledger, request, secure.round_id, tables, shares)
        except (RoundError, ValueError) as exc:
            raise refusal(str(exc)) from None
        advert = node_round.advertise()
        with self._lock:
            self._rounds[secure.round_id] = _Open(
                admitted.grant.id, node_round, noisy, threading.Lock()
            )
        cfg = served.config
        return pb.SecureStepReply(
            envelopes=[wire_of(advert)],
            dim=len(noisy),
            rho_charged=plan.query.rho,
            geo=cfg.geo,
            time_period=cfg.dataset.time_period,
            gammas=[p.gamma for p in shares],
            share_sigmas=[p.sigma for p in shares],
        )

    def _participants(self, secure: pb.SecureRound) -> dict[str, Ed25519PublicKey]:
        """The identity keys of the round's nodes: vouched for, and pinned if configured."""
        me, cfg = self.service.config.id, self.service.config
        try:
            listed = participants_of(secure)
        except RoundError as exc:
            raise refusal(str(exc)) from None
        mine = self.service.signing_key.public_key().public_bytes_raw()
        if me not in listed or listed[me].public_bytes_raw() != mine:
            raise refusal(f"the round does not list {me} with its own key")
        for node, key in listed.items():
            if not cfg.peers or node == me:
                continue
            if (
                node not in cfg.peers
                or cfg.peers[node].public_bytes_raw() != key.public_bytes_raw()
            ):
                raise refusal(
                    f"the round lists {node} with a key this node has not pinned",
                    "add the node to [[peers]] with its public_key, or leave it out of the round",
                )
        return listed

    def step(self, request: pb.SecureStepRequest, coordinator: str) -> pb.SecureStepReply:
        """A later step of a round this node opened for the same coordinator."""
        with self._lock:
            state = self._rounds.get(request.round_id)
        if state is None:
            raise refusal(
                f"round {request.round_id!r} is not open on this node",
                "a node that restarted abandons its rounds; start a new query",
            )
        if state.coordinator != coordinator:
            raise refusal(f"round {request.round_id!r} belongs to another coordinator")
        with state.lock:
            try:
                return pb.SecureStepReply(envelopes=[wire_of(e) for e in self._run(state, request)])
            except RoundError as exc:
                raise refusal(str(exc)) from None
            finally:
                if request.step == "unmask":
                    with self._lock:
                        self._rounds.pop(request.round_id, None)

    @staticmethod
    def _run(state: _Open, request: pb.SecureStepRequest) -> list[Envelope]:
        node_round, received = state.round, envelopes_of(list(request.envelopes))
        if request.step == "share":
            return list(node_round.share(received))
        if request.step == "mask":
            if state.noisy is None:
                raise RoundError("this round's vector was masked already")
            noisy, state.noisy = state.noisy, None  # masked once, then gone
            return [node_round.masked_input(received, noisy)]
        if request.step == "confirm":
            return [node_round.confirm(list(request.survivors))]
        if request.step == "unmask":
            return [node_round.unmask(received)]
        raise RoundError(f"unknown step {request.step!r}; steps are {', '.join(STEPS)}")
