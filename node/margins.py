"""Denominator margins: the low-noise base of the disclosure rules (DESIGN sections 3, 4).

With each table a node releases, per population cell (every dimension but the outcome),
one noisy count for each set of outcome codes an indicator of the table divides by
(`indicators.spec.margin_codes`), and one for the unknown outcome, so that the
coordinator judges ``c`` and ``u`` on the indicator's own denominator and measures item
non-response. For surveys each margin is released twice: weighted, and as the number of
observations. Each margin is its own Gaussian release with its own share of the table's
rho; one person changes one population cell of each by at most the table's sensitivity.
The margins of one source (weighted, or observations) share a sensitivity and a rho, so
their noise is drawn in one OpenDP invocation (`privacy.gaussian.release_each`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from indicators.spec import TableSpec, margin_codes
from node.engine import TableCounts
from privacy.budget import split_rho
from privacy.gaussian import release_each

__all__ = ["MarginRelease", "release_margins"]


@dataclass(frozen=True)
class MarginRelease:
    """One released margin. Everything here is public.

    Attributes:
        codes: The outcome codes summed.
        observations: Whether it counts observations (surveys) rather than persons.
        counts: One noisy count per population cell.
        sigma: Standard deviation of the noise on each count.
        rho: zCDP spent, by OpenDP's privacy map.
        sensitivity: L2 sensitivity the noise was calibrated to.
    """

    codes: list[str]
    observations: bool
    counts: list[int]
    sigma: float
    rho: float
    sensitivity: int


def release_margins(
    spec: TableSpec, full: TableCounts, sensitivity: int, rho: float
) -> list[MarginRelease]:
    """Release every margin of a table from its true counts with the unknown outcome.

    Args:
        spec: The table (its outcome without ``UNK``).
        full: True counts of the same table whose outcome has ``UNK`` appended last.
        sensitivity: The table's sensitivity (of weighted counts for surveys).
        rho: The zCDP for all margins together, split equally among them.
    """
    codes = (*spec.outcome.codes, "UNK")
    sets = margin_codes(spec)
    sources = [(full.counts, False, sensitivity)]
    if full.samples is not None:
        sources.append((full.samples, True, 1))
    rhos = split_rho(rho, [1.0] * (len(sets) * len(sources)))
    share = rhos[0]  # equal weights: every margin gets the same rho
    if any(r != share for r in rhos):
        raise ArithmeticError("the margins' shares of rho differ")
    out = []
    for true, observations, delta in sources:
        by_outcome = true.reshape(-1, len(codes))
        totals = [
            by_outcome[:, [codes.index(c) for c in chosen]].sum(axis=1).astype(np.int64)
            for chosen in sets
        ]
        for chosen, noisy in zip(sets, release_each(totals, delta, share), strict=True):
            out.append(
                MarginRelease(
                    list(chosen), observations, noisy.values.tolist(), noisy.sigma, noisy.rho,
                    noisy.sensitivity,
                )
            )  # fmt: skip
    return out
