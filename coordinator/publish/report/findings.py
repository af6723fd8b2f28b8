"""The report's findings: the key comparison, one section per indicator, one per city.

Each function returns what its section shows, as plain values; the templates lay them
out and escape every text. Cities always appear in the federation's order, never sorted
by a result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from markupsafe import Markup

from coordinator.publish.numbers import (
    difference_text,
    interval_text,
    number,
    shown,
    with_interval,
)
from coordinator.publish.report.blocks import Block
from coordinator.publish.report.charts import Chart, Dot, chart_axis, dot_chart, extent
from coordinator.publish.report.compare import (
    Comparison,
    Composition,
    compare_to_mean,
    composition,
)
from coordinator.publish.report.escaping import fill, filled
from coordinator.publish.report.labels import DIM_LABELS, line_label, row_key
from coordinator.rows import POOLED, BenchmarkRow
from indicators.catalogue import CATALOGUE

__all__ = [
    "CitySection",
    "Grid",
    "Headline",
    "IndicatorSection",
    "Table",
    "TableRow",
    "absent",
    "city_section",
    "headline",
    "indicator_section",
    "pick_headlines",
]

HEADLINE_INDICATOR = "employment_rate"
HEADLINE_GROUP = "NEU27_2020_FOR"


class TableRow(NamedTuple):
    """A table row: its cells' texts, which of them hold the row's own numbers, its key."""

    cells: list[tuple[str, bool]]
    key: str = ""


@dataclass(frozen=True)
class Table:
    """A table: header texts and rows."""

    heads: list[str]
    rows: list[TableRow]


@dataclass(frozen=True)
class Grid:
    """A table whose rows end alike, drawn as a `Table` of the same texts would be.

    The last cells of every row hold its own numbers or not as ``tail`` says; no cell
    before them does. `markup.table_html` draws it without a (text, own) pair per cell.

    Attributes:
        heads: Header texts.
        keys: Each row's ``data-key`` ("" for none).
        rows: Each row's cell texts.
        tail: Whether each of the last ``len(tail)`` cells of a row holds its own numbers.
    """

    heads: list[str]
    keys: list[str]
    rows: list[list[str]]
    tail: tuple[bool, ...]


@dataclass(frozen=True)
class Headline:
    """One gap of the key comparison, in every city, next to the pooled gap."""

    title: str
    group_label: str
    comparator_label: str
    group_dim: str
    group: str
    comparator: str
    table: Table
    composition: Markup = field(default_factory=Markup)


@dataclass(frozen=True)
class GroupFigure:
    """An indicator's chart of one group in every city."""

    group_label: str
    group: str
    chart: Chart


@dataclass(frozen=True)
class IndicatorSection:
    """An indicator: a chart per group of every city's value, then the numbers."""

    title: str
    dim_label: str
    definition: str
    versus: str
    comparator: str
    figures: list[GroupFigure]
    numbers: Grid


@dataclass(frozen=True)
class Finding:
    """A city's headline gap: in words (escaped markup) and as a chart."""

    key: str
    words: Markup
    chart: Chart


@dataclass(frozen=True)
class CitySection:
    """A city: its headline gaps in words and charts, then every gap."""

    node: str
    geo: str
    findings: list[Finding]
    table: Grid


def _cities(block: Block, row: BenchmarkRow) -> list[BenchmarkRow]:
    """Every city's row of the row's group and breakdown cell."""
    return block.city_gaps(row).cities


def compare(block: Block, row: BenchmarkRow) -> Comparison:
    """The row's gap next to the unweighted mean of the city gaps of the same group and cell.

    Made once per row (the key comparison, a city's words and its table show it).
    """
    c: Comparison | None = block.comparisons.get(id(row))
    if c is None or c.row is not row:  # the entry holds its row: the id stays its
        c = compare_to_mean(row, block.city_gaps(row), block.pooled(row))
        block.comparisons[id(row)] = c
    return c


