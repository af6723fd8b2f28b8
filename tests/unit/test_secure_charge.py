"""Each node charges its ledger for every secure attempt; none is answered from a cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.errors import BudgetError
from node.ledger import Ledger, Request
from node.secure import charge_and_noise
from privacy import ddg
from security.roundkeys import RoundError
from tests.support.secagg import make_party

RHO = 0.1


def _ledger(tmp_path: Path, name: str = "n") -> Ledger:
    return Ledger(tmp_path / f"{name}.sqlite", "ds", 1.0, 0.5, Ed25519PrivateKey.generate())


def _plans(threshold: int, dims: list[int]) -> list[ddg.SharePlan]:
    return [ddg.plan_shares(1.0, RHO / len(dims), threshold, d) for d in dims]


def test_every_attempt_is_a_new_charge_even_for_the_same_query(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    tables = [np.arange(6, dtype=np.int64), np.arange(4, dtype=np.int64)]
    plans = _plans(3, [6, 4])
    first = charge_and_noise(ledger, Request("q1", "spec", RHO), "round-1", tables, plans)
    second = charge_and_noise(ledger, Request("q2", "spec", RHO), "round-2", tables, plans)
    assert len(first) == len(second) == 10
    assert ledger.state().spent == pytest.approx(2 * RHO)
    assert not np.array_equal(first, second)  # fresh noise, never the stored vector


def test_a_known_query_id_is_refused_not_answered(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    tables, plans = [np.ones(5, dtype=np.int64)], _plans(3, [5])
    charge_and_noise(ledger, Request("q1", "spec", RHO), "round-1", tables, plans)
    with pytest.raises(RoundError, match="answered before"):
        charge_and_noise(ledger, Request("q1", "spec", RHO), "round-1", tables, plans)
    assert ledger.state().spent == pytest.approx(RHO)


def test_a_charge_over_the_budget_spends_nothing(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    tables, plans = [np.ones(5, dtype=np.int64)], _plans(3, [5])
    with pytest.raises(BudgetError):
        charge_and_noise(ledger, Request("q1", "spec", 0.6), "round-1", tables, plans)
    assert ledger.state().spent == 0.0


def test_plans_spending_more_than_the_request_are_refused(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    with pytest.raises(ValueError, match="more than the query's rho"):
        charge_and_noise(
            ledger, Request("q1", "spec", RHO / 2), "r", [np.ones(5, dtype=np.int64)],
            _plans(3, [5]),
        )  # fmt: skip
    assert ledger.state().spent == 0.0


def test_a_charged_secure_round_gives_the_pooled_tables(tmp_path: Path) -> None:
    count, threshold, dims = 5, 3, [40, 60]
    plans = _plans(threshold, dims)
    party = make_party(count, threshold, sum(dims), round_id="round-9")
    rng = np.random.default_rng(9)
    truth = {n: [rng.integers(0, 900, size=d, dtype=np.int64) for d in dims] for n in party.nodes}
    ledgers = {n: _ledger(tmp_path, n) for n in party.nodes}
    vectors = {
        n: charge_and_noise(ledgers[n], Request("q", "spec", RHO), "round-9", truth[n], plans)
        for n in party.nodes
    }
    total = party.run(vectors)
    pooled = [total[:40] / plans[0].gamma, total[40:] / plans[1].gamma]
    for i, plan in enumerate(plans):
        error = pooled[i] - sum(t[i] for t in truth.values())
        assert np.all(np.abs(error) < 7 * ddg.pooled_sd(plan, count))  # per cell: < 1e-11
    assert all(ledger.state().spent == pytest.approx(RHO) for ledger in ledgers.values())
