"""The controlled vocabulary of concepts and ``[node] geo_level`` in a node config."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import ConfigError
from indicators.concepts import GEO_LEVELS, VOCABULARY, harmonised_code, vocabulary
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
    assert config.concepts_of("wstatus") == {"wstatus": "registered_jobseeker"}
    assert config.concepts_of("neet") == {"wstatus": "registered_jobseeker"}  # derived
    assert config.concepts_of("isced11") == {}
    note = config.deviation_of("wstatus")
    assert note == "registered_jobseeker: unemployed are the registered job-seekers"
    assert config.geo_level == "city"  # the default level


def test_the_harmonised_concept_is_no_deviation(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, 'concept = "ilo"', 'geo_level = "nuts3"'))
    assert config.concepts_of("wstatus") == {} and config.deviation_of("wstatus") is None
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
