"""The controlled vocabulary of concepts: how a node's definition of a variable is measured.

A node declares, per harmonised variable, the concept its data follow (``concept`` in
``[variables.NAME]``, DESIGN section 2). The first code of each vocabulary is the
harmonised definition; any other code makes the rows that read the variable ``d``
(definition differs), and the code travels with them into benchmark.csv, SDMX and the
reference metadata. Variables without a vocabulary of their own know only ``harmonised``.

One code is not a definition but a declared coverage deviation, valid for every outcome
variable (`OUTCOME_INPUTS`): ``unmapped_as_unknown`` (``unmapped = "unknown"`` in
``[variables.NAME]``) says the node counts values outside its code map as an unknown
outcome, so they leave the rate's denominator. Rows that read such a variable are flagged
``d`` and state their noisy unknown share (`coordinator.rowmeta`); without the
declaration a node whose outcome has unmapped values refuses to serve (`node.coverage`).
"""

from __future__ import annotations

from dataclasses import dataclass

from indicators.catalogue import CATALOGUE
from indicators.derived import DERIVED

__all__ = [
    "GEO_LEVELS",
    "HARMONISED",
    "OUTCOME_INPUTS",
    "UNMAPPED_AS_UNKNOWN",
    "UNMAPPED_CHOICES",
    "VOCABULARY",
    "Concept",
    "concept_text",
    "harmonised_code",
    "vocabulary",
]

HARMONISED = "harmonised"


@dataclass(frozen=True)
class Concept:
    """One code of a variable's vocabulary and what it means."""

    code: str
    text: str


_ORIGIN = (
    Concept("eurostat", "Eurostat's definition (DESIGN section 2)"),
    Concept("national_definition", "a national statistical definition of origin"),
)

VOCABULARY: dict[str, tuple[Concept, ...]] = {
    "wstatus": (
        Concept("ilo", "ILO labour status, as measured by the Labour Force Survey"),
        Concept("register_activity", "main activity recorded in administrative registers"),
        Concept("registered_jobseeker", "unemployed are the registered job-seekers"),
        Concept("self_declared", "self-declared main activity status (e.g. EU-SILC PL032)"),
    ),
    "income": (
        Concept(
            "disposable_oecd_modified",
            "total disposable household income, modified OECD equivalence scale (EU-SILC)",
        ),
        Concept("disposable_sqrt", "disposable household income, square-root scale"),
        Concept("disposable_per_capita", "disposable household income per person"),
        Concept("gross_oecd_modified", "gross household income, modified OECD scale"),
        Concept("taxable_register", "taxable income from tax registers, modified OECD scale"),
    ),
    "c_birth": _ORIGIN,
    "citizen": _ORIGIN,
    "mig_background": _ORIGIN,
    "reason": (
        Concept("eurostat", "reason for migration as in the EU-LFS ad hoc module"),
        Concept("residence_permit", "type of the first residence permit (register)"),
    ),
    "isced11": (
        Concept("isced11", "ISCED 2011 levels of the highest attainment"),
        Concept("national_classification", "a national classification mapped to ISCED"),
    ),
}


UNMAPPED_AS_UNKNOWN = Concept(
    "unmapped_as_unknown",
    "values outside the node's code map are counted as an unknown outcome (outside the "
    "rate's denominator)",
)
UNMAPPED_CHOICES = ("refuse", "unknown")
"""``unmapped`` in ``[variables.NAME]``: refuse to serve unmapped outcome values (default),
or count them as unknown (``UNMAPPED_AS_UNKNOWN``, flag ``d``)."""

OUTCOME_INPUTS = frozenset(
    {i.outcome for i in CATALOGUE.values() if i.outcome not in DERIVED}
    | {v for d in DERIVED.values() for v in d.inputs}
)
"""Configured variables an indicator's outcome reads: outcomes and derived outcomes' inputs
(never a group dimension or breakdown)."""


def vocabulary(variable: str) -> tuple[Concept, ...]:
    """The codes a variable's ``concept`` may take, the harmonised one first."""
    return VOCABULARY.get(variable, (Concept(HARMONISED, "the harmonised definition"),))


def harmonised_code(variable: str) -> str:
    """The code of the harmonised definition of ``variable``."""
    return vocabulary(variable)[0].code


def concept_text(variable: str, code: str) -> str:
    """What a code of ``variable``'s vocabulary means.

    Raises:
        KeyError: When ``code`` is not in the vocabulary.
    """
    if code == UNMAPPED_AS_UNKNOWN.code and variable in OUTCOME_INPUTS:
        return UNMAPPED_AS_UNKNOWN.text
    for concept in vocabulary(variable):
        if concept.code == code:
            return concept.text
    raise KeyError(code)


GEO_LEVELS = ("city", "lau", "fua", "nuts3", "nuts2", "country")
"""Territorial levels of ``[node] geo_level``: the level of the code in ``[node] geo``."""
