"""The report's charts: dot charts of values with their intervals, laid out for inline SVG.

This module does the geometry; the template ``chart.svg.j2`` draws it (escaping every
text). Values are clipped to the axis: an unreliable value's huge interval is drawn cut.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from coordinator.publish.numbers import interval_text, shown

__all__ = [
    "ACCENT",
    "GREY",
    "INK",
    "Chart",
    "ChartLine",
    "Dot",
    "chart_axis",
    "dot_chart",
    "extent",
]


class Dot(NamedTuple):
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


class Tick(NamedTuple):
    """A vertical grid line of the axis and its label."""

    x: str
    text: str
    color: str


class ChartLine(NamedTuple):
    """One dot drawn: coordinates as SVG attribute text, the texts to show."""

    key: str
    tip: str
    label: str
    text_y: str
    strong: bool
    na: str | None  # what shows instead of a mark when the value is not available
    y: str = ""
    ink: str = INK
    fill: str = INK
    cx: str = ""
    marker: tuple[str, str, str] | None = None  # comparator: line from x1 to x2, diamond d
    interval: str | None = None  # the interval's path
    note: str = ""


@dataclass(frozen=True)
class Chart:
    """A whole dot chart, ready to draw."""

    label: str
    width: int
    height: int
    label_x: int
    na_x: int
    note_x: int
    ticks: list[Tick]
    tick_y1: int
    tick_y2: int
    tick_text_y: int
    lines: list[ChartLine]


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


def dot_chart(
    dots: list[Dot], axis: tuple[float, float, float], label: str, again: bool = False
) -> Chart:
    """A chart of values with intervals, one line per dot, in the given order.

    ``again``: the dots are drawn in other charts too, at the same place on the same axis
    (the lines are remembered).
    """
    low, high, _ = axis
    height = _TOP + _ROW_H * len(dots) + 8
    draw = _remembered if again else _line
    lines = [draw(d, _TOP + _ROW_H * i + _ROW_H / 2, low, high) for i, d in enumerate(dots)]
    return Chart(
        label, _W, height, _LABEL_W - 8, _LABEL_W + 4, _W - _NOTE_W + 8, list(_ticks(*axis)),
        _TOP - 6, height - 6, _TOP - 10, lines,
    )  # fmt: skip


def _scale(low: float, high: float) -> Callable[[float], float]:
    """A value's x on an axis from low to high (clipped to it)."""

    def x(v: float) -> float:
        return _LABEL_W + (min(max(v, low), high) - low) / (high - low) * (_W - _LABEL_W - _NOTE_W)

    return x


@functools.lru_cache(maxsize=256)
def _ticks(low: float, high: float, step: float) -> tuple[Tick, ...]:
    """An axis's grid lines and labels (charts of a report share few axes)."""
    x = _scale(low, high)
    ticks = []
    for i in range(round((high - low) / step) + 1):
        tick = low + i * step
        color = "#444" if abs(tick) < 1e-9 else "#e3e3e3"
        ticks.append(Tick(f"{x(tick):.1f}", f"{tick:g}", color))
    return tuple(ticks)


def _line(dot: Dot, y: float, low: float, high: float) -> ChartLine:
    """A dot drawn at height y on an axis from low to high."""
    x = _scale(low, high)
    interval = interval_text(dot.low, dot.high)
    tip = f"{dot.label}: {shown(dot.value, dot.flags)}" + (f" ({interval})" if interval else "")
    text_y = f"{y + 4:.1f}"
    if dot.value is None:
        na = f"{shown(None, dot.flags)} {dot.note}".strip()
        return ChartLine(dot.key, tip, dot.label, text_y, dot.strong, na)
    ink = ACCENT if dot.accent else INK
    marker = None
    if dot.marker is not None:
        mx, vx = x(dot.marker), x(dot.value)
        marker = (f"{mx:.1f}", f"{vx:.1f}", f"M{mx:.1f} {y - 5:.1f}l5 5l-5 5l-5 -5z")
    path = None
    if dot.low is not None and dot.high is not None:
        x0, x1 = x(dot.low), x(dot.high)
        path = f"M{x0:.1f} {y - 4:.1f}v8M{x0:.1f} {y:.1f}H{x1:.1f}M{x1:.1f} {y - 4:.1f}v8"
    return ChartLine(
        dot.key, tip, dot.label, text_y, dot.strong, None, f"{y:.1f}", ink,
        "#fff" if "u" in dot.flags else ink, f"{x(dot.value):.1f}", marker, path, dot.note,
    )  # fmt: skip


_remembered = functools.lru_cache(maxsize=4096)(_line)
"""`_line`, remembered: equal arguments draw equal lines (a zero's sign, or an int for a
float, changes no text: values are written by `number`, which writes -0.0 as 0.0, and
positions are offsets from the label column)."""
