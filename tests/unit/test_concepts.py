"""The controlled vocabulary of concepts and ``[node] geo_level`` in a node config."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import ConfigError
from indicators.concepts import (
    GEO_LEVELS,
    OUTCOME_INPUTS,
    UNMAPPED_AS_UNKNOWN,
    VOCABULARY,
    concept_text,
    harmonised_code,
    vocabulary,
)
from node.config import load_config

CONFIG = """\
[node]
id = "ghent"
geo = "BE003C"
{geo_level}
country = "BE"

[dataset]
path = "ghent.csv"
time_period = "2025"
source = "register"

[privacy]
rho_budget = 1.0
max_rho_per_query = 1.0

[variables.age]
column = "age"

[variables.wstatus]
column = "status"
map = {{ work = "EMP", seek = "UNE", other = "INAC" }}
{concept}

[variables.isced11]
column = "edu"
map = {{ low = "ED0-2", mid = "ED3_4", high = "ED5-8" }}

[variables.in_educ]
column = "learning"
map = {{ yes = "Y", no = "N" }}
"""


def _config(tmp_path: Path, concept: str = "", geo_level: str = "") -> Path:
    path = tmp_path / "node.toml"
    path.write_text(CONFIG.format(concept=concept, geo_level=geo_level), encoding="utf-8")
    return path


def test_each_vocabulary_starts_with_its_harmonised_code() -> None:
    assert harmonised_code("wstatus") == "ilo"
    assert [c.code for c in vocabulary("wstatus")] == [
        "ilo", "register_activity", "registered_jobseeker", "self_declared",
    ]  # fmt: skip
    assert [c.code for c in vocabulary("sex")] == ["harmonised"]
    for codes in VOCABULARY.values():
        assert len({c.code for c in codes}) == len(codes)


def test_a_declared_concept_is_a_deviation_of_the_variable_and_what_derives_from_it(
    tmp_path: Path,
) -> None:
    config = load_config(_config(tmp_path, 'concept = "registered_jobseeker"'))
    assert config.concepts == {"wstatus": "registered_jobseeker"}
    assert config.concepts_of("wstatus") == [("wstatus", "registered_jobseeker")]
    assert config.concepts_of("neet") == [("wstatus", "registered_jobseeker")]  # derived
    assert config.concepts_of("isced11") == []
    note = config.deviation_of("wstatus")
    assert note == "registered_jobseeker: unemployed are the registered job-seekers"
    assert config.geo_level == "city"  # the default level


def test_the_harmonised_concept_is_no_deviation(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, 'concept = "ilo"', 'geo_level = "nuts3"'))
    assert config.concepts_of("wstatus") == [] and config.deviation_of("wstatus") is None
    assert config.geo_level == "nuts3"


def test_an_unknown_concept_names_file_key_and_the_vocabulary(tmp_path: Path) -> None:
    path = _config(tmp_path, 'concept = "register"')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert str(path) in error.message and error.field == "variables.wstatus.concept"
    for code in ("ilo", "register_activity", "registered_jobseeker", "self_declared"):
        assert code in error.hint


def test_an_unknown_geo_level_lists_the_levels(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, geo_level='geo_level = "district"'))
    assert caught.value.field == "node.geo_level"
    assert all(level in caught.value.hint for level in GEO_LEVELS)


def test_unmapped_unknown_is_a_declared_code_of_the_outcome_and_what_derives_from_it(
    tmp_path: Path,
) -> None:
    declared = 'concept = "registered_jobseeker"\nunmapped = "unknown"'
    config = load_config(_config(tmp_path, declared))
    assert config.unmapped_unknown == frozenset({"wstatus"})
    both = [("wstatus", "registered_jobseeker"), ("wstatus", UNMAPPED_AS_UNKNOWN.code)]
    assert config.concepts_of("wstatus") == both
    assert config.concepts_of("neet") == both  # derived from wstatus and in_educ
    assert config.concepts_of("elet") == []  # reads isced11 and in_educ only
    # Not a definition: it leaves the deviation notes (and so pooling) as they were.
    assert config.deviation_of("wstatus") == (
        "registered_jobseeker: unemployed are the registered job-seekers"
    )
    assert "unknown outcome" in concept_text("wstatus", UNMAPPED_AS_UNKNOWN.code)
    assert UNMAPPED_AS_UNKNOWN.code not in [c.code for c in vocabulary("wstatus")]


def test_unmapped_refuse_is_the_default_and_may_be_written(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, 'unmapped = "refuse"'))
    assert config.unmapped_unknown == frozenset()
    assert config.concepts_of("wstatus") == []


def test_a_wrong_unmapped_choice_names_the_key_and_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, 'unmapped = "UNK"'))
    assert caught.value.field == "variables.wstatus.unmapped"
    assert '"refuse"' in caught.value.hint and '"unknown"' in caught.value.hint


def test_unmapped_is_refused_on_a_group_or_breakdown_variable(tmp_path: Path) -> None:
    path = _config(tmp_path)
    text = path.read_text().replace(
        "[variables.age]",
        '[variables.sex]\ncolumn = "sex"\nmap = { m = "M", f = "F" }\n'
        'unmapped = "unknown"\n\n[variables.age]',
    )
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.field == "variables.sex.unmapped"
    assert "not an outcome variable" in caught.value.message
    assert all(name in caught.value.hint for name in OUTCOME_INPUTS)
