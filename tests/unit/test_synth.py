"""Tests for the synthetic data generator (fedstats.synth)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.config import load_coordinator_config
from fedstats import configs, synth
from fedstats.configs import coordinator_toml, toml_document
from indicators.variables import CATEGORICAL, ISO_3166_ALPHA2
from node.config import load_config
from node.harmonise import Harmonised, harmonise
from node.source import load_frame
from security.signing import public_key_text

EVERYTHING = {
    "sex", "age", "c_birth", "citizen", "mig_background", "reason", "yearesid",
    "arrival_cohort", "wstatus", "isced11", "in_educ", "tenure", "stapro", "isco08", "income",
}  # fmt: skip
MIXES = {
    "amsterdam": EVERYTHING,
    "athens": EVERYTHING - {"mig_background"},
    "ghent": EVERYTHING - {"mig_background"},
    "helsinki": EVERYTHING - {"reason"} | {"local:mother_tongue"},  # its own group dimension
    "vienna": EVERYTHING - {"c_birth", "mig_background", "reason"},
    "rotterdam": EVERYTHING,  # the generic profile maps everything
}
ALL_CITIES = tuple(MIXES)
PERSONS = 40_000


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return {city: synth.generate(city, PERSONS, seed=11) for city in ALL_CITIES}


@pytest.fixture(scope="module")
def harmonised(
    frames: dict[str, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, pd.DataFrame]:
    """Each city's frame harmonised by a real node config: one column per variable."""
    folder = tmp_path_factory.mktemp("cities")
    out = {}
    for city, frame in frames.items():
        synth.write(frame, folder / f"{city}.csv")
        config = folder / f"{city}.toml"
        config.write_text(node_toml(city, f"{city}.csv"))
        loaded = load_config(config)
        out[city] = table(harmonise(load_frame(loaded), loaded))
    return out


def node_toml(city: str, data: str) -> str:
    facts, sampling = synth.city_facts(city), synth.sampling(city)
    privacy: dict[str, Any] = {"rho_budget": 1.0, "max_rho_per_query": 1.0}
    if sampling.max_weight:
        privacy["max_weight"] = sampling.max_weight
    config = {
        "node": {"id": facts.id, "geo": facts.geo, "country": facts.country},
        "dataset": {"path": data, "time_period": facts.time_period, **synth.dataset_table(city)},
        "privacy": privacy,
    }
    return toml_document("", config) + "\n" + synth.variables_toml(city)


def test_demo_configs_are_what_the_loaders_read(tmp_path: Path) -> None:
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    key = public_key_text(Ed25519PrivateKey.generate().public_key())
    datasets = [("../data/a.csv", "2024"), ("../data/b.csv", "2025")]
    for city in ALL_CITIES:
        path = nodes / f"{city}.toml"
        path.write_text(node_toml_for_demo(city, datasets, key), encoding="utf-8")
        config = load_config(path)
        facts = synth.city_facts(city)
        assert (config.id, config.country) == (facts.id, facts.country)
        assert config.periods == ("2024", "2025")
        assert config.dataset.path is not None
        assert config.dataset.path.resolve() == tmp_path / "data" / "b.csv"
        assert config.tls is not None
        assert config.tls.cert.resolve() == tmp_path / f"pki/node-{facts.id}.pem"
        assert config.signing_key == nodes / f"../pki/node-{facts.id}.sign.key"
        assert set(config.policy.coordinators) == {"demo"}
        assert set(config.variables) == MIXES[city]
    path = tmp_path / "coordinator.toml"
    path.write_text(coordinator_toml("demo", [("amsterdam", "127.0.0.1:1", key)]))
    coordinator = load_coordinator_config(path)
    assert [(n.id, n.address) for n in coordinator.nodes] == [("amsterdam", "127.0.0.1:1")]
    assert coordinator.signing_key == tmp_path / "pki/coordinator-demo.sign.key"
    assert "written by `fedstats demo`" in path.read_text().splitlines()[0]


