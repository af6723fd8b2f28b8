"""A dataset's budget and its population's, as the ledger reads them (`Ledger.state`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.errors import BudgetError, Reason
from node.ledger import Ledger, Request, Reservation


def _spend(ledger: Ledger, query_id: str, rho: float) -> None:
    reservation = ledger.reserve(Request(query_id, f"spec-{query_id}", rho))
    assert isinstance(reservation, Reservation)
    ledger.commit(reservation, b"answer")


@pytest.mark.parametrize("pool_rho", [None, 0.5, 2.0])
def test_a_pool_of_the_dataset_alone_has_spent_what_the_dataset_has(
    tmp_path: Path, pool_rho: float | None
) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "ledger.sqlite"
    with Ledger(path, "ds", 1.0, 0.4, key, pool=("ds",), pool_rho=pool_rho) as ledger:
        _spend(ledger, "q1", 0.3)
        _spend(ledger, "q2", 0.15)
        state = ledger.state()
        total = min(1.0, pool_rho or 1.0)
        assert (state.total, state.spent) == (total, 0.45)
        if total < 1.0:  # only the population's budget refuses this one
            with pytest.raises(BudgetError) as refused:
                ledger.reserve(Request("q3", "spec-q3", 0.1))
            assert refused.value.reason == Reason.BUDGET_EXCEEDED
            assert "only 0.05 of 1 is left" in refused.value.message  # of the dataset's
        else:
            _spend(ledger, "q3", 0.1)
            assert ledger.state().spent == pytest.approx(0.55)


def test_a_pool_of_two_datasets_sums_both(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "ledger.sqlite"
    pool = ("ds-2024", "ds-2025")
    older = Ledger(path, "ds-2024", 1.0, 0.4, key, pool=pool, pool_rho=0.6)
    newer = Ledger(path, "ds-2025", 1.0, 0.4, key, pool=pool, pool_rho=0.6)
    _spend(older, "q1", 0.35)
    _spend(newer, "q2", 0.2)
    assert (newer.state().total, newer.state().spent) == (0.6, 0.55)
    with pytest.raises(BudgetError) as refused:
        newer.reserve(Request("q3", "spec-q3", 0.1))
    assert "0.05 of 1 is left" in refused.value.message
    older.close()
    newer.close()