def absent(row: BenchmarkRow, gap: bool = False) -> str:
    """Why a row's value (or its gap) is not shown, in words that match its status."""
    status = str(row.status)
    if status == "not_provided":
        if row.indicator == "arop_rate":
            return (
                "the city does not provide what this rate needs: a variable it reads, or "
                "a national poverty line"
            )
        return "the city does not record a variable this indicator needs"
    if status == "no_answer":
        if row.node == POOLED:
            return "not pooled: too few cities answered"
        return "the city's node did not answer"
    if status == "not_applicable":
        if row.node == POOLED:
            return (
                "not pooled: too few cities share the harmonised definition, or their "
                "reference periods or countries differ"
            )
        return "does not apply to this group"
    if status == "suppressed":
        if "c" in row.flags:
            return "too few persons to publish safely (c)"
        return "too noisy to publish: noise or sampling error would dominate it (u)"
    if gap and row.gap is None:
        return "no gap: the group it is compared with is not published"
    return ""


def _composition_words(block: Block, group: str, c: Composition | None) -> Markup:
    if c is None:
        return Markup("")
    return fill(
        Markup(
            "<p>The <b>pooled gap</b>, {pooled} points, treats the cities as one population, so "
            "each city weighs by its size: {largest} holds {share:.0f}% of the pooled {label} "
            "counted. The unweighted <b>mean of the city gaps</b> is {mean} points; the "
            "difference, {effect} points, is a <b>composition effect</b> of the cities' sizes and "
            "make-up, not a gap any city has. The comparison above therefore uses the mean of "
            "the city gaps.</p>"
        ),
        pooled=number(c.pooled_gap, True),
        largest=c.largest,
        share=c.share,
        label=block.label(group),
        mean=number(c.mean_gap, True),
        effect=number(c.pooled_gap - c.mean_gap, True),
    )


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


def headline(block: Block, group: str) -> Headline:
    """A headline gap in every city, next to the unweighted mean of the city gaps."""
    rows = []
    effect = None
    for node, cell in block.lines:
        row = block.row(node, cell, group)
        if row is None or node == POOLED:
            continue
        c = compare(block, row)
        effect = effect or composition(c.pooled, _cities(block, row))
        cells = [
            (line_label(node, cell), False),
            (shown(row.value, row.flags), True),
            (number(row.comparator_value) or ":", False),
            (with_interval(row.gap, row.gap_ci_low, row.gap_ci_high, row.flags), True),
            (number(c.mean_gap, True) if c.mean_gap is not None else "", False),
            (difference_text(c.difference), True),
            (c.verdict if row.gap is not None else absent(row, gap=True), False),
        ]
        rows.append(TableRow(cells, row_key(row)))
    heads = [
        "city", "value %", "comparator %", "gap, points (95% CI)", "mean of city gaps",
        "city gap minus the mean (95% CI)", "the city's gap is",
    ]  # fmt: skip
    return Headline(
        block.title, block.label(group), block.label(block.comparator), block.group_dim,
        group, block.comparator, Table(heads, rows), _composition_words(block, group, effect),
    )  # fmt: skip


_VERDICTS = {
    "not clearly different": Markup(
        "This interval includes zero, so the gap in {n} is <b>not clearly different</b> from "
        "the mean of the city gaps: the data cannot tell the two apart."
    ),
    "larger": Markup(
        "This interval excludes zero, so the gap in {n} is <b>larger</b> than the mean of the "
        "city gaps (further from zero, in the same direction), at 95% confidence."
    ),
    "smaller": Markup(
        "This interval excludes zero, so the gap in {n} is <b>smaller</b> than the mean of the "
        "city gaps (closer to zero{reversed}), at 95% confidence."
    ),
    "opposite direction": Markup(
        "This interval excludes zero, and the gap in {n} runs in the <b>opposite direction</b> "
        "to the mean of the city gaps."
    ),
}


