"""The report's two big repeated pieces, tables and dot charts, as HTML in one pass.

A 300-city report has a million values in its tables and charts; one Jinja2 expression
per value (each escaped into a new ``Markup``) made it the slowest output. Here a table
or a chart is written as one string: every text is escaped exactly as Jinja2's
autoescaping does (`markupsafe.escape`), a text with no character to escape is taken as
it is (escaping would return it unchanged), and the result is marked safe once. The
page template calls these directly: a Jinja2 macro around each added its own call
machinery to each of the 3,000 charts of a 300-city report.
"""

from __future__ import annotations

from dataclasses import replace

from markupsafe import Markup

from coordinator.publish.report.charts import Chart, ChartLine, Tick
from coordinator.publish.report.escaping import escaped, plain
from coordinator.publish.report.findings import Grid, Table

__all__ = ["chart_html", "table_html"]


def table_html(t: Table | Grid) -> Markup:
    """A table: its header row, then each row (with its ``data-key``) and cells."""
    if isinstance(t, Grid):
        return _grid_html(t)
    keys = [r.key for r in t.rows]
    texts = [x for r in t.rows for x, _ in r.cells]
    # every text is its escaped form when plain: `str` of a str is the str itself (C, fast)
    e = str if plain([*t.heads, *keys, *texts]) else escaped
    out = ["<table>\n<tr>", *[f"<th>{e(head)}</th>" for head in t.heads], "</tr>\n"]
    for row in t.rows:
        out.append(f'<tr data-key="{e(row.key)}">' if row.key else "<tr>")
        out += [
            f'<td class="own">{e(text)}</td>' if own else f"<td>{e(text)}</td>"
            for text, own in row.cells
        ]
        out.append("</tr>\n")
    out.append("</table>")
    return Markup("".join(out))


def _grid_html(g: Grid) -> Markup:
    """A `Grid` as `table_html` draws a `Table` of the same texts: one format per row."""
    heads, keys, rows = g.heads, g.keys, g.rows
    if not plain([*heads, *keys, *(x for row in rows for x in row)]):
        heads, keys = [escaped(h) for h in heads], [escaped(k) for k in keys]
        rows = [[escaped(x) for x in row] for row in rows]
    cells: dict[int, str] = {}  # the cells' markup with a hole per text, by row length

    def holes(n: int) -> str:
        if (text := cells.get(n)) is None:
            own = [False] * (n - len(g.tail)) + list(g.tail[max(len(g.tail) - n, 0) :])
            text = "".join('<td class="own">%s</td>' if o else "<td>%s</td>" for o in own)
            cells[n] = text
        return text

    out = ["<table>\n<tr>", *[f"<th>{head}</th>" for head in heads], "</tr>\n"]
    for key, row in zip(keys, rows, strict=True):
        start = f'<tr data-key="{key}">' if key else "<tr>"
        out.append(start + holes(len(row)) % tuple(row) + "</tr>\n")
    out.append("</table>")
    return Markup("".join(out))


def chart_html(chart: Chart) -> Markup:
    """A dot chart as inline SVG: the axis's ticks, then one group per line.

    What every line's marks share (stroke widths, the comparator's grey, no fill of an
    interval) is said once, in the page's style sheet (classes ``ci`` and ``cmp`` of
    ``svg.chart``, the grey given as ``grey``), not on each mark; colours that differ by
    line stay on the mark. Every text is written escaped: as it is when no text of the
    chart has a character to escape (its numbers never have), else each escaped first.
    """
    texts: list[object] = [chart.label, *(x for t in chart.ticks for x in t)]
    for line in chart.lines:
        texts += _texts(line)
    if not plain(texts):
        chart = _escaped(chart)
    width, height, label = chart.width, chart.height, chart.label
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{label}">\n'
    ]
    y1, y2, tick_y = chart.tick_y1, chart.tick_y2, chart.tick_text_y
    for tick in chart.ticks:
        x = tick.x
        out.append(
            f'<line x1="{x}" y1="{y1}" x2="{x}" y2="{y2}" stroke="{tick.color}"/>'
            f'<text x="{x}" y="{tick_y}" class="tick">{tick.text}</text>\n'
        )
    label_x, na_x, note_x = chart.label_x, chart.na_x, chart.note_x
    for line in chart.lines:
        bold = ' font-weight="bold"' if line.strong else ""
        text_y = line.text_y
        out.append(
            f'<g data-key="{line.key}"><title>{line.tip}</title>\n'
            f'<text x="{label_x}" y="{text_y}" class="lab"{bold}>{line.label}</text>\n'
        )
        if line.na is not None:
            out.append(f'<text x="{na_x}" y="{text_y}" class="na">{line.na}</text>\n</g>\n')
            continue
        y, ink = line.y, line.ink
        if line.marker:
            x1, x2, d = line.marker
            out.append(
                f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" class="cmp"/>'
                f'<path d="{d}" class="cmp"/>\n'
            )
        if line.interval:
            out.append(f'<path d="{line.interval}" stroke="{ink}" class="ci"/>\n')
        out.append(
            f'<circle cx="{line.cx}" cy="{y}" r="5" fill="{line.fill}" stroke="{ink}"/>'
            f'<text x="{note_x}" y="{text_y}"{bold}>{line.note}</text>\n</g>\n'
        )
    out.append("</svg>")
    return Markup("".join(out))


def _texts(line: ChartLine) -> tuple[object, ...]:
    """Every text a chart line writes (the escaper looks at each)."""
    marker = line.marker or ()
    return (line.key, line.tip, line.label, line.text_y, line.na or "", line.y, line.ink,
            line.fill, line.cx, *marker, line.interval or "", line.note)  # fmt: skip


def _escaped(chart: Chart) -> Chart:
    """The chart with every text escaped (its numbers are ints: their text needs none)."""
    e = escaped

    def line_of(line: ChartLine) -> ChartLine:
        marker = (
            None
            if line.marker is None
            else (e(line.marker[0]), e(line.marker[1]), e(line.marker[2]))
        )
        return line._replace(
            key=e(line.key), tip=e(line.tip), label=e(line.label), text_y=e(line.text_y),
            na=None if line.na is None else e(line.na), y=e(line.y), ink=e(line.ink),
            fill=e(line.fill), cx=e(line.cx), marker=marker,
            interval=None if line.interval is None else e(line.interval), note=e(line.note),
        )  # fmt: skip

    ticks = [Tick(e(t.x), e(t.text), e(t.color)) for t in chart.ticks]
    lines = [line_of(line) for line in chart.lines]
    return replace(chart, label=e(chart.label), ticks=ticks, lines=lines)
