"""Harmonising on a node: derived-variable config keys refused clearly, derivations from
real files, the coverage report, and a node serving the derived indicators and group
dimensions over gRPC."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from common.errors import ConfigError, DataError
from fedstats import synth
from fedstats.cli import main
from indicators.variables import CATEGORICAL
from node.config import load_config
from node.harmonise import harmonise
from node.source import load_frame
from protos import node_pb2 as pb
from tests.support.nodes import ServeFn
from tests.support.pki import pki

CSV = """\
age,sex,cob,fcob,mcob,arr,reason,ws,edu,inedu,occ,stat,own
30,m,NL,NL,NL,,,1,3,N,2,SAL,koop
20,f,NL,MA,MA,,,3,1,N,,,huur
21,f,NL,MA,NL,,asiel,2,1,Y,,,huur
40,m,MA,MA,MA,2018,asiel,1,3,N,5,SAL,huur
41,m,MA,,,2010,gezin,1,2,N,9,SELF,koop
42,m,DE,DE,DE,1975,werk,1,3,N,1,SAL,koop
43,f,,NL,NL,2001,,1,3,N,7,SAL,huur
44,f,NL,XX,NL,,,3,2,N,4,SAL,huur
45,f,TR,TR,TR,abc,gezin,1,3,N,,SAL,
46,f,TR,TR,TR,2031,gezin,1,3,N,x,SAL,huur
"""

TOML = """\
[node]
id = "small"
geo = "XX01"
country = "NL"
state_dir = "state"

[dataset]
path = "small.csv"
time_period = "2024"

[privacy]
rho_budget = 1.0
max_rho_per_query = 1.0

[variables.age]
column = "age"

[variables.sex]
column = "sex"
map = { m = "M", f = "F" }

[variables.c_birth]
column = "cob"
iso_country = true

[variables.mig_background]
from_parents = { father = "fcob", mother = "mcob" }
iso_country = true

[variables.yearesid]
arrival_year = "arr"

[variables.arrival_cohort]
arrival_year = "arr"

[variables.reason]
column = "reason"
map = { asiel = "INTPROT", gezin = "FAM", werk = "EMP" }

[variables.wstatus]
column = "ws"
map = { 1 = "EMP", 2 = "UNE", 3 = "INAC" }

[variables.isced11]
column = "edu"
map = { 1 = "ED0-2", 2 = "ED3_4", 3 = "ED5-8" }

[variables.in_educ]
column = "inedu"
map = { Y = "Y", N = "N" }

[variables.isco08]
column = "occ"
map = { 1 = "OC1", 2 = "OC2", 4 = "OC4", 5 = "OC5", 7 = "OC7", 9 = "OC9" }

[variables.stapro]
column = "stat"
map = { SAL = "SAL", SELF = "SELF" }
deviation = "self-employed include freelancers on short contracts"

