"""The report's charts: inline SVG dot charts of values with their intervals."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from coordinator.markup import esc, interval_text, shown


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


def chart_axis(values: Iterable[float | None], zero: bool) -> tuple[float, float, float]:
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


def extent(dots: list[Dot]) -> list[float | None]:
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
        f'viewBox="0 0 {_W} {height}" role="img" aria-label="{esc(label)}">'
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
    interval = interval_text(dot.low, dot.high)
    tip = f"{dot.label}: {shown(dot.value, dot.flags)}" + (f" ({interval})" if interval else "")
    out = [
        f'<g data-key="{esc(dot.key)}"><title>{esc(tip)}</title>'
        f'<text x="{_LABEL_W - 8}" y="{y + 4:.1f}" class="lab"{weight}>{esc(dot.label)}</text>'
    ]
    if dot.value is None:
        na = esc(shown(None, dot.flags))
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
        f"{esc(dot.note)}</text></g>"
    )
    return "".join(out)


CHART_LEGEND = (
    f'<svg width="14" height="14"><circle cx="7" cy="7" r="5" fill="{INK}"/></svg> a '
    f'group\'s value, <svg width="26" height="14"><path d="M2 3v8M2 7H24M24 3v8" '
    f'stroke="{INK}" stroke-width="2" fill="none"/></svg> its 95% interval, '
    f'<svg width="14" height="14"><path d="M7 2l5 5l-5 5l-5 -5z" fill="{GREY}"/></svg> '
    "the comparator group's value in the same city, "
    f'<svg width="14" height="14"><circle cx="7" cy="7" r="5" fill="#fff" stroke="{INK}" '
    'stroke-width="2"/></svg> low reliability (u).'
)
