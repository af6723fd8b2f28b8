"""The HTML report: one self-contained file a city official can read and trust.

Everything is inline (CSS, and SVG charts drawn here). A Content-Security-Policy forbids
the page to load anything or run any script, so it opens offline, and every text a node
sent (its geo code, its period) is escaped.

Order: how to read it (caveats, flags), the key comparison, one section per indicator
(a chart of every city's value with its interval, the comparator and the gap, then the
numbers), one section per city (its gaps next to the pooled gaps, in words, with the
uncertainty of the difference), sources and definitions, privacy. Cities always appear
in the federation's order, never sorted by a result. Every table row and chart line that
shows a benchmark row's own numbers carries ``data-key`` (see ``row_key``) and its own
numbers sit in ``class="own"`` cells, so tests can check what a row discloses.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from coordinator.combine import (
    POOLED,
    TOTAL,
    BenchmarkRow,
    comparator_cell,
    groups_of,
    poverty_lines,
)
from coordinator.estimates import Layout, group_estimate
from coordinator.output import published
from coordinator.run import QueryOutcome
from indicators.catalogue import BELOW_LINE, CATALOGUE
from indicators.spec import TableSpec, parse_comparator
from indicators.variables import AGE, CATEGORICAL
from privacy.budget import DEFAULT_DELTA, epsilon_for
from privacy.estimators import Cells, Estimate

__all__ = [
    "Comparison",
    "compare_to_pooled",
    "gap_versus_pooled",
    "render_report",
    "row_key",
    "verdict",
    "write_report",
]

HEADLINE_INDICATOR = "employment_rate"
HEADLINE_GROUP = "NEU27_2020_FOR"
GROUP_LABELS = {
    "c_birth": {
        "NAT": "native-born residents",
        "EU27_2020_FOR": "residents born in another EU country",
        "NEU27_2020_FOR": "residents born outside the EU",
        "FOR": "foreign-born residents",
        "UNK": "residents whose country of birth is unknown",
        TOTAL: "all residents",
    },
    "citizen": {
        "NAT": "nationals",
        "EU27_2020_FOR": "citizens of another EU country",
        "NEU27_2020_FOR": "non-EU citizens (third-country nationals)",
        "STLS": "stateless residents",
        "FOR": "foreign citizens",
        "UNK": "residents whose citizenship is unknown",
        TOTAL: "all residents",
    },
}
DIM_LABELS = {
    "c_birth": "country of birth",
    "citizen": "citizenship",
    "yearesid": "years of residence",
    "arrival_cohort": "year of arrival",
}
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


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(x: float | None, signed: bool = False) -> str:
    text = published(x)
    if text in ("0.0", "-0.0"):
        return "0.0"
    return "+" + text if signed and text and not text.startswith("-") else text


def _shown(value: float | None, flags: str, signed: bool = False) -> str:
    """A value as Eurostat shows it: ``12.3 u``, ``: c``, ``:``."""
    return f"{_num(value, signed) if value is not None else ':'} {flags}".strip()


def _interval(low: float | None, high: float | None, signed: bool = False) -> str:
    return "" if low is None or high is None else f"{_num(low, signed)} to {_num(high, signed)}"


def _group(group_dim: str, group: str) -> str:
    """A group's label; for a cohort comparator ``DIM=CODE``, the same group in that cell."""
    cohort = parse_comparator(group) if "=" in group else None
    if cohort is not None:
        dim, code = cohort
        variable = CATEGORICAL.get(dim) if dim != AGE else None
        label = code
        if variable is not None and variable.labels and code in variable.codes:
            label = variable.labels[variable.codes.index(code)].lower()
        return f"the same group, {DIM_LABELS.get(dim, dim)}: {label}"
    return GROUP_LABELS.get(group_dim, {}).get(group, group)


