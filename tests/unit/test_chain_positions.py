"""Rollbacks across signed results (coordinator.chain): forks and positions going back."""

from __future__ import annotations

from coordinator.chain import ChainPosition, rollbacks


def at(seq: int, digest: str, asked: int, received: int, node: str = "vienna") -> ChainPosition:
    return ChainPosition(node, seq, digest, asked, received, f"{node}@{asked}")


def test_positions_moving_forward_are_consistent() -> None:
    assert rollbacks([at(1, "a", 0, 10), at(3, "c", 20, 30), at(7, "g", 40, 50)]) == []


def test_two_entries_at_one_seq_are_a_fork() -> None:
    (problem,) = rollbacks([at(2, "b", 0, 10), at(2, "x", 20, 30)])
    assert "two different audit entries at seq 2" in problem


def test_a_later_result_at_an_earlier_seq_went_backwards() -> None:
    (problem,) = rollbacks([at(5, "e", 0, 10), at(3, "y", 20, 30)])
    assert "went backwards" in problem


def test_concurrent_queries_may_be_answered_in_either_order() -> None:
    """The second was asked before the first came back: the node may log it first."""
    assert rollbacks([at(5, "e", 0, 10), at(4, "d", 5, 30)]) == []


def test_one_hash_at_two_positions_is_reported() -> None:
    (problem,) = rollbacks([at(2, "b", 0, 10), at(3, "b", 20, 30)])
    assert "at two positions" in problem


def test_nodes_are_separate_and_results_without_a_position_are_left_out() -> None:
    assert rollbacks([at(5, "e", 0, 10), at(2, "b", 20, 30, node="oslo"), at(0, "", 40, 50)]) == []


def test_the_same_result_seen_twice_is_not_a_rollback() -> None:
    assert rollbacks([at(4, "d", 0, 10), at(4, "d", 0, 10)]) == []
