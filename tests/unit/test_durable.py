"""Durable replacement of a file (`common.durable`): both writers leave the same files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.durable import write_durably, write_durably_fd


@pytest.mark.parametrize("size", [0, 60, 200_000])
def test_the_descriptor_writer_leaves_what_the_buffered_one_does(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    buffered, direct = tmp_path / "a" / "deep" / "head.json", tmp_path / "b" / "deep" / "head.json"
    for _ in range(2):  # a missing directory is made, then an existing file replaced
        write_durably(buffered, data)
        write_durably_fd(direct, data)
        assert direct.read_bytes() == buffered.read_bytes() == data
        assert direct.stat().st_mode == buffered.stat().st_mode
        assert os.listdir(direct.parent) == os.listdir(buffered.parent) == ["head.json"]
        data = data[::-1] + b"x"


def test_a_failed_write_leaves_the_target_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "head.json"
    target.mkdir()  # os.replace of a file over a directory fails
    with pytest.raises(IsADirectoryError):
        write_durably_fd(target, b"{}")
    assert target.is_dir() and os.listdir(tmp_path) == ["head.json"]
