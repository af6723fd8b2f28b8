"""The HTML report: one self-contained file a city official can read and trust.

Everything is inline (CSS, and SVG charts drawn by ``coordinator.charts``). A
Content-Security-Policy forbids the page to load anything or run any script, so it opens
offline, and every text a node sent (its geo code, its period) is escaped.

Order: how to read it (caveats, flags), the key comparison, one section per indicator
(a chart of every city's value with its interval, the comparator and the gap, then the
numbers), one section per city (its gaps next to the pooled gaps, in words, with the
uncertainty of the difference), sources and definitions, privacy. Cities always appear
in the federation's order, never sorted by a result. Every table row and chart line that
shows a benchmark row's own numbers carries ``data-key`` (see ``row_key``) and its own
numbers sit in ``class="own"`` cells, so tests can check what a row discloses.

The sections live in ``coordinator.findings``, the statistics in ``coordinator.compare``
and the charts in ``coordinator.charts``; their public names are re-exported here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from coordinator.charts import ACCENT, CHART_LEGEND, GREY, INK, Dot, dot_chart
from coordinator.combine import POOLED
from coordinator.compare import Comparison, compare_to_pooled, gap_versus_pooled, verdict
from coordinator.findings import (
    Block,
    city_section,
    indicator_section,
    key_comparison,
    pick_headlines,
)
from coordinator.markup import (
    DIM_LABELS,
    GROUP_LABELS,
    esc,
    group_label,
    row_key,
    table_head,
    table_row,
)
from coordinator.run import QueryOutcome
from indicators.catalogue import CATALOGUE
from privacy.budget import DEFAULT_DELTA, epsilon_for

__all__ = [
    "ACCENT",
    "DIM_LABELS",
    "GREY",
    "GROUP_LABELS",
    "INK",
    "Comparison",
    "Dot",
    "compare_to_pooled",
    "dot_chart",
    "gap_versus_pooled",
    "render_report",
    "row_key",
    "verdict",
    "write_report",
]

FLAG_LEGEND = (
    (":", "not available"),
    ("c", "confidential: too few people to publish"),
    ("u", "low reliability: read with care"),
    ("n", "a city's node did not answer (pooled values then leave it out)"),
    ("d", "definition differs from the harmonised one"),
)
CAVEATS = (
    "These indicators describe <b>outcomes</b>. They do not measure the effect of any "
    "policy: a gap reflects who lives in a city, its labour market, its housing and much "
    "else besides its integration policies.",
    "Outcomes move with <b>economic cycles</b> and with the <b>make-up of arrival "
    "cohorts</b> (why people came, how long ago, at what age, with what education). A "
    "difference between cities, or a change over time, may come from these.",
    "<b>Small groups are suppressed or flagged</b>: a value marked <i>c</i> is not "
    "published, one marked <i>u</i> is unreliable. Every number carries deliberate random "
    "noise that protects individuals (differential privacy) and, for survey-based cities, "
    "sampling error; the 95% intervals include both, not errors of coverage or coding.",
    "Gaps are shown as <b>gaps between groups of residents</b> of the same city, never as "
    "rankings of nationalities or of cities: cities appear in a fixed order (the "
    "federation's), not sorted by their results.",
)
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def render_report(outcomes: list[QueryOutcome], generated: datetime | None = None) -> str:
    """The whole report as one HTML document."""
    blocks = [Block(o, name) for o in outcomes for name in o.plan.query.indicators]
    nodes = list(dict.fromkeys(r.node for o in outcomes for r in o.rows if r.node != POOLED))
    when = (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    headlines = pick_headlines(blocks)
    sections = [
        _intro(outcomes, nodes, when),
        _how_to_read(),
        key_comparison(headlines),
        *(indicator_section(b) for b in blocks),
        *(city_section(node, blocks, headlines) for node in nodes),
        _sources(outcomes, nodes, blocks),
        _privacy(outcomes, nodes),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Migrant integration benchmark</title><style>{_STYLE}</style></head>"
        f"<body><main>{''.join(sections)}</main></body></html>\n"
    )


def write_report(outcomes: list[QueryOutcome], path: Path) -> None:
    """Write ``report.html``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(outcomes), encoding="utf-8")


def _intro(outcomes: list[QueryOutcome], nodes: list[str], when: str) -> str:
    answered = {n for o in outcomes for n in o.answers}
    items = []
    for o in outcomes:
        q = o.plan.query
        by = "".join(f", by {b}" for b in q.breakdowns)
        items.append(
            f"<li>{esc(', '.join(CATALOGUE[i].title for i in q.indicators))}; by "
            f"{esc(DIM_LABELS.get(q.group_dim, q.group_dim))}{esc(by)}, against "
            f'{esc(group_label(q.group_dim, q.comparator))} <span class="muted">(query '
            f"{esc(o.query_id)})</span></li>"
        )
    return (
        f"<header><h1>Migrant integration benchmark</h1><p>{len(nodes)} cities, "
        f"{len(answered)} of which answered; generated {esc(when)} by fedstats. Each city "
        "computed its figures next to its own data and sent only protected aggregate "
        f"tables: no record about a person left any city.</p><ul>{''.join(items)}</ul>"
        '<nav><a href="#read">How to read this report</a> · <a href="#key">Key comparison'
        '</a> · <a href="#sources">Sources and definitions</a> · <a href="#privacy">Privacy'
        "</a></nav></header>"
    )


