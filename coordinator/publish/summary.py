"""The benchmark on a terminal: a grid per indicator, and what a reader must know beside it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from coordinator.client import NodeFailure
from coordinator.combine import poverty_lines
from coordinator.publish.outcome import Outcome
from coordinator.rows import POOLED, TOTAL, BenchmarkRow
from indicators.catalogue import BELOW_LINE, CATALOGUE
from indicators.concepts import UNMAPPED_AS_UNKNOWN

__all__ = ["charges", "names_of", "outcome_notes", "summary"]


def _cell(row: BenchmarkRow | None, with_gap: bool) -> str:
    if row is None:
        return ""
    flags = str(row.flags)
    if row.value is None:
        return f":{flags}"  # Eurostat shows ':' for a value that is not available
    text = f"{row.value:5.1f}{flags:<1}"
    if row.ci_low is not None and row.ci_high is not None:
        text += f" ±{(row.ci_high - row.ci_low) / 2:<4.1f}"
    if with_gap and row.gap is not None:
        text += f" ({row.gap:+5.1f})"
    return text


def _label(node: str, breakdown: tuple[str, ...], names: Mapping[str, str]) -> str:
    name = "pooled" if node == POOLED else names.get(node) or node
    return " ".join([name, *breakdown])


def summary(
    rows: Sequence[BenchmarkRow],
    failures: Mapping[str, NodeFailure] | None = None,
    max_groups: int = 4,
    max_lines: int = 30,
    notes: list[str] | None = None,
    names: Mapping[str, str] | None = None,
) -> str:
    """A readable grid per indicator and group dimension.

    Each cell shows the value in percent, its flags, the half-width of its 95% interval
    and, in brackets, the gap to the comparator in percentage points. Each grid line is
    a node (by its ``[node] name`` from ``names``, else its id) and breakdown cell; long
    grids are cut after ``max_lines`` lines.
    """
    names = names or {}
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
        width, label_width = 25, max(12, *(len(_label(*k, names)) + 1 for k in keys))
        head = "node " + " ".join(block[0].breakdown)
        lines.append(
            "  " + head.ljust(label_width) + "".join(g[:width].ljust(width) for g in groups)
        )
        for node, cell in keys[:max_lines]:
            values = [_cell(by_key.get((node, cell, g)), g != comparator) for g in groups]
            line = _label(node, cell, names).ljust(label_width) + "".join(
                v.ljust(width) for v in values
            )
            lines.append("  " + line.rstrip())
        if len(keys) > max_lines:
            lines.append(f"  ... {len(keys) - max_lines} more lines in the CSV")
    lines.append(
        "flags (Eurostat): c confidential (not published), u low reliability, "
        "d definition or coverage differs, z not applicable; ':' a value that is not published"
    )
    for node, failure in (failures or {}).items():
        lines.append(f"node {node} did not answer: {failure.reason}: {failure.message}")
    lines += notes or []
    return "\n".join(lines)


def outcome_notes(outcome: Outcome) -> list[str]:
    """What a reader must know beside the numbers.

    Indicators a node could not answer, definitions that deviate, the poverty lines used,
    and what each node charged (or that its answer came from its cache, free).
    """
    notes = [charges(outcome)] if outcome.answers else []
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
            notes.append(f"{node}: {which} not provided: {reason}")
    read = {v for spec in outcome.plan.tables for v in spec.variables()}
    for node, answer in outcome.answers.items():
        for variable, note in answer.deviations.items():
            if variable in read:
                notes.append(f"{node}: flagged d where it uses {variable}: {note}")
        unmapped = sorted(
            {
                pair.split("=", 1)[0]
                for variable in read
                for pair in answer.concepts.get(variable, "").split(";")
                if pair.endswith(f"={UNMAPPED_AS_UNKNOWN.code}")
            }
        )
        for variable in unmapped:
            notes.append(
                f"{node}: flagged d where it uses {variable}: values outside its code map "
                "are counted as unknown (each row states its unknown share)"
            )
    for name in outcome.plan.query.indicators:
        indicator, spec = outcome.plan.indicator(name)
        having = {n: a for n, a in outcome.answers.items() if spec.key in a.cells}
        if indicator.kind == BELOW_LINE and having:
            lines = poverty_lines(outcome.plan, having)
            shown = ", ".join(f"{n} {line:,.0f}" for n, line in lines.items())
            notes.append(f"{name}: national poverty line per node: {shown or 'none'}")
            unlined = sorted(set(having) - set(lines))
            if unlined:
                notes.append(
                    f"{name}: not computed for {', '.join(unlined)}: no national poverty line "
                    "([dataset] poverty_line), and never from a line pooled across countries"
                )
    return notes


def charges(outcome: Outcome) -> str:
    """Rho each answering node charged, and which answers came from the node's cache."""
    parts = []
    for node, answer in outcome.answers.items():
        rho = outcome.rho_charged.get(node, 0.0)
        cached = " (from its cache: nothing charged)" if answer.cached else ""
        parts.append(f"{node} {rho:g}{cached}")
    return "rho charged per node: " + ", ".join(parts)


def names_of(outcomes: Sequence[Outcome]) -> dict[str, str]:
    """Each answering node's ``[node] name``, by id."""
    return {n: a.name for o in outcomes for n, a in o.answers.items() if a.name}
