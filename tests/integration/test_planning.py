"""The coordinator plans per node: a node that lacks a definition yields rows without
values (status not_provided) with the reason, not a failed query, and spends nothing on
what it cannot answer."""

from __future__ import annotations

from pathlib import Path

from coordinator.flags import Status
from coordinator.rows import POOLED
from coordinator.run import run_query
from indicators.spec import Query
from tests.support.cities import ServeCityFn
from tests.support.nodes import coordinator_for, publish_and_verify


def test_a_node_without_a_variable_gets_n_rows_and_the_others_answer(
    tmp_path: Path, serve_city: ServeCityFn
) -> None:
    vienna, tyrol = serve_city("vienna"), serve_city("tyrol", without=("isced11",))
    config = coordinator_for(tmp_path, [("vienna", vienna.address), ("tyrol", tyrol.address)])

    outcome = run_query(
        config, Query(("employment_rate", "attainment_low"), "citizen", (), "NAT", rho=0.4)
    )

    assert not outcome.failures
    assert "isced11" in outcome.missing["tyrol"]["attainment_low"]
    rows = {(r.node, r.indicator, r.group): r for r in outcome.rows}
    assert rows[("tyrol", "attainment_low", "NAT")].status == Status.NOT_PROVIDED
    assert rows[("tyrol", "attainment_low", "NAT")].flags == ""
    assert rows[("tyrol", "attainment_low", "NAT")].value is None
    assert rows[("tyrol", "employment_rate", "NAT")].value is not None
    # Vienna's definitions differ (d), so without --pool-deviations nothing is pooled
    # for attainment, and employment is pooled over Tyrol (half the nodes) alone
    assert "d" in rows[("vienna", "attainment_low", "NAT")].flags
    assert rows[(POOLED, "attainment_low", "NAT")].status == Status.NOT_APPLICABLE
    assert rows[(POOLED, "attainment_low", "NAT")].value is None
    assert rows[(POOLED, "employment_rate", "NAT")].status == Status.PUBLISHED
    # Tyrol was asked only what it can answer, and charged for that alone
    assert tyrol.service.budget().spent == vienna.service.budget().spent == 0.4

    report = publish_and_verify(outcome, tmp_path / "out")
    assert report.ok, report.problems
    assert (report.requests, report.results) == (2, 2)  # tyrol's narrower plan reads back


def test_a_node_without_the_group_dimension_is_not_asked(
    tmp_path: Path, serve_city: ServeCityFn
) -> None:
    vienna = serve_city("vienna")  # the city records no country of birth
    config = coordinator_for(tmp_path, [("vienna", vienna.address)])

    outcome = run_query(config, Query(("employment_rate",), "c_birth", (), "NAT", rho=0.4))

    failure = outcome.failures["vienna"]
    assert failure.reason == "VARIABLE_NOT_PROVIDED" and "c_birth" in failure.message
    assert {(r.flags, r.status) for r in outcome.rows} == {("", Status.NOT_PROVIDED)}
    assert {r.geo for r in outcome.rows} == {vienna.service.config.geo}  # from Describe
    assert vienna.service.budget().spent == 0
    assert vienna.service.ledger.entries() == []
