"""An unmapped outcome code changes no published rate without a flag and a stated share.

Issue 11's case on real nodes (the production server factory, mutual TLS, SQLite ledger,
OpenDP noise): Vienna's part-time code is taken out of its wstatus map. Without a
declaration the node refuses to start, naming file, variable, column, counts and values,
and charges nothing; with ``unmapped = "unknown"`` it serves, and every row of an
indicator reading wstatus (its own and the pooled ones it is in) is flagged ``d`` with
the code ``unmapped_as_unknown`` and a text stating the row's noisy ``unknown_share``,
while rows of indicators that do not read wstatus are untouched. The flag is read from
the declaration and the noisy values only: the exact ``unmapped_share_ceil`` of the
result changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from common.errors import ConfigError, Reason
from coordinator.combine import benchmark_rows
from coordinator.flags import Status
from coordinator.pooling import Pooling
from coordinator.publish.summary import outcome_notes
from coordinator.results import read_result
from coordinator.rowmeta import describe_rows, unmapped_note
from coordinator.rows import POOLED, BenchmarkRow
from coordinator.run import run_query
from fedstats.cli import main
from indicators.spec import Query
from protos import node_pb2 as pb
from tests.support.cities import SyntheticCities
from tests.support.nodes import ServeFn, coordinator_for, publish_and_verify

PART_TIME = '2 = "EMP"\n'  # Vienna's pl030: 2 = part-time
HEADER = "[variables.wstatus]\n"
CODE = "wstatus=unmapped_as_unknown"
QUERY = Query(("employment_rate", "owner_share"), "yearesid", rho=1.0)


def _without_part_time(cities: SyntheticCities, node_id: str, declare: str = "") -> str:
    text = cities.node_toml(node_id, "vienna")
    assert text.count(PART_TIME) == 1 and text.count(HEADER) == 1
    return text.replace(PART_TIME, "").replace(HEADER, HEADER + declare)


def test_an_unmapped_outcome_code_refuses_the_node_and_charges_nothing(
    tmp_path: Path, serve: ServeFn, cities: SyntheticCities, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "vienna.toml"
    config.write_text(_without_part_time(cities, "vienna"))
    frame = pd.read_csv(cities.file("vienna"), dtype=str, keep_default_na=False)
    part_time = int((frame.pl030 == "2").sum())
    assert part_time > 0

    with pytest.raises(ConfigError) as info:
        serve(config)
    error = info.value
    assert error.reason == Reason.UNMAPPED_OUTCOME
    expected = (
        f"[variables.wstatus] column 'pl030': 1 distinct value(s) in {part_time} of "
        f"{len(frame)} rows ('2')"
    )
    assert str(config) in error.message and expected in error.message
    assert error.field == "variables.wstatus.map"
    assert "map the values in [variables.wstatus] map" in error.hint
    assert 'unmapped = "unknown"' in error.hint
    assert not (tmp_path / "state-vienna").exists()  # refused before the ledger: no charge

    # `node check` prints its whole report, then the same refusal (exit 2).
    assert main(["node", "check", "--config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert f"unmapped value '2': {part_time} rows" in out and "to map a value" in out
    assert expected in err and 'unmapped = "unknown"' in err
    assert not (tmp_path / "state-vienna").exists()


def test_declared_unknown_flags_the_rows_reading_the_outcome_with_their_unknown_share(
    tmp_path: Path, serve: ServeFn, cities: SyntheticCities
) -> None:
    declared = tmp_path / "vienna.toml"
    declared.write_text(_without_part_time(cities, "vienna", 'unmapped = "unknown"\n'))
    other = tmp_path / "graz.toml"  # the same city's data, mapped in full, no declaration
    other.write_text(cities.node_toml("graz", "vienna"))
    vienna, graz = serve(declared), serve(other)
    description = vienna.stub().Describe(pb.DescribeRequest(), timeout=30)
    concepts = {v.name: v.concepts for v in description.variables}
    assert concepts["wstatus"] == CODE and concepts["neet"] == CODE  # public, signed
    assert concepts["isced11"] == ""

    coordinator = coordinator_for(tmp_path, [("vienna", vienna.address), ("graz", graz.address)])
    outcome = run_query(coordinator, QUERY)
    rows = outcome.rows
    employment = [r for r in rows if r.indicator == "employment_rate"]
    own = [r for r in employment if r.node == "vienna" and r.status == Status.PUBLISHED]
    pooled = [r for r in employment if r.node == POOLED and r.status == Status.PUBLISHED]
    assert len(own) >= 3 and pooled
    for row in own + pooled:
        assert "d" in row.flags and CODE in row.deviation
        assert row.unknown_share is not None and row.unknown_share > 0
        where = "pooled population cell" if row.node == POOLED else "population cell"
        stated = f"{row.unknown_share:.1f}% of the {where} has an unknown outcome"
        assert stated in row.deviation
    # A pooled row's share is the pool's, and says so; a row not published states none.
    assert all("all members' together" in r.deviation for r in pooled)
    assert unmapped_note(37.5, published=False) == (
        "no unknown share is stated where the value is not published; values outside "
        "the code map count as unknown"
    )
    assert all(r.deviation.startswith(f"vienna:{CODE} (") for r in pooled)
    # Graz maps every value: its rows are not flagged; nor is any row of owner_share.
    untouched = [r for r in rows if r.node == "graz" or r.indicator == "owner_share"]
    assert untouched and all("d" not in r.flags and not r.deviation for r in untouched)

    # The terminal says so too, once per node and variable.
    note = "vienna: flagged d where it uses wstatus: values outside its code map are counted"
    assert sum(n.startswith(note) for n in outcome_notes(outcome)) == 1

    # The CSV states the share its own unknown_share column shows; verify recomputes it.
    out = tmp_path / "out"
    assert publish_and_verify(outcome, out).ok
    csv = pd.read_csv(out / "benchmark.csv", keep_default_na=False)
    flagged = csv[(csv.node == "vienna") & (csv.indicator == "employment_rate")]
    flagged = flagged[flagged.status == "published"]
    assert len(flagged) == len(own)
    for _, line in flagged.iterrows():
        assert "d" in line["flags"]
        assert f"{float(line.unknown_share):.1f}% of the population cell" in line.deviation

    # The flag reads the declaration and the noisy values, never the exact share.
    reply = outcome.replies["vienna"].result
    assert reply is not None and dict(reply.unmapped_share_ceil) == {"wstatus": 0.2}
    answers = dict(outcome.answers)

    def remade(result: pb.QueryResult) -> list[BenchmarkRow]:
        answers["vienna"] = read_result(result, outcome.plan)
        made = benchmark_rows(outcome.plan, ["vienna", "graz"], answers, pooled=True)
        return describe_rows(made, outcome.plan, answers, Pooling(enabled=True))

    exact_gone, exact_changed, undeclared = (pb.QueryResult(), pb.QueryResult(), pb.QueryResult())
    for copy in (exact_gone, exact_changed, undeclared):
        copy.CopyFrom(reply)
    exact_gone.ClearField("unmapped_share_ceil")
    exact_changed.unmapped_share_ceil["wstatus"] = 1.0
    undeclared.concepts.clear()
    assert remade(exact_gone) == remade(exact_changed) == [replace(r, release="") for r in rows]
    assert all("d" not in r.flags and not r.deviation for r in remade(undeclared))
    assert [r.value for r in remade(undeclared)] == [r.value for r in rows]

    # The reference metadata carries the code and its meaning like any concept.
    document = json.loads((out / "metadata" / "vienna.json").read_text())
    listed = document["STAT_PRES"]["STAT_CONC_DEF"]["concepts"]["wstatus"]
    assert listed[0]["code"] == "unmapped_as_unknown"
    assert "unknown outcome" in listed[0]["meaning"]