def row_key(row: BenchmarkRow) -> str:
    """The ``data-key`` of a benchmark row's elements in the report."""
    return "|".join([row.node, row.indicator, row.group_dim, row.group, *row.breakdown.values()])


def _tr(cells: Iterable[tuple[str, bool]], key: str = "") -> str:
    """A table row; cells flagged True hold the row's own numbers (``class="own"``)."""
    tds = "".join(
        f'<td class="own">{_e(t)}</td>' if own else f"<td>{_e(t)}</td>" for t, own in cells
    )
    return f'<tr data-key="{_e(key)}">{tds}</tr>' if key else f"<tr>{tds}</tr>"


def _th(*heads: str) -> str:
    return "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in heads) + "</tr>"


# -- statistics: a city's gap against the pooled gap ---------------------------------------


def _gap_gradient(
    cells: Cells, spec: TableSpec, row: BenchmarkRow, lines: list[float] | None
) -> tuple[float, npt.NDArray[np.float64]]:
    """The row's gap (group minus comparator) on ``cells`` and its gradient."""
    layout = Layout(spec, len(cells.values) // spec.n_cells)
    groups = dict(groups_of(spec))
    cell = tuple(d.codes.index(row.breakdown[d.name]) for d in spec.dims[1:])
    indicator = CATALOGUE[row.indicator]
    versus, at = comparator_cell(spec, row.comparator, row.group, cell)
    gap = group_estimate(cells, layout, indicator, groups[row.group], cell, lines)
    gap = gap - group_estimate(cells, layout, indicator, groups[versus], at, lines)
    return gap.value, gap.grad


def gap_versus_pooled(outcome: QueryOutcome, row: BenchmarkRow) -> Estimate | None:
    """A city's gap minus the pooled gap (proportions), with its standard error.

    The city's cells are part of the pooled cells, so the two gaps are correlated: the
    difference's gradient is the city's gap gradient, placed in the city's block of the
    pooled cells, minus the pooled gap's gradient; its variance sums each cell's variance
    times the squared gradient. None when the city's gap is not published.
    """
    if row.gap is None or row.node not in outcome.answers:
        return None
    indicator, spec = outcome.plan.indicator(row.indicator)
    order = list(outcome.answers)
    lines = None
    if indicator.kind == BELOW_LINE:
        by_node = poverty_lines(outcome.plan, spec, order, outcome.answers)
        lines = [by_node[n] for n in order]
    parts = [outcome.answers[n].cells[spec.key] for n in order]
    pooled = Cells.concat(parts)
    pooled_gap, gradient = _gap_gradient(pooled, spec, row, lines)
    city = order.index(row.node)
    city_lines = None if lines is None else [lines[city]]
    city_gap, city_gradient = _gap_gradient(parts[city], spec, row, city_lines)
    start = order.index(row.node) * spec.n_cells
    gradient = -gradient
    gradient[start : start + spec.n_cells] += city_gradient
    if not (math.isfinite(city_gap) and math.isfinite(pooled_gap)):
        return None
    return Estimate(city_gap - pooled_gap, math.sqrt(float(np.sum(gradient**2 * pooled.variance))))


@dataclass(frozen=True)
class Comparison:
    """A city's gap next to the pooled gap.

    Attributes:
        row: The city's row.
        pooled: The pooled row of the same group and breakdown cell.
        difference: City gap minus pooled gap, in percentage points.
        verdict: What ``verdict`` says, or why there is none (``not published``, ``no
            pooled gap``).
    """

    row: BenchmarkRow
    pooled: BenchmarkRow | None
    difference: Estimate | None
    verdict: str


def verdict(
    gap: float, gap_interval: tuple[float, float], pooled_gap: float, diff: tuple[float, float]
) -> str:
    """How a city's gap compares with the pooled gap, from the 95% interval of their difference.

    ``larger`` and ``smaller`` are measured in the pooled gap's direction: for a negative
    pooled gap (an employment deficit), a city gap further below zero is larger.
    ``opposite direction`` needs the city's own gap to be clearly of the other sign.
    """
    low, high = diff
    if low <= 0 <= high:
        return "not clearly different"
    if gap * pooled_gap < 0 and not gap_interval[0] <= 0 <= gap_interval[1]:
        return "opposite direction"
    direction = -1.0 if pooled_gap < 0 else 1.0
    return "larger" if direction * (low + high) > 0 else "smaller"


def compare_to_pooled(
    outcome: QueryOutcome, row: BenchmarkRow, pooled: BenchmarkRow | None
) -> Comparison:
    """Whether a city's gap is larger or smaller than the pooled gap, and how sure."""
    if row.gap is None or row.gap_ci_low is None or row.gap_ci_high is None:
        return Comparison(row, pooled, None, "not published")
    diff = gap_versus_pooled(outcome, row) if pooled and pooled.gap is not None else None
    if pooled is None or pooled.gap is None or diff is None:
        return Comparison(row, pooled, None, "no pooled gap")
    diff = Estimate(100 * diff.value, 100 * diff.se)
    gap_interval = (row.gap_ci_low, row.gap_ci_high)
    return Comparison(
        row, pooled, diff, verdict(row.gap, gap_interval, pooled.gap, diff.interval())
    )


# -- charts: inline SVG ---------------------------------------------------------------------


@dataclass(frozen=True)
class Dot:
    """One line of a dot chart: a value with its interval, and what it is compared to."""

    key: str
    label: str
    value: float | None
    low: float | None
    high: float | None
    flags: str
    marker: float | None = None  # the comparator's value: a grey diamond
    note: str = ""  # right-hand text, e.g. the gap
    strong: bool = False  # bold label (pooled, or the city a chart is about)
    accent: bool = False  # drawn in the accent colour (the city a chart is about)


INK, GREY, ACCENT = "#1f4e79", "#8c8c8c", "#c25400"
_W, _LABEL_W, _NOTE_W, _ROW_H, _TOP = 760, 170, 110, 22, 28


def _axis(values: Iterable[float | None], zero: bool) -> tuple[float, float, float]:
    """A readable range and tick step covering the values (and 0 for gap charts)."""
    seen = [v for v in values if v is not None and math.isfinite(v)]
    low, high = (min(seen), max(seen)) if seen else (0.0, 100.0)
    if zero:
        low, high = min(low, 0.0), max(high, 0.0)
    rough = max(high - low, 4.0) / 8
    magnitude = 10 ** math.floor(math.log10(rough))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= rough)
    low, high = step * math.floor(low / step), step * math.ceil(high / step)
    if not zero:
        low, high = max(low, 0.0), min(high, 100.0)
    return low, max(high, low + step), step


