"""Escaping for the report's HTML, as Jinja2's autoescaping does it, with fast paths.

`escaped` gives a value's autoescaped text (a text with no character to escape is taken
as it is: escaping would return it unchanged); `plain` says whether all of a table's or a
chart's texts have none (each is then written as it is); `fill` is
`markupsafe.Markup.format` in one ``str.format``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from markupsafe import Markup, escape

__all__ = ["escaped", "fill", "filled", "plain"]

_SPECIAL = re.compile(r"[<>&'\"]")


def escaped(value: object) -> str:
    """A value as autoescaped template output."""
    if type(value) is str and _SPECIAL.search(value) is None:
        return value
    return str(escape(value))


def plain(texts: Sequence[object]) -> bool:
    """Whether every value is a ``str`` without a character to escape (its own escaped form).

    One scan of all a table's or chart's texts instead of one per text.
    """
    if not set(map(type, texts)) <= {str}:
        return False
    return _SPECIAL.search("\x00".join(texts)) is None  # type: ignore[arg-type]


def fill(template: Markup, *args: object, **kwargs: object) -> Markup:
    """``template.format(...)`` as `markupsafe.Markup.format` does it, in one ``str.format``.

    Every text given is escaped (markup given stays as it is); numbers are formatted with
    their format spec (their text never needs escaping).
    """
    return Markup(filled(template, *args, **kwargs))


def filled(template: str, *args: object, **kwargs: object) -> str:
    """`fill`'s text, not yet marked safe (for sentences joined before they are)."""

    def safe(value: object) -> object:  # escaped text, as escape() gives it (markup as it is)
        return escaped(value) if isinstance(value, str) else value

    return str.format(template, *map(safe, args), **{k: safe(v) for k, v in kwargs.items()})
