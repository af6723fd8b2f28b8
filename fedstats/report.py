"""Operator reports: mapping coverage (`node check`) and the budget ledger (`budget`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from node.audit import read_entries
from node.config import NodeConfig
from node.engines import TableEngine
from node.harmonise import Harmonised, WeightClipping
from node.ledger import Ledger
from privacy.budget import DEFAULT_DELTA, epsilon_for, from_micro

__all__ = ["budget_report", "coverage_report", "weights_lines"]

MAX_UNMAPPED_SHOWN = 15


def coverage_report(config: NodeConfig, data: Harmonised | TableEngine) -> str:
    """Per variable: column, mapped and missing shares, unmapped and defaulted values.

    Each value with its row count; then the weights against ``max_weight``.

    ``data`` is the memory engine's harmonised data, or an SQL engine, whose coverage
    was counted by its database (`node.engines.sql`).
    """
    source = config.dataset.table or (config.dataset.path and config.dataset.path.name)
    lines = [
        f"node {config.id} ({config.name}), dataset {source} ({config.dataset.engine}), "
        f"{data.rows} rows after where",
        "no budget was spent: this report stays on the node",
        "",
        f"{'variable':<16} {'column':<24} {'mapped':>8} {'missing':>8} {'unmapped':>9}"
        f" {'default':>8}",
    ]
    problems = 0
    for name, cov in data.coverage.items():
        n_unmapped = sum(cov.unmapped.values())
        lines.append(
            f"{name:<16} {cov.column:<24} {cov.mapped_share:>8.1%} {cov.missing_share:>8.1%}"
            f" {n_unmapped:>9} {sum(cov.defaulted.values()):>8}"
        )
        if cov.codes:
            lines.append("    codes: " + ", ".join(f"{c}={n}" for c, n in cov.codes.items()))
        fate = (
            "not a valid age: in no table"
            if name == "age"
            else 'an unknown outcome, as declared (unmapped = "unknown")'
            if name in config.unmapped_unknown
            else "counted as UNK"
        )
        for value, count in list(cov.unmapped.items())[:MAX_UNMAPPED_SHOWN]:
            problems += 1
            lines.append(f"    unmapped value {value!r}: {count} rows ({fate})")
        if len(cov.unmapped) > MAX_UNMAPPED_SHOWN:
            lines.append(f"    ... and {len(cov.unmapped) - MAX_UNMAPPED_SHOWN} more values")
        if cov.defaulted:
            shown = ", ".join(f"{v!r} ({n})" for v, n in cov.defaulted.items())
            lines.append(
                f"    default caught {len(cov.defaulted)} value(s), "
                f"{sum(cov.defaulted.values())} rows ({cov.defaulted_share:.1%}): {shown}"
            )
    lines.append("")
    if problems:
        lines.append(
            "to map a value, add it to [variables.NAME] map in the config, or set default = ..."
        )
    else:
        lines.append("every non-missing value maps")
    lines += weights_lines(data.clipping)
    return "\n".join(lines)


def weights_lines(clipping: WeightClipping | None) -> list[str]:
    """The weights against ``max_weight``: the largest, how many and how much were clipped."""
    if clipping is None:
        return []
    line = (
        f"weights: largest {clipping.largest:,.6g} against max_weight "
        f"{clipping.max_weight:,.6g}; {clipping.clipped} of {clipping.rows} persons clipped "
        f"({clipping.clipped_share:.1%}), {clipping.weight_share_removed:.1%} of the total "
        f"weight removed ({clipping.weight:,.0f} -> {clipping.kept:,.0f})"
    )
    if not clipping.clipped:
        return ["", line]
    return [
        "",
        line,
        "    clipped weights shrink every weighted count: raise [privacy] max_weight to the "
        "largest weight (the noise grows with it) or accept the bias knowingly",
    ]


def budget_report(dataset: str, ledger: Ledger) -> str:
    """Totals and every release of one dataset's ledger."""
    state = ledger.state()
    lines = [
        f"dataset {dataset}",
        f"  rho total {state.total:g}, spent {state.spent:g}, remaining {state.remaining:g}, "
        f"per-query cap {state.max_per_query:g}",
        f"  as epsilon at delta {DEFAULT_DELTA:g}: total {epsilon_for(state.total):.3g}, "
        f"spent {epsilon_for(state.spent):.3g}, remaining {epsilon_for(state.remaining):.3g}, "
        f"per-query cap {epsilon_for(state.max_per_query):.3g}",
        "  (zCDP rho adds up across queries; epsilon does not: each figure is what that rho"
        " is worth on its own)",
        "",
        f"{'when (UTC)':<20} {'query id':<48} {'rho':>8}  state",
    ]
    for e in ledger.entries():
        when = dt.datetime.fromtimestamp(e.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        note = e.state if e.answered_by == e.query_id else f"cached from {e.answered_by}"
        who = f" by {e.coordinator}" if e.coordinator else ""
        lines.append(f"{when:<20} {e.query_id:<48} {e.rho:>8g}  {note}{who}")
    return "\n".join(lines)


def audit_report(path: Path) -> str:
    """Every audit entry, one line each."""
    lines = [f"{'seq':>5}  {'when (UTC)':<19}  {'event':<8} {'query id':<44} {'rho':>8}  detail"]
    for e in read_entries(path):
        when = dt.datetime.fromtimestamp(e.at_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        rho = f"{from_micro(e.micro_rho):g}" if e.event == "release" else ""
        detail = e.reason or (f"by {e.coordinator}" if e.coordinator else "")
        lines.append(f"{e.seq:>5}  {when:<19}  {e.event:<8} {e.query_id:<44} {rho:>8}  {detail}")
    return "\n".join(lines)
