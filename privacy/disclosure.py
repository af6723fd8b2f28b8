"""Disclosure rules: flags computed from noisy values only (DESIGN section 4).

Nothing here ever sees a true count. The rules read the indicator's own denominator (its
released margin) and, for surveys, the noisy number of observations in it, each with the
standard deviation of its noise. A count passes a threshold ``T`` only when it clears it
by a safety margin in units of its noise: ``x >= max(T, T / 2 + z sigma + 1/2)`` with
``z = Phi^-1(certainty)`` (the half a continuity correction: counts and their noise are
integers), so that a group of ``T / 2`` persons passes with probability at most
``1 - certainty`` (1% by default), whatever the noise; the unit tests compute it exactly.

Because every released cell carries its own noise, no secondary suppression is needed:
subtracting published margins recovers only another noisy value. Differential privacy,
not ``c``, is what protects individuals; the rules keep unreliable figures out of print.

Named rule sets (``[disclosure] rules``):

- ``eu-silc``: fewer than 20 observations or more than 50% item non-response: not
  published; 20-49 observations or 20-50% item non-response: flagged ``u`` (Commission
  Regulation (EC) No 1982/2003, Article 6, as applied in Eurostat's EU-SILC tables).
- ``lfs``: the office's own limits on *weighted* counts: below limit A not published,
  below limit B flagged ``u`` (Eurostat's EU-LFS publication guidelines; each country
  sets its A and B from its sample design); ``min_count`` = A, ``unreliable_below`` = B.
- ``register``: a frequency rule: a count below ``min_count`` (10) is not published.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TypeVar

import numpy as np
import numpy.typing as npt

__all__ = [
    "CONFIDENTIAL",
    "FLAG_CODES",
    "NAMED_RULES",
    "RULE_SETS",
    "UNRELIABLE",
    "DisclosureRules",
    "Judgement",
    "Noisy",
    "RuleColumns",
]

CONFIDENTIAL = "c"
UNRELIABLE = "u"
FLAG_CODES = ("", UNRELIABLE, CONFIDENTIAL)
"""A flag as `RuleColumns` gives it: its position in this tuple (0: none)."""
_U, _C = 1, 2

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
CodeArray = npt.NDArray[np.int8]
_Number = TypeVar("_Number", float, FloatArray)


@dataclass(frozen=True)
class Noisy:
    """A released count and the standard deviation of its noise (0: exact)."""

    value: float
    sigma: float = 0.0


@functools.cache
def _quantile(certainty: float) -> float:
    """The standard normal quantile of ``certainty`` (read once per rule set's value)."""
    return NormalDist().inv_cdf(certainty)


def _one(value: float) -> FloatArray:
    """One number as an array of one (what `RuleColumns` reads)."""
    return np.array([value], dtype=np.float64)


def _bar(threshold: _Number, z: _Number, sigma: _Number) -> _Number:
    """What a noisy count must reach besides ``threshold``: ``T / 2 + z sigma + 1/2``.

    Plain arithmetic, so `RuleColumns` computes the same number on arrays.
    """
    return threshold / 2 + z * sigma + 0.5


@dataclass(frozen=True)
class Judgement:
    """What the rules say about one value: its flag and whether it is withheld."""

    flag: str = ""
    suppressed: bool = False


@dataclass(frozen=True)
class DisclosureRules:
    """A node's disclosure rules.

    Attributes:
        min_count: Below this (observations; weighted persons when ``weighted``) a value
            is confidential (``c``) and not published.
        unreliable_below: Below this a value is flagged ``u`` (0: no such rule).
        max_cv: Coefficient of variation above which a value is flagged ``u``.
        unknown_flag: Item non-response share above which a value is flagged ``u``.
        unknown_suppress: Item non-response share above which it is not published.
        weighted: Whether the thresholds read weighted counts (LFS) rather than
            observations.
        certainty: Probability that a group of half ``min_count`` is suppressed.
        name: The named rule set these numbers come from ("" for explicit numbers only).
    """

    min_count: float = 10.0
    unreliable_below: float = 50.0
    max_cv: float = 0.3
    unknown_flag: float = 1.0
    unknown_suppress: float = 1.0
    weighted: bool = False
    certainty: float = 0.99
    name: str = ""

    @functools.cached_property
    def columns(self) -> RuleColumns:
        """These rules as `RuleColumns` of one value, which broadcast over any number of them.

        The rules are written once, on arrays: the methods below are them on one value.
        """
        return RuleColumns.of([self])

    def passes(self, count: Noisy, threshold: float) -> bool:
        """Whether a noisy count clears a threshold by the safety margin."""
        value, sigma = _one(count.value), _one(count.sigma)
        return bool(self.columns.passes(value, sigma, _one(threshold))[0])

    def judge(
        self, count: Noisy, observations: Noisy | None = None, unknown_share: float | None = None
    ) -> Judgement:
        """The flag of a value from its denominator's noisy margins (`RuleColumns.judge`).

        Args:
            count: The denominator's noisy (weighted, for surveys) count.
            observations: Its noisy number of observations (surveys; None for registers).
            unknown_share: The share of the population cell whose outcome is unknown.
        """
        observed = None
        if observations is not None:
            observed = (_one(observations.value), _one(observations.sigma), np.ones(1, bool))
        unknown = _one(math.nan if unknown_share is None else unknown_share)
        codes, withheld = self.columns.judge(
            (_one(count.value), _one(count.sigma)), observed, unknown
        )
        return Judgement(FLAG_CODES[int(codes[0])], suppressed=bool(withheld[0]))

    def estimate_flag(self, cell_flag: str, value: float, se: float) -> str:
        """Flag of an estimate: its cell's flag, or ``u`` when its CV is too high."""
        cell = np.array([FLAG_CODES.index(cell_flag)], dtype=np.int8)
        return FLAG_CODES[int(self.columns.estimate_flag(cell, _one(value), _one(se))[0])]

    @staticmethod
    def strictest(rules: list[DisclosureRules]) -> DisclosureRules:
        """The rules that flag whenever any of ``rules`` would (for pooled values)."""
        if not rules:
            return DisclosureRules()
        return DisclosureRules(
            min_count=max(r.min_count for r in rules),
            unreliable_below=max(r.unreliable_below for r in rules),
            max_cv=min(r.max_cv for r in rules),
            unknown_flag=min(r.unknown_flag for r in rules),
            unknown_suppress=min(r.unknown_suppress for r in rules),
            weighted=any(r.weighted for r in rules),
            certainty=max(r.certainty for r in rules),
            name=rules[0].name if len({r.name for r in rules}) == 1 else "",
        )


@dataclass(frozen=True)
class RuleColumns:
    """Many values' rules side by side, each `DisclosureRules` field an array over them.

    The one place the rules are written: `DisclosureRules`' methods are these on one
    value, a node judges a table's cells in one pass and a 300-city query each node's
    row of a group and cell. Arrays of one value broadcast against any number of values.
    Flags are codes, positions in `FLAG_CODES`.
    """

    min_count: FloatArray
    unreliable_below: FloatArray
    max_cv: FloatArray
    unknown_flag: FloatArray
    unknown_suppress: FloatArray
    weighted: BoolArray
    z: FloatArray  # the standard normal quantile of each certainty

    @classmethod
    def of(cls, rules: Sequence[DisclosureRules]) -> RuleColumns:
        """The rules of each value, in order."""

        def column(values: list[float]) -> FloatArray:
            return np.array(values, dtype=np.float64)

        return cls(
            column([r.min_count for r in rules]),
            column([r.unreliable_below for r in rules]),
            column([r.max_cv for r in rules]),
            column([r.unknown_flag for r in rules]),
            column([r.unknown_suppress for r in rules]),
            np.array([r.weighted for r in rules], dtype=bool),
            column([_quantile(r.certainty) for r in rules]),
        )

    def passes(self, value: FloatArray, sigma: FloatArray, threshold: FloatArray) -> BoolArray:
        """`DisclosureRules.passes` of each noisy count (``value``, ``sigma``)."""
        with np.errstate(invalid="ignore"):  # 0 * inf is nan, as Python's
            bar = _bar(threshold, self.z, sigma)
        high: FloatArray = np.where(bar > threshold, bar, threshold)  # Python's max
        passed: BoolArray = (threshold <= 0) | (value >= high)
        return passed

    def judge(
        self,
        count: tuple[FloatArray, FloatArray],
        observations: tuple[FloatArray, FloatArray, BoolArray] | None,
        unknown_share: FloatArray,
    ) -> tuple[CodeArray, BoolArray]:
        """`DisclosureRules.judge` of each value: its flag code and whether it is withheld.

        Args:
            count: Each denominator's noisy count and its noise sigma.
            observations: Each one's noisy number of observations, its sigma and whether
                it has them (a register's has none); None when none has.
            unknown_share: Each one's unknown-outcome share, nan where not released.
        """
        value, sigma = count
        if observations is not None:
            counted = self.weighted | ~observations[2]
            value = np.where(counted, value, observations[0])
            sigma = np.where(counted, sigma, observations[1])
        confidential = ~self.passes(value, sigma, self.min_count)
        unknown = np.where(np.isnan(unknown_share), 0.0, unknown_share)
        withheld = ~confidential & (unknown > self.unknown_suppress)
        unreliable = ~self.passes(value, sigma, self.unreliable_below) | (
            unknown > self.unknown_flag
        )
        codes: CodeArray = np.where(
            confidential, _C, np.where(withheld | unreliable, _U, 0)
        ).astype(np.int8)
        return codes, confidential | withheld

    def estimate_flag(self, cell_flag: CodeArray, value: FloatArray, se: FloatArray) -> CodeArray:
        """`DisclosureRules.estimate_flag` of each estimate, from its cell's flag code."""
        zero = value == 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            cv = se / np.where(zero, 1.0, np.abs(value))
        high = np.where(zero, se > 0, cv > self.max_cv)
        undefined = ~(np.isfinite(value) & np.isfinite(se))
        codes: CodeArray = np.where(
            cell_flag != 0, cell_flag, np.where(undefined | high, _U, 0)
        ).astype(np.int8)
        return codes


NAMED_RULES: dict[str, DisclosureRules] = {
    "eu-silc": DisclosureRules(
        min_count=20, unreliable_below=50, unknown_flag=0.2, unknown_suppress=0.5, name="eu-silc"
    ),
    "lfs": DisclosureRules(weighted=True, name="lfs"),  # A and B: the office's own
    "register": DisclosureRules(min_count=10, unreliable_below=0, name="register"),
}
"""The named rule sets; explicit numbers in ``[disclosure]`` override theirs."""

RULE_SETS = ("noisy_thresholds", *NAMED_RULES)
"""The disclosure rule sets this release applies (a node advertises them): explicit
thresholds on noisy denominators (``noisy_thresholds``) and the named sets."""
