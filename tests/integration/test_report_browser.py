"""The HTML report rendered by headless Chromium: charts drawn, no browser errors.

Chromium logs every console message (script errors, blocked loads, CSP violations) to
stderr with ``--enable-logging=stderr``; the report has no script and loads nothing, so
any console message is a failure. ``.ci/run`` installs Debian's ``chromium``; without it
these tests skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from coordinator.publish.outputs import write_outputs
from coordinator.publish.report.charts import INK
from coordinator.run import QueryOutcome, run_query
from indicators.spec import Query
from tests.support.cities import ServeCityFn
from tests.support.nodes import coordinator_for

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)",
    ),
]
CITIES = ("amsterdam", "ghent", "helsinki")  # synthetic cities that record country of birth
CONSOLE = re.compile(r":CONSOLE[^\]]*\] (.*)")
WIDTH, HEIGHT = 1100, 2400


@dataclass
class Rendered:
    dom: str
    console: list[str]
    screenshot: Path


def render(page: Path, tmp_path: Path) -> Rendered:
    """Load a page in a fresh headless Chromium; its DOM, console and a screenshot."""
    assert CHROMIUM is not None
    screenshot = tmp_path / f"{page.stem}.png"
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp_path / f'profile-{page.stem}'}",
        "--enable-logging=stderr", "--v=0", f"--window-size={WIDTH},{HEIGHT}",
        f"--screenshot={screenshot}", "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return Rendered(done.stdout, CONSOLE.findall(done.stderr), screenshot)


def federation(tmp_path: Path, serve_city: ServeCityFn) -> QueryOutcome:
    addresses = [(city, serve_city(city).address) for city in CITIES]
    query = Query(("employment_rate", "unemployment_rate"), "c_birth", (), "NAT", 1.0)
    return run_query(coordinator_for(tmp_path, addresses), query)


def test_the_report_renders_with_charts_and_no_errors(
    tmp_path: Path, serve_city: ServeCityFn
) -> None:
    outcome = federation(tmp_path, serve_city)
    page = write_outputs([outcome], tmp_path / "out", ["html"])["html"]

    shown = render(page, tmp_path)

    assert shown.console == []
    # the charts are in the DOM: a figure per group and indicator, a mark per value
    charts = shown.dom.count('<svg class="chart"')
    assert charts >= 2 * 3 + len(CITIES)  # 3 groups x 2 indicators, a gap chart per city
    published = sum(1 for r in outcome.rows if r.value is not None)
    assert shown.dom.count("<circle") >= published // 2
    # a reader can answer the key question for one city, with its uncertainty
    finding = re.search(r"In helsinki \(FI001C\), the employment rate of residents born outside "
                        r"the EU is .*?</p>", shown.dom, re.S)  # fmt: skip
    assert finding is not None
    assert re.search(r"difference between the two is [-+]\d+\.\d\d points \(95% CI", finding[0])
    assert re.search(r"<b>(larger|smaller|not clearly different)</b>", finding[0])
    # and the screenshot is not a blank page: the chart marks are painted
    image = Image.open(shown.screenshot).convert("RGB")
    assert image.size == (WIDTH, HEIGHT)
    ink = [int(INK[i : i + 2], 16) for i in (1, 3, 5)]
    marks = int((np.asarray(image) == ink).all(axis=2).sum())
    assert marks > 1000, f"only {marks} pixels of chart ink in {shown.screenshot}"


def test_the_console_check_sees_a_blocked_load(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'\"></head><body>"
        '<img src="https://example.invalid/x.png"></body></html>'
    )
    assert any("Content Security Policy" in m for m in render(page, tmp_path).console)