def _extent(dots: list[Dot]) -> list[float | None]:
    """What a chart's axis must show: values, and the intervals of reliable values.

    An unreliable value's interval may be huge: it is drawn cut at the axis.
    """
    return [
        v for d in dots for v in (d.value, d.marker) + (() if "u" in d.flags else (d.low, d.high))
    ]


def dot_chart(dots: list[Dot], axis: tuple[float, float, float], label: str) -> str:
    """An SVG chart of values with intervals, one line per dot, in the given order."""
    low, high, step = axis
    height = _TOP + _ROW_H * len(dots) + 8

    def x(v: float) -> float:
        return _LABEL_W + (min(max(v, low), high) - low) / (high - low) * (_W - _LABEL_W - _NOTE_W)

    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
        f'viewBox="0 0 {_W} {height}" role="img" aria-label="{_e(label)}">'
    ]
    for i in range(round((high - low) / step) + 1):
        tick = low + i * step
        color = "#444" if abs(tick) < 1e-9 else "#e3e3e3"
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="{_TOP - 6}" x2="{x(tick):.1f}" y2="{height - 6}" '
            f'stroke="{color}"/><text x="{x(tick):.1f}" y="{_TOP - 10}" class="tick">'
            f"{tick:g}</text>"
        )
    parts += [_dot_line(d, _TOP + _ROW_H * i + _ROW_H / 2, x) for i, d in enumerate(dots)]
    return "".join(parts) + "</svg>"


