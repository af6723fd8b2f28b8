"""Escaping for the report's HTML, as Jinja2's autoescaping does it, with fast paths.

`escaped` gives a value's autoescaped text (a text with no character to escape is taken
as it is: escaping would return it unchanged); `escaper` picks plain ``str`` for a whole
table or chart whose texts have none; `fill` is `markupsafe.Markup.format` in one
``str.format``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from markupsafe import Markup, escape

__all__ = ["escaped", "escaper", "fill"]

_SPECIAL = re.compile(r"[<>&'\"]")


def escaped(value: object) -> str:
    """A value as autoescaped template output."""
    if type(value) is str and _SPECIAL.search(value) is None:
        return value
    return str(escape(value))


def escaper(values: Iterable[object]) -> Callable[[object], str]:
    """`escaped`, or plain ``str`` when none of the values has a character to escape.

    One scan of all a table's or chart's texts instead of one per text: ``str`` of a text
    without such a character (or of a number) is its escaped form.
    """
    texts = [str(v) for v in values]
    return str if _SPECIAL.search("\x00".join(texts)) is None else escaped


def fill(template: Markup, *args: object, **kwargs: object) -> Markup:
    """``template.format(...)`` as `markupsafe.Markup.format` does it, in one ``str.format``.

    Every text given is escaped (markup given stays as it is); numbers are formatted with
    their format spec (their text never needs escaping).
    """

    def safe(value: object) -> object:
        return escape(value) if isinstance(value, str) else value

    text = str.format(template, *map(safe, args), **{k: safe(v) for k, v in kwargs.items()})
    return Markup(text)
