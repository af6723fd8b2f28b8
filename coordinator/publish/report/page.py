"""The HTML report: one self-contained file a city official can read and trust.

Everything is inline (CSS, and SVG charts laid out by ``charts``). A
Content-Security-Policy forbids the page to load anything or run any script, so it opens
offline. The page is drawn by Jinja2 templates with autoescaping: every text, a node's
geo code as much as a label, is escaped unless it is markup built here on purpose.

Order: how to read it (caveats, flags), the key comparison, one section per indicator
(a chart of every city's value with its interval, the comparator and the gap, then the
numbers), one section per city (its gaps next to the pooled gaps, in words, with the
uncertainty of the difference), sources and definitions, privacy. Cities always appear
in the federation's order, never sorted by a result. Every table row and chart line that
shows a benchmark row's own numbers carries ``data-key`` (see ``labels.row_key``) and its
own numbers sit in ``class="own"`` cells, so tests can check what a row discloses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jinja2

from coordinator.publish.citation import Citation
from coordinator.publish.outcome import Outcome
from coordinator.publish.refmeta import FOLDER
from coordinator.publish.report.blocks import Block
from coordinator.publish.report.charts import GREY, INK
from coordinator.publish.report.findings import (
    Table,
    TableRow,
    city_section,
    headline,
    indicator_section,
    pick_headlines,
)
from coordinator.publish.report.labels import DIM_LABELS, GROUP_LABELS, group_label
from coordinator.publish.report.markup import chart_html, table_html
from coordinator.rows import POOLED
from indicators.catalogue import CATALOGUE
from indicators.concepts import concept_text
from privacy.budget import DEFAULT_DELTA, epsilon_for

__all__ = ["FLAG_LEGEND", "render_report", "write_report"]

FLAG_LEGEND = (
    (":", "not published: the table says why (suppressed, not provided, no answer)"),
    ("c", "confidential: too few people to publish safely"),
    ("u", "low reliability: read with care (or, with ':', too noisy to publish)"),
    ("d", "definition or coverage differs from the harmonised one: the deviation says how"),
    ("z", "not applicable"),
)

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("coordinator.publish.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_TEMPLATES.globals.update(table_html=table_html, chart_html=chart_html, ink=INK, grey=GREY)


@dataclass(frozen=True)
class QueryLine:
    """What one query asked, for the report's header."""

    indicators: str
    group_dim: str
    by: str
    comparator: str
    query_id: str


def render_report(
    outcomes: Sequence[Outcome],
    generated: datetime | None = None,
    citation: Citation | None = None,
) -> str:
    """The whole report as one HTML document (with a "How to cite" block for a release)."""
    blocks = [Block(o, name) for o in outcomes for name in o.plan.query.indicators]
    nodes = list(dict.fromkeys(r.node for o in outcomes for r in o.rows if r.node != POOLED))
    headlines = pick_headlines(blocks)
    return _TEMPLATES.get_template("report.html.j2").render(
        ink=INK,
        grey=GREY,
        nodes=nodes,
        answered=len({n for o in outcomes for n in o.answers}),
        when=(generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
        queries=[_query_line(o) for o in outcomes],
        flag_legend=FLAG_LEGEND,
        headlines=[headline(block, group) for block, group in headlines],
        indicators=[indicator_section(b) for b in blocks],
        cities=[city_section(node, blocks, headlines) for node in nodes],
        sources=_sources(outcomes, nodes),
        definitions=[
            (CATALOGUE[name].title, CATALOGUE[name].definition)
            for name in dict.fromkeys(b.indicator for b in blocks)
        ],
        groups=[
            (DIM_LABELS.get(dim, dim), dim, _codes(dim))
            for dim in dict.fromkeys(b.group_dim for b in blocks)
        ],
        delta=f"{DEFAULT_DELTA:g}",
        privacy=_privacy(outcomes, nodes),
        citation=citation.text() if citation else "",
        release=citation.release if citation else "",
        metadata_folder=FOLDER,
        metadata_nodes=list(dict.fromkeys(n for o in outcomes for n in [*o.answers, *o.failures])),
    )


def write_report(outcomes: Sequence[Outcome], path: Path, citation: Citation | None = None) -> None:
    """Write ``report.html``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(outcomes, citation=citation), encoding="utf-8")


def _query_line(outcome: Outcome) -> QueryLine:
    q = outcome.plan.query
    return QueryLine(
        ", ".join(CATALOGUE[i].title for i in q.indicators),
        DIM_LABELS.get(q.group_dim, q.group_dim),
        "".join(f", by {b}" for b in q.breakdowns),
        group_label(q.group_dim, q.comparator),
        outcome.query_id,
    )


def _codes(group_dim: str) -> str:
    return "; ".join(f"{c}: {label}" for c, label in GROUP_LABELS.get(group_dim, {}).items())


def _sources(outcomes: Sequence[Outcome], nodes: list[str]) -> Table:
    heads = [
        "city", "geo", "level", "data source", "concepts", "reference period", "confidential below",
        "unreliable below", "max CV", "national poverty line", "status",
    ]  # fmt: skip
    rows = []
    for node in nodes:
        answer = next((o.answers[node] for o in outcomes if node in o.answers), None)
        failure = next((o.failures[node] for o in outcomes if node in o.failures), None)
        status = "answered" if failure is None else f"did not answer: {failure.reason}"
        facts = ["", "", "", "", "", "", "", "", ""]
        if answer is not None:
            r = answer.rules
            line = (
                f"{answer.poverty_line:,.0f} ({answer.poverty_line_source or 'source not given'})"
                if answer.poverty_line
                else "none: no AROP rate"
            )
            concepts = "; ".join(
                _meaning(c)
                for c in sorted({c for v in answer.concepts.values() for c in v.split(";") if c})
            )
            facts = [answer.geo, answer.geo_level, answer.source, concepts or "harmonised",
                     answer.time_period, f"{r.min_count:g}",
                     f"{r.unreliable_below:g}", f"{r.max_cv:g}", line]  # fmt: skip
        name = answer.name if answer is not None and answer.name else node
        rows.append(TableRow([(t, False) for t in [name, *facts, status]]))
    return Table(heads, rows)


def _meaning(pair: str) -> str:
    """A concept code ``input=code`` with what it means, as the vocabulary says."""
    variable, _, code = pair.partition("=")
    try:
        return f"{pair} ({concept_text(variable, code)})"
    except KeyError:  # a code of a newer release's vocabulary: shown as the node sent it
        return pair


def _privacy(outcomes: Sequence[Outcome], nodes: list[str]) -> Table:
    heads = [f"rho, query {i + 1}" for i in range(len(outcomes))]
    rows = []
    for node in nodes:
        spent = [o.rho_charged.get(node) for o in outcomes]
        total = sum(s or 0.0 for s in spent)
        epsilon = f"{epsilon_for(total):.2f}" if total else "0"
        cells = [node, *("" if s is None else f"{s:g}" for s in spent), f"{total:g}", epsilon]
        rows.append(TableRow([(t, False) for t in cells]))
    return Table(["city", *heads, "rho spent for this report", "epsilon"], rows)
