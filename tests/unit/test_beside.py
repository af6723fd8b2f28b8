"""The report's writer process: its file moves into place only when both sides succeeded."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from coordinator.publish.beside import Beside, can_fork

pytestmark = pytest.mark.skipif(not can_fork(), reason="the writer process needs Linux fork")


def _started(write: Callable[[Path], None], target: Path) -> Beside:
    beside = Beside.start(write, target)
    assert beside is not None
    return beside


def _page(path: Path) -> None:
    path.write_text(f"page from {os.getpid()}", encoding="utf-8")


def test_the_childs_file_moves_into_place(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    _started(_page, target).finish()
    text = target.read_text(encoding="utf-8")
    assert text.startswith("page from ") and text != f"page from {os.getpid()}"  # another process
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_a_full_disk_in_the_child_is_the_parents_os_error(tmp_path: Path) -> None:
    def fails(path: Path) -> None:
        path.write_text("half a page", encoding="utf-8")
        raise OSError(28, "No space left on device")

    target = tmp_path / "report.html"
    target.write_text("an older run's report", encoding="utf-8")
    with pytest.raises(OSError) as caught:
        _started(fails, target).finish()
    assert caught.value.errno == 28 and caught.value.filename == str(target)
    assert "No space left on device" in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # no partial file, and no older report either


def test_any_other_failure_names_its_type(tmp_path: Path) -> None:
    def fails(path: Path) -> None:
        raise ValueError("a row the report cannot show")

    with pytest.raises(RuntimeError, match="ValueError: a row the report cannot show"):
        _started(fails, tmp_path / "report.html").finish()
    assert list(tmp_path.iterdir()) == []


def test_the_parents_failure_discards_the_childs_file(tmp_path: Path) -> None:
    _started(_page, tmp_path / "report.html").finish(keep=False)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_while_waiting_stops_the_child(tmp_path: Path) -> None:
    def slow(path: Path) -> None:
        path.write_text("a start", encoding="utf-8")
        time.sleep(30)

    beside = _started(slow, tmp_path / "report.html")
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        beside.finish()
    timer.join()
    assert time.monotonic() - started < 10  # the child was stopped, not waited for
    assert list(tmp_path.iterdir()) == []
