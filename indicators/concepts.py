"""The controlled vocabulary of concepts: how a node's definition of a variable is measured.

A node declares, per harmonised variable, the concept its data follow (``concept`` in
``[variables.NAME]``, DESIGN section 2). The first code of each vocabulary is the
harmonised definition; any other code makes the rows that read the variable ``d``
(definition differs), and the code travels with them into benchmark.csv, SDMX and the
reference metadata. Variables without a vocabulary of their own know only ``harmonised``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "GEO_LEVELS",
    "HARMONISED",
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
    for concept in vocabulary(variable):
        if concept.code == code:
            return concept.text
    raise KeyError(code)


GEO_LEVELS = ("city", "lau", "fua", "nuts3", "nuts2", "country")
"""Territorial levels of ``[node] geo_level``: the level of the code in ``[node] geo``."""
