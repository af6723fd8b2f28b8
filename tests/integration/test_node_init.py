"""`fedstats node init` writes a commented config from a data file's columns, for a
register or a weighted survey; the repository's complete weighted-survey example loads
and checks against the data it names."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from fedstats import synth
from fedstats.cli import main
from node.config import load_config
from node.engines import open_engine
from tests.support.pki import pki

EXAMPLE = Path(__file__).parents[2] / "examples" / "weighted-survey-node.toml"


def test_a_register_gets_a_config_that_loads_and_lists_every_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "vienna.csv"
    synth.write(synth.generate("vienna", 500), data)
    assert main(["node", "init", "--data", str(data), "--kind", "register", "--country", "AT"]) == 0
    config = tmp_path / "vienna.toml"
    text = config.read_text()
    for column in pd.read_csv(data, nrows=0).columns:
        assert f"#   {column}\n" in text
    parsed = tomllib.loads(text)
    assert parsed["dataset"]["source"] == "register" and "weight" not in parsed["dataset"]
    assert parsed["variables"] == {"age": {"column": "age"}}
    assert '# column = "rb090"' in text  # sex: recognised, left for the operator to map
    assert '# map = { "female" = "TODO", "male" = "TODO" }' in text
    loaded = load_config(config)
    assert (loaded.id, loaded.country, loaded.dataset.path) == ("vienna", "AT", data)
    capsys.readouterr()
    assert main(["node", "check", "--config", str(config)]) == 0
    assert "every non-missing value maps" in capsys.readouterr().out
    assert main(["node", "init", "--data", str(data), "--kind", "register", "--country", "AT"]) == 2


def test_a_survey_gets_its_weight_and_a_max_weight_that_clips_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "athens.csv"
    synth.write(synth.generate("athens", 800), data)
    out = tmp_path / "configs" / "athens-node.toml"
    out.parent.mkdir()
    args = ["node", "init", "--data", str(data), "--kind", "survey", "--country", "EL"]
    assert main([*args, "--out", str(out), "--id", "athens"]) == 0
    dataset = tomllib.loads(out.read_text())["dataset"]
    assert dataset["source"] == "survey" and dataset["weight"] == "syntelestis_vary"
    assert Path(dataset["path"]) == data.resolve()  # another directory: an absolute path
    loaded = load_config(out)
    largest = pd.read_csv(data)["syntelestis_vary"].max()
    assert largest <= loaded.privacy.max_weight < 2 * largest
    engine = open_engine(loaded)
    try:
        assert engine.clipping is not None and engine.clipping.clipped == 0
    finally:
        engine.close()
    assert main([*args, "--out", str(tmp_path / "w.toml"), "--weight", "nosuch"]) == 2
    assert "no weight column 'nosuch'" in capsys.readouterr().err


def test_the_weighted_survey_example_is_complete_and_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    synth.write(synth.generate("athens", 2000), tmp_path / "athens-survey.csv")
    coordinator = pki().public_key("coordinator", "eu")
    text = EXAMPLE.read_text().replace("ed25519:REPLACE-WITH-THE-COORDINATOR-KEY", coordinator)
    config = tmp_path / "node.toml"
    config.write_text(text)
    loaded = load_config(config)
    assert loaded.dataset.weight == "syntelestis_vary" and loaded.dataset.source == "survey"
    assert set(loaded.variables) >= {"sex", "age", "citizen", "c_birth", "wstatus", "income"}
    # Every key of DESIGN section 6's [dataset] and [privacy] is set or explained.
    keys = ["engine", "path", "time_period", "source", "weight", "where", "where_not"]
    keys += ["poverty_line", "rho_budget", "max_rho_per_query", "max_weight", "rules"]
    for key in keys:
        assert re.search(rf"^#? ?{key} = ", text, re.MULTILINE), key
    assert main(["node", "check", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "0.0% of the total weight removed" in out