def _in_words(block: Block, c: Comparison) -> Markup:
    """The comparison as sentences that a reader new to the project can follow.

    `fill` and `filled` escape every value they are given.
    """
    row = c.row
    what = f"the {block.title.split(',')[0].lower()} of {block.label(row.group)}"
    where = f"In {row.node} ({row.geo})" + "".join(f", {v}" for v in row.breakdown.values())
    if row.value is None or row.gap is None:
        return fill(
            Markup("<p>{where}, {what} is not shown ({shown}): {why}.</p>"),
            where=where,
            what=what,
            shown=shown(row.value, row.flags),
            why=absent(row, gap=True),
        )
    text = filled(  # the sentences' text, escaped, marked safe once joined
        "{where}, {what} is <b>{value}%</b> (95% CI {ci}), against {versus}% for {label}: "
        "a gap of <b>{gap} percentage points</b> (95% CI {gap_ci}){unreliable}. ",
        where=where,
        what=what,
        value=number(row.value),
        ci=interval_text(row.ci_low, row.ci_high),
        versus=number(row.comparator_value),
        label=block.label(row.comparator),
        gap=number(row.gap, True),
        gap_ci=interval_text(row.gap_ci_low, row.gap_ci_high, True),
        unreliable=" (flagged u: low reliability)" if "u" in row.flags else "",
    )
    if c.mean_gap is None or c.difference is None:
        return Markup(f"<p>{text}No other city's gap is published to compare it with.</p>")
    low, high = c.difference.interval()
    text += filled(
        "The unweighted mean of the gaps of the {n} cities that publish one is {gap} points. "
        "The difference between the two is {diff:+.2f} points (95% CI {low:+.2f} to "
        "{high:+.2f}). ",
        n=c.cities,
        gap=number(c.mean_gap, True),
        diff=c.difference.value,
        low=low,
        high=high,
    )
    reversed_ = ", possibly reversed" if row.gap * c.mean_gap < 0 else ""
    text += filled(_VERDICTS[c.verdict], n=row.node, reversed=reversed_)
    if c.verdict in ("larger", "smaller") and abs(c.difference.value) < 1.0:
        text += " The difference is under one percentage point: clear, but small."
    return Markup(f"<p>{text}</p>")


def _value_dots(block: Block, group: str) -> list[Dot]:
    """Chart lines of one group: every city's value, its comparator and its gap."""
    dots = []
    for node, cell in block.lines:
        row = block.row(node, cell, group)
        if row is not None:
            flags = str(row.flags)
            gap = f"gap {number(row.gap, True)}" if row.gap is not None else ""
            note = f"{gap} {flags}".strip() if row.value is not None else absent(row)
            dots.append(
                Dot(row_key(row), line_label(node, cell), row.value, row.ci_low, row.ci_high,
                    flags, marker=row.comparator_value, note=note, strong=node == POOLED)
            )  # fmt: skip
    return dots


def indicator_section(block: Block) -> IndicatorSection:
    """An indicator's section: a chart per group of every city's value, then the numbers."""
    versus = block.label(block.comparator)
    panels = {group: _value_dots(block, group) for group in block.groups}
    axis = chart_axis([v for dots in panels.values() for v in extent(dots)], zero=False)
    figures = [
        GroupFigure(
            block.label(group),
            group,
            dot_chart(dots, axis, f"{block.title}: {block.label(group)}, every city"),
        )
        for group, dots in panels.items()
    ]
    return IndicatorSection(
        block.title,
        DIM_LABELS.get(block.group_dim, block.group_dim),
        CATALOGUE[block.indicator].definition,
        versus,
        block.comparator,
        figures,
        _numbers_table(block),
    )


def _numbers_table(block: Block) -> Grid:
    breakdowns = list(block.rows[0].breakdown) if block.rows else []
    heads = [
        "city", "geo", *breakdowns, "group", "value %", "95% CI", "comparator %", "gap, points",
        "gap 95% CI",
    ]  # fmt: skip
    rows = [
        [
            "pooled" if r.node == POOLED else r.node,
            r.geo,
            *r.breakdown.values(),
            r.group,
            shown(r.value, r.flags),
            interval_text(r.ci_low, r.ci_high),
            number(r.comparator_value),
            number(r.gap, True),
            interval_text(r.gap_ci_low, r.gap_ci_high, True),
        ]
        for r in block.rows
    ]
    return Grid(heads, [row_key(r) for r in block.rows], rows, (True, True, False, True, True))


