"""Nodes of other releases: the coordinator reads their capabilities before it asks."""

from __future__ import annotations

from typing import Any

from common.errors import Reason
from coordinator.client import NodeFailure
from coordinator.compat import INDICATORS_0_1, RELEASE_0_1, release_of, unanswerable
from coordinator.kinds import kind_of, plan_nodes
from indicators.catalogue import CATALOGUE, CATALOGUE_VERSION
from indicators.spec import Query
from protos import node_pb2 as pb


def _description(capabilities: pb.Capabilities | None = None) -> pb.NodeDescription:
    description = pb.NodeDescription(
        node_id="north",
        time_periods=["2025"],
        variables=[pb.VariableCoverage(name=n) for n in ("age", "c_birth", "wstatus")],
    )
    if capabilities is not None:
        description.capabilities.CopyFrom(capabilities)
    return description


def _capabilities(**changes: Any) -> pb.Capabilities:
    fields: dict[str, Any] = {
        "protocol": "fedstats.v1",
        "software_version": "0.3.0",
        "catalogue_version": CATALOGUE_VERSION,
        "catalogue": list(CATALOGUE),
        "engines": ["memory"],
        "disclosure_rules": ["noisy_thresholds"],
        "ledger_schema": 2,
    }
    return pb.Capabilities(**{**fields, **changes})


def test_a_node_without_capabilities_is_taken_for_release_0_1() -> None:
    assert release_of(_description()) == RELEASE_0_1
    assert unanswerable("north", _description(), ["employment_rate"]) == {}
    # Release 0.1's indicators keep their definitions at catalogue version 1.
    assert set(INDICATORS_0_1) <= set(CATALOGUE)
    assert RELEASE_0_1.catalogue_version == CATALOGUE_VERSION


def test_an_indicator_a_0_1_node_does_not_know_is_flagged_with_its_release() -> None:
    lacking = unanswerable("north", _description(), ["employment_rate", "life_expectancy"])
    assert lacking == {
        "life_expectancy": "node north runs fedstats 0.1 (it advertises no capabilities), "
        "which does not know life_expectancy"
    }


def test_a_node_that_knows_none_of_the_indicators_is_not_asked() -> None:
    caps = _capabilities(catalogue=["employment_rate"])
    failure = unanswerable("north", _description(caps), ["owner_share", "arop_rate"])
    assert isinstance(failure, NodeFailure)
    assert failure.reason is Reason.INCOMPATIBLE_RELEASE
    assert failure.status == "FAILED_PRECONDITION"
    assert "fedstats 0.3.0, which knows none of the indicators asked" in failure.message


def test_another_protocol_is_refused_naming_the_node_s_release() -> None:
    caps = _capabilities(protocol="fedstats.v2", software_version="2.0.0")
    failure = unanswerable("north", _description(caps), ["employment_rate"])
    assert isinstance(failure, NodeFailure)
    assert failure.reason is Reason.INCOMPATIBLE_RELEASE
    assert "node north runs fedstats 2.0.0, which speaks protocol fedstats.v2" in failure.message
    assert "speaks fedstats.v1" in failure.message
    assert failure.hint


def test_another_catalogue_version_is_refused() -> None:
    caps = _capabilities(catalogue_version=CATALOGUE_VERSION + 1)
    failure = unanswerable("north", _description(caps), ["employment_rate"])
    assert isinstance(failure, NodeFailure)
    assert failure.reason is Reason.INCOMPATIBLE_RELEASE
    assert f"catalogue is version {CATALOGUE_VERSION + 1}" in failure.message
    assert "their tables would not match" in failure.message


def test_planning_asks_a_node_only_what_its_release_knows() -> None:
    kind = kind_of(
        Query(indicators=("employment_rate", "activity_rate"), group_dim="c_birth", rho=0.1)
    )
    caps = _capabilities(catalogue=["employment_rate"])
    newer = _capabilities(protocol="fedstats.v2")
    planned = plan_nodes(kind, {"north": _description(caps), "south": _description(newer)})
    queries, missing, failures = planned.asked, planned.missing, planned.failures
    assert queries["north"].query.indicators == ("employment_rate",)
    assert missing["north"] == {
        "activity_rate": "node north runs fedstats 0.3.0, which does not know activity_rate"
    }
    assert "south" not in queries
    assert failures["south"].reason is Reason.INCOMPATIBLE_RELEASE
