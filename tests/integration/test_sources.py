"""CSV and Parquet sources give the same tables; synthetic cities are served as configured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedstats.demo import node_toml
from fedstats.synth import generate, write
from indicators.spec import Query
from node.config import load_config
from node.service import NodeService
from tests.conftest import COORDINATOR, pki


@pytest.mark.parametrize("city", ["vienna", "helsinki"])
def test_csv_and_parquet_give_identical_tables(tmp_path: Path, city: str) -> None:
    frame = generate(city, 5_000, seed=11)
    (tmp_path / "data").mkdir()
    answers = []
    for suffix in ("csv", "parquet"):
        write(frame, tmp_path / "data" / f"{city}.{suffix}")
        nodes = tmp_path / f"nodes-{suffix}"
        nodes.mkdir()
        text = (
            node_toml(city, f"{city}.{suffix}", pki().public_key("coordinator", COORDINATOR))
            .replace("rho_budget = 5.0", "rho_budget = 1e12")
            .replace("max_rho_per_query = 1.0", "max_rho_per_query = 1e12")
        )
        text = text.replace('"../data/', f'"{tmp_path}/data/').replace(
            '"../state/', f'"{tmp_path}/state-{suffix}/'
        )
        signing_key = pki().files("node", city)["sign_key"]
        text = text.replace(f"../pki/node-{city}.sign.key", str(signing_key))
        (nodes / "node.toml").write_text(text)
        service = NodeService(load_config(nodes / "node.toml"))
        query = Query(("employment_rate", "attainment_low"), "citizen", ("sex",), "NAT", 1e8)
        answers.append(service.run_query(f"q-{suffix}", query))
    csv_answer, parquet_answer = answers
    for a, b in zip(csv_answer.tables, parquet_answer.tables, strict=True):
        assert a.key == b.key
        # sigma ~ 1e-5: the discrete Gaussian returns the true counts
        assert np.array_equal(np.array(a.counts), np.array(b.counts))
        assert sum(a.counts) > 1000