def _dot_line(dot: Dot, y: float, x: Callable[[float], float]) -> str:
    ink = ACCENT if dot.accent else INK
    weight = ' font-weight="bold"' if dot.strong else ""
    interval = _interval(dot.low, dot.high)
    tip = f"{dot.label}: {_shown(dot.value, dot.flags)}" + (f" ({interval})" if interval else "")
    out = [
        f'<g data-key="{_e(dot.key)}"><title>{_e(tip)}</title>'
        f'<text x="{_LABEL_W - 8}" y="{y + 4:.1f}" class="lab"{weight}>{_e(dot.label)}</text>'
    ]
    if dot.value is None:
        na = _e(_shown(None, dot.flags))
        return "".join(out) + f'<text x="{_LABEL_W + 4}" y="{y + 4:.1f}" class="na">{na}</text></g>'

    if dot.marker is not None:
        mx, vx = x(dot.marker), x(dot.value)
        out.append(
            f'<line x1="{mx:.1f}" y1="{y:.1f}" x2="{vx:.1f}" y2="{y:.1f}" stroke="{GREY}" '
            f'stroke-dasharray="2,2"/><path d="M{mx:.1f} {y - 5:.1f}l5 5l-5 5l-5 -5z" '
            f'fill="{GREY}"/>'
        )
    if dot.low is not None and dot.high is not None:
        x0, x1 = x(dot.low), x(dot.high)
        out.append(
            f'<path d="M{x0:.1f} {y - 4:.1f}v8M{x0:.1f} {y:.1f}H{x1:.1f}M{x1:.1f} {y - 4:.1f}v8" '
            f'stroke="{ink}" stroke-width="2" fill="none"/>'
        )
    fill = "#fff" if "u" in dot.flags else ink
    out.append(
        f'<circle cx="{x(dot.value):.1f}" cy="{y:.1f}" r="5" fill="{fill}" stroke="{ink}" '
        f'stroke-width="2"/><text x="{_W - _NOTE_W + 8}" y="{y + 4:.1f}"{weight}>'
        f"{_e(dot.note)}</text></g>"
    )
    return "".join(out)


# -- the page -------------------------------------------------------------------------------


class _Block:
    """The rows of one indicator of one query, indexed by node, breakdown cell and group."""

    def __init__(self, outcome: QueryOutcome, indicator: str) -> None:
        self.outcome, self.indicator = outcome, indicator
        self.group_dim, self.comparator = (
            outcome.plan.query.group_dim,
            outcome.plan.query.comparator,
        )
        self.title = CATALOGUE[indicator].title
        self.rows = [r for r in outcome.rows if r.indicator == indicator]
        self._index = {(r.node, tuple(r.breakdown.values()), r.group): r for r in self.rows}
        self.lines = list(dict.fromkeys((r.node, tuple(r.breakdown.values())) for r in self.rows))
        skip = {self.comparator, TOTAL, "UNK"}
        self.groups = [g for g in dict.fromkeys(r.group for r in self.rows) if g not in skip]

    def row(self, node: str, cell: tuple[str, ...], group: str) -> BenchmarkRow | None:
        return self._index.get((node, cell, group))

    def compare(self, row: BenchmarkRow) -> Comparison:
        pooled = self.row(POOLED, tuple(row.breakdown.values()), row.group)
        return compare_to_pooled(self.outcome, row, pooled)

    def label(self, group: str) -> str:
        return _group(self.group_dim, group)


def _line_label(node: str, cell: tuple[str, ...]) -> str:
    return " ".join(["pooled" if node == POOLED else node, *cell])


