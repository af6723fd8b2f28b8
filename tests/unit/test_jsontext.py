"""`dumps_indented` writes exactly the text of ``json.dumps(value, indent=2)``."""

from __future__ import annotations

import enum
import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.publish.jsontext import dumps_indented

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(_VALUES)
def test_the_same_text_as_json_dumps(value: object) -> None:
    assert dumps_indented(value) == json.dumps(value, indent=2)


class _Colour(enum.IntEnum):
    RED = 1


class _Name(str):
    pass


def test_what_the_fast_path_does_not_write_is_json_dumps_own_text() -> None:
    unusual: list[object] = [
        {"a": (1, 2), "b": [{}, []]},  # a tuple
        {1: "x", 2.5: "y", None: "z", False: "f"},  # keys that are not strings
        [_Colour.RED, {"c": _Colour.RED}],  # an int subclass
        {"n": _Name('ünïcode "quoted"\n')},  # a str subclass
        {"nested": [{"deep": [[math.nan, -math.inf, math.inf, -0.0, 1e300]]}]},
        {"é": "\u2028\x00\ud800", "empty": {}, "list": []},
    ]
    for value in unusual:
        assert dumps_indented(value) == json.dumps(value, indent=2)


def test_a_circular_value_fails_as_json_dumps_does() -> None:
    loop: list[object] = []
    loop.append(loop)
    try:
        json.dumps(loop, indent=2)
    except ValueError as exc:
        want = str(exc)
    try:
        dumps_indented(loop)
    except ValueError as exc:
        assert str(exc) == want
    else:
        raise AssertionError("a circular value was written")
