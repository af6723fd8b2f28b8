"""The report's two big repeated pieces, tables and dot charts, as HTML in one pass.

A 300-city report has a million values in its tables and charts; one Jinja2 expression
per value (each escaped into a new ``Markup``) made it the slowest output. Here a table
or a chart is written as one string: every text is escaped exactly as Jinja2's
autoescaping does (`markupsafe.escape`), a text with no character to escape is taken as
it is (escaping would return it unchanged), and the result is marked safe once. The
templates call these through their ``table`` and ``dot_chart`` macros.
"""

from __future__ import annotations

from markupsafe import Markup

from coordinator.publish.report.charts import Chart, ChartLine
from coordinator.publish.report.escaping import escaper as _escaper
from coordinator.publish.report.findings import Table

__all__ = ["chart_html", "table_html"]


def table_html(t: Table) -> Markup:
    """A table: its header row, then each row (with its ``data-key``) and cells."""
    e = _escaper([*t.heads, *(r.key for r in t.rows), *(x for r in t.rows for x, _ in r.cells)])
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


def chart_html(chart: Chart) -> Markup:
    """A dot chart as inline SVG: the axis's ticks, then one group per line.

    What every line's marks share (stroke widths, the comparator's grey, no fill of an
    interval) is said once, in the page's style sheet (classes ``ci`` and ``cmp`` of
    ``svg.chart``, the grey given as ``grey``), not on each mark; colours that differ by
    line stay on the mark.
    """
    e = _escaper(
        [
            chart.label, chart.width, chart.height,
            *(x for t in chart.ticks for x in (t.x, t.text, t.color)),
            *(x for line in chart.lines for x in _texts(line)),
        ]
    )  # fmt: skip
    width, height, label = e(chart.width), e(chart.height), e(chart.label)
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{label}">\n'
    ]
    y1, y2, text_y = e(chart.tick_y1), e(chart.tick_y2), e(chart.tick_text_y)
    for tick in chart.ticks:
        x = e(tick.x)
        out.append(
            f'<line x1="{x}" y1="{y1}" x2="{x}" y2="{y2}" stroke="{e(tick.color)}"/>'
            f'<text x="{x}" y="{text_y}" class="tick">{e(tick.text)}</text>\n'
        )
    label_x, na_x, note_x = e(chart.label_x), e(chart.na_x), e(chart.note_x)
    for line in chart.lines:
        bold = ' font-weight="bold"' if line.strong else ""
        text_y = e(line.text_y)
        out.append(
            f'<g data-key="{e(line.key)}"><title>{e(line.tip)}</title>\n'
            f'<text x="{label_x}" y="{text_y}" class="lab"{bold}>{e(line.label)}</text>\n'
        )
        if line.na is not None:
            out.append(f'<text x="{na_x}" y="{text_y}" class="na">{e(line.na)}</text>\n</g>\n')
            continue
        y, ink = e(line.y), e(line.ink)
        if line.marker:
            x1, x2, d = (e(m) for m in line.marker)
            out.append(
                f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" class="cmp"/>'
                f'<path d="{d}" class="cmp"/>\n'
            )
        if line.interval:
            out.append(f'<path d="{e(line.interval)}" stroke="{ink}" class="ci"/>\n')
        out.append(
            f'<circle cx="{e(line.cx)}" cy="{y}" r="5" fill="{e(line.fill)}" stroke="{ink}"/>'
            f'<text x="{note_x}" y="{text_y}"{bold}>{e(line.note)}</text>\n</g>\n'
        )
    out.append("</svg>")
    return Markup("".join(out))


def _texts(line: ChartLine) -> tuple[object, ...]:
    """Every text a chart line writes (the escaper looks at each)."""
    marker = line.marker or ()
    return (line.key, line.tip, line.label, line.text_y, line.na or "", line.y, line.ink,
            line.fill, line.cx, *marker, line.interval or "", line.note)  # fmt: skip
