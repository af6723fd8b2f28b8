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
from coordinator.publish.report.escaping import escaped as _e
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


def chart_html(chart: Chart, grey: str) -> Markup:
    """A dot chart as inline SVG: the axis's ticks, then one group per line."""
    width, height, label = _e(chart.width), _e(chart.height), _e(chart.label)
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{label}">\n'
    ]
    y1, y2, text_y = _e(chart.tick_y1), _e(chart.tick_y2), _e(chart.tick_text_y)
    for tick in chart.ticks:
        x = _e(tick.x)
        out.append(
            f'<line x1="{x}" y1="{y1}" x2="{x}" y2="{y2}" stroke="{_e(tick.color)}"/>'
            f'<text x="{x}" y="{text_y}" class="tick">{_e(tick.text)}</text>\n'
        )
    places = (_e(chart.label_x), _e(chart.na_x), _e(chart.note_x))
    out += [_line(line, places, _e(grey)) for line in chart.lines]
    out.append("</svg>")
    return Markup("".join(out))


def _line(line: ChartLine, places: tuple[str, str, str], grey: str) -> str:
    """One line of a dot chart: its label, then its mark or why there is none."""
    label_x, na_x, note_x = places
    bold = ' font-weight="bold"' if line.strong else ""
    text_y = _e(line.text_y)
    out = [
        f'<g data-key="{_e(line.key)}"><title>{_e(line.tip)}</title>\n'
        f'<text x="{label_x}" y="{text_y}" class="lab"{bold}>{_e(line.label)}</text>\n'
    ]
    if line.na is not None:
        out.append(f'<text x="{na_x}" y="{text_y}" class="na">{_e(line.na)}</text>\n')
    else:
        y, ink = _e(line.y), _e(line.ink)
        if line.marker:
            x1, x2, d = (_e(m) for m in line.marker)
            out.append(
                f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{grey}" '
                f'stroke-dasharray="2,2"/><path d="{d}" fill="{grey}"/>\n'
            )
        if line.interval:
            out.append(
                f'<path d="{_e(line.interval)}" stroke="{ink}" stroke-width="2" fill="none"/>\n'
            )
        out.append(
            f'<circle cx="{_e(line.cx)}" cy="{y}" r="5" fill="{_e(line.fill)}" stroke="{ink}" '
            f'stroke-width="2"/><text x="{note_x}" y="{text_y}"{bold}>{_e(line.note)}</text>\n'
        )
    out.append("</g>\n")
    return "".join(out)
