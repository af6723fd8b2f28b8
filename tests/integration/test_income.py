"""Income indicators against direct computations: nine laeken survey nodes (weighted) and
nine simPop register nodes. Medians are read from public income bins, so they agree with
the exact medians within the width of the bin they fall in (at most 2.35% here)."""

from __future__ import annotations

import math
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common.errors import QueryError, Reason
from coordinator.combine import poverty_lines
from coordinator.estimates import Layout, median_of_all
from coordinator.flags import Status
from coordinator.rows import POOLED
from coordinator.run import run_query
from indicators.spec import Query
from indicators.variables import INCOME_EDGES
from node.config import load_config
from node.service import NodeService
from privacy.estimators import Cells
from tests.support.nodes import ServeFn, coordinator_for
from tests.support.pki import pki
from tests.support.reference import (
    LANDS,
    SIMPOP,
    laeken_node_toml,
    require_laeken,
    require_simpop,
)

CITIZEN = {"AT": "NAT", "EU": "EU27_2020_FOR", "Other": "NEU27_2020_FOR"}
EDGES = np.asarray(INCOME_EDGES[1:])


def bin_width(x: float) -> float:
    """Width of the public income bin that holds ``x``."""
    k = int(np.searchsorted(EDGES, x, side="right"))
    return float(EDGES[k] - EDGES[k - 1]) if 0 < k < len(EDGES) else 0.0


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def node_id(land: str) -> str:
    return land.lower().replace(" ", "-")


def national_line(path: Path) -> float:
    """Austria's line in the laeken data: 60% of the weighted median of all persons."""
    df = pd.read_csv(path)
    return 0.6 * weighted_median(df.eqIncome.to_numpy(), df.rb050.to_numpy())


def laeken_federation(
    tmp_path: Path, serve: ServeFn, line: float | None = None
) -> list[tuple[str, str]]:
    addresses = []
    for land in LANDS:
        config = tmp_path / f"{node_id(land)}.toml"
        config.write_text(
            laeken_node_toml(node_id(land), land, poverty_line=line)
            + '\n[variables.income]\ncolumn = "eqIncome"\n'
        )
        addresses.append((node_id(land), serve(config).address))
    return addresses


@pytest.mark.slow
def test_laeken_median_ratio_and_poverty_rate_match_pandas(tmp_path: Path, serve: ServeFn) -> None:
    path = require_laeken()
    line = national_line(path)
    config = coordinator_for(tmp_path, laeken_federation(tmp_path, serve, line))
    outcome = run_query(
        config, Query(("median_income_ratio", "arop_rate"), "citizen", (), "NAT", rho=1e8)
    )
    assert not outcome.failures

    df = pd.read_csv(path)
    df = df[df.age >= 18].assign(group=lambda d: d.pb220a.map(CITIZEN), w=lambda d: d.rb050)
    # every Land uses its configured national line, recorded on its rows
    assert poverty_lines(outcome.plan, dict(outcome.answers)) == dict.fromkeys(
        outcome.answers, line
    )
    arop = [r for r in outcome.rows if r.indicator == "arop_rate" and r.value is not None]
    assert arop and {r.poverty_line for r in arop} == {line}

    land_of = {node_id(land): land for land in LANDS}
    checked = 0
    for row in outcome.rows:
        if row.group not in CITIZEN.values():
            continue
        people = df if row.node == POOLED else df[df.db040 == land_of[row.node]]
        group = people[people.group == row.group]
        if len(group) < 10:  # confidential at any budget
            assert row.value is None and "c" in row.flags
            continue
        assert row.estimate is not None
        got = 100 * row.estimate.value
        if row.indicator == "median_income_ratio":
            m_g = weighted_median(group.eqIncome.to_numpy(), group.w.to_numpy())
            m_t = weighted_median(people.eqIncome.to_numpy(), people.w.to_numpy())
            low = 100 * (m_g - bin_width(m_g)) / (m_t + bin_width(m_t))
            high = 100 * (m_g + bin_width(m_g)) / (m_t - bin_width(m_t))
            assert low <= got <= high, (row.node, row.group, got, 100 * m_g / m_t)
        else:
            below = group.w[group.eqIncome < line].sum() / group.w.sum()
            k = int(np.searchsorted(EDGES, line, side="right"))
            in_bin = group.w[(group.eqIncome >= EDGES[k - 1]) & (group.eqIncome < EDGES[k])]
            # interpolation inside the line's bin, plus rounding weighted cells to integers
            rounding = 0.5 * len(group)
            tolerance = 100 * (in_bin.sum() + rounding) / group.w.sum()
            assert got == pytest.approx(100 * below, abs=tolerance), (row.node, row.group)
        checked += 1
    assert checked >= 40


