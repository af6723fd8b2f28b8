"""CSV and Parquet sources give the same tables; synthetic cities are served as configured."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from fedstats.synth import city_facts, dataset_toml, generate, sampling, variables_toml, write
from indicators.spec import Query
from node.config import load_config
from node.service import NodeService
from tests.support.pki import pki


@pytest.mark.parametrize("city", ["vienna", "helsinki"])
def test_csv_and_parquet_give_identical_tables(tmp_path: Path, city: str) -> None:
    frame = generate(city, 5_000, seed=11)
    (tmp_path / "data").mkdir()
    answers = []
    for suffix in ("csv", "parquet"):
        write(frame, tmp_path / "data" / f"{city}.{suffix}")
        nodes = tmp_path / f"nodes-{suffix}"
        nodes.mkdir()
        facts = city_facts(city)
        text = textwrap.dedent(f"""
            [node]
            id = "{facts.id}"
            geo = "{facts.geo}"
            country = "{facts.country}"
            state_dir = "{tmp_path}/state-{suffix}"

            [dataset]
            path = "{tmp_path}/data/{city}.{suffix}"
            time_period = "{facts.time_period}"
            """)
        text += dataset_toml(city) + "\n[privacy]\nrho_budget = 1e12\nmax_rho_per_query = 1e12\n"
        max_weight = sampling(city).max_weight
        text += f"max_weight = {max_weight}\n" if max_weight else ""
        text += variables_toml(city) + pki().node_trust_toml(facts.id)
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
