"""Flags of published values are a small immutable type, shown as Eurostat letters."""

from __future__ import annotations

import dataclasses

import pytest

from coordinator.flags import NONE, Flags
from coordinator.rows import BenchmarkRow


def test_flags_are_each_letter_once_in_the_order_the_outputs_show() -> None:
    assert Flags("uzc") == "cuz" and str(Flags("uu")) == "u"
    assert Flags("u") | "d" | Flags("dc") == "cdu"
    assert isinstance(Flags("u") | "d", Flags)
    assert NONE == "" and not NONE
    assert f"{Flags('c'):<2}|" == "c |"


def test_membership_reads_letters() -> None:
    flags = Flags("cd")
    assert "c" in flags and "d" in flags and "u" not in flags


@pytest.mark.parametrize("letters", ["x", "cx", "C", " ", "n"])
def test_a_letter_that_is_not_a_flag_is_refused(letters: str) -> None:
    with pytest.raises(ValueError, match="not flags"):
        Flags(letters)


def test_rows_are_immutable_values() -> None:
    row = BenchmarkRow(
        node="a", geo="A1", time_period="2025", indicator="employment_rate",
        group_dim="citizen", group="NAT", breakdown={}, comparator="NAT", unit="PC",
    )  # fmt: skip
    assert row.flags == NONE
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.flags = Flags("c")  # type: ignore[misc]
    assert dataclasses.replace(row, flags=Flags("c")).flags == "c"
