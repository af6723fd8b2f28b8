"""The chain head is written after every audit entry, and only then (`Ledger._mirror`);
its file's two slots survive a write cut short and an earlier format (`node.chainhead`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.errors import ConfigError
from node.chainhead import SLOT_BYTES, ChainHead, mirror, read_head
from node.ledger import Ledger, Request, Reservation


def _written(head: Path) -> bytes:
    return head.read_bytes()  # every write changes a slot: a new seq, hash and check


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


def _slots(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert SLOT_BYTES == 4096 and len(data) == 8192  # each slot a page and block of its own
    return [data[:4096], data[4096:]]


def test_each_write_goes_to_the_older_slot_and_the_head_never_moves_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushed: list[int] = []
    real = os.fdatasync

    def fdatasync(fd: int) -> None:
        flushed.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    path = tmp_path / "head.json"
    mirror(path, ChainHead(1, "a" * 64))
    first = _slots(path)
    assert b'"seq": 1' in first[0] and not first[1].strip()  # a new file: the other slot blank
    mirror(path, ChainHead(2, "b" * 64))
    second = _slots(path)
    assert second[0] == first[0] and b'"seq": 2' in second[1]
    assert len(flushed) == 1  # an in-place write is flushed before the release leaves
    mirror(path, ChainHead(3, "c" * 64))
    third = _slots(path)
    assert b'"seq": 3' in third[0] and third[1] == second[1]
    mirror(path, ChainHead(2, "b" * 64))  # an earlier head: nothing is written
    assert _slots(path) == third and read_head(path) == ChainHead(3, "c" * 64)
    assert len(flushed) == 2
    ino = path.stat().st_ino
    mirror(path, ChainHead(4, "d" * 64))
    assert path.stat().st_ino == ino  # written in place, not replaced
    assert read_head(path) == ChainHead(4, "d" * 64)


def test_a_write_cut_short_leaves_the_previous_head(tmp_path: Path) -> None:
    path = tmp_path / "head.json"
    mirror(path, ChainHead(7, "a" * 64))
    mirror(path, ChainHead(8, "b" * 64))
    whole = bytearray(path.read_bytes())
    torn = whole.replace(b"b" * 64, b"b" * 32 + b"c" * 32)  # half old, half new bytes
    path.write_bytes(torn)
    assert read_head(path) == ChainHead(7, "a" * 64)  # slot 2 fails its check
    mirror(path, ChainHead(9, "d" * 64))  # over the torn slot, not over the head
    assert read_head(path) == ChainHead(9, "d" * 64)
    assert b'"seq": 7' in _slots(path)[0]
    changed = _slots(path)[0].replace(b"a" * 64, b"a" * 63 + b"x")  # one byte of its hash
    path.write_bytes(changed + b" " * (SLOT_BYTES - 1) + b"\n")  # and the other slot blank
    with pytest.raises(ConfigError, match="neither of its two slots") as caught:
        read_head(path)
    assert caught.value.field == "node.chain_head"
    with pytest.raises(ConfigError):  # nor written over: the node refuses, never guesses
        mirror(path, ChainHead(10, "e" * 64))


def test_a_head_file_of_the_earlier_format_is_read_and_rewritten_in_slots(
    tmp_path: Path,
) -> None:
    path = tmp_path / "head.json"
    path.write_text('{"seq": 5, "hash": "' + "a" * 64 + '"}', encoding="utf-8")
    assert read_head(path) == ChainHead(5, "a" * 64)
    mirror(path, ChainHead(4, "z" * 64))  # behind it: the file is left as it is
    assert read_head(path) == ChainHead(5, "a" * 64) and path.stat().st_size < SLOT_BYTES
    mirror(path, ChainHead(6, "b" * 64))
    assert len(_slots(path)) == 2 and read_head(path) == ChainHead(6, "b" * 64)
    path.write_text("not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a chain head file"):
        read_head(path)


@pytest.mark.parametrize(
    "damage",
    [
        b"\xff\xfe not UTF-8",
        b"[" * 100_000,  # nested past the JSON reader's recursion limit
        b'{"seq": 1e400, "hash": "x", "check": "y"}',
        b'{"seq": Infinity, "hash": "x", "check": "y"}',
        b'{"seq": true, "hash": "x", "check": "y"}',
        b'{"seq": -3, "hash": "x", "check": "y"}',
        b'["seq", "hash"]',
    ],
)
def test_a_damaged_slot_is_skipped_for_the_other(tmp_path: Path, damage: bytes) -> None:
    path = tmp_path / "head.json"
    mirror(path, ChainHead(3, "a" * 64))
    valid = _slots(path)[0]
    path.write_bytes(valid + damage[:4095].ljust(4095) + b"\n")
    assert read_head(path) == ChainHead(3, "a" * 64)
    path.write_bytes(damage[:4095].ljust(4095) + b"\n" + valid)
    assert read_head(path) == ChainHead(3, "a" * 64)
    mirror(path, ChainHead(4, "b" * 64))  # over the damaged slot
    assert _slots(path)[1] == valid and read_head(path) == ChainHead(4, "b" * 64)


def test_a_file_of_another_size_is_refused_with_what_was_found(tmp_path: Path) -> None:
    path = tmp_path / "head.json"
    mirror(path, ChainHead(3, "a" * 64))
    path.write_bytes(path.read_bytes() + b"\n")
    with pytest.raises(ConfigError, match="8193 bytes: neither two slots of 4096 bytes"):
        read_head(path)
