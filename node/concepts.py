"""Declarations in ``[variables.NAME]`` beside the mapping: ``concept`` and ``unmapped``.

Read apart from the mapping itself (`node.mappings`): every kind of mapping takes them,
and they only say what the mapped values measure. ``concept`` is the node's definition,
from the controlled vocabulary; ``unmapped`` (outcome variables only) says what values
outside the code map are: ``"refuse"`` (the default: the node does not serve them) or
``"unknown"`` (counted as an unknown outcome, rows flagged ``d``; `indicators.concepts`).
Unknown codes are a ConfigError naming the file and key and listing the choices.
"""

from __future__ import annotations

from common.tomlfile import Section
from indicators.concepts import (
    OUTCOME_INPUTS,
    UNMAPPED_CHOICES,
    harmonised_code,
    vocabulary,
)

__all__ = ["parse_concepts", "parse_unmapped", "without_declarations"]

_DECLARATIONS = ("concept", "unmapped")


def parse_concepts(variables: Section) -> dict[str, str]:
    """Each variable's declared concept code (variables that declare none are left out).

    Raises:
        ConfigError: A code outside the variable's vocabulary, or not a string.
    """
    concepts: dict[str, str] = {}
    for name, table in variables.table.items():
        if not isinstance(table, dict) or "concept" not in table:
            continue
        sec = variables.sub(name)
        code = sec.get("concept", str)
        codes = [c.code for c in vocabulary(name)]
        if code not in codes:
            listed = ", ".join(f"{c.code} ({c.text})" for c in vocabulary(name))
            raise sec.error(
                "concept",
                f"{code!r} is not in the vocabulary of {name}",
                hint=f"one of: {listed}; {harmonised_code(name)} is the harmonised one",
            )
        concepts[name] = code
    return concepts


def parse_unmapped(variables: Section) -> frozenset[str]:
    """The outcome variables declared ``unmapped = "unknown"``.

    Raises:
        ConfigError: A value other than ``"refuse"`` or ``"unknown"``, or the key on a
            variable that is no outcome (a group or breakdown keeps ``UNK`` as its own
            code, visible in every table).
    """
    declared: set[str] = set()
    for name, table in variables.table.items():
        if not isinstance(table, dict) or "unmapped" not in table:
            continue
        sec = variables.sub(name)
        choice = sec.get("unmapped", str)
        if choice not in UNMAPPED_CHOICES:
            raise sec.error(
                "unmapped",
                f"{choice!r} is not a choice",
                hint='"refuse" (the default: the node refuses unmapped outcome values) or '
                '"unknown" (count them as an unknown outcome; rows are flagged d)',
            )
        if name not in OUTCOME_INPUTS:
            raise sec.error(
                "unmapped",
                f"{name} is not an outcome variable: its unmapped values stay visible as "
                "UNK in every table",
                hint=f"only outcome variables take it: {', '.join(sorted(OUTCOME_INPUTS))}",
            )
        if choice == "unknown":
            declared.add(name)
    return frozenset(declared)


def without_declarations(variables: Section) -> Section:
    """The ``[variables]`` section without ``concept`` and ``unmapped`` (for the mappings)."""
    table = {
        name: {k: v for k, v in t.items() if k not in _DECLARATIONS} if isinstance(t, dict) else t
        for name, t in variables.table.items()
    }
    return Section(variables.file, variables.path, table)
