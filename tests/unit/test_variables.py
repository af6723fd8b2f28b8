"""Harmonised variables, derived-variable rules, group dimensions and NATIVE_GROUP."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from common.errors import QueryError
from indicators import derived
from indicators.spec import (
    DERIVED_GROUP_LABELS,
    DERIVED_GROUPS,
    GROUP_DIMS,
    NATIVE_GROUP,
    Query,
    compile_query,
)
from indicators.variables import CATEGORICAL, NAP, UNK, Variable
from node.derive import apply_rule, arrival_codes, from_parents, membership, refine

NEW = {
    "mig_background": ("FB", "NB_2FBP", "NB_1FBP", "NB_NBP", UNK),
    "reason": ("INTPROT", "FAM", "EMP", "EDUC", "OTH", NAP, UNK),
    "yearesid": ("Y_LT5", "Y5-9", "Y_GE10", NAP, UNK),
    "arrival_cohort": (
        "Y_LT1980", "Y1980-1999", "Y2000-2009", "Y2010-2014", "Y2015-2019", "Y2020-2024",
        "Y_GE2025", NAP, UNK,
    ),
    "in_educ": ("Y", "N", UNK),
    "tenure": ("OWNER", "TENANT", UNK),
    "stapro": ("SAL", "SELF", "CFAM", NAP, UNK),
    "isco08": (*(f"OC{i}" for i in range(1, 10)), "OC0", NAP, UNK),
    "elet": ("Y", "N", UNK),
    "neet": ("Y", "N", UNK),
    "overqual": ("OVQ", "MATCH", NAP, UNK),
}  # fmt: skip


def test_code_lists() -> None:
    for name, codes in NEW.items():
        assert CATEGORICAL[name].codes == codes, name
    for variable in CATEGORICAL.values():
        assert variable.codes[-1] == UNK
        if NAP in variable.codes:
            assert variable.codes[-2] == NAP, variable.name
        if not variable.binned:
            assert len(variable.labels) == len(variable.codes), variable.name
            assert variable.label(UNK) == "Unknown"
            assert len(variable.codes) <= 127  # stored as int8
    with pytest.raises(ValueError, match="end with UNK"):
        Variable("x", ("A", "B"), "no UNK")
    with pytest.raises(ValueError, match="one label per code"):
        Variable("x", ("A", UNK), "labels", labels=("a",))


@pytest.mark.parametrize(
    ("isced", "in_educ", "expected"),
    [
        ("ED0-2", "N", "Y"),
        ("ED0-2", "Y", "N"),
        ("ED3_4", "N", "N"),
        ("ED5-8", "Y", "N"),
        ("UNK", "N", UNK),
        ("ED3_4", "UNK", UNK),  # Eurostat excludes non-response to either question
    ],
)
def test_early_leaver(isced: str, in_educ: str, expected: str) -> None:
    assert derived.early_leaver(isced, in_educ) == expected


@pytest.mark.parametrize(
    ("wstatus", "in_educ", "expected"),
    [
        ("EMP", "N", "N"),
        ("EMP", "Y", "N"),
        ("UNE", "N", "Y"),
        ("INAC", "N", "Y"),
        ("INAC", "Y", "N"),
        ("UNK", "N", UNK),
        ("EMP", "UNK", UNK),
    ],
)
def test_neet(wstatus: str, in_educ: str, expected: str) -> None:
    assert derived.neet(wstatus, in_educ) == expected


@pytest.mark.parametrize(
    ("wstatus", "isced", "isco", "expected"),
    [
        ("EMP", "ED5-8", "OC2", "MATCH"),
        ("EMP", "ED5-8", "OC3", "MATCH"),
        ("EMP", "ED5-8", "OC4", "OVQ"),
        ("EMP", "ED5-8", "OC9", "OVQ"),
        ("EMP", "ED5-8", "OC0", NAP),  # armed forces: in neither group
        ("EMP", "ED5-8", UNK, UNK),
        ("EMP", "ED5-8", NAP, UNK),
        ("EMP", "ED3_4", "OC9", NAP),
        ("EMP", UNK, "OC9", UNK),
        ("UNE", UNK, UNK, NAP),  # the non-employed are out, whatever else is unknown
        ("INAC", "ED5-8", NAP, NAP),
        (UNK, "ED5-8", "OC9", UNK),
    ],
)
def test_overqualified(wstatus: str, isced: str, isco: str, expected: str) -> None:
    assert derived.overqualified(wstatus, isced, isco) == expected


@pytest.mark.parametrize(
    ("own", "father", "mother", "expected"),
    [
        ("EU27_2020_FOR", "NAT", "NAT", "FB"),
        ("NEU27_2020_FOR", UNK, UNK, "FB"),
        ("NAT", "NAT", "NAT", "NB_NBP"),
        ("NAT", "NEU27_2020_FOR", "NAT", "NB_1FBP"),
        ("NAT", "NAT", "EU27_2020_FOR", "NB_1FBP"),
        ("NAT", "NEU27_2020_FOR", "EU27_2020_FOR", "NB_2FBP"),
        ("NAT", "NEU27_2020_FOR", UNK, UNK),  # one or two foreign-born parents?
        ("NAT", UNK, "NAT", UNK),
        (UNK, "NAT", "NAT", UNK),
    ],
)
def test_migration_background(own: str, father: str, mother: str, expected: str) -> None:
    assert derived.migration_background(own, father, mother) == expected


def test_applicable() -> None:
    assert derived.applicable("INTPROT", derived.OUT) == NAP
    assert derived.applicable(UNK, derived.OUT) == NAP
    assert derived.applicable(NAP, derived.IN) == UNK
    assert derived.applicable("FAM", derived.IN) == "FAM"
    assert derived.applicable("FAM", UNK) == "FAM"
    assert derived.applicable(NAP, UNK) == NAP


def test_bands() -> None:
    assert [derived.years_of_residence(y) for y in (0, 4, 5, 9, 10, 60)] == [
        "Y_LT5", "Y_LT5", "Y5-9", "Y5-9", "Y_GE10", "Y_GE10",
    ]  # fmt: skip
    assert [derived.arrival_cohort(y) for y in (1900, 1979, 1980, 2009, 2014, 2015, 2024)] == [
        "Y_LT1980", "Y_LT1980", "Y1980-1999", "Y2000-2009", "Y2010-2014", "Y2015-2019",
        "Y2020-2024",
    ]  # fmt: skip
    with pytest.raises(ValueError):
        derived.arrival_cohort(1850)


def test_lookup_tables_apply_the_rules_exactly() -> None:
    """Every combination of input codes, through the numpy lookup, gives the pure rule."""
    for derivation in derived.DERIVED.values():
        lists = [CATEGORICAL[i].codes for i in derivation.inputs]
        combos = list(itertools.product(*(range(len(c)) for c in lists)))
        columns = [np.array([c[k] for c in combos], dtype=np.int8) for k in range(len(lists))]
        got = apply_rule(derivation.rule, columns, lists, derivation.name)
        out = CATEGORICAL[derivation.name].codes
        for combo, code in zip(combos, got, strict=True):
            args = [lists[k][i] for k, i in enumerate(combo)]
            assert out[code] == derivation.rule(*args)


def test_from_parents_and_refinement_on_columns() -> None:
    c_birth = CATEGORICAL["c_birth"]
    own = np.array([c_birth.index(c) for c in ("NAT", "NAT", "NEU27_2020_FOR", UNK)], np.int8)
    father = np.array([c_birth.index(c) for c in ("NAT", "EU27_2020_FOR", UNK, "NAT")], np.int8)
    mother = np.array([c_birth.index(c) for c in ("NAT", "NAT", UNK, "NAT")], np.int8)
    background = from_parents(own, father, mother)
    codes = CATEGORICAL["mig_background"].codes
    assert [codes[i] for i in background] == ["NB_NBP", "NB_1FBP", "FB", UNK]
    reason = CATEGORICAL["reason"]
    mapped = np.array([reason.index(c) for c in ("FAM", UNK, NAP, "EMP")], np.int8)
    assert membership({}, "reason") is None
    refined = refine("reason", mapped, {"c_birth": own})
    assert [reason.codes[i] for i in refined] == [NAP, NAP, UNK, "EMP"]
    # Without c_birth, the migration background says who is foreign-born.
    refined = refine("reason", mapped, {"mig_background": background})
    assert [reason.codes[i] for i in refined] == [NAP, NAP, UNK, "EMP"]


def test_arrival_codes() -> None:
    years = np.array([2024, 2020, 2019, 2015, 1970, np.nan, 2026, 1850, 2010.5, np.inf])
    coded, bad = arrival_codes("yearesid", years, 2024, NAP)
    codes = CATEGORICAL["yearesid"].codes
    assert [codes[i] for i in coded] == [
        "Y_LT5", "Y_LT5", "Y5-9", "Y5-9", "Y_GE10", NAP, UNK, UNK, UNK, UNK,
    ]  # fmt: skip
    assert bad.tolist() == [False] * 6 + [True] * 4
    coded, _ = arrival_codes("arrival_cohort", years, 2024, UNK)
    codes = CATEGORICAL["arrival_cohort"].codes
    assert [codes[i] for i in coded[:6]] == [
        "Y2020-2024", "Y2020-2024", "Y2015-2019", "Y2015-2019", "Y_LT1980", UNK,
    ]  # fmt: skip


def test_group_dimensions_and_named_groups() -> None:
    assert GROUP_DIMS == ("c_birth", "citizen", "mig_background", "reason", "yearesid")
    assert DERIVED_GROUPS["mig_background"] == {
        "FOR_ORIGIN": ("FB", "NB_2FBP", "NB_1FBP"),
        "SECOND_GEN": ("NB_2FBP", "NB_1FBP"),
    }
    for dim, groups in DERIVED_GROUPS.items():
        for name, members in groups.items():
            assert set(members) <= set(CATEGORICAL[dim].codes) - {UNK}
            assert name not in CATEGORICAL[dim].codes
    assert {g for d in DERIVED_GROUPS.values() for g in d} == set(DERIVED_GROUP_LABELS)
    assert set(NATIVE_GROUP) == set(GROUP_DIMS)
    for dim, native in NATIVE_GROUP.items():
        assert native is None or native in CATEGORICAL[dim].codes
    assert NATIVE_GROUP["mig_background"] == "NB_NBP"
    for dim in GROUP_DIMS:
        plan = compile_query(Query(("employment_rate",), dim, ("sex",), "NAT", 1.0))
        assert plan.tables[0].dims[0].codes == CATEGORICAL[dim].codes


def test_nat_comparator_needs_a_native_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(NATIVE_GROUP, "reason", None)
    with pytest.raises(QueryError) as info:
        compile_query(Query(("employment_rate",), "reason", (), "NAT", 1.0))
    assert info.value.field == "comparator"
    assert "'reason'" in info.value.message and "TOTAL" in info.value.hint
    compile_query(Query(("employment_rate",), "reason", (), "TOTAL", 1.0))
