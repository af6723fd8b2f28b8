"""How every output writes a number: the one rule below all the writers.

Rates and gaps are rounded to one decimal, denominators to whole persons, and a value
that is not published is blank. The text forms the report and the terminal show
(``12.3 u``, ``: c``, ``-4.2 (-9.0 to +0.6)``) are built from the same rule.
"""

from __future__ import annotations

from privacy.estimators import Estimate

__all__ = [
    "difference_text",
    "interval_text",
    "number",
    "published",
    "published_column",
    "shown",
    "with_interval",
]


def published(x: float | None, digits: int = 1) -> str:
    """A number as published in every output: one decimal (counts: none), blank for None."""
    return "" if x is None else f"{x:.{digits}f}"


def published_column(values: list[float | None], digits: int = 1) -> list[str]:
    """`published` of every value of a column, with one format spec for all of them."""
    spec = f".{digits}f"
    return ["" if x is None else format(x, spec) for x in values]


def number(x: float | None, signed: bool = False) -> str:
    """A number as published (never ``-0.0``), with ``+`` for a positive one if ``signed``."""
    if x is None:
        return ""
    text = f"{x:.1f}"  # published(x), without a second call: the report makes 250,000
    if text == "0.0" or text == "-0.0":
        return "0.0"
    return "+" + text if signed and text[0] != "-" else text


def shown(value: float | None, flags: object, signed: bool = False) -> str:
    """A value as Eurostat shows it: ``12.3 u``, ``: c``, ``:``.

    ``flags`` is anything whose text is the row's flag letters.
    """
    return f"{number(value, signed) if value is not None else ':'} {flags}".strip()


def interval_text(low: float | None, high: float | None, signed: bool = False) -> str:
    """An interval as ``low to high``, or ``""`` when a bound is missing."""
    return "" if low is None or high is None else f"{number(low, signed)} to {number(high, signed)}"


def with_interval(value: float | None, low: float | None, high: float | None, flags: object) -> str:
    """A signed value with its flags and its interval, e.g. ``-4.2 u (-9.0 to +0.6)``."""
    if value is None:
        return shown(None, flags)
    return f"{shown(value, flags, True)} ({interval_text(low, high, True)})"


def difference_text(diff: Estimate | None) -> str:
    """A difference of gaps with its interval, to two decimals (its bounds are often near 0)."""
    if diff is None:
        return ""
    low, high = diff.interval()
    return f"{diff.value:+.2f} ({low:+.2f} to {high:+.2f})"
