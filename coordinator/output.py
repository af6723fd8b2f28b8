"""Benchmark outputs: CSV with DESIGN's columns, Parquet, SDMX, HTML, a terminal summary.

Every output publishes the same numbers: rates and gaps rounded to one decimal,
denominators to whole persons, nothing where a value is not published (flag ``c``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from common.errors import FedstatsError, Reason
from coordinator.client import NodeFailure
from coordinator.combine import POOLED, TOTAL, BenchmarkRow, poverty_lines
from indicators.catalogue import BELOW_LINE, CATALOGUE

if TYPE_CHECKING:
    from coordinator.run import QueryOutcome

__all__ = [
    "COLUMNS_AFTER",
    "COLUMNS_BEFORE",
    "FORMATS",
    "outcome_notes",
    "output_files",
    "published",
    "summary",
    "write_csv",
    "write_outputs",
    "write_parquet",
]

FORMATS = ("csv", "parquet", "sdmx", "html")
_FLOAT_COLUMNS = {
    "value": 1, "ci_low": 1, "ci_high": 1, "comparator_value": 1, "gap": 1, "gap_ci_low": 1,
    "gap_ci_high": 1, "denominator": 0,
}  # fmt: skip

COLUMNS_BEFORE = ["node", "geo", "time_period", "indicator", "group_dim", "group"]
COLUMNS_AFTER = [
    "value", "ci_low", "ci_high", "comparator", "comparator_value", "gap", "gap_ci_low",
    "gap_ci_high", "denominator", "flags", "unit",
]  # fmt: skip


def published(x: float | None, digits: int = 1) -> str:
    """A number as published in every output: one decimal (counts: none), blank for None."""
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
                    published(r.value), published(r.ci_low), published(r.ci_high), r.comparator,
                    published(r.comparator_value), published(r.gap), published(r.gap_ci_low),
                    published(r.gap_ci_high), published(r.denominator, 0), r.flags, r.unit,
                ]
            )  # fmt: skip


def _published_float(x: float | None, digits: int) -> float | None:
    text = published(x, digits)
    return float(text) if text else None


def write_parquet(rows: list[BenchmarkRow], path: Path) -> None:
    """Write benchmark.parquet: benchmark.csv's columns, numbers as float64 (null if blank)."""
    extra = breakdown_columns(rows)
    columns: dict[str, list[str | float | None]] = {
        "node": [r.node for r in rows],
        "geo": [r.geo for r in rows],
        "time_period": [r.time_period for r in rows],
        "indicator": [r.indicator for r in rows],
        "group_dim": [r.group_dim for r in rows],
        "group": [r.group for r in rows],
        **{c: [r.breakdown.get(c, "") for r in rows] for c in extra},
    }
    for name in COLUMNS_AFTER:
        if name in _FLOAT_COLUMNS:
            digits = _FLOAT_COLUMNS[name]
            columns[name] = [_published_float(getattr(r, name), digits) for r in rows]
        else:
            columns[name] = [getattr(r, name) for r in rows]
    schema = pa.schema([(n, pa.float64() if n in _FLOAT_COLUMNS else pa.string()) for n in columns])
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns, schema=schema), path)


def check_formats(formats: Sequence[str]) -> list[str]:
    """The requested formats, deduplicated, in their given order.

    Raises:
        FedstatsError: An unknown format, or none (reason ``UNSUPPORTED_FORMAT``).
    """
    wanted = list(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown or not wanted:
        raise FedstatsError(
            f"unknown output format(s): {', '.join(unknown)}" if unknown else "no output format",
            reason=Reason.UNSUPPORTED_FORMAT,
            field="--format",
            hint=f"choose one or more of {','.join(FORMATS)}, e.g. --format csv,html",
        )
    return wanted


def output_files(written: dict[str, Path]) -> list[Path]:
    """Every file ``write_outputs`` wrote (the ``sdmx`` entry is a directory), sorted."""
    files: list[Path] = []
    for path in written.values():
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return files


def write_outputs(
    outcomes: list[QueryOutcome], out_dir: Path, formats: Sequence[str]
) -> dict[str, Path]:
    """Write the benchmark of one or more queries in the requested formats.

    Everything that can fail (an unknown format, rows SDMX cannot express) fails before
    the first file is written.

    Args:
        outcomes: The queries' outcomes; their rows are written together.
        out_dir: Directory for ``benchmark.csv``, ``benchmark.parquet``, ``sdmx/`` and
            ``report.html``.
        formats: Names from ``FORMATS``.

    Returns:
        The path written per format (for ``sdmx`` the directory holding the structure
        message and the SDMX-CSV files).

    Raises:
        FedstatsError: An unknown format (``UNSUPPORTED_FORMAT``) or rows SDMX cannot
            express; nothing is written then.
    """
    wanted = check_formats(formats)
    rows = [row for outcome in outcomes for row in outcome.rows]
    release = None
    if "sdmx" in wanted:
        from coordinator.sdmx import prepare_sdmx  # sdmx1 takes a second to import

        release = prepare_sdmx(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for fmt in wanted:
        if fmt == "csv":
            written[fmt] = out_dir / "benchmark.csv"
            write_csv(rows, written[fmt])
        elif fmt == "parquet":
            written[fmt] = out_dir / "benchmark.parquet"
            write_parquet(rows, written[fmt])
        elif fmt == "sdmx" and release is not None:
            written[fmt] = out_dir / "sdmx"
            release.write(written[fmt])
        elif fmt == "html":
            from coordinator.report import write_report

            written[fmt] = out_dir / "report.html"
            write_report(outcomes, written[fmt])
    return written


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
    notes: list[str] | None = None,
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
        if comparator in groups:  # a group comparator first; a cohort one is a cell, not a group
            groups = [comparator, *[g for g in groups if g != comparator]]
        groups = groups[: max_groups + 1]
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
    lines.append(
        "flags: c confidential (not published), u low reliability, n node unavailable, "
        "d definition differs"
    )
    for node, failure in (failures or {}).items():
        lines.append(f"node {node} did not answer: {failure.reason}: {failure.message}")
    lines += notes or []
    return "\n".join(lines)


def outcome_notes(outcome: QueryOutcome) -> list[str]:
    """What a reader must know beside the numbers.

    Indicators a node could not answer, definitions that deviate, the poverty lines used.
    """
    notes = []
    for node, lacking in outcome.missing.items():
        by_reason: dict[str, list[str]] = {}
        for name, reason in lacking.items():
            by_reason.setdefault(reason, []).append(name)
        for reason, names in by_reason.items():
            which = (
                "every indicator"
                if len(names) == len(lacking) == len(outcome.plan.query.indicators)
                else ", ".join(names)
            )
            notes.append(f"{node}: {which} flagged n: {reason}")
    read = {v for spec in outcome.plan.tables for v in spec.variables()}
    for node, answer in outcome.answers.items():
        for variable, note in answer.deviations.items():
            if variable in read:
                notes.append(f"{node}: flagged d where it uses {variable}: {note}")
    for name in outcome.plan.query.indicators:
        indicator, spec = outcome.plan.indicator(name)
        having = {n: a for n, a in outcome.answers.items() if spec.key in a.cells}
        if indicator.kind == BELOW_LINE and having:
            lines = poverty_lines(outcome.plan, spec, list(having), having)
            shown = ", ".join(f"{n} {line:,.0f}" for n, line in lines.items())
            notes.append(f"{name}: poverty line per node: {shown}")
    return notes
