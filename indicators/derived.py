"""Derived harmonised variables: public rules on other harmonised codes (DESIGN sections 2-3).

Every indicator is one table with one outcome partition. When an indicator's outcome
combines several harmonised variables (an early leaver has ISCED 0-2 *and* is not in
education), the node derives a per-person variable at load time with a rule from this
module, so the table engine still counts one outcome. The rules are pure functions of
harmonised codes, one person at a time; `node.derive` applies them to whole columns
through lookup tables, so every node applies exactly the same definition.

A derived variable exists on a node only when the node maps all of its inputs. Its value
is ``UNK`` when an input the definition reads for that person is ``UNK``:

- ``elet`` (``Y``/``N``) reads ``isced11`` and ``in_educ`` for everyone, as Eurostat's
  denominator excludes non-response to either question;
- ``neet`` (``Y``/``N``) reads ``wstatus`` and ``in_educ`` for everyone;
- ``overqual`` (``OVQ``/``MATCH``/``NAP``) reads ``wstatus`` first: the non-employed are
  ``NAP``; for the employed it reads ``isced11`` (below tertiary: ``NAP``), then ``isco08``
  for the tertiary-educated (ISCO 1-3: ``MATCH``, ISCO 4-9: ``OVQ``, armed forces ``OC0``:
  ``NAP``, as Eurostat leaves them out of both).

``mig_background`` can be derived from the person's own country-of-birth group
(``c_birth``) and both parents' groups (`migration_background`), and the variables that
apply to part of the population get ``NAP`` outside it (`applicable`): ``reason``,
``yearesid`` and ``arrival_cohort`` apply to the foreign-born, ``stapro`` and ``isco08``
to the employed (`APPLIES_TO`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from indicators.variables import ARRIVAL_COHORTS, CATEGORICAL, NAP, UNK, YEARESID

__all__ = [
    "APPLIES_TO",
    "DERIVED",
    "EMPLOYED",
    "FOREIGN_BORN",
    "IN",
    "MEMBERSHIP",
    "OUT",
    "Derivation",
    "Subpopulation",
    "applicable",
    "arrival_cohort",
    "early_leaver",
    "migration_background",
    "neet",
    "overqualified",
    "years_of_residence",
]


@dataclass(frozen=True)
class Derivation:
    """A variable computed per person from other harmonised variables.

    Attributes:
        name: The derived variable (a key of `CATEGORICAL`).
        inputs: The harmonised variables it reads, in the rule's argument order.
        rule: Input codes to the derived code.
        definition: The definition in words.
    """

    name: str
    inputs: tuple[str, ...]
    rule: Callable[..., str]
    definition: str


def early_leaver(isced11: str, in_educ: str) -> str:
    """``Y`` for at most lower secondary attainment (ISCED 0-2) and not in education."""
    if UNK in (isced11, in_educ):
        return UNK
    return "Y" if isced11 == "ED0-2" and in_educ == "N" else "N"


def neet(wstatus: str, in_educ: str) -> str:
    """``Y`` for a person neither employed nor in education or training."""
    if UNK in (wstatus, in_educ):
        return UNK
    return "Y" if wstatus != "EMP" and in_educ == "N" else "N"


_HIGH_SKILL = frozenset({"OC1", "OC2", "OC3"})
_LOW_MEDIUM_SKILL = frozenset({"OC4", "OC5", "OC6", "OC7", "OC8", "OC9"})


def overqualified(wstatus: str, isced11: str, isco08: str) -> str:
    """``OVQ``/``MATCH`` for the tertiary-educated employed, ``NAP`` for everyone else."""
    if wstatus == UNK:
        return UNK
    if wstatus != "EMP":
        return NAP
    if isced11 == UNK:
        return UNK
    if isced11 != "ED5-8":
        return NAP
    if isco08 in _HIGH_SKILL:
        return "MATCH"
    if isco08 in _LOW_MEDIUM_SKILL:
        return "OVQ"
    return NAP if isco08 == "OC0" else UNK


DERIVED: dict[str, Derivation] = {
    d.name: d
    for d in (
        Derivation(
            "elet",
            ("isced11", "in_educ"),
            early_leaver,
            "at most lower secondary attainment (ISCED 0-2) and not in formal or non-formal "
            "education or training in the last 4 weeks",
        ),
        Derivation(
            "neet",
            ("wstatus", "in_educ"),
            neet,
            "not employed (unemployed or inactive) and not in formal or non-formal education "
            "or training in the last 4 weeks",
        ),
        Derivation(
            "overqual",
            ("wstatus", "isced11", "isco08"),
            overqualified,
            "employed with tertiary attainment (ISCED 5-8) in a low- or medium-skilled job "
            "(ISCO-08 major groups 4-9: OVQ) or a high-skilled one (groups 1-3: MATCH)",
        ),
    )
}


def migration_background(own: str, father: str, mother: str) -> str:
    """Migration background from country-of-birth groups (``c_birth`` codes).

    Args:
        own: The person's own ``c_birth`` code.
        father: The father's country-of-birth group (``NAT``, a foreign group or ``UNK``).
        mother: The mother's, likewise.

    Returns:
        ``FB`` for the foreign-born whatever their parents; for the native-born
        ``NB_2FBP``, ``NB_1FBP`` or ``NB_NBP`` by the number of foreign-born parents; ``UNK``
        when the own country of birth is unknown, or a parent's is unknown and would
        decide the code.
    """
    if own == UNK:
        return UNK
    if own != "NAT":
        return "FB"
    if UNK in (father, mother):
        return UNK
    foreign = (father != "NAT") + (mother != "NAT")
    return ("NB_NBP", "NB_1FBP", "NB_2FBP")[foreign]


IN, OUT = "IN", "OUT"  # membership of the population a variable applies to (else UNK)


@dataclass(frozen=True)
class Subpopulation:
    """Who a partly applicable variable applies to, read from harmonised variables.

    Attributes:
        name: What the population is, in words.
        sources: In order of preference: a harmonised variable and, for its codes, whether
            the person is ``IN`` or ``OUT`` of the population (codes not listed: unknown).
    """

    name: str
    sources: tuple[tuple[str, dict[str, str]], ...]


FOREIGN_BORN = Subpopulation(
    "the foreign-born",
    (
        ("c_birth", {"NAT": OUT, "EU27_2020_FOR": IN, "NEU27_2020_FOR": IN}),
        ("mig_background", {"FB": IN, "NB_2FBP": OUT, "NB_1FBP": OUT, "NB_NBP": OUT}),
    ),
)
EMPLOYED = Subpopulation("the employed", (("wstatus", {"EMP": IN, "UNE": OUT, "INAC": OUT}),))

APPLIES_TO: dict[str, Subpopulation] = {
    "reason": FOREIGN_BORN,
    "yearesid": FOREIGN_BORN,
    "arrival_cohort": FOREIGN_BORN,
    "stapro": EMPLOYED,
    "isco08": EMPLOYED,
}

MEMBERSHIP = (IN, OUT, UNK)  # the codes of a membership column, in this order


def applicable(code: str, member: str) -> str:
    """A partly applicable variable's code once the person's membership is known.

    Outside the population the variable is ``NAP``, whatever the column said; inside it a
    ``NAP`` contradicts the membership and becomes ``UNK``; when the membership is unknown
    the mapped code stands.
    """
    if member == OUT:
        return NAP
    if member == IN and code == NAP:
        return UNK
    return code


def years_of_residence(years: int) -> str:
    """The ``yearesid`` code of a number of whole years since arrival (at least 0)."""
    return _band(years, YEARESID)


def arrival_cohort(year: int) -> str:
    """The ``arrival_cohort`` code of an arrival year (1900 or later)."""
    return _band(year, ARRIVAL_COHORTS)


def _band(value: int, bands: tuple[tuple[int, str], ...]) -> str:
    if value < bands[0][0]:
        raise ValueError(f"{value} is below the first band ({bands[0][0]})")
    return [code for low, code in bands if value >= low][-1]


def _check() -> None:
    """The code lists and rules agree (run at import: a broken table is a bug)."""
    for name, derivation in DERIVED.items():
        assert name in CATEGORICAL and all(i in CATEGORICAL for i in derivation.inputs)
    for name, population in APPLIES_TO.items():
        assert NAP in CATEGORICAL[name].codes, name
        for source, members in population.sources:
            assert set(members) <= set(CATEGORICAL[source].codes), source
    for _, code in (*YEARESID, *ARRIVAL_COHORTS):
        assert code in CATEGORICAL["yearesid"].codes + CATEGORICAL["arrival_cohort"].codes


_check()
