"""Benchmark outputs: ``benchmark.csv`` with DESIGN's columns and a terminal summary."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from coordinator.client import NodeFailure
from coordinator.combine import POOLED, TOTAL, BenchmarkRow
from indicators.catalogue import CATALOGUE

__all__ = ["COLUMNS_AFTER", "COLUMNS_BEFORE", "summary", "write_csv"]

COLUMNS_BEFORE = ["node", "geo", "time_period", "indicator", "group_dim", "group"]
COLUMNS_AFTER = [
    "value", "ci_low", "ci_high", "comparator", "comparator_value", "gap", "gap_ci_low",
    "gap_ci_high", "denominator", "flags", "unit",
]  # fmt: skip


def _num(x: float | None, digits: int = 1) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def breakdown_columns(rows: Iterable[BenchmarkRow]) -> list[str]:
    """Breakdown columns present in any row, in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row.breakdown))
    return list(seen)


def write_csv(rows: list[BenchmarkRow], path: Path) -> None:
    """Write benchmark.csv: one row per node x indicator x group x breakdown cell."""
    extra = breakdown_columns(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*COLUMNS_BEFORE, *extra, *COLUMNS_AFTER])
        for r in rows:
            writer.writerow(
                [
                    r.node, r.geo, r.time_period, r.indicator, r.group_dim, r.group,
                    *[r.breakdown.get(c, "") for c in extra],
                    _num(r.value), _num(r.ci_low), _num(r.ci_high), r.comparator,
                    _num(r.comparator_value), _num(r.gap), _num(r.gap_ci_low),
                    _num(r.gap_ci_high), _num(r.denominator, 0), r.flags, r.unit,
                ]
            )  # fmt: skip


def _cell(row: BenchmarkRow | None, with_gap: bool) -> str:
    if row is None:
        return ""
    if row.value is None:
        return f":{row.flags}"  # Eurostat shows ':' for a value that is not available
    text = f"{row.value:5.1f}{row.flags:<2}"
    if with_gap and row.gap is not None:
        text += f" ({row.gap:+5.1f})"
    return text


def summary(
    rows: list[BenchmarkRow], failures: dict[str, NodeFailure] | None = None, max_groups: int = 4
) -> str:
    """A readable grid per indicator and group dimension (rows without breakdowns).

    Each cell shows the value in percent, its flags and, in brackets, the gap to the
    comparator in percentage points.
    """
    lines: list[str] = []
    blocks: dict[tuple[str, str], list[BenchmarkRow]] = {}
    for r in rows:
        if not r.breakdown:
            blocks.setdefault((r.indicator, r.group_dim), []).append(r)
    for (indicator, group_dim), block in blocks.items():
        comparator = block[0].comparator
        groups = [g for g in dict.fromkeys(r.group for r in block) if g not in ("UNK", TOTAL)]
        groups = [comparator, *[g for g in groups if g != comparator]][: max_groups + 1]
        nodes = list(dict.fromkeys(r.node for r in block))
        by_key = {(r.node, r.group): r for r in block}
        title = CATALOGUE[indicator].title if indicator in CATALOGUE else indicator
        lines.append(f"\n{title} (%) by {group_dim}; gap to {comparator} in points")
        width = 22
        lines.append("  " + "node".ljust(12) + "".join(g[:width].ljust(width) for g in groups))
        for node in nodes:
            label = "pooled" if node == POOLED else node
            cells = [_cell(by_key.get((node, g)), g != comparator).ljust(width) for g in groups]
            lines.append("  " + label[:11].ljust(12) + "".join(cells))
    n_breakdown = sum(1 for r in rows if r.breakdown)
    if n_breakdown:
        lines.append(f"\n({n_breakdown} rows with breakdowns are in the CSV only)")
    lines.append("flags: c confidential (not published), u low reliability, n node unavailable")
    for node, failure in (failures or {}).items():
        lines.append(f"node {node} did not answer: {failure.reason}: {failure.message}")
    return "\n".join(lines)
