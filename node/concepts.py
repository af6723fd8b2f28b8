"""``concept`` in ``[variables.NAME]``: the node's definition, from the controlled vocabulary.

Read apart from the mapping itself (`node.mappings`): every kind of mapping takes it, and
it only says what the mapped values measure. Unknown codes are a ConfigError naming the
file and key and listing the vocabulary (`indicators.concepts`).
"""

from __future__ import annotations

from common.tomlfile import Section
from indicators.concepts import harmonised_code, vocabulary

__all__ = ["parse_concepts", "without_concepts"]


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


def without_concepts(variables: Section) -> Section:
    """The ``[variables]`` section with every ``concept`` key taken out (for the mappings)."""
    table = {
        name: {k: v for k, v in t.items() if k != "concept"} if isinstance(t, dict) else t
        for name, t in variables.table.items()
    }
    return Section(variables.file, variables.path, table)
