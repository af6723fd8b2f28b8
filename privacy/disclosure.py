"""Disclosure rules: flags computed from noisy values only (DESIGN section 4).

Nothing here ever sees a true count. Because every released cell carries its own noise,
no secondary suppression is needed: subtracting published margins recovers only another
noisy value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["CONFIDENTIAL", "RULE_SETS", "UNRELIABLE", "DisclosureRules"]

CONFIDENTIAL = "c"
UNRELIABLE = "u"
RULE_SETS = ("noisy_thresholds",)
"""The disclosure rule sets this release applies (a node advertises them): one today,
`DisclosureRules`' thresholds on noisy counts, noisy sample counts and the CV."""


@dataclass(frozen=True)
class DisclosureRules:
    """A node's disclosure rules.

    Attributes:
        min_count: Noisy count below which a cell is confidential (``c``): its value
            is not published for that node.
        unreliable_below: Noisy sample count below which a cell is flagged ``u``.
        max_cv: Coefficient of variation above which a cell is flagged ``u``.
    """

    min_count: float = 10.0
    unreliable_below: float = 50.0
    max_cv: float = 0.3

    def cell_flag(self, noisy_count: float, noisy_sample_count: float | None = None) -> str:
        """Flag of a population cell from its noisy counts alone.

        Args:
            noisy_count: Noisy number of persons (sample persons for a survey).
            noisy_sample_count: Noisy unweighted count, when it differs from the above.
        """
        sample = noisy_count if noisy_sample_count is None else noisy_sample_count
        if noisy_count < self.min_count or sample < self.min_count:
            return CONFIDENTIAL
        if sample < self.unreliable_below:
            return UNRELIABLE
        return ""

    def estimate_flag(self, cell_flag: str, value: float, se: float) -> str:
        """Flag of an estimate: its cell's flag, or ``u`` when its CV is too high."""
        if cell_flag:
            return cell_flag
        if not math.isfinite(value) or not math.isfinite(se):
            return UNRELIABLE
        if value == 0.0:
            return UNRELIABLE if se > 0 else ""
        return UNRELIABLE if se / abs(value) > self.max_cv else ""

    @staticmethod
    def strictest(rules: list[DisclosureRules]) -> DisclosureRules:
        """The rules that flag whenever any of ``rules`` would (for pooled values)."""
        if not rules:
            return DisclosureRules()
        return DisclosureRules(
            min_count=max(r.min_count for r in rules),
            unreliable_below=max(r.unreliable_below for r in rules),
            max_cv=min(r.max_cv for r in rules),
        )
