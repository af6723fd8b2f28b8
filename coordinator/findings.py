"""The report's findings: the key comparison, one section per indicator, one per city.

Cities always appear in the federation's order, never sorted by a result.
"""

from __future__ import annotations

from coordinator.charts import Dot, chart_axis, dot_chart, extent
from coordinator.combine import POOLED, TOTAL, BenchmarkRow
from coordinator.compare import Comparison, compare_to_pooled
from coordinator.markup import (
    DIM_LABELS,
    difference_text,
    esc,
    group_label,
    interval_text,
    number,
    row_key,
    shown,
    table_head,
    table_row,
    with_interval,
)
from coordinator.run import QueryOutcome
from indicators.catalogue import CATALOGUE

HEADLINE_INDICATOR = "employment_rate"
HEADLINE_GROUP = "NEU27_2020_FOR"


class Block:
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
        """The row of a node, breakdown cell and group, or None."""
        return self._index.get((node, cell, group))

    def compare(self, row: BenchmarkRow) -> Comparison:
        """The row's gap next to the pooled gap of the same group and cell."""
        pooled = self.row(POOLED, tuple(row.breakdown.values()), row.group)
        return compare_to_pooled(self.outcome, row, pooled)

    def label(self, group: str) -> str:
        """A group's label in words."""
        return group_label(self.group_dim, group)


def line_label(node: str, cell: tuple[str, ...]) -> str:
    """A chart or table line's label: the city (or ``pooled``) and its breakdown cell."""
    return " ".join(["pooled" if node == POOLED else node, *cell])


def pick_headlines(blocks: list[Block]) -> list[tuple[Block, str]]:
    """Per query, the comparison the report leads with: employment, born outside the EU."""
    out: dict[int, tuple[Block, str]] = {}
    for b in blocks:
        group = HEADLINE_GROUP if HEADLINE_GROUP in b.groups else next(iter(b.groups), None)
        first = id(b.outcome) not in out
        if group and (
            first or (b.indicator == HEADLINE_INDICATOR != out[id(b.outcome)][0].indicator)
        ):
            out[id(b.outcome)] = (b, group)
    return list(out.values())


