"""The flags of a published value, with Eurostat's meanings (DESIGN section 4), and its status.

Flags (Eurostat's letters, several may combine):

- ``c`` confidential: the value is not published;
- ``d`` definition differs: the node's concept differs from the harmonised one, or the
  group is a node's own ``local:`` definition;
- ``u`` low reliability;
- ``z`` not applicable: the combination cannot exist (refugees born in the country).

Why a value is missing is not a flag but the row's ``status``: ``published``,
``suppressed`` (by the disclosure rules or because noise dominates it), ``not_provided``
(the node does not record a variable the indicator needs, or has no national poverty
line), ``no_answer`` (the node did not answer) or ``not_applicable``.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from privacy.disclosure import CONFIDENTIAL, UNRELIABLE

__all__ = [
    "CONFIDENTIAL",
    "DEVIATES",
    "LETTERS",
    "NONE",
    "NOT_APPLICABLE",
    "UNRELIABLE",
    "Flags",
    "Status",
]

DEVIATES = "d"
NOT_APPLICABLE = "z"
LETTERS = frozenset({CONFIDENTIAL, DEVIATES, UNRELIABLE, NOT_APPLICABLE})


class Status(StrEnum):
    """Whether a row's value is published, and if not, why (DESIGN section 6)."""

    PUBLISHED = "published"
    SUPPRESSED = "suppressed"
    NOT_PROVIDED = "not_provided"
    NO_ANSWER = "no_answer"
    NOT_APPLICABLE = "not_applicable"


class Flags(str):
    """A set of flag letters, immutable, in canonical form: each letter once, sorted.

    It is the string the outputs show (``Flags("uc") == "cu"``), so writers print it, test
    ``"c" in flags`` and format it as they would the text; combine flags with ``|``.

    Raises:
        ValueError: On a letter that is not a flag.
    """

    __slots__ = ()

    def __new__(cls, letters: Iterable[str] = "") -> Flags:
        """The flags of the letters of ``letters``, in canonical form."""
        unique = set("".join(letters))
        unknown = unique - LETTERS
        if unknown:
            raise ValueError(f"not flags: {''.join(sorted(unknown))!r}")
        return super().__new__(cls, "".join(sorted(unique)))

    def __or__(self, other: Iterable[str]) -> Flags:
        """The flags of both."""
        return Flags([self, *other])


NONE = Flags()
"""No flag: a value published as it is."""