def _headlines(blocks: list[_Block]) -> list[tuple[_Block, str]]:
    """Per query, the comparison the report leads with: employment, born outside the EU."""
    out: dict[int, tuple[_Block, str]] = {}
    for b in blocks:
        group = HEADLINE_GROUP if HEADLINE_GROUP in b.groups else next(iter(b.groups), None)
        first = id(b.outcome) not in out
        if group and (
            first or (b.indicator == HEADLINE_INDICATOR != out[id(b.outcome)][0].indicator)
        ):
            out[id(b.outcome)] = (b, group)
    return list(out.values())


def render_report(outcomes: list[QueryOutcome], generated: datetime | None = None) -> str:
    """The whole report as one HTML document."""
    blocks = [_Block(o, name) for o in outcomes for name in o.plan.query.indicators]
    nodes = list(dict.fromkeys(r.node for o in outcomes for r in o.rows if r.node != POOLED))
    when = (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    headlines = _headlines(blocks)
    sections = [
        _intro(outcomes, nodes, when),
        _how_to_read(),
        _key_comparison(headlines),
        *(_indicator_section(b) for b in blocks),
        *(_city_section(node, blocks, headlines) for node in nodes),
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
            f"<li>{_e(', '.join(CATALOGUE[i].title for i in q.indicators))}; by "
            f"{_e(DIM_LABELS.get(q.group_dim, q.group_dim))}{_e(by)}, against "
            f'{_e(_group(q.group_dim, q.comparator))} <span class="muted">(query '
            f"{_e(o.query_id)})</span></li>"
        )
    return (
        f"<header><h1>Migrant integration benchmark</h1><p>{len(nodes)} cities, "
        f"{len(answered)} of which answered; generated {_e(when)} by fedstats. Each city "
        "computed its figures next to its own data and sent only protected aggregate "
        f"tables: no record about a person left any city.</p><ul>{''.join(items)}</ul>"
        '<nav><a href="#read">How to read this report</a> · <a href="#key">Key comparison'
        '</a> · <a href="#sources">Sources and definitions</a> · <a href="#privacy">Privacy'
        "</a></nav></header>"
    )


def _how_to_read() -> str:
    caveats = "".join(f"<li>{c}</li>" for c in CAVEATS)
    legend = "".join(f"<li><b>{_e(f)}</b> {_e(t)}</li>" for f, t in FLAG_LEGEND)
    return (
        f'<section id="read" class="caveats"><h2>How to read this report</h2><ul>{caveats}'
        "</ul><p>A <b>gap</b> is a group's value minus the comparator group's value in the "
        "same city, in percentage points. The <b>pooled</b> value adds up the tables of "
        "every city that answered, as if they were one population. Intervals are 95% "
        f'confidence intervals.</p><p>Flags, as Eurostat shows them:</p><ul class="flags">'
        f"{legend}</ul><p>In the charts: {_LEGEND}</p></section>"
    )


_LEGEND = (
    f'<svg width="14" height="14"><circle cx="7" cy="7" r="5" fill="{INK}"/></svg> a '
    f'group\'s value, <svg width="26" height="14"><path d="M2 3v8M2 7H24M24 3v8" '
    f'stroke="{INK}" stroke-width="2" fill="none"/></svg> its 95% interval, '
    f'<svg width="14" height="14"><path d="M7 2l5 5l-5 5l-5 -5z" fill="{GREY}"/></svg> '
    "the comparator group's value in the same city, "
    f'<svg width="14" height="14"><circle cx="7" cy="7" r="5" fill="#fff" stroke="{INK}" '
    'stroke-width="2"/></svg> low reliability (u).'
)


def _key_comparison(headlines: list[tuple[_Block, str]]) -> str:
    parts = ['<section id="key"><h2>Key comparison</h2>']
    for block, group in headlines:
        parts.append(
            f"<h3>{_e(block.title)}: gap between {_e(block.label(group))} and "
            f'{_e(block.label(block.comparator))} <span class="muted">({_e(block.group_dim)} '
            f"{_e(group)} minus {_e(block.comparator)})</span></h3><table>"
            + _th(
                "city",
                "value %",
                "comparator %",
                "gap, points (95% CI)",
                "pooled gap",
                "city gap minus pooled gap (95% CI)",
                "the city's gap is",
            )
        )
        for node, cell in block.lines:
            row = block.row(node, cell, group)
            if row is None or node == POOLED:
                continue
            c = block.compare(row)
            parts.append(
                _tr(
                    [
                        (_line_label(node, cell), False),
                        (_shown(row.value, row.flags), True),
                        (_num(row.comparator_value) or ":", False),
                        (_with_interval(row.gap, row.gap_ci_low, row.gap_ci_high, row.flags), True),
                        (_num(c.pooled.gap, True) if c.pooled else "", False),
                        (_difference(c.difference), True),
                        (c.verdict, False),
                    ],
                    row_key(row),
                )
            )
        parts.append("</table>")
    parts.append(
        '<p class="muted">The interval of the difference accounts for each city\'s cells being '
        "part of the pooled cells (delta method over every released cell).</p></section>"
    )
    return "".join(parts)


def _with_interval(value: float | None, low: float | None, high: float | None, flags: str) -> str:
    if value is None:
        return _shown(None, flags)
    return f"{_shown(value, flags, True)} ({_interval(low, high, True)})"


def _difference(diff: Estimate | None) -> str:
    """A difference of gaps with its interval, to two decimals (its bounds are often near 0)."""
    if diff is None:
        return ""
    low, high = diff.interval()
    return f"{diff.value:+.2f} ({low:+.2f} to {high:+.2f})"


_VERDICTS = {
    "not clearly different": "This interval includes zero, so the gap in {n} is <b>not clearly "
    "different</b> from the pooled gap: the data cannot tell the two apart.",
    "larger": "This interval excludes zero, so the gap in {n} is <b>larger</b> than the "
    "pooled gap (further from zero, in the same direction), at 95% confidence.",
    "smaller": "This interval excludes zero, so the gap in {n} is <b>smaller</b> than the "
    "pooled gap (closer to zero{reversed}), at 95% confidence.",
    "opposite direction": "This interval excludes zero, and the gap in {n} runs in the "
    "<b>opposite direction</b> to the pooled gap.",
}


def _in_words(block: _Block, c: Comparison) -> str:
    """The comparison as sentences that a reader new to the project can follow."""
    row = c.row
    what = f"the {block.title.split(',')[0].lower()} of {block.label(row.group)}"
    where = f"In {row.node} ({row.geo})" + "".join(f", {v}" for v in row.breakdown.values())
    if row.value is None or row.gap is None:
        return (
            f"<p>{_e(where)}, {_e(what)} is not published ({_e(_shown(row.value, row.flags))}): "
            "the group, or the group it is compared with, is too small to show safely.</p>"
        )
    unreliable = " (flagged u: low reliability)" if "u" in row.flags else ""
    text = (
        f"{_e(where)}, {_e(what)} is <b>{_num(row.value)}%</b> (95% CI "
        f"{_interval(row.ci_low, row.ci_high)}), against {_num(row.comparator_value)}% for "
        f"{_e(block.label(row.comparator))}: a gap of <b>{_num(row.gap, True)} percentage "
        f"points</b> (95% CI {_interval(row.gap_ci_low, row.gap_ci_high, True)}){unreliable}. "
    )
    if c.pooled is None or c.pooled.gap is None or c.difference is None:
        return f"<p>{text}There is no pooled gap to compare it with.</p>"
    low, high = c.difference.interval()
    text += (
        f"Pooled over the {len(block.outcome.answers)} cities that answered, the gap is "
        f"{_num(c.pooled.gap, True)} points (95% CI "
        f"{_interval(c.pooled.gap_ci_low, c.pooled.gap_ci_high, True)}). The difference "
        f"between the two gaps is {c.difference.value:+.2f} points (95% CI {low:+.2f} to "
        f"{high:+.2f}). "
    )
    reversed_ = ", possibly reversed" if row.gap * c.pooled.gap < 0 else ""
    text += _VERDICTS[c.verdict].format(n=_e(row.node), reversed=reversed_)
    if c.verdict in ("larger", "smaller") and abs(c.difference.value) < 1.0:
        text += " The difference is under one percentage point: clear, but small."
    return f"<p>{text}</p>"


def _value_dots(block: _Block, group: str) -> list[Dot]:
    """Chart lines of one group: every city's value, its comparator and its gap."""
    dots = []
    for node, cell in block.lines:
        row = block.row(node, cell, group)
        if row is not None:
            gap = f"gap {_num(row.gap, True)}" if row.gap is not None else ""
            dots.append(
                Dot(row_key(row), _line_label(node, cell), row.value, row.ci_low, row.ci_high,
                    row.flags, marker=row.comparator_value, note=f"{gap} {row.flags}".strip(),
                    strong=node == POOLED)
            )  # fmt: skip
    return dots


def _indicator_section(block: _Block) -> str:
    versus = block.label(block.comparator)
    panels = {group: _value_dots(block, group) for group in block.groups}
    axis = _axis([v for dots in panels.values() for v in _extent(dots)], zero=False)
    figures = [
        f"<figure><figcaption>{_e(block.label(group))} "
        f'<span class="muted">({_e(group)})</span>, %; on the right, the gap to '
        f"{_e(versus)} in points</figcaption>"
        f"{dot_chart(dots, axis, f'{block.title}: {block.label(group)}, every city')}</figure>"
        for group, dots in panels.items()
    ]
    return (
        f'<section class="indicator"><h2>{_e(block.title)}, by '
        f"{_e(DIM_LABELS.get(block.group_dim, block.group_dim))}</h2><p>"
        f"{_e(CATALOGUE[block.indicator].definition)} Compared with: {_e(versus)} "
        f"({_e(block.comparator)}).</p>{''.join(figures)}<details><summary>All numbers"
        f"</summary>{_numbers_table(block)}</details></section>"
    )


def _numbers_table(block: _Block) -> str:
    breakdowns = list(block.rows[0].breakdown) if block.rows else []
    lines = [
        "<table>"
        + _th(
            "city",
            "geo",
            *breakdowns,
            "group",
            "value %",
            "95% CI",
            "comparator %",
            "gap, points",
            "gap 95% CI",
        )
    ]
    for r in block.rows:
        plain = ["pooled" if r.node == POOLED else r.node, r.geo, *r.breakdown.values(), r.group]
        own = [_shown(r.value, r.flags), _interval(r.ci_low, r.ci_high)]
        gap = [_num(r.gap, True), _interval(r.gap_ci_low, r.gap_ci_high, True)]
        cells = [(t, False) for t in plain] + [(t, True) for t in own]
        cells += [(_num(r.comparator_value), False)] + [(t, True) for t in gap]
        lines.append(_tr(cells, row_key(r)))
    return "".join(lines) + "</table>"


def _city_section(node: str, blocks: list[_Block], headlines: list[tuple[_Block, str]]) -> str:
    geo = next((r.geo for b in blocks for r in b.rows if r.node == node), "")
    parts = [
        f'<section class="city" id="city-{_e(node)}"><h2>{_e(node)} <span class="muted">'
        f"{_e(geo)}</span>: next to the other cities and the pooled value</h2>"
    ]
    for block, group in headlines:
        for n, cell in block.lines:
            row = block.row(n, cell, group) if n == node else None
            if row is not None:
                parts.append(
                    f'<div class="finding" data-key="{_e(row_key(row))}">'
                    f"{_in_words(block, block.compare(row))}</div>{_gap_chart(block, row)}"
                )
    return "".join(parts) + _city_table(node, blocks) + "</section>"


def _gap_chart(block: _Block, focus: BenchmarkRow) -> str:
    cell = tuple(focus.breakdown.values())
    dots = []
    for node, c in block.lines:
        row = block.row(node, c, focus.group) if c == cell else None
        if row is not None:
            dots.append(
                Dot(
                    row_key(row),
                    _line_label(node, ()),
                    row.gap,
                    row.gap_ci_low,
                    row.gap_ci_high,
                    row.flags,
                    note=_shown(row.gap, row.flags, True),
                    strong=node in (focus.node, POOLED),
                    accent=node == focus.node,
                )
            )
    axis = _axis(_extent(dots), zero=True)
    label = (
        f"Gap between {block.label(focus.group)} and {block.label(block.comparator)} "
        f"({block.title}), percentage points, in every city; {focus.node} highlighted"
    )
    return f"<figure><figcaption>{_e(label)}</figcaption>{dot_chart(dots, axis, label)}</figure>"


def _city_table(node: str, blocks: list[_Block]) -> str:
    lines = [
        "<details><summary>Every indicator and group, next to the pooled gap</summary><table>"
        + _th(
            "indicator",
            "group",
            "value %",
            "gap (95% CI)",
            "pooled gap (95% CI)",
            "difference (95% CI)",
            "the gap is",
        )
    ]
    for block in blocks:
        for n, cell in block.lines:
            for group in block.groups if n == node else []:
                row = block.row(node, cell, group)
                if row is None:
                    continue
                c, p = block.compare(row), block.row(POOLED, cell, group)
                pooled = _with_interval(p.gap, p.gap_ci_low, p.gap_ci_high, p.flags) if p else ""
                cells = [
                    (" ".join([block.title, *cell]), False),
                    (f"{block.group_dim} {group}", False),
                    (_shown(row.value, row.flags), True),
                    (_with_interval(row.gap, row.gap_ci_low, row.gap_ci_high, row.flags), True),
                    (pooled, False),
                    (_difference(c.difference), True),
                    (c.verdict, False),
                ]
                lines.append(_tr(cells, row_key(row)))
    return "".join(lines) + "</table></details>"


def _sources(outcomes: list[QueryOutcome], nodes: list[str], blocks: list[_Block]) -> str:
    lines = [
        '<section id="sources"><h2>Sources and definitions</h2><p>Every city maps its own '
        "register or survey variables to the harmonised definitions below, next to its data "
        "(its operator can show that mapping with <code>fedstats node check</code>). A value "
        "whose definition differs is flagged <i>d</i>.</p><table>"
        + _th(
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
        lines.append(_tr((t, False) for t in [node, *facts, status]))
    lines.append("</table><h3>Indicators</h3><dl>")
    for name in dict.fromkeys(b.indicator for b in blocks):
        lines.append(
            f"<dt>{_e(CATALOGUE[name].title)}</dt><dd>{_e(CATALOGUE[name].definition)}</dd>"
        )
    lines.append("</dl><h3>Groups</h3><dl>")
    for dim in dict.fromkeys(b.group_dim for b in blocks):
        codes = "; ".join(f"{c}: {label}" for c, label in GROUP_LABELS.get(dim, {}).items())
        lines.append(f"<dt>by {_e(DIM_LABELS.get(dim, dim))} ({_e(dim)})</dt><dd>{_e(codes)}</dd>")
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
        + _th("city", *heads, "rho spent for this report", "epsilon")
    ]
    for node in nodes:
        spent = [o.rho_charged.get(node) for o in outcomes]
        total = sum(s or 0.0 for s in spent)
        epsilon = f"{epsilon_for(total):.2f}" if total else "0"
        cells = [node, *("" if s is None else f"{s:g}" for s in spent), f"{total:g}", epsilon]
        lines.append(_tr((t, False) for t in cells))
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