[variables.tenure]
column = "own"
map = { koop = "OWNER", huur = "TENANT" }
"""


def write(tmp_path: Path, toml: str = TOML, csv: str = CSV) -> Path:
    (tmp_path / "small.csv").write_text(csv)
    config = tmp_path / "small.toml"
    config.write_text(toml)
    return config


def decoded(config: Path) -> dict[str, list[str]]:
    loaded = load_config(config)
    data = harmonise(load_frame(loaded), loaded)
    return {n: [CATEGORICAL[n].codes[i] for i in c] for n, c in data.codes.items()}


# --- harmonisation from a file -----------------------------------------------------------


def test_derivations_from_a_file(tmp_path: Path) -> None:
    codes = decoded(write(tmp_path))
    assert codes["mig_background"] == [
        "NB_NBP", "NB_2FBP", "NB_1FBP", "FB", "FB", "FB", "UNK", "UNK", "FB", "FB",
    ]  # fmt: skip
    assert codes["yearesid"] == [
        "NAP", "NAP", "NAP", "Y5-9", "Y_GE10", "Y_GE10", "Y_GE10", "NAP", "UNK", "UNK",
    ]  # fmt: skip
    assert codes["arrival_cohort"][3:7] == ["Y2015-2019", "Y2010-2014", "Y_LT1980", "Y2000-2009"]
    # The native-born have no reason for migration, whatever the column says.
    assert codes["reason"] == [
        "NAP", "NAP", "NAP", "INTPROT", "FAM", "EMP", "UNK", "NAP", "FAM", "FAM",
    ]  # fmt: skip
    assert codes["stapro"] == [
        "SAL",
        "NAP",
        "NAP",
        "SAL",
        "SELF",
        "SAL",
        "SAL",
        "NAP",
        "SAL",
        "SAL",
    ]
    assert codes["isco08"][:3] == ["OC2", "NAP", "NAP"] and codes["isco08"][8:] == ["UNK", "UNK"]
    assert codes["elet"] == ["N", "Y", "N", "N", "N", "N", "N", "N", "N", "N"]
    assert codes["neet"] == ["N", "Y", "N", "N", "N", "N", "N", "Y", "N", "N"]
    assert codes["overqual"] == [
        "MATCH", "NAP", "NAP", "OVQ", "NAP", "MATCH", "OVQ", "NAP", "UNK", "UNK",
    ]  # fmt: skip


def test_coverage_counts_every_unknown_and_reports_bad_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path)
    loaded = load_config(config)
    data = harmonise(load_frame(loaded), loaded)
    background = data.coverage["mig_background"]
    assert background.column == "fcob + mcob"
    assert background.unmapped == {"fcob: XX": 1}  # a native-born person's father
    assert background.missing == 1  # own country of birth unknown
    assert background.codes["UNK"] == 2
    years = data.coverage["yearesid"]
    assert years.unmapped == {"abc": 1, "2031": 1}
    assert years.missing == 0  # the native-born's empty arrival years are NAP, not missing
    assert years.codes["NAP"] == 4
    reason = data.coverage["reason"]
    assert reason.missing == 1 and reason.codes["NAP"] == 4
    for cov in data.coverage.values():
        if cov.codes:
            assert sum(cov.codes.values()) == cov.rows  # nobody silently dropped
    assert list(data.coverage)[-3:] == ["elet", "neet", "overqual"]
    assert data.coverage["overqual"].missing == 2

    # isco08 (an outcome's input) has an unmapped 'x' and no `unmapped` declaration: the
    # whole report is printed, then the error `node serve` would refuse with.
    assert main(["node", "check", "--config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert "[variables.isco08] column 'occ': 1 distinct value(s) in 1 of 10 rows ('x')" in err
    assert "unmapped value 'abc': 1 rows (counted as UNK)" in out
    assert "unmapped value '2031': 1 rows (counted as UNK)" in out
    assert "unmapped value 'fcob: XX': 1 rows (counted as UNK)" in out
    assert "from wstatus+isced11+isco08" in out


def test_provided_variables_and_deviation_notes(tmp_path: Path) -> None:
    toml = TOML.replace(
        'map = { 1 = "ED0-2", 2 = "ED3_4", 3 = "ED5-8" }',
        'map = { 1 = "ED0-2", 2 = "ED3_4", 3 = "ED5-8" }\ndeviation = "  ISCED 1997\\n levels "',
    )
    loaded = load_config(write(tmp_path, toml))
    assert loaded.variables["isced11"].deviation == "ISCED 1997 levels"  # whitespace folded
    assert loaded.variables["sex"].deviation is None
    assert set(loaded.provided) >= {"elet", "neet", "overqual", "mig_background"}
    assert loaded.deviation_of("isced11") == "ISCED 1997 levels"
    assert loaded.deviation_of("elet") == "isced11: ISCED 1997 levels"
    assert loaded.deviation_of("overqual") == "isced11: ISCED 1997 levels"
    assert loaded.deviation_of("neet") is None
    assert loaded.deviation_of("stapro") == "self-employed include freelancers on short contracts"
    without = TOML.replace('[variables.in_educ]\ncolumn = "inedu"\nmap = { Y = "Y", N = "N" }', "")
    loaded = load_config(write(tmp_path, without))
    assert "elet" not in loaded.provided and "overqual" in loaded.provided
    assert "elet" not in decoded(tmp_path / "small.toml")


def test_missing_arrival_year_means_native_when_the_node_says_so(tmp_path: Path) -> None:
    """A node without country of birth: an empty arrival year is NAP by its config."""
    toml = TOML.replace('[variables.c_birth]\ncolumn = "cob"\niso_country = true\n', "")
    toml = toml.replace('[variables.mig_background]\nfrom_parents = { father = "fcob", '
                        'mother = "mcob" }\niso_country = true\n', "")  # fmt: skip
    arrival = '[variables.yearesid]\narrival_year = "arr"\n'
    toml = toml.replace(arrival, arrival + 'missing = "NAP"\n')
    codes = decoded(write(tmp_path, toml))
    assert codes["yearesid"] == [
        "NAP", "NAP", "NAP", "Y5-9", "Y_GE10", "Y_GE10", "Y_GE10", "NAP", "UNK", "UNK",
    ]  # fmt: skip
    assert codes["arrival_cohort"][:3] == ["UNK", "UNK", "UNK"]  # default missing: UNK
    assert codes["reason"][:3] == ["UNK", "UNK", "INTPROT"]  # nobody known to be native


def test_parents_column_missing_from_the_file(tmp_path: Path) -> None:
    csv = CSV.replace(",mcob,", ",mother,", 1)
    config = write(tmp_path, csv=csv)
    with pytest.raises(DataError) as info:
        load_frame(load_config(config))
    assert info.value.reason == "MISSING_COLUMN"
    assert info.value.field == "mcob"


# --- configuration: every new key refused with file and key ------------------------------

_PARENTS = 'from_parents = { father = "fcob", mother = "mcob" }'

BAD_CONFIGS = [
    pytest.param(
        _PARENTS, 'from_parents = { father = "fcob", mothr = "mcob" }',
        "variables.mig_background.from_parents.mothr", "unknown key", id="parents-typo",
    ),
    pytest.param(
        _PARENTS, 'from_parents = { father = "fcob" }',
        "variables.mig_background.from_parents.mother", "missing required key",
        id="parents-one-missing",
    ),
    pytest.param(
        _PARENTS, 'from_parents = "fcob"',
        "variables.mig_background.from_parents", "expected dict, got str", id="parents-not-table",
    ),
    pytest.param(
        _PARENTS, 'from_parents = { father = "fcob", mother = 3 }',
        "variables.mig_background.from_parents.mother", "expected str, got int",
        id="parents-column-not-text",
    ),
    pytest.param(
        _PARENTS, _PARENTS + '\ncolumn = "herkomst"',
        "variables.mig_background.from_parents", "not both", id="parents-and-column",
    ),
    pytest.param(
        _PARENTS + "\niso_country = true", _PARENTS + '\nmap = { MA = "FB" }',
        "variables.mig_background.map.MA", "'FB' is not a code of c_birth",
        id="parents-map-target-not-a-country-group",
    ),
    pytest.param(
        '[variables.c_birth]\ncolumn = "cob"\niso_country = true\n', "",
        "variables.mig_background.from_parents", "c_birth is not mapped",
        id="parents-without-own-country-of-birth",
    ),
    pytest.param(
        _PARENTS + "\niso_country = true", 'column = "mb"\niso_country = true',
        "variables.mig_background.iso_country", "only c_birth and citizen",
        id="mapped-background-with-iso",
    ),
    pytest.param(
        '[variables.yearesid]\narrival_year = "arr"', "[variables.yearesid]\narrival_year = 1990",
        "variables.yearesid.arrival_year", "expected str, got int", id="arrival-year-not-text",
    ),
    pytest.param(
        '[variables.yearesid]\narrival_year = "arr"', '[variables.yearesid]\narival_year = "arr"',
        "variables.yearesid.arrival_year", "missing", id="arrival-year-typo",
    ),
    pytest.param(
        '[variables.yearesid]\narrival_year = "arr"',
        '[variables.yearesid]\narrival_year = "arr"\nmap = { 1 = "Y_LT5" }',
        "variables.yearesid.map", "unknown key", id="arrival-year-with-map",
    ),
    pytest.param(
        '[variables.arrival_cohort]\narrival_year = "arr"',
        '[variables.arrival_cohort]\narrival_year = "arr"\nmissing = "Y_LT1980"',
        "variables.arrival_cohort.missing", "NAP (born in the country) or UNK",
        id="arrival-year-missing-code",
    ),
    pytest.param(
        'time_period = "2024"', 'time_period = "Q1-2024"',
        "dataset.time_period", "does not start with a 4-digit year", id="no-reference-year",
    ),
    pytest.param(
        "[variables.tenure]", "[variables.elet]\ncolumn = \"x\"\nmap = { 1 = \"Y\" }\n\n"
        "[variables.tenure]",
        "variables.elet", "derived by the node from isced11 and in_educ", id="derived-mapped",
    ),
    pytest.param(
        "asiel = \"INTPROT\"", "asiel = \"REFUGEE\"",
        "variables.reason.map.asiel", "'REFUGEE' is not a code of reason", id="reason-bad-code",
    ),
    pytest.param(
        'map = { Y = "Y", N = "N" }', "map = { Y = true, N = false }",
        "variables.in_educ.map.Y", "True is not a code of in_educ", id="in-educ-bool",
    ),
    pytest.param(
        'map = { koop = "OWNER", huur = "TENANT" }',
        'map = { koop = "OWNER", huur = "TENANT" }\ndefault = "RENT"',
        "variables.tenure.default", "'RENT' is not a code of tenure", id="tenure-bad-default",
    ),
    pytest.param(
        'map = { SAL = "SAL", SELF = "SELF" }', 'map = { SAL = "SAL", SELF = "SELF", X = "EMP" }',
        "variables.stapro.map.X", "'EMP' is not a code of stapro", id="stapro-bad-code",
    ),
    pytest.param(
        'map = { 1 = "OC1"', 'map = { 1 = "ISCO1"',
        "variables.isco08.map.1", "'ISCO1' is not a code of isco08", id="isco-bad-code",
    ),
    pytest.param(
        'deviation = "self-employed include freelancers on short contracts"', "deviation = true",
        "variables.stapro.deviation", "expected str, got bool", id="deviation-not-text",
    ),
    pytest.param(
        'deviation = "self-employed include freelancers on short contracts"', 'deviation = " "',
        "variables.stapro.deviation", "is empty", id="deviation-empty",
    ),
    pytest.param(
        'deviation = "self-employed include freelancers on short contracts"',
        f'deviation = "{"x" * 501}"',
        "variables.stapro.deviation", "over 500", id="deviation-too-long",
    ),
    pytest.param(
        '[variables.age]\ncolumn = "age"', '[variables.age]\ncolumn = "age"\nmap = { 1 = "x" }',
        "variables.age.map", "unknown key", id="age-with-map",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "key", "says"), BAD_CONFIGS)
def test_bad_config_names_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, key: str, says: str
) -> None:
    assert old in TOML
    config = write(tmp_path, TOML.replace(old, new, 1))

    with pytest.raises(ConfigError) as info:
        load_config(config)

    error = info.value
    assert error.reason == "INVALID_CONFIG"
    assert error.field == key
    assert str(config.resolve()) in error.message
    assert f"{key}: " in error.message and says in error.message

    assert main(["node", "check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert key in err and "Traceback" not in err
    assert not (tmp_path / "state").exists()


def test_deviation_and_new_variables_accepted_everywhere(tmp_path: Path) -> None:
    note = 'deviation = "a local definition"\n'
    toml = TOML
    for header in ("[variables.age]", "[variables.mig_background]", "[variables.yearesid]"):
        toml = toml.replace(header + "\n", header + "\n" + note)
    loaded = load_config(write(tmp_path, toml + '\n[variables.income]\ncolumn = "age"\n' + note))
    for name in ("age", "mig_background", "yearesid", "income"):
        assert loaded.variables[name].deviation == "a local definition"
    assert loaded.deviation_of("mig_background") == "a local definition"


# --- a node serving the new indicators -----------------------------------------------------


def test_a_synthetic_city_serves_the_new_indicators(tmp_path: Path, serve: ServeFn) -> None:
    city = "rotterdam"  # the generic profile maps every variable
    facts = synth.city_facts(city)
    synth.write(synth.generate(city, 20_000, seed=4), tmp_path / "city.csv")
    config = tmp_path / "city.toml"
    config.write_text(
        textwrap.dedent(f"""
            [node]
            id = "{facts.id}"
            geo = "{facts.geo}"
            country = "{facts.country}"
            listen = "127.0.0.1:0"
            state_dir = "state"

            [dataset]
            path = "city.csv"
            time_period = "{facts.time_period}"
            source = "register"

            [privacy]
            rho_budget = 1e9
            max_rho_per_query = 1e9
            """)
        + synth.variables_toml(city)
        + pki().node_trust_toml(facts.id)
    )
    node = serve(config)
    indicators = [
        "early_leavers", "neet_rate", "tertiary_30_34", "owner_share",
        "self_employment_share", "overqualification_rate",
    ]  # fmt: skip
    for group in ("mig_background", "reason", "yearesid"):
        result = node.ask(
            pb.QueryRequest(
                query_id=f"q-{group}",
                spec=pb.QuerySpec(
                    indicators=indicators, group_dim=group, breakdowns=["sex"],
                    comparator="TOTAL", rho=1e8,
                ),
            )
        )  # fmt: skip
        assert len(result.tables) == len(indicators)
        for table in result.tables:
            assert table.dims[0].name == group
            counts = np.array(table.counts)
            assert counts.sum() > 500  # every table has people in it, at a huge budget
