"""The chain head is written after every audit entry, and only then (`Ledger._mirror`)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.chainhead import read_head
from node.ledger import Ledger, Request, Reservation


def _written(head: Path) -> tuple[int, int]:
    status = head.stat()  # a durable write replaces the file: a new inode
    return status.st_ino, status.st_mtime_ns


def test_a_reservation_leaves_the_head_alone_and_a_release_moves_it(tmp_path: Path) -> None:
    head = tmp_path / "mirror" / "head.json"
    key = Ed25519PrivateKey.generate()
    ledger = Ledger(tmp_path / "state" / "ledger.sqlite", "ds", 1.0, 0.5, key, chain_head=head)
    first = ledger.reserve(Request("q1", "spec-1", 0.1))
    assert isinstance(first, Reservation)
    ledger.commit(first, b"answer")
    after_release = read_head(head)
    assert after_release is not None and after_release.seq == 1
    written = _written(head)
    second = ledger.reserve(Request("q2", "spec-2", 0.1))  # no audit entry: nothing to write
    assert isinstance(second, Reservation)
    ledger.cancel(second)
    assert _written(head) == written and read_head(head) == after_release
    third = ledger.reserve(Request("q3", "spec-3", 0.1))
    assert isinstance(third, Reservation)
    position = ledger.commit(third, b"answer 3")
    assert read_head(head) == position and position.seq == 2
    assert _written(head) != written
    # a second ledger on the same file (another period of the node) writes its own entries
    other = Ledger(tmp_path / "state" / "ledger.sqlite", "ds2", 1.0, 0.5, key, chain_head=head)
    fourth = other.reserve(Request("q4", "spec-4", 0.1))
    assert isinstance(fourth, Reservation)
    assert read_head(head) == position
    assert other.commit(fourth, b"answer 4") == read_head(head)
    ledger.close()
    other.close()
