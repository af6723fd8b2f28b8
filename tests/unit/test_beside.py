"""The report's writer process: its file moves into place only when both sides succeeded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.errors import FedstatsError
from coordinator.publish.beside import Beside, can_fork

pytestmark = pytest.mark.skipif(not can_fork(), reason="the writer process needs Linux fork")


def _write(text: str) -> object:
    def write(path: Path) -> None:
        path.write_text(f"{text} from {os.getpid()}", encoding="utf-8")

    return write


def test_the_childs_file_moves_into_place(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    beside = Beside(_write("page"), target)  # type: ignore[arg-type]
    beside.finish()
    text = target.read_text(encoding="utf-8")
    assert text.startswith("page from ") and text != f"page from {os.getpid()}"  # another process
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_a_failing_child_says_why_and_leaves_nothing(tmp_path: Path) -> None:
    def fails(path: Path) -> None:
        path.write_text("half a page", encoding="utf-8")
        raise OSError(28, "No space left on device")

    target = tmp_path / "report.html"
    with pytest.raises(FedstatsError) as caught:
        Beside(fails, target).finish()
    assert "No space left on device" in str(caught.value) and str(target) in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_the_parents_failure_discards_the_childs_file(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    Beside(_write("page"), target).finish(keep=False)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
