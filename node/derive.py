"""Derived variables on whole columns: the public rules of `indicators.derived` as lookups.

A rule of `indicators.derived` maps a few input codes to one code. Its inputs have small
closed code lists, so the node evaluates the rule once for every combination of input
codes, stores the results in a lookup table indexed by the mixed-radix number of the
inputs, and derives a whole column with one gather. The definition is therefore exactly
the pure rule, and a million rows cost a few milliseconds.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from indicators.derived import APPLIES_TO, MEMBERSHIP, applicable, migration_background
from indicators.variables import ARRIVAL_COHORTS, CATEGORICAL, UNK, YEARESID

__all__ = ["apply_rule", "arrival_codes", "from_parents", "membership", "refine"]

Codes = npt.NDArray[np.int8]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MIN_ARRIVAL_YEAR = ARRIVAL_COHORTS[0][0]
_BLOCK = 1 << 16  # rows a rule is applied to at once


def apply_rule(
    rule: Callable[..., str],
    columns: Sequence[npt.NDArray[np.integer]],
    code_lists: Sequence[tuple[str, ...]],
    out: str,
) -> Codes:
    """Apply a per-person rule to whole code columns.

    Args:
        rule: Input codes (one per column) to a code of ``out``.
        columns: Positions in each input's code list, one array per input.
        code_lists: The code list of each input.
        out: The harmonised variable the rule produces.

    Returns:
        Positions in ``out``'s code list (int8).
    """
    target = CATEGORICAL[out]
    lut = np.array(
        [target.index(rule(*combo)) for combo in itertools.product(*code_lists)], dtype=np.int8
    )
    rows = len(columns[0])
    result: Codes = np.empty(rows, dtype=np.int8)
    for start in range(0, rows, _BLOCK):  # a block at a time: the index stays in cache
        end = min(start + _BLOCK, rows)
        index = np.zeros(end - start, dtype=np.intp)
        for column, codes in zip(columns, code_lists, strict=True):
            index *= len(codes)
            index += column[start:end]
        result[start:end] = lut[index]
    return result


def membership(codes: Mapping[str, Codes], name: str) -> Codes | None:
    """Who ``name`` applies to, per row: positions in `MEMBERSHIP` (``IN``/``OUT``/``UNK``).

    The first mapped source of the variable's population decides; rows it leaves unknown
    are taken from the next source. None when the node maps no source.
    """
    population = APPLIES_TO[name]
    member: Codes | None = None
    unknown = MEMBERSHIP.index(UNK)
    for source, members in population.sources:
        if source not in codes:
            continue
        lut = np.array(
            [MEMBERSHIP.index(members.get(c, UNK)) for c in CATEGORICAL[source].codes],
            dtype=np.int8,
        )
        found = lut[codes[source]]
        member = found if member is None else np.where(member == unknown, found, member)
    return member


def refine(name: str, coded: Codes, codes: Mapping[str, Codes]) -> Codes:
    """``NAP`` outside the population a variable applies to (`indicators.derived.applicable`)."""
    if name not in APPLIES_TO:
        return coded
    member = membership(codes, name)
    if member is None:
        return coded
    return apply_rule(applicable, (coded, member), (CATEGORICAL[name].codes, MEMBERSHIP), name)


def from_parents(own: Codes, father: Codes, mother: Codes) -> Codes:
    """``mig_background`` from the own and both parents' ``c_birth`` positions."""
    groups = CATEGORICAL["c_birth"].codes
    return apply_rule(
        migration_background, (own, father, mother), (groups, groups, groups), "mig_background"
    )


def arrival_codes(
    name: str, years: FloatArray, reference_year: int, missing: str
) -> tuple[Codes, BoolArray]:
    """``yearesid`` or ``arrival_cohort`` positions from arrival years.

    Args:
        name: ``"yearesid"`` or ``"arrival_cohort"``.
        years: Arrival years as numbers, NaN where empty or not a number.
        reference_year: The dataset's reference year.
        missing: The code of an empty (NaN) arrival year.

    Returns:
        The positions, and which rows hold a number that is not a plausible arrival year
        (not whole, before `MIN_ARRIVAL_YEAR`, after the reference year): those are ``UNK``.
    """
    variable = CATEGORICAL[name]
    present = ~np.isnan(years)
    valid = (
        present
        & (years == np.floor(years))
        & (years >= MIN_ARRIVAL_YEAR)
        & (years <= reference_year)
    )
    bands = YEARESID if name == "yearesid" else ARRIVAL_COHORTS
    lows = np.array([low for low, _ in bands], dtype=np.float64)
    positions = np.array([variable.index(code) for _, code in bands], dtype=np.int8)
    measure = reference_year - years if name == "yearesid" else years
    band = np.searchsorted(lows, np.where(valid, measure, lows[0]), side="right") - 1
    coded = np.where(valid, positions[band], np.int8(variable.index(UNK))).astype(np.int8)
    coded[~present] = variable.index(missing)
    return coded, present & ~valid
