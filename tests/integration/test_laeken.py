"""Nine Länder of the laeken EU-SILC survey as nine nodes, checked against pandas."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from coordinator.rows import POOLED
from coordinator.run import run_query
from indicators.spec import Query
from tests.support.nodes import ServeFn, coordinator_for
from tests.support.reference import LANDS, laeken_node_toml, require_laeken

MAX_WEIGHT = 2000.0
CITIZEN = {"AT": "NAT", "EU": "EU27_2020_FOR", "Other": "NEU27_2020_FOR"}


def direct_employment_rates(path: Path) -> dict[tuple[str, str], tuple[float, int]]:
    """Weighted employment rate 20-64 and sample size by Land and citizenship, from the file."""
    df = pd.read_csv(path)
    df = df[df.age.between(20, 64) & df.pl030.between(1, 7) & df.pb220a.isin(list(CITIZEN))]
    df = df.assign(
        group=df.pb220a.map(CITIZEN),
        w=df.rb050.clip(upper=MAX_WEIGHT),
        employed=df.pl030.isin([1, 2]),
    )
    df["we"] = df.w * df.employed
    df["n"] = 1
    per_land = df.groupby(["db040", "group"])[["we", "w", "n"]].sum()
    pooled = df.groupby("group")[["we", "w", "n"]].sum()
    pooled.index = pd.MultiIndex.from_product([[POOLED], pooled.index])
    both = pd.concat([per_land, pooled])
    return {
        (str(key[0]), str(key[1])): (100 * float(we) / float(w), int(n))
        for key, we, w, n in zip(both.index, both.we, both.w, both.n, strict=True)
    }


@pytest.fixture(scope="module")
def laeken() -> Path:
    return require_laeken()


def test_per_land_and_pooled_employment_match_pandas(
    laeken: Path, tmp_path: Path, serve: ServeFn
) -> None:
    addresses = []
    for land in LANDS:
        node_id = land.lower().replace(" ", "-")
        config = tmp_path / f"{node_id}.toml"
        config.write_text(laeken_node_toml(node_id, land))
        addresses.append((node_id, serve(config).address))
    land_of = {node_id: land for (node_id, _), land in zip(addresses, LANDS, strict=True)}

    outcome = run_query(
        coordinator_for(tmp_path, addresses),
        Query(("employment_rate",), "citizen", (), "NAT", rho=1e8),
    )

    assert not outcome.failures
    expected = direct_employment_rates(laeken)
    checked = suppressed = 0
    for row in outcome.rows:
        if row.group not in CITIZEN.values():
            continue
        land = POOLED if row.node == POOLED else land_of[row.node]
        rate, n = expected[(land, row.group)]
        if n < 10:  # below min_count: confidential, whatever the budget
            assert row.flags == "c" and row.value is None, (land, row.group)
            suppressed += 1
            continue
        assert row.estimate is not None, (land, row.group)
        got = 100 * row.estimate.value
        assert got == pytest.approx(rate, abs=0.1), (land, row.group)
        assert row.value == pytest.approx(rate, abs=0.1)
        checked += 1
    assert checked + suppressed == 3 * (len(LANDS) + 1)
    assert checked >= 25


def test_small_cells_are_flagged_from_noisy_counts(
    laeken: Path, tmp_path: Path, serve: ServeFn
) -> None:
    """Burgenland has 6 non-EU citizens aged 20-64 in the sample: below min_count 10."""
    config = tmp_path / "burgenland.toml"
    config.write_text(laeken_node_toml("burgenland", "Burgenland"))
    node = serve(config)
    outcome = run_query(
        coordinator_for(tmp_path, [("burgenland", node.address)]),
        Query(("employment_rate",), "citizen", (), "NAT", rho=1e8),
    )
    rows = {(r.node, r.group): r for r in outcome.rows}
    small = rows[("burgenland", "NEU27_2020_FOR")]
    assert small.flags == "c"
    assert small.value is None and small.ci_low is None and small.denominator is None
    assert small.gap is None
    assert rows[("burgenland", "EU27_2020_FOR")].flags == "u"  # 11 persons: published, unreliable
    assert rows[("burgenland", "NAT")].flags == ""


def test_the_eu_silc_publication_rule_on_sample_counts(
    laeken: Path, tmp_path: Path, serve: ServeFn
) -> None:
    """min_count 20, unreliable_below 50: fewer than 20 observations are not published,
    20-49 are flagged u, judged on the noisy unweighted sample counts of a survey."""
    rule = '[disclosure]\nrules = "eu-silc"\n'
    addresses = []
    for land in LANDS:
        node_id = land.lower().replace(" ", "-")
        config = tmp_path / f"{node_id}.toml"
        config.write_text(laeken_node_toml(node_id, land, extra=rule))
        addresses.append((node_id, serve(config).address))
    land_of = {node_id: land for (node_id, _), land in zip(addresses, LANDS, strict=True)}
    outcome = run_query(
        coordinator_for(tmp_path, addresses),
        Query(("employment_rate",), "citizen", (), "NAT", rho=1e8),
    )
    expected = direct_employment_rates(laeken)
    seen = {"c": 0, "u": 0}
    for row in outcome.rows:
        if row.node == POOLED or row.group not in CITIZEN.values():
            continue
        _, n = expected[(land_of[row.node], row.group)]
        if n < 20:
            assert row.flags == "c" and row.value is None, (row.node, row.group, n)
            seen["c"] += 1
        elif n < 50:
            assert "u" in row.flags and row.value is not None, (row.node, row.group, n)
            seen["u"] += 1
        else:
            assert "c" not in row.flags
    assert seen["c"] >= 2 and seen["u"] >= 2, seen
