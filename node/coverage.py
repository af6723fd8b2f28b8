"""Coverage that cannot be missed: what the mappings and the weight clipping did to the data.

Per variable: the share of rows mapped, the share missing, the values not mapped (counted
as ``UNK``) and the values ``default`` caught; for surveys, how many weights were clipped
to ``max_weight`` and how much of the total weight that removed. `node serve` logs these
at start (a warning for each unmapped, defaulted or clipped part), `Describe` reports
them to listed coordinators, rounded (`describe_shares`), and `node check` lists the
values. The ``[dataset]`` thresholds ``max_unmapped_share`` and
``max_clipped_weight_share`` make the node refuse to start when the data are worse.

An outcome variable (`indicators.concepts.OUTCOME_INPUTS`) with values outside its code
map makes the node refuse to start unless its ``[variables.NAME]`` declares ``unmapped =
"unknown"``: counted as ``UNK``, those persons would leave the rate's denominator without
a word. Declared, the rows that read it are flagged ``d`` and state their noisy unknown
share (`coordinator.rowmeta`). Group and breakdown variables keep their ``UNK`` as a code
of their own, visible in every table.

These figures are exact facts about the data, not private releases: only the operator
(logs, `node check`) and listed coordinators (`Describe`) see them, and `Describe` rounds
them to 10% steps: shares of good data down, shares of problems up, so a problem is never
rounded away.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from common.errors import ConfigError, Reason
from indicators.concepts import OUTCOME_INPUTS
from node.config import NodeConfig
from node.engines import TableEngine
from node.harmonise import Coverage

__all__ = [
    "CoverageFacts",
    "ceil_share",
    "check_thresholds",
    "check_unmapped_outcomes",
    "coverage_facts",
    "log_coverage",
    "unmapped_share",
    "unmapped_shares_ceil",
]

log = logging.getLogger(__name__)

UNMAPPED_SHOWN = 5  # first unmapped values an error names


@dataclass(frozen=True)
class CoverageFacts:
    """One variable's problems as `Describe` states them: shares rounded up to 10%."""

    missing_share_ceil: float = 0.0
    unmapped_share_ceil: float = 0.0
    default_share_ceil: float = 0.0
    default_values: int = 0  # distinct values `default` caught (listed only by node check)


def coverage_facts(cov: Coverage) -> CoverageFacts:
    """A variable's coverage problems, rounded for `Describe`."""
    return CoverageFacts(
        missing_share_ceil=ceil_share(cov.missing_share),
        unmapped_share_ceil=ceil_share(unmapped_share(cov)),
        default_share_ceil=ceil_share(cov.defaulted_share),
        default_values=len(cov.defaulted),
    )


def ceil_share(share: float) -> float:
    """A problem's share rounded up to 10% (any problem shows as at least 0.1)."""
    return min(math.ceil(round(share * 10, 9)) / 10, 1.0)


def unmapped_share(cov: Coverage) -> float:
    """Share of a variable's rows whose value is neither mapped nor missing."""
    return sum(cov.unmapped.values()) / cov.rows if cov.rows else 0.0


def unmapped_shares_ceil(coverage: dict[str, Coverage]) -> dict[str, float]:
    """Per variable with unmapped values, their share rounded up to 10% (for results)."""
    return {n: ceil_share(unmapped_share(c)) for n, c in coverage.items() if c.unmapped}


def log_coverage(config: NodeConfig, engine: TableEngine) -> None:
    """Log every variable's coverage and the weights' clipping; warn about each problem."""
    period = config.dataset.time_period
    for name, cov in engine.coverage.items():
        log.info(
            "%s %s: %s mapped %.1f%%, missing %.1f%%, unmapped %.1f%%, caught by default %.1f%%",
            config.id, period, name, 100 * cov.mapped_share, 100 * cov.missing_share,
            100 * unmapped_share(cov), 100 * cov.defaulted_share,
        )  # fmt: skip
        if cov.unmapped:
            log.warning(
                "%s %s: %s has %d unmapped value(s) in %.1f%% of rows, counted as UNK: %s "
                "(`fedstats node check` lists them)",
                config.id, period, name, len(cov.unmapped), 100 * unmapped_share(cov),
                ", ".join(list(cov.unmapped)[:5]),
            )  # fmt: skip
        if cov.defaulted:
            log.warning(
                "%s %s: default caught %d value(s) of %s in %.1f%% of rows: %s",
                config.id, period, len(cov.defaulted), name, 100 * cov.defaulted_share,
                ", ".join(list(cov.defaulted)[:5]),
            )  # fmt: skip
    clipping = engine.clipping
    if clipping is not None and clipping.clipped:
        log.warning(
            "%s %s: %d of %d weights are over max_weight %g (largest %g): clipping removes "
            "%.1f%% of the total weight",
            config.id, period, clipping.clipped, clipping.rows, clipping.max_weight,
            clipping.largest, 100 * clipping.weight_share_removed,
        )  # fmt: skip