SIMPOP_VARIABLES = """
[variables.sex]
column = "gender"
map = { male = "M", female = "F" }

[variables.age]
column = "age"

[variables.citizen]
column = "citizenship"
map = { AT = "NAT", EU = "EU27_2020_FOR", Other = "NEU27_2020_FOR" }

[variables.wstatus]
column = "ecoStat"
map = { 1 = "EMP", 2 = "EMP", 3 = "UNE", 4 = "INAC", 5 = "INAC", 6 = "INAC", 7 = "INAC" }

[variables.income]
column = "eqIncome"
"""


def simpop_node_toml(region: str) -> str:
    ident = f"sp-{node_id(region)}"
    return (
        textwrap.dedent(f"""
        [node]
        id = "{ident}"
        geo = "AT-{ident[3:6].upper()}"
        country = "AT"
        state_dir = "state-{ident}"

        [dataset]
        path = "{SIMPOP}"
        time_period = "2006"
        source = "register"
        where = {{ region = "{region}" }}

        [privacy]
        rho_budget = 1e9
        max_rho_per_query = 1e9
        """)
        + SIMPOP_VARIABLES
        + pki().node_trust_toml(ident)
    )


@pytest.mark.slow
def test_simpop_pooled_median_and_employment_match_the_population(
    tmp_path: Path, serve: ServeFn
) -> None:
    require_simpop()
    addresses = []
    for region in LANDS:
        config = tmp_path / f"sp-{node_id(region)}.toml"
        config.write_text(simpop_node_toml(region))
        addresses.append((f"sp-{node_id(region)}", serve(config).address))
    outcome = run_query(
        coordinator_for(tmp_path, addresses),
        Query(("median_income_ratio", "employment_rate"), "citizen", (), "NAT", rho=1e8),
    )
    assert not outcome.failures

    df = pd.read_csv(SIMPOP)
    adults = df[df.age >= 18]
    _, spec = outcome.plan.indicator("median_income_ratio")
    pooled = Cells.concat([a.cells[spec.key] for a in outcome.answers.values()])
    median = median_of_all(pooled, Layout(spec, len(outcome.answers))).value
    exact = float(adults.eqIncome.median())
    assert abs(median - exact) <= bin_width(exact), (median, exact)

    working = df[df.age.between(20, 64) & df.citizenship.notna() & df.ecoStat.notna()]
    rates = working.assign(emp=working.ecoStat.isin([1, 2])).groupby("citizenship").emp.mean()
    pooled_rows = {
        r.group: r for r in outcome.rows if r.node == POOLED and r.indicator == "employment_rate"
    }
    for local, code in CITIZEN.items():
        estimate = pooled_rows[code].estimate
        assert estimate is not None
        assert 100 * estimate.value == pytest.approx(100 * rates[local], abs=0.1)
    assert math.isfinite(median)


def test_a_node_without_a_national_line_spends_nothing_on_poverty_rates(
    tmp_path: Path, serve: ServeFn
) -> None:
    require_laeken()
    land = LANDS[0]
    config = tmp_path / f"{node_id(land)}.toml"
    config.write_text(
        laeken_node_toml(node_id(land), land) + '\n[variables.income]\ncolumn = "eqIncome"\n'
    )
    coordinator = coordinator_for(tmp_path, [(node_id(land), serve(config).address)])
    both = Query(("median_income_ratio", "arop_rate"), "citizen", (), "NAT", rho=1e6)
    outcome = run_query(coordinator, both)
    arop = [r for r in outcome.rows if r.indicator == "arop_rate" and r.node != POOLED]
    assert arop and {r.status for r in arop} == {Status.NOT_PROVIDED}
    assert {r.value for r in arop} == {None}
    medians = [r for r in outcome.rows if r.indicator == "median_income_ratio"]
    assert any(r.value is not None for r in medians)

    alone = run_query(coordinator, replace(both, indicators=("arop_rate",)))
    assert node_id(land) in alone.failures  # planned out from Describe: not asked at all
    assert "no national poverty line" in alone.failures[node_id(land)].message

    # asked directly, the node refuses before charging anything
    service = NodeService(load_config(config))
    before = service.budget().spent
    with pytest.raises(QueryError) as info:
        service.run_query("direct", replace(both, indicators=("arop_rate",)))
    assert info.value.field == "dataset.poverty_line"
    assert info.value.reason == Reason.VARIABLE_NOT_PROVIDED
    assert service.budget().spent == before
