"""The report's wording and safety, without a federation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from coordinator.flags import Flags
from coordinator.publish.report.blocks import CityGaps
from coordinator.publish.report.compare import compare_to_mean, verdict
from coordinator.publish.report.page import render_report
from coordinator.rows import POOLED, BenchmarkRow
from coordinator.run import QueryOutcome
from indicators.spec import Query, compile_query
from privacy.estimators import Z95


@pytest.mark.parametrize(
    ("gap", "gap_ci", "pooled", "diff", "expected"),
    [
        (-14.8, (-15.2, -14.4), -14.9, (-0.3, 0.5), "not clearly different"),
        (-16.0, (-16.4, -15.6), -14.9, (-1.5, -0.7), "larger"),  # a wider deficit
        (-12.0, (-12.4, -11.6), -14.9, (2.5, 3.3), "smaller"),
        (9.0, (6.0, 12.0), 7.9, (0.5, 1.7), "larger"),  # unemployment: a positive gap
        (5.0, (4.0, 6.0), 7.9, (-3.5, -2.3), "smaller"),
        (8.2, (-10.3, 26.8), -8.9, (0.1, 34.1), "smaller"),  # not clearly reversed
        (3.0, (1.0, 5.0), -8.9, (10.0, 13.8), "opposite direction"),
    ],
)
def test_verdicts(
    gap: float,
    gap_ci: tuple[float, float],
    pooled: float,
    diff: tuple[float, float],
    expected: str,
) -> None:
    assert verdict(gap, gap_ci, pooled, diff) == expected


def test_what_a_node_sends_is_escaped() -> None:
    plan = compile_query(Query(("employment_rate",), "citizen", (), "NAT", 1.0))
    rows = [
        BenchmarkRow(
            node=node, geo='<script>alert("x")</script>', time_period="2025",
            indicator="employment_rate", group_dim="citizen", group=group, breakdown={},
            comparator="NAT", unit="PC", flags=Flags("c" if group != "NAT" else ""),
            value=None if group != "NAT" else 70.0,
        )
        for node in ("evil", POOLED)
        for group in ("NAT", "NEU27_2020_FOR")
    ]  # fmt: skip
    outcome = QueryOutcome(
        query_id="q1", plan=plan, rows=rows, answers={}, failures={}, rho_charged={}, replies={}
    )
    page = render_report([outcome])
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "default-src 'none'" in page  # the page may load and run nothing


def test_escaping_is_the_default_for_every_text() -> None:
    """A node id reaches headings, attributes, charts and sentences: markup in it stays text."""
    plan = compile_query(Query(("employment_rate",), "citizen", (), "NAT", 1.0))
    node = '<i>x</i>"'
    rows = [
        BenchmarkRow(
            node=n, geo="G", time_period="2025", indicator="employment_rate",
            group_dim="citizen", group=group, breakdown={}, comparator="NAT", unit="PC",
            value=60.0 if group != "NAT" else 70.0, ci_low=55.0, ci_high=65.0,
            comparator_value=70.0, gap=None if group == "NAT" else -10.0,
            gap_ci_low=None if group == "NAT" else -12.0,
            gap_ci_high=None if group == "NAT" else -8.0,
        )
        for n in (node, POOLED)
        for group in ("NAT", "NEU27_2020_FOR")
    ]  # fmt: skip
    outcome = QueryOutcome(
        query_id="q<1>", plan=plan, rows=rows, answers={}, failures={}, rho_charged={}, replies={}
    )
    page = render_report([outcome])
    assert "<i>x" not in page and "q<1>" not in page
    assert page.count("&lt;i&gt;x&lt;/i&gt;") >= 5  # city heading, tables, charts, words
    assert 'data-key="&lt;i&gt;x&lt;/i&gt;&#34;|employment_rate' in page
    assert "<script" not in page and "<link" not in page and 'src="' not in page


def test_city_gaps_summed_once_give_each_citys_own_comparison() -> None:
    """The mean of the other cities' gaps and its variance, from sums made once per cell,
    equal the formula computed city by city (what the report did before, in O(K^2))."""
    rng = np.random.default_rng(7)
    cities = []
    for k in range(300):
        gap, half = float(rng.normal(-8, 6)), float(rng.uniform(1, 9))
        shown = k % 11 != 0  # some cities' gaps are not published
        cities.append(
            BenchmarkRow(
                node=f"city{k}", geo="", time_period="2025", indicator="employment_rate",
                group_dim="citizen", group="NEU27_2020_FOR", breakdown={}, comparator="NAT",
                unit="PC", gap=gap if shown else None,
                gap_ci_low=gap - half if shown else None, gap_ci_high=gap + half if shown else None,
            )
        )  # fmt: skip
    gaps = CityGaps.of(cities)
    published = [r for r in cities if r.gap is not None]
    assert gaps.k == len(published)
    for row in published[:40]:
        assert row.gap is not None and row.gap_ci_low is not None and row.gap_ci_high is not None
        se = [(r.gap_ci_high - r.gap_ci_low) / (2 * Z95) for r in published]  # type: ignore[operator]
        own = (row.gap_ci_high - row.gap_ci_low) / (2 * Z95)
        k = len(published)
        others = sum(s**2 for r, s in zip(published, se, strict=True) if r.node != row.node)
        mean = sum(r.gap for r in published) / k  # type: ignore[misc]
        expected = math.sqrt((1 - 1 / k) ** 2 * own**2 + others / k**2)
        found = compare_to_mean(row, gaps, None)
        assert found.mean_gap == pytest.approx(mean, rel=1e-12)
        assert found.difference is not None
        assert found.difference.value == pytest.approx(row.gap - mean, rel=1e-12)
        assert found.difference.se == pytest.approx(expected, rel=1e-12)


def test_a_chart_and_a_table_escape_every_text_or_none_needs_it() -> None:
    """The escaped path writes what the plain path writes where nothing needs escaping."""
    from markupsafe import escape

    from coordinator.publish.report.charts import Chart, Dot, chart_axis, dot_chart, extent
    from coordinator.publish.report.findings import Grid, Table, TableRow
    from coordinator.publish.report.markup import _escaped, chart_html, table_html

    def chart(name: str) -> Chart:
        dots = [
            Dot(f"{name}|k", name, 61.5, 55.0, 68.0, "u", marker=70.1, note="gap -8.6 u"),
            Dot("pooled|k", "pooled", None, None, None, "c", note="too few"),
            Dot("b|k", "b", 12.0, 10.0, 14.0, "", strong=True, accent=True),
        ]
        return dot_chart(dots, chart_axis(extent(dots), zero=False), f"{name}: every city")

    plain = chart("city7")
    assert chart_html(_escaped(plain)) == chart_html(plain)
    hostile = '<b a="1">&\'x'
    page = chart_html(chart(hostile))
    assert hostile not in page and page.count(str(escape(hostile))) >= 4
    assert page == str(chart_html(chart("city7"))).replace("city7", str(escape(hostile)))
    for name in ("city7", hostile):
        table = Table(["city", "value %"], [TableRow([(name, False), ("61.5 u", True)], name)])
        want = (
            f'<table>\n<tr><th>city</th><th>value %</th></tr>\n<tr data-key="{escape(name)}">'
            f'<td>{escape(name)}</td><td class="own">61.5 u</td></tr>\n</table>'
        )
        assert table_html(table) == want
        cells = [[name, "F", "61.5 u", "55.0 to 68.0"], ["b", "M", ":", ""]]
        keys = [name, ""]
        pairs = [
            TableRow([(t, i >= 2) for i, t in enumerate(row)], key)
            for row, key in zip(cells, keys, strict=True)
        ]
        heads = ["city", "sex", "value %", "95% CI"]
        grid = Grid(heads, keys, cells, (True, True))
        assert table_html(grid) == table_html(Table(heads, pairs))