def check_thresholds(config: NodeConfig, engine: TableEngine) -> None:
    """Refuse to serve data worse than the ``[dataset]`` thresholds allow.

    Raises:
        ConfigError: A variable's unmapped share is over ``max_unmapped_share``,
            clipping removes more of the weight than ``max_clipped_weight_share``, or an
            outcome has undeclared unmapped values (`check_unmapped_outcomes`).
    """
    dataset = config.dataset
    worst = [
        (name, unmapped_share(cov))
        for name, cov in engine.coverage.items()
        if unmapped_share(cov) > dataset.max_unmapped_share
    ]
    if worst:
        shown = ", ".join(f"{n} {s:.1%}" for n, s in worst)
        raise ConfigError(
            f"{config.file}: [dataset] max_unmapped_share is {dataset.max_unmapped_share:g}"
            f" but unmapped values are in {shown} of the rows ({dataset.time_period})",
            reason=Reason.COVERAGE_BELOW_THRESHOLD,
            field="dataset.max_unmapped_share",
            hint="map the values `fedstats node check` lists, or raise the threshold",
        )
    clipping = engine.clipping
    limit = dataset.max_clipped_weight_share
    if clipping is not None and clipping.weight_share_removed > limit:
        raise ConfigError(
            f"{config.file}: [dataset] max_clipped_weight_share is {limit:g} but clipping "
            f"the weights to max_weight {clipping.max_weight:g} removes "
            f"{clipping.weight_share_removed:.1%} of the total weight (largest weight "
            f"{clipping.largest:g}, {clipping.clipped} of {clipping.rows} clipped)",
            reason=Reason.COVERAGE_BELOW_THRESHOLD,
            field="privacy.max_weight",
            hint="raise [privacy] max_weight towards the largest weight, or the threshold",
        )
    check_unmapped_outcomes(config, engine)


def check_unmapped_outcomes(config: NodeConfig, engine: TableEngine) -> None:
    """Refuse outcome variables with unmapped values that no ``unmapped`` declaration covers.

    The error names the first local values, as `node check` and the start-up warnings
    do: it is raised before the node serves, for the operator's eyes only, never sent.

    Raises:
        ConfigError: Naming the file and, per variable, its column, how many distinct
            values and rows are outside the map and the first of them, with both fixes.
    """
    found = [
        (name, cov)
        for name, cov in engine.coverage.items()
        if cov.unmapped and name in OUTCOME_INPUTS and name not in config.unmapped_unknown
    ]
    if not found:
        return
    parts = []
    for name, cov in found:
        rows = cov.rows - cov.mapped - cov.missing
        first = ", ".join(repr(v) for v in list(cov.unmapped)[:UNMAPPED_SHOWN])
        more = ", ..." if len(cov.unmapped) > UNMAPPED_SHOWN else ""
        parts.append(
            f"[variables.{name}] column {cov.column!r}: {len(cov.unmapped)} distinct "
            f"value(s) in {rows} of {cov.rows} rows ({first}{more})"
        )
    names = ", ".join(f"[variables.{n}]" for n, _ in found)
    raise ConfigError(
        f"{config.file}: outcome values outside the code map in time period "
        f"{config.dataset.time_period}: {'; '.join(parts)}. Counted as unknown, these "
        "persons would leave the rates' denominators without a flag",
        reason=Reason.UNMAPPED_OUTCOME,
        field=f"variables.{found[0][0]}.map",
        hint=f"map the values in {names} map (`fedstats node check` lists them), or declare "
        'unmapped = "unknown" in that section to count them as an unknown outcome (the '
        "rows that read it are then flagged d with their unknown share)",
    )
