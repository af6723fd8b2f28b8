"""Text of the HTML report: escaping, numbers as Eurostat shows them, labels, table rows.

Every text a node sent (its geo code, its period) goes through ``esc``. Every table row
that shows a benchmark row's own numbers carries ``data-key`` (see ``row_key``) and its own
numbers sit in ``class="own"`` cells.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from coordinator.combine import TOTAL, BenchmarkRow
from coordinator.output import published
from indicators.spec import parse_comparator
from indicators.variables import AGE, CATEGORICAL
from privacy.estimators import Estimate

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


def esc(text: object) -> str:
    """``text`` escaped for HTML text and attribute values."""
    return html.escape(str(text), quote=True)


def number(x: float | None, signed: bool = False) -> str:
    """A number as published (never ``-0.0``), with ``+`` for a positive one if ``signed``."""
    text = published(x)
    if text in ("0.0", "-0.0"):
        return "0.0"
    return "+" + text if signed and text and not text.startswith("-") else text


def shown(value: float | None, flags: str, signed: bool = False) -> str:
    """A value as Eurostat shows it: ``12.3 u``, ``: c``, ``:``."""
    return f"{number(value, signed) if value is not None else ':'} {flags}".strip()


def interval_text(low: float | None, high: float | None, signed: bool = False) -> str:
    """An interval as ``low to high``, or ``""`` when a bound is missing."""
    return "" if low is None or high is None else f"{number(low, signed)} to {number(high, signed)}"


def group_label(group_dim: str, group: str) -> str:
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


def table_row(cells: Iterable[tuple[str, bool]], key: str = "") -> str:
    """A table row; cells flagged True hold the row's own numbers (``class="own"``)."""
    tds = "".join(
        f'<td class="own">{esc(t)}</td>' if own else f"<td>{esc(t)}</td>" for t, own in cells
    )
    return f'<tr data-key="{esc(key)}">{tds}</tr>' if key else f"<tr>{tds}</tr>"


def table_head(*heads: str) -> str:
    """A table's header row."""
    return "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in heads) + "</tr>"


def with_interval(value: float | None, low: float | None, high: float | None, flags: str) -> str:
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
