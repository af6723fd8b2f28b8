"""The flags of a published value, with Eurostat's meanings (DESIGN section 4).

- ``c`` confidential: the value is not published;
- ``d`` definition differs: the node's concept differs from the harmonised one, or the
  group is a node's own ``local:`` definition;
- ``n`` not available: a node did not answer, or does not provide a variable;
- ``u`` low reliability;
- ``z`` not applicable.
"""

from __future__ import annotations

from collections.abc import Iterable

from privacy.disclosure import CONFIDENTIAL, UNRELIABLE

__all__ = [
    "CONFIDENTIAL",
    "DEVIATES",
    "LETTERS",
    "NONE",
    "NOT_APPLICABLE",
    "UNAVAILABLE",
    "UNRELIABLE",
    "Flags",
]

DEVIATES = "d"
UNAVAILABLE = "n"
NOT_APPLICABLE = "z"
LETTERS = frozenset({CONFIDENTIAL, DEVIATES, UNAVAILABLE, UNRELIABLE, NOT_APPLICABLE})


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