def node_toml_for_demo(city: str, datasets: list[tuple[str, str]], key: str) -> str:
    return configs.node_toml(city, datasets, ("demo", key), ["employment_rate"], 5.0)


def table(data: Harmonised) -> pd.DataFrame:
    columns: dict[str, Any] = {
        name: np.asarray(data.variable(name).codes, dtype=object)[codes]
        for name, codes in data.codes.items()
        if name != "income"
    }
    columns["age"] = data.age.astype(int)
    columns["w"] = 1.0 if data.weights is None else data.weights
    return pd.DataFrame(columns)


def variables(city: str) -> dict[str, dict[str, Any]]:
    parsed: dict[str, dict[str, Any]] = tomllib.loads(synth.variables_toml(city))["variables"]
    return parsed


def share(frame: pd.DataFrame, var: str, num: set[str], den: set[str], by: str) -> pd.Series:
    """Weighted share of ``num`` among ``den`` codes of ``var``, per code of ``by``."""
    rows = frame[frame[var].isin(den)]
    hits = (rows[var].isin(num) * rows.w).groupby(rows[by]).sum()
    result: pd.Series = hits / rows.w.groupby(rows[by]).sum()
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
    assert set(config) == MIXES[city]
    assert set(config["age"]) == {"column"}
    assert set(config["income"]) == {"column"}
    for name, spec in config.items():
        columns = [
            spec.get("column"),
            spec.get("arrival_year"),
            *spec.get("from_parents", {}).values(),
        ]
        assert all(c in frames[city].columns for c in columns if c), name
        if name in ("age", "income") or "arrival_year" in spec:
            continue
        if name.startswith("local:"):  # the column holds the node's own codes
            assert set(frames[city][spec["column"]].dropna()) <= set(spec["codes"]), name
            continue
        assert ("map" in spec) != bool(spec.get("iso_country")), name
        target = "c_birth" if "from_parents" in spec else name
        assert set(spec.get("map", {}).values()) <= set(CATEGORICAL[target].codes), name


@pytest.mark.parametrize("city", ALL_CITIES)
def test_values_are_mostly_mapped(city: str, frames: dict[str, pd.DataFrame]) -> None:
    frame = frames[city]
    for name, spec in variables(city).items():
        for column in (spec.get("column"), *spec.get("from_parents", {}).values()):
            if not column:
                continue
            if name == "age":
                assert frame[column].between(0, 99).all()
                continue
            if name == "income":
                assert (frame[column] > 0).all()
                continue
            text = frame[column].astype("string").str.strip().dropna()
            text = text[text != ""]
            if spec.get("iso_country"):
                known = text.isin(ISO_3166_ALPHA2 | {"STLS"})
            elif "codes" in spec:
                known = text.isin(set(spec.get("map", spec["codes"])))
            else:
                known = text.isin(set(spec["map"])) | ("default" in spec)
            assert known.mean() >= 0.95, (city, name, text[~known].value_counts().head())


@pytest.mark.parametrize("city", ALL_CITIES)
def test_harmonised_structure_is_realistic(city: str, harmonised: dict[str, pd.DataFrame]) -> None:
    data = harmonised[city]
    # Some missing or unmapped values for `node check` to report, but not many.
    unknown = (data.drop(columns=["age", "w"]) == "UNK")[data.age >= 15].mean()
    assert 0 < unknown.max() < 0.2, unknown.sort_values().tail(3)
    # Children have no labour status and no education: UNK, never INAC.
    children = data[data.age < 15]
    assert len(children) > 0.08 * len(data)
    assert (children.wstatus == "UNK").all() and (children.isced11 == "UNK").all()
    assert (children.in_educ == "UNK").all()
    # A foreign-born (or foreign-citizen) population with both EU and non-EU origins.
    group = "c_birth" if "c_birth" in data else "citizen"
    shares = data.w.groupby(data[group]).sum() / data.w.sum()
    assert shares["NEU27_2020_FOR"] > 0.08 and shares["EU27_2020_FOR"] > 0.02
    assert 0.55 < shares["NAT"] < 0.9
    # The native/non-EU employment gap at 20-64.
    working = data[data.age.between(20, 64)]
    rate = share(working, "wstatus", {"EMP"}, {"EMP", "UNE", "INAC"}, group)
    assert 0.65 < rate["NAT"] < 0.85
    assert rate["NAT"] - rate["NEU27_2020_FOR"] >= 0.05
    assert rate["NEU27_2020_FOR"] < rate["EU27_2020_FOR"] <= rate["NAT"] + 0.02


