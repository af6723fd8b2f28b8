"""Cohort comparators over real nodes: recently arrived refugees against refugees who
arrived earlier, checked against a direct computation on the harmonised register."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from common.errors import FedstatsError, QueryError
from coordinator.publish.outputs import write_outputs
from coordinator.rows import BenchmarkRow
from coordinator.run import QueryOutcome, run_query
from fedstats.cli import _parser
from indicators.spec import Query, compile_query
from indicators.variables import CATEGORICAL
from node.config import load_config
from node.harmonise import harmonise
from node.source import load_frame
from tests.support.cities import city_config
from tests.support.nodes import ServeFn, coordinator_for, publish_and_verify, start_node

CITY = "amsterdam"  # maps reason and yearesid
COHORT = Query(("employment_rate",), "reason", ("yearesid",), "yearesid=Y_GE10", rho=1e6)


def direct_rates(config: Path) -> pd.Series:
    """Employment rate (20-64) of refugees per years of residence, on the harmonised data."""
    loaded = load_config(config)
    data = harmonise(load_frame(loaded), loaded)
    frame = pd.DataFrame(
        {n: [CATEGORICAL[n].codes[i] for i in data.codes[n]] for n in ("reason", "yearesid")}
    )
    frame["wstatus"] = [CATEGORICAL["wstatus"].codes[i] for i in data.codes["wstatus"]]
    frame["age"] = data.age
    frame = frame[frame.age.between(20, 64) & (frame.reason == "INTPROT")]
    frame = frame[frame.wstatus.isin(["EMP", "UNE", "INAC"])]
    return 100 * frame.groupby("yearesid").wstatus.apply(lambda s: (s == "EMP").mean())


@pytest.fixture(scope="module")
def cohort_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[QueryOutcome, Path, Path]:
    tmp_path = tmp_path_factory.mktemp("cohorts")
    config = city_config(tmp_path, CITY)
    node = start_node(config)
    try:
        coordinator = coordinator_for(tmp_path, [(node.node_id, node.address)])
        outcome = run_query(coordinator, COHORT)
    finally:
        node.stop()
    return outcome, config, tmp_path


def refugee_rows(outcome: QueryOutcome) -> dict[str, BenchmarkRow]:
    return {
        r.breakdown["yearesid"]: r for r in outcome.rows if r.node != "*" and r.group == "INTPROT"
    }


def test_cohort_rows_match_a_direct_computation(
    cohort_run: tuple[QueryOutcome, Path, Path],
) -> None:
    outcome, config, _ = cohort_run
    assert outcome.answers and not outcome.failures
    direct = direct_rates(config)
    rows = refugee_rows(outcome)
    assert set(rows) == {"Y_LT5", "Y5-9", "Y_GE10", "NAP"}
    for code in ("Y_LT5", "Y5-9", "Y_GE10"):
        row = rows[code]
        assert row.comparator == "yearesid=Y_GE10"
        assert row.value is not None and row.value == pytest.approx(direct[code], abs=0.1)
        assert row.comparator_value == pytest.approx(direct["Y_GE10"], abs=0.1)
    recent = rows["Y_LT5"]
    assert recent.denominator is not None and recent.denominator > 50  # a real cohort
    assert recent.gap == pytest.approx(direct["Y_LT5"] - direct["Y_GE10"], abs=0.1)
    assert recent.gap is not None and recent.gap_ci_low is not None
    assert recent.gap_ci_high is not None
    assert recent.gap_ci_low <= recent.gap <= recent.gap_ci_high
    # the comparator cell itself has no gap; refugees cannot be NAP: no people, no gap
    assert rows["Y_GE10"].gap is None and rows["Y_GE10"].gap_ci_low is None
    assert rows["NAP"].value is None and rows["NAP"].gap is None
    # every group of every cell names the cohort comparator; the pooled rows agree
    assert {r.comparator for r in outcome.rows} == {"yearesid=Y_GE10"}
    pooled = [r for r in outcome.rows if r.node == "*" and r.group == "INTPROT"]
    pooled_recent = next(r for r in pooled if r.breakdown["yearesid"] == "Y_LT5")
    assert pooled_recent.gap == pytest.approx(recent.gap, abs=1e-9)


def test_cohort_outputs_write_and_sdmx_refuses(
    cohort_run: tuple[QueryOutcome, Path, Path],
) -> None:
    outcome, _, tmp_path = cohort_run
    out = tmp_path / "out"
    written = write_outputs([outcome], out, ["csv", "parquet", "html"])
    assert set(written) == {"csv", "parquet", "html"}
    csv = pd.read_csv(written["csv"])
    assert set(csv.comparator) == {"yearesid=Y_GE10"}
    recent = csv[(csv.node != "*") & (csv.group == "INTPROT") & (csv.yearesid == "Y_LT5")]
    assert len(recent) == 1 and recent.gap.notna().all()
    html = written["html"].read_text(encoding="utf-8")
    assert "the same group, years of residence: 10 years or over" in html
    parquet = pd.read_parquet(written["parquet"])
    assert len(parquet) == len(csv)
    # fedstats verify recomputes the cohort benchmark from the signed node results
    report = publish_and_verify(outcome, tmp_path / "signed")
    assert report.ok, report.problems
    with pytest.raises(FedstatsError) as caught:
        write_outputs([outcome], tmp_path / "sdmx-out", ["csv", "sdmx"])
    assert caught.value.reason == "UNSUPPORTED_FORMAT"
    assert not (tmp_path / "sdmx-out").exists()  # nothing written


def test_nat_and_total_are_unchanged_beside_a_cohort_breakdown(
    tmp_path: Path, serve: ServeFn
) -> None:
    node = serve(city_config(tmp_path, CITY, persons=10_000))
    coordinator = coordinator_for(tmp_path, [(node.node_id, node.address)])
    for comparator, named in (("NAT", "NAP"), ("TOTAL", "TOTAL")):
        query = Query(("employment_rate",), "reason", ("yearesid",), comparator, rho=1e6)
        outcome = run_query(coordinator, query)
        rows = [r for r in outcome.rows if r.node != "*"]
        assert {r.comparator for r in rows} == {named}
        assert all(r.gap is None for r in rows if r.group == named)
        total = [r for r in rows if r.group == "TOTAL" and r.breakdown["yearesid"] == "NAP"]
        assert total[0].value is not None  # the natives are NAP: TOTAL keeps them


@pytest.mark.parametrize(
    ("breakdowns", "comparator", "words"),
    [
        (("yearesid",), "sex=F", "not a breakdown of the query"),  # dim not in breakdowns
        (("yearesid",), "colour=red", "not a breakdown of the query"),  # unknown dim
        (("yearesid",), "yearesid=Y_LT3", "not a code of breakdown 'yearesid'"),
        (("yearesid",), "yearesid=UNK", "not a code of breakdown 'yearesid'"),
        (("arrival_cohort", "age"), "age=Y99-120", "not a code of breakdown 'age'"),
        (("yearesid",), "yearesid=", "malformed comparator"),
        (("yearesid",), "NATIVE", "unknown comparator"),
    ],
)
def test_bad_cohort_comparators_are_refused(
    breakdowns: tuple[str, ...], comparator: str, words: str
) -> None:
    query = Query(("employment_rate",), "reason", breakdowns, comparator)
    with pytest.raises(QueryError) as caught:
        compile_query(query)
    assert caught.value.field == "comparator"
    assert words in str(caught.value) and caught.value.hint


def test_group_dimension_cannot_also_be_a_breakdown() -> None:
    with pytest.raises(QueryError) as caught:
        compile_query(Query(("employment_rate",), "yearesid", ("yearesid",), "TOTAL"))
    assert caught.value.field == "breakdowns"


def test_cohort_breakdowns_keep_nap_and_drop_unk() -> None:
    plan = compile_query(COHORT)
    assert plan.tables[0].dims[1].codes == ("Y_LT5", "Y5-9", "Y_GE10", "NAP")
    plan = compile_query(Query(("employment_rate",), "citizen", ("arrival_cohort", "sex")))
    assert [d.name for d in plan.tables[0].dims] == ["citizen", "sex", "arrival_cohort"]
    assert "UNK" not in plan.tables[0].dims[2].codes


def test_cli_accepts_a_cohort_comparator() -> None:
    argv = "query --config c.toml --indicators employment_rate --group reason --out o --rho 1"
    args = _parser().parse_args(
        [*argv.split(), "--by", "yearesid", "--comparator", "yearesid=Y_GE10"]
    )
    assert args.comparator == "yearesid=Y_GE10"