def key_comparison(headlines: list[tuple[Block, str]]) -> str:
    """The key comparison: each headline gap in every city, next to the pooled gap."""
    parts = ['<section id="key"><h2>Key comparison</h2>']
    for block, group in headlines:
        parts.append(
            f"<h3>{esc(block.title)}: gap between {esc(block.label(group))} and "
            f'{esc(block.label(block.comparator))} <span class="muted">({esc(block.group_dim)} '
            f"{esc(group)} minus {esc(block.comparator)})</span></h3><table>"
            + table_head(
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
                table_row(
                    [
                        (line_label(node, cell), False),
                        (shown(row.value, row.flags), True),
                        (number(row.comparator_value) or ":", False),
                        (with_interval(row.gap, row.gap_ci_low, row.gap_ci_high, row.flags), True),
                        (number(c.pooled.gap, True) if c.pooled else "", False),
                        (difference_text(c.difference), True),
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


def _in_words(block: Block, c: Comparison) -> str:
    """The comparison as sentences that a reader new to the project can follow."""
    row = c.row
    what = f"the {block.title.split(',')[0].lower()} of {block.label(row.group)}"
    where = f"In {row.node} ({row.geo})" + "".join(f", {v}" for v in row.breakdown.values())
    if row.value is None or row.gap is None:
        return (
            f"<p>{esc(where)}, {esc(what)} is not published ({esc(shown(row.value, row.flags))}): "
            "the group, or the group it is compared with, is too small to show safely.</p>"
        )
    unreliable = " (flagged u: low reliability)" if "u" in row.flags else ""
    text = (
        f"{esc(where)}, {esc(what)} is <b>{number(row.value)}%</b> (95% CI "
        f"{interval_text(row.ci_low, row.ci_high)}), against {number(row.comparator_value)}% for "
        f"{esc(block.label(row.comparator))}: a gap of <b>{number(row.gap, True)} percentage "
        f"points</b> (95% CI {interval_text(row.gap_ci_low, row.gap_ci_high, True)}){unreliable}. "
    )
    if c.pooled is None or c.pooled.gap is None or c.difference is None:
        return f"<p>{text}There is no pooled gap to compare it with.</p>"
    low, high = c.difference.interval()
    text += (
        f"Pooled over the {len(block.outcome.answers)} cities that answered, the gap is "
        f"{number(c.pooled.gap, True)} points (95% CI "
        f"{interval_text(c.pooled.gap_ci_low, c.pooled.gap_ci_high, True)}). The difference "
        f"between the two gaps is {c.difference.value:+.2f} points (95% CI {low:+.2f} to "
        f"{high:+.2f}). "
    )
    reversed_ = ", possibly reversed" if row.gap * c.pooled.gap < 0 else ""
    text += _VERDICTS[c.verdict].format(n=esc(row.node), reversed=reversed_)
    if c.verdict in ("larger", "smaller") and abs(c.difference.value) < 1.0:
        text += " The difference is under one percentage point: clear, but small."
    return f"<p>{text}</p>"


def _value_dots(block: Block, group: str) -> list[Dot]:
    """Chart lines of one group: every city's value, its comparator and its gap."""
    dots = []
    for node, cell in block.lines:
        row = block.row(node, cell, group)
        if row is not None:
            gap = f"gap {number(row.gap, True)}" if row.gap is not None else ""
            dots.append(
                Dot(row_key(row), line_label(node, cell), row.value, row.ci_low, row.ci_high,
                    row.flags, marker=row.comparator_value, note=f"{gap} {row.flags}".strip(),
                    strong=node == POOLED)
            )  # fmt: skip
    return dots


def indicator_section(block: Block) -> str:
    """An indicator's section: a chart per group of every city's value, then the numbers."""
    versus = block.label(block.comparator)
    panels = {group: _value_dots(block, group) for group in block.groups}
    axis = chart_axis([v for dots in panels.values() for v in extent(dots)], zero=False)
    figures = [
        f"<figure><figcaption>{esc(block.label(group))} "
        f'<span class="muted">({esc(group)})</span>, %; on the right, the gap to '
        f"{esc(versus)} in points</figcaption>"
        f"{dot_chart(dots, axis, f'{block.title}: {block.label(group)}, every city')}</figure>"
        for group, dots in panels.items()
    ]
    return (
        f'<section class="indicator"><h2>{esc(block.title)}, by '
        f"{esc(DIM_LABELS.get(block.group_dim, block.group_dim))}</h2><p>"
        f"{esc(CATALOGUE[block.indicator].definition)} Compared with: {esc(versus)} "
        f"({esc(block.comparator)}).</p>{''.join(figures)}<details><summary>All numbers"
        f"</summary>{_numbers_table(block)}</details></section>"
    )


def _numbers_table(block: Block) -> str:
    breakdowns = list(block.rows[0].breakdown) if block.rows else []
    lines = [
        "<table>"
        + table_head(
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
        own = [shown(r.value, r.flags), interval_text(r.ci_low, r.ci_high)]
        gap = [number(r.gap, True), interval_text(r.gap_ci_low, r.gap_ci_high, True)]
        cells = [(t, False) for t in plain] + [(t, True) for t in own]
        cells += [(number(r.comparator_value), False)] + [(t, True) for t in gap]
        lines.append(table_row(cells, row_key(r)))
    return "".join(lines) + "</table>"


def city_section(node: str, blocks: list[Block], headlines: list[tuple[Block, str]]) -> str:
    """A city's section: its headline gaps in words and charts, then every gap."""
    geo = next((r.geo for b in blocks for r in b.rows if r.node == node), "")
    parts = [
        f'<section class="city" id="city-{esc(node)}"><h2>{esc(node)} <span class="muted">'
        f"{esc(geo)}</span>: next to the other cities and the pooled value</h2>"
    ]
    for block, group in headlines:
        for n, cell in block.lines:
            row = block.row(n, cell, group) if n == node else None
            if row is not None:
                parts.append(
                    f'<div class="finding" data-key="{esc(row_key(row))}">'
                    f"{_in_words(block, block.compare(row))}</div>{_gap_chart(block, row)}"
                )
    return "".join(parts) + _city_table(node, blocks) + "</section>"


def _gap_chart(block: Block, focus: BenchmarkRow) -> str:
    cell = tuple(focus.breakdown.values())
    dots = []
    for node, c in block.lines:
        row = block.row(node, c, focus.group) if c == cell else None
        if row is not None:
            dots.append(
                Dot(
                    row_key(row),
                    line_label(node, ()),
                    row.gap,
                    row.gap_ci_low,
                    row.gap_ci_high,
                    row.flags,
                    note=shown(row.gap, row.flags, True),
                    strong=node in (focus.node, POOLED),
                    accent=node == focus.node,
                )
            )
    axis = chart_axis(extent(dots), zero=True)
    label = (
        f"Gap between {block.label(focus.group)} and {block.label(block.comparator)} "
        f"({block.title}), percentage points, in every city; {focus.node} highlighted"
    )
    return f"<figure><figcaption>{esc(label)}</figcaption>{dot_chart(dots, axis, label)}</figure>"


def _city_table(node: str, blocks: list[Block]) -> str:
    lines = [
        "<details><summary>Every indicator and group, next to the pooled gap</summary><table>"
        + table_head(
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
                pooled = with_interval(p.gap, p.gap_ci_low, p.gap_ci_high, p.flags) if p else ""
                cells = [
                    (" ".join([block.title, *cell]), False),
                    (f"{block.group_dim} {group}", False),
                    (shown(row.value, row.flags), True),
                    (with_interval(row.gap, row.gap_ci_low, row.gap_ci_high, row.flags), True),
                    (pooled, False),
                    (difference_text(c.difference), True),
                    (c.verdict, False),
                ]
                lines.append(table_row(cells, row_key(row)))
    return "".join(lines) + "</table></details>"