@pytest.mark.parametrize("city", ALL_CITIES)
def test_new_indicators_come_out_plausible(city: str, harmonised: dict[str, pd.DataFrame]) -> None:
    data = harmonised[city]
    group = "c_birth" if "c_birth" in data else "citizen"
    young = data[data.age.between(18, 24)]
    elet = share(young, "elet", {"Y"}, {"Y", "N"}, group)
    assert 0.04 < elet["NAT"] < 0.2 and elet["NEU27_2020_FOR"] > elet["NAT"]
    youth = data[data.age.between(15, 29)]
    neet = share(youth, "neet", {"Y"}, {"Y", "N"}, group)
    assert 0.04 < neet["NAT"] < 0.2 and neet["NEU27_2020_FOR"] > neet["NAT"]
    working = data[data.age.between(20, 64)]
    overqual = share(working, "overqual", {"OVQ"}, {"OVQ", "MATCH"}, group)
    assert 0.08 < overqual["NAT"] < 0.4
    assert overqual["NEU27_2020_FOR"] > overqual["NAT"] + 0.05
    self_employed = share(working, "stapro", {"SELF"}, {"SAL", "SELF", "CFAM"}, group)
    assert 0.05 < self_employed["NAT"] < 0.35
    adults = data[data.age >= 18]
    owners = share(adults, "tenure", {"OWNER"}, {"OWNER", "TENANT"}, group)
    assert 0.1 < owners["NAT"] < 0.85 and owners["NEU27_2020_FOR"] < owners["NAT"]
    # Who the partly applicable variables apply to.
    assert (data.stapro[data.wstatus.isin(["UNE", "INAC"])] == "NAP").all()
    assert (data.isco08[data.wstatus == "EMP"] != "NAP").all()
    if "c_birth" in data:
        assert (data.yearesid[data.c_birth == "NAT"] == "NAP").all()
        foreign = data.c_birth.isin(["EU27_2020_FOR", "NEU27_2020_FOR"])
        assert (data.yearesid[foreign].isin(["Y_LT5", "Y5-9", "Y_GE10"])).mean() > 0.95


@pytest.mark.parametrize("city", ["amsterdam", "rotterdam"])
def test_parents_give_a_second_generation(city: str, harmonised: dict[str, pd.DataFrame]) -> None:
    data = harmonised[city]
    counts = data.mig_background.value_counts(normalize=True)
    assert counts["NB_2FBP"] > 0.03 and counts["NB_1FBP"] > 0.02
    assert 0 < counts.get("UNK", 0) < 0.05  # parents' data missing: counted
    assert (data.mig_background[data.c_birth != "NAT"].isin(["FB", "UNK"])).all()
    second = data.mig_background.isin(["NB_2FBP", "NB_1FBP"])
    assert second[data.age < 18].mean() > 2 * second[data.age >= 65].mean()


@pytest.mark.parametrize("city", ["ghent", "rotterdam", "athens"])
def test_refugees_concentrate_in_recent_cohorts(
    city: str, harmonised: dict[str, pd.DataFrame]
) -> None:
    data = harmonised[city]
    foreign = data[data.reason != "NAP"]
    refugees = share(foreign, "reason", {"INTPROT"}, set(CATEGORICAL["reason"].codes), "yearesid")
    assert refugees["Y_LT5"] > 1.3 * refugees["Y_GE10"]
    assert (data.reason[data.c_birth == "NAT"] == "NAP").all()


