"""Tests for the synthetic register generator (fedstats.synth)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from fedstats import synth
from indicators.variables import ISO_3166_ALPHA2, country_group

HARMONISED = {"sex", "age", "c_birth", "citizen", "wstatus", "isced11"}
ALL_CITIES = (*synth.CITIES, "rotterdam")  # the last one gets the generic profile
PERSONS = 40_000
CODES = {"M", "F", "EMP", "UNE", "INAC", "ED0-2", "ED3_4", "ED5-8"}
CODES |= {"NAT", "EU27_2020_FOR", "NEU27_2020_FOR", "STLS"}


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return {city: synth.generate(city, PERSONS, seed=11) for city in ALL_CITIES}


def variables(city: str) -> dict[str, dict[str, Any]]:
    parsed: dict[str, dict[str, Any]] = tomllib.loads(synth.variables_toml(city))["variables"]
    return parsed


def harmonise(frame: pd.DataFrame, name: str, spec: dict[str, Any], home: str) -> pd.Series:
    """Apply one [variables.NAME] section the way DESIGN section 6 describes it."""
    text = frame[spec["column"]].astype("string").str.strip()
    empty = text.isna() | (text == "")
    if spec.get("iso_country"):
        lookup = {v: country_group(v, home, name) for v in text.dropna().unique()}
    else:
        lookup = dict(spec["map"])
    mapped = text.map(lookup).astype(object)
    if "default" in spec:
        mapped = mapped.where(mapped.notna(), spec["default"])
    result: pd.Series = mapped.where(~empty, spec.get("missing", "UNK")).fillna("UNK")
    return result


def test_same_seed_same_frame_other_seed_other_frame() -> None:
    first = synth.generate("vienna", 3_000, seed=7)
    pd.testing.assert_frame_equal(first, synth.generate("vienna", 3_000, seed=7))
    assert not first.equals(synth.generate("vienna", 3_000, seed=8))
    assert synth.generate("Vienna ", 50, seed=1).equals(synth.generate("vienna", 50, seed=1))


def test_cities_have_their_own_formats(frames: dict[str, pd.DataFrame]) -> None:
    columns = {tuple(frame.columns) for frame in frames.values()}
    assert len(columns) == len(ALL_CITIES)
    assert all(len(frame) == PERSONS for frame in frames.values())


@pytest.mark.parametrize("city", ALL_CITIES)
def test_config_names_existing_columns(city: str, frames: dict[str, pd.DataFrame]) -> None:
    config = variables(city)
    assert set(config) == HARMONISED
    assert set(config["age"]) == {"column"}
    for name, spec in config.items():
        assert spec["column"] in frames[city].columns
        if name != "age":
            assert ("map" in spec) != bool(spec.get("iso_country")), name
            assert set(spec.get("map", {}).values()) <= CODES, name


@pytest.mark.parametrize("city", ALL_CITIES)
def test_values_are_mostly_mapped(city: str, frames: dict[str, pd.DataFrame]) -> None:
    frame = frames[city]
    for name, spec in variables(city).items():
        if name == "age":
            assert frame[spec["column"]].between(0, 99).all()
            continue
        text = frame[spec["column"]].astype("string").str.strip().dropna()
        text = text[text != ""]
        if spec.get("iso_country"):
            known = text.isin(ISO_3166_ALPHA2 | {"STLS"})
        else:
            known = text.isin(set(spec["map"])) | ("default" in spec)
        assert known.mean() >= 0.95, (city, name, text[~known].value_counts().head())


@pytest.mark.parametrize("city", ALL_CITIES)
def test_harmonised_structure_is_realistic(city: str, frames: dict[str, pd.DataFrame]) -> None:
    frame, home = frames[city], synth.city_facts(city).country
    data = pd.DataFrame(
        {
            name: frame[spec["column"]] if name == "age" else harmonise(frame, name, spec, home)
            for name, spec in variables(city).items()
        }
    )
    # Some missing or unmapped values for `node check` to report, but not many.
    unknown = (data.drop(columns="age") == "UNK")[data.age >= 15].mean()
    assert 0 < unknown.max() < 0.2
    # Children have no labour status and no education: UNK, never INAC.
    children = data[data.age < 15]
    assert len(children) > 0.08 * len(data)
    assert (children.wstatus == "UNK").all() and (children.isced11 == "UNK").all()
    # A foreign-born population with both EU and non-EU origins.
    shares = data.c_birth.value_counts(normalize=True)
    assert shares["NEU27_2020_FOR"] > 0.08 and shares["EU27_2020_FOR"] > 0.02
    assert 0.55 < shares["NAT"] < 0.9
    # The native-born/non-EU-born employment gap at 20-64.
    working = data[data.age.between(20, 64) & (data.wstatus != "UNK")]
    rate = (working.wstatus == "EMP").groupby(working.c_birth).mean()
    assert 0.65 < rate["NAT"] < 0.85
    assert rate["NAT"] - rate["NEU27_2020_FOR"] >= 0.05
    assert rate["NEU27_2020_FOR"] < rate["EU27_2020_FOR"] <= rate["NAT"] + 0.02


def test_arrival_years_only_for_the_foreign_born(frames: dict[str, pd.DataFrame]) -> None:
    frame = frames["amsterdam"]
    arrival = frame["jaar_vestiging"]
    foreign = frame["geboorteland"] != "NL"
    assert arrival[foreign].notna().all() and arrival[~foreign].isna().all()
    years = arrival[foreign].astype(int)
    assert (years <= int(synth.TIME_PERIOD)).all()
    assert (years >= int(synth.TIME_PERIOD) - frame["leeftijd"][foreign]).all()
    assert (frame["gestandaardiseerd_inkomen"] > 0).all()


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".CSV"])
def test_write_round_trips(suffix: str, tmp_path: Path) -> None:
    frame = synth.generate("ghent", 500, seed=3)
    path = tmp_path / "sub" / f"ghent{suffix}"
    synth.write(frame, path)
    if suffix.lower() == ".csv":
        dtypes = {column: str(dtype) for column, dtype in frame.dtypes.items()}
        back = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=[""])
    else:
        back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, frame)


def test_write_rejects_other_suffixes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'\.txt'.*\.csv, \.parquet"):
        synth.write(synth.generate("athens", 10), tmp_path / "athens.txt")
    with pytest.raises(ValueError, match="none"):
        synth.write(synth.generate("athens", 10), tmp_path / "athens")


@pytest.mark.parametrize("persons", [0, -3])
def test_persons_must_be_positive(persons: int) -> None:
    with pytest.raises(ValueError, match="persons must be at least 1"):
        synth.generate("helsinki", persons)


def test_one_person_and_bad_arguments() -> None:
    assert len(synth.generate("helsinki", 1)) == 1
    with pytest.raises(ValueError, match="seed"):
        synth.generate("helsinki", 10, seed=-1)
    with pytest.raises(ValueError, match="invalid city"):
        synth.generate("new york", 10)
    with pytest.raises(ValueError, match="invalid city"):
        synth.variables_toml("")


def test_city_facts() -> None:
    expected = {
        "amsterdam": ("Amsterdam", "NL32", "NL"),
        "athens": ("Athens", "EL30", "EL"),
        "ghent": ("Ghent", "BE23", "BE"),
        "helsinki": ("Helsinki", "FI1B", "FI"),
        "vienna": ("Vienna", "AT13", "AT"),
    }
    for city, (name, geo, country) in expected.items():
        facts = synth.city_facts(city.upper())
        assert (facts.id, facts.name, facts.geo, facts.country) == (city, name, geo, country)
        assert facts.time_period == synth.TIME_PERIOD
    generic = synth.city_facts("Cluj-Napoca")
    assert generic.id == "cluj-napoca" and generic.name == "Cluj Napoca"
    assert generic.country == synth.GENERIC_COUNTRY
    with pytest.raises(AttributeError):
        generic.id = "x"  # type: ignore[misc]