def city_section(node: str, blocks: list[Block], headlines: list[tuple[Block, str]]) -> CitySection:
    """A city's section: its headline gaps in words and charts, then every gap."""
    geo = next((b.geos[node] for b in blocks if node in b.geos), "")
    findings = []
    for block, group in headlines:
        for cell in block.cells_of(node):
            row = block.row(node, cell, group)
            if row is not None:
                words = _in_words(block, compare(block, row))
                findings.append(Finding(row_key(row), words, _gap_chart(block, row)))
    return CitySection(node, geo, findings, _city_table(node, blocks))


CHART_CITIES = 30
"""Above this many cities, a city's own gap chart shows it beside the pooled gap and the
cities with the smallest and the largest gap, not every city (which would make the report
grow with the square of the cities); the indicator's section charts every city."""


def _gap_chart(block: Block, focus: BenchmarkRow) -> Chart:
    gaps = block.city_gaps(focus)
    pooled = block.pooled(focus)
    everyone = len(gaps.cities) <= CHART_CITIES
    rows = gaps.cities if everyone else list({id(r): r for r in [focus, *gaps.extremes]}.values())
    shown_rows = [*rows, *([pooled] if pooled is not None else [])]
    ranked = sorted(shown_rows, key=lambda r: block.rank.get(r.node, 0))
    dots = [_gap_dot(block, row, focus.node) for row in ranked]
    where = (
        "in every city"
        if everyone
        else f"in {focus.node}, the pooled cities and the cities with the smallest and the "
        f"largest gap (of {len(gaps.cities)})"
    )
    label = (
        f"Gap between {block.label(focus.group)} and {block.label(block.comparator)} "
        f"({block.title}), percentage points, {where}; {focus.node} highlighted"
    )
    return dot_chart(dots, chart_axis(extent(dots), zero=True), label, again=True)


def _gap_dot(block: Block, row: BenchmarkRow, focus: str) -> Dot:
    """A row's line in the gap chart of the city ``focus``.

    The same in every city's chart where the row is not the focus: made once per block.
    """
    node = row.node
    strong, accent = node in (focus, POOLED), node == focus
    key = (id(row), strong, accent)
    drawn = block.dots.get(key)
    if drawn is not None and drawn[0] is row:  # the entry holds its row: the id stays its
        return drawn[1]
    dot = Dot(
        row_key(row),
        line_label(node, ()),
        row.gap,
        row.gap_ci_low,
        row.gap_ci_high,
        str(row.flags),
        note=shown(row.gap, row.flags, True) if row.gap is not None else absent(row, True),
        strong=strong,
        accent=accent,
    )
    block.dots[key] = (row, dot)
    return dot


def _gap_text(row: BenchmarkRow | None, block: Block) -> str:
    """A row's gap with its flags and interval (each city's table shows the pooled ones)."""
    if row is None:
        return ""
    known = block.gap_texts.get(id(row))
    if known is not None and known[0] is row:  # the entry holds its row: the id stays its
        return known[1]
    text = with_interval(row.gap, row.gap_ci_low, row.gap_ci_high, row.flags)
    block.gap_texts[id(row)] = (row, text)
    return text


def _city_table(node: str, blocks: list[Block]) -> Grid:
    heads = [
        "indicator", "group", "value %", "gap (95% CI)", "pooled gap (95% CI)",
        "gap minus the mean of city gaps (95% CI)", "the gap is",
    ]  # fmt: skip
    keys, rows = [], []
    for block in blocks:
        for cell in block.cells_of(node):
            for group in block.groups:
                row = block.row(node, cell, group)
                if row is None:
                    continue
                c = compare(block, row)
                rows.append(
                    [
                        " ".join([block.title, *cell]),
                        f"{block.group_dim} {group}",
                        shown(row.value, row.flags),
                        with_interval(row.gap, row.gap_ci_low, row.gap_ci_high, row.flags),
                        _gap_text(c.pooled, block),
                        difference_text(c.difference),
                        c.verdict if row.gap is not None else absent(row, gap=True),
                    ]
                )
                keys.append(row_key(row))
    return Grid(heads, keys, rows, (False, False, True, True, False, True, False))
