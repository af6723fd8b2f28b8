"""The query's wire and record forms: the only places its fields are listed."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from indicators.spec import Query
from protos import node_pb2 as pb

PLAIN = Query(("employment_rate",), "citizen")
FULL = Query(
    ("employment_rate", "arop_rate"), "reason", ("sex", "yearesid"), "yearesid=Y_GE10",
    rho=0.25, poverty_line=12_000.0, time_period="2024-Q1",
)  # fmt: skip


def test_every_field_has_a_wire_and_a_record_form() -> None:
    names = {f.name for f in fields(Query)}
    assert set(pb.QuerySpec.DESCRIPTOR.fields_by_name) == names
    assert set(PLAIN.to_record()) == names


@pytest.mark.parametrize("query", [PLAIN, FULL])
def test_both_forms_read_back_into_the_same_query(query: Query) -> None:
    wire = pb.QuerySpec.FromString(query.to_wire().SerializeToString())
    assert Query.from_wire(wire) == query
    assert Query.from_record(json.loads(json.dumps(query.to_record()))) == query


def test_an_absent_optional_field_is_its_proto_default_on_the_wire_and_null_on_record() -> None:
    wire = PLAIN.to_wire()
    assert (wire.poverty_line, wire.time_period) == (0.0, "")
    record = PLAIN.to_record()
    assert (record["poverty_line"], record["time_period"]) == (None, None)


def test_a_coordinator_log_line_of_the_previous_release_reads_back() -> None:
    line = (
        '{"query_id": "q", "time": 1.0, "indicators": ["employment_rate"], '
        '"group_dim": "citizen", "breakdowns": [], "comparator": "NAT", "rho": 0.5, '
        '"rho_charged": {"a": 0.5}, "failures": {}}'
    )
    assert Query.from_record(json.loads(line)) == PLAIN
