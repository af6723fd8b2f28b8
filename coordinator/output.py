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
    text = f"{row.value:5.1f}{row.flags:<1}"
    if row.ci_low is not None and row.ci_high is not None:
        text += f" ±{(row.ci_high - row.ci_low) / 2:<4.1f}"
    if with_gap and row.gap is not None:
        text += f" ({row.gap:+5.1f})"
    return text


def _label(node: str, breakdown: tuple[str, ...]) -> str:
    name = "pooled" if node == POOLED else node
    return " ".join([name[:11], *breakdown])


def summary(
    rows: list[BenchmarkRow],
    failures: dict[str, NodeFailure] | None = None,
    max_groups: int = 4,
    max_lines: int = 30,
) -> str:
    """A readable grid per indicator and group dimension.

    Each cell shows the value in percent, its flags, the half-width of its 95% interval
    and, in brackets, the gap to the comparator in percentage points. Each grid line is
    a node (and breakdown cell); long grids are cut after ``max_lines`` lines.
    """
    lines: list[str] = []
    blocks: dict[tuple[str, str], list[BenchmarkRow]] = {}
    for r in rows:
        blocks.setdefault((r.indicator, r.group_dim), []).append(r)
    for (indicator, group_dim), block in blocks.items():
        comparator = block[0].comparator
        groups = [g for g in dict.fromkeys(r.group for r in block) if g not in ("UNK", TOTAL)]
        groups = [comparator, *[g for g in groups if g != comparator]][: max_groups + 1]
        by_key = {(r.node, tuple(r.breakdown.values()), r.group): r for r in block}
        keys = list(dict.fromkeys((r.node, tuple(r.breakdown.values())) for r in block))
        title = CATALOGUE[indicator].title if indicator in CATALOGUE else indicator
        lines.append(
            f"\n{title}, by {group_dim}: % ± 95% CI half-width (gap to {comparator}, points)"
        )
        width, label_width = 25, max(12, *(len(_label(*k)) + 1 for k in keys))
        head = "node " + " ".join(block[0].breakdown)
        lines.append(
            "  " + head.ljust(label_width) + "".join(g[:width].ljust(width) for g in groups)
        )
        for node, cell in keys[:max_lines]:
            values = [_cell(by_key.get((node, cell, g)), g != comparator) for g in groups]
            line = _label(node, cell).ljust(label_width) + "".join(v.ljust(width) for v in values)
            lines.append("  " + line.rstrip())
        if len(keys) > max_lines:
            lines.append(f"  ... {len(keys) - max_lines} more lines in the CSV")
    lines.append("flags: c confidential (not published), u low reliability, n node unavailable")
    for node, failure in (failures or {}).items():
        lines.append(f"node {node} did not answer: {failure.reason}: {failure.message}")
    return "\n".join(lines)