def test_refugees_come_from_refugee_origins(frames: dict[str, pd.DataFrame]) -> None:
    ghent = frames["ghent"]
    motive = ghent.verblijfsmotief.fillna("")
    protected = motive == "internationale bescherming"
    assert protected[ghent.geboorteland == "Syrië"].mean() > 0.6
    assert protected[ghent.geboorteland == "Marokko"].mean() == 0
    assert (motive[ghent.jaar_aankomst.isna()] == "").all()  # the native-born have none


def test_in_education_by_age(harmonised: dict[str, pd.DataFrame]) -> None:
    data = harmonised["amsterdam"]
    rate = (data.in_educ == "Y")[data.in_educ != "UNK"].groupby(data.age).mean()
    assert rate.loc[15:17].min() > 0.85
    assert rate.loc[40:50].max() < 0.15
    assert rate.loc[19] > rate.loc[25] > rate.loc[40]


def test_athens_is_a_weighted_survey_that_oversamples(
    frames: dict[str, pd.DataFrame], harmonised: dict[str, pd.DataFrame]
) -> None:
    sampling = synth.sampling("athens")
    assert (sampling.source, sampling.weight) == ("survey", "syntelestis_vary")
    weights = frames["athens"][sampling.weight]
    assert sampling.max_weight is not None
    assert (weights > 0).all() and weights.max() <= sampling.max_weight
    data = harmonised["athens"]
    neu = data.c_birth == "NEU27_2020_FOR"
    unweighted, weighted = neu.mean(), data.w[neu].sum() / data.w.sum()
    assert unweighted > 2 * weighted and 0.08 < weighted < 0.2
    line = {
        "poverty_line": synth.national_poverty_line("athens"),
        "poverty_line_currency": "EUR",
        "poverty_line_source": "synthetic: 60% of the synthetic country's median income",
    }
    assert tomllib.loads(synth.dataset_toml("athens")) == {
        "source": "survey",
        "weight": "syntelestis_vary",
        "design_effect": sampling.design_effect,
        **line,
    }
    assert line["poverty_line"] == 0.6 * 13_500  # Greece's synthetic median income
    for city in ("amsterdam", "ghent", "helsinki", "vienna", "rotterdam"):
        table = tomllib.loads(synth.dataset_toml(city))
        assert table["source"] == "register" and "weight" not in table
        assert table["poverty_line"] == synth.national_poverty_line(city) > 0
        assert synth.sampling(city).weight is None


def test_mixes_differ_like_real_data_holders(frames: dict[str, pd.DataFrame]) -> None:
    vienna, helsinki = variables("vienna"), variables("helsinki")
    assert "deviation" in vienna["citizen"] and "stateless" in vienna["citizen"]["deviation"]
    assert vienna["yearesid"] == {"arrival_year": "year_of_arrival", "missing": "NAP"}
    assert "deviation" in helsinki["mig_background"]
    assert "aidinkieli" in frames["helsinki"].columns  # mother tongue: a local variable
    assert helsinki["local:mother_tongue"]["column"] == "aidinkieli"
    tongues = frames["helsinki"].aidinkieli.value_counts(normalize=True)
    assert tongues["fi"] > 0.6 and {"sv", "ru", "et", "so", "ar"} <= set(tongues.index)
    assert variables("amsterdam")["mig_background"]["from_parents"] == {
        "father": "geboorteland_vader",
        "mother": "geboorteland_moeder",
    }


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
    for city in ALL_CITIES:
        assert len(synth.generate(city, 1)) == 1
    with pytest.raises(ValueError, match="seed"):
        synth.generate("helsinki", 10, seed=-1)
    with pytest.raises(ValueError, match="invalid city"):
        synth.generate("new york", 10)
    with pytest.raises(ValueError, match="invalid city"):
        synth.variables_toml("")
    with pytest.raises(ValueError, match="invalid city"):
        synth.dataset_toml("a b")


def test_city_facts() -> None:
    expected = {
        "amsterdam": ("Amsterdam", "NL002C", "NL"),
        "athens": ("Athens", "EL001C", "EL"),
        "ghent": ("Ghent", "BE003C", "BE"),
        "helsinki": ("Helsinki", "FI001C", "FI"),
        "vienna": ("Vienna", "AT001C", "AT"),
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