def _how_to_read() -> str:
    caveats = "".join(f"<li>{c}</li>" for c in CAVEATS)
    legend = "".join(f"<li><b>{esc(f)}</b> {esc(t)}</li>" for f, t in FLAG_LEGEND)
    return (
        f'<section id="read" class="caveats"><h2>How to read this report</h2><ul>{caveats}'
        "</ul><p>A <b>gap</b> is a group's value minus the comparator group's value in the "
        "same city, in percentage points. The <b>pooled</b> value adds up the tables of "
        "every city that answered, as if they were one population. Intervals are 95% "
        f'confidence intervals.</p><p>Flags, as Eurostat shows them:</p><ul class="flags">'
        f"{legend}</ul><p>In the charts: {CHART_LEGEND}</p></section>"
    )


def _sources(outcomes: list[QueryOutcome], nodes: list[str], blocks: list[Block]) -> str:
    lines = [
        '<section id="sources"><h2>Sources and definitions</h2><p>Every city maps its own '
        "register or survey variables to the harmonised definitions below, next to its data "
        "(its operator can show that mapping with <code>fedstats node check</code>). A value "
        "whose definition differs is flagged <i>d</i>.</p><table>"
        + table_head(
            "city",
            "geo",
            "data source",
            "reference period",
            "confidential below",
            "unreliable below",
            "max CV",
            "status",
        )
    ]
    for node in nodes:
        answer = next((o.answers[node] for o in outcomes if node in o.answers), None)
        failure = next((o.failures[node] for o in outcomes if node in o.failures), None)
        status = "answered" if failure is None else f"did not answer: {failure.reason}"
        facts = ["", "", "", "", "", ""]
        if answer is not None:
            r = answer.rules
            facts = [answer.geo, answer.source, answer.time_period, f"{r.min_count:g}",
                     f"{r.unreliable_below:g}", f"{r.max_cv:g}"]  # fmt: skip
        lines.append(table_row((t, False) for t in [node, *facts, status]))
    lines.append("</table><h3>Indicators</h3><dl>")
    for name in dict.fromkeys(b.indicator for b in blocks):
        lines.append(
            f"<dt>{esc(CATALOGUE[name].title)}</dt><dd>{esc(CATALOGUE[name].definition)}</dd>"
        )
    lines.append("</dl><h3>Groups</h3><dl>")
    for dim in dict.fromkeys(b.group_dim for b in blocks):
        codes = "; ".join(f"{c}: {label}" for c, label in GROUP_LABELS.get(dim, {}).items())
        lines.append(
            f"<dt>by {esc(DIM_LABELS.get(dim, dim))} ({esc(dim)})</dt><dd>{esc(codes)}</dd>"
        )
    return "".join(lines) + "</dl></section>"


def _privacy(outcomes: list[QueryOutcome], nodes: list[str]) -> str:
    heads = [f"rho, query {i + 1}" for i in range(len(outcomes))]
    lines = [
        '<section id="privacy"><h2>Privacy</h2><p>Each city released only tables of counts, '
        "each count with its own random noise (the discrete Gaussian mechanism), within a "
        "privacy budget its data holder set. Budgets are measured in rho (zero-concentrated "
        "differential privacy) and add up over queries; the last column gives the "
        f"equivalent (epsilon, delta) guarantee at delta = {DEFAULT_DELTA:g}, converted by "
        "OpenDP. An answer a city repeats from its ledger costs nothing and shows as 0; a "
        "city that did not answer spent nothing.</p><table>"
        + table_head("city", *heads, "rho spent for this report", "epsilon")
    ]
    for node in nodes:
        spent = [o.rho_charged.get(node) for o in outcomes]
        total = sum(s or 0.0 for s in spent)
        epsilon = f"{epsilon_for(total):.2f}" if total else "0"
        cells = [node, *("" if s is None else f"{s:g}" for s in spent), f"{total:g}", epsilon]
        lines.append(table_row((t, False) for t in cells))
    return "".join(lines) + "</table></section>"


_STYLE = """
body{margin:0;background:#fafafa;color:#1a1a1a;font:15px/1.5 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1000px;margin:0 auto;padding:24px 32px;background:#fff}
h1{font-size:28px;margin:8px 0}h2{font-size:21px;margin-top:36px;border-bottom:2px solid #2a5d8f}
h3{font-size:16px;margin-top:20px}.muted{color:#666;font-weight:normal}
.caveats{background:#fff8e6;border-left:4px solid #c25400;padding:4px 18px}
.finding{background:#eef4fa;border-left:4px solid #2a5d8f;padding:2px 16px;margin:12px 0}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}figure{margin:12px 0}
figcaption{font-size:13px;font-weight:600;margin-bottom:2px}
svg.chart text{font:12px system-ui,sans-serif;fill:#1a1a1a}svg.chart .lab{text-anchor:end}
svg.chart .tick{text-anchor:middle;fill:#666;font-size:11px}
svg.chart .na{fill:#666;font-style:italic}
nav a{color:#2a5d8f}details{margin:8px 0}summary{cursor:pointer;color:#2a5d8f}
ul.flags{list-style:none;padding-left:8px}
"""
