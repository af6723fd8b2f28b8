"""What each benchmark row measures: source, concepts, territorial level and release.

Rows come out of `coordinator.combine` with their numbers; this module adds the metadata
a reader needs to cite and compare them (DESIGN section 6): the node's ``source`` type,
its ``deviation`` (concept codes of the controlled vocabulary, ``input=code``, then the
node's notes), the ``geo_level`` of its ``geo``, and the ``release`` id. A pooled row
names its composition: its ``geo`` lists the members' codes joined by ``+``, its source,
level and concept codes are the members'. Everything is read from the nodes' signed
results, so ``fedstats verify`` recomputes the same columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from coordinator.combine import (
    POOLED,
    BenchmarkRow,
    NodeTables,
    pool_members,
    poverty_lines,
)
from coordinator.flags import Status
from coordinator.pooling import Pooling
from indicators.catalogue import BELOW_LINE
from indicators.spec import Plan

__all__ = ["codes_of", "describe_rows"]


def codes_of(answer: NodeTables, variables: Iterable[str]) -> list[str]:
    """The node's non-harmonised concept codes behind ``variables``, ``input=code``, sorted."""
    found = {c for v in variables for c in answer.concepts.get(v, "").split(";") if c}
    return sorted(found)


def _deviation(answer: NodeTables, variables: tuple[str, ...]) -> str:
    """``input=code`` pairs, then the node's notes in brackets (without repeating the codes)."""
    pairs = codes_of(answer, variables)
    notes = [answer.deviations[v] for v in variables if v in answer.deviations]
    for variable, code in (p.split("=", 1) for p in pairs):
        notes = [n.replace(f"{variable}: {code}: ", "").replace(f"{code}: ", "") for n in notes]
    text = "; ".join(notes)
    return f"{';'.join(pairs)} ({text})" if pairs and text else ";".join(pairs) or text


def _members(
    plan: Plan, name: str, answers: Mapping[str, NodeTables], pooling: Pooling
) -> list[str]:
    """The nodes a pooled row of indicator ``name`` sums (as `coordinator.combine` pools)."""
    indicator, spec = plan.indicator(name)
    having = {n: a for n, a in answers.items() if spec.key in a.cells}
    if indicator.kind == BELOW_LINE:
        lines = poverty_lines(plan, having)
        having = {n: a for n, a in having.items() if n in lines}
    return pool_members(spec, sorted(having), having, pooling.deviations)


def _joined(values: Iterable[str]) -> str:
    return "+".join(sorted({v for v in values if v}))


def _metadata(
    row: BenchmarkRow,
    plan: Plan,
    answers: Mapping[str, NodeTables],
    pooling: Pooling,
    levels: Mapping[str, str] | None,
    pooled: bool,
) -> dict[str, str]:
    """What rows of the row's node and indicator gain (every such row gains the same)."""
    variables = plan.indicator(row.indicator)[1].variables()
    answer = answers.get(row.node)
    if answer is not None:
        return {
            "source": answer.source,
            "geo_level": answer.geo_level,
            "deviation": _deviation(answer, variables),
        }
    if pooled:
        members = [answers[n] for n in _members(plan, row.indicator, answers, pooling)]
        return {
            "geo": "+".join(a.geo for a in members),
            "source": _joined(a.source for a in members),
            "geo_level": _joined(a.geo_level for a in members),
            "deviation": ";".join(
                f"{a.node_id}:{code}" for a in members for code in codes_of(a, variables)
            ),
        }
    if row.node != POOLED:
        return {"geo_level": (levels or {}).get(row.node, "")}
    return {}


def describe_rows(
    rows: Sequence[BenchmarkRow],
    plan: Plan,
    answers: Mapping[str, NodeTables],
    pooling: Pooling,
    levels: Mapping[str, str] | None = None,
) -> list[BenchmarkRow]:
    """The rows with ``source``, ``deviation`` and ``geo_level`` (and pooled composition).

    Rows of nodes without an answer get the ``geo_level`` they described (``levels``),
    and a blank source and deviation: nothing they signed says more.
    """
    out: list[BenchmarkRow] = []
    known: dict[tuple[str, str, bool], dict[str, str]] = {}  # the same for a node's rows
    for row in rows:
        pooled = row.node == POOLED and row.status in (Status.PUBLISHED, Status.SUPPRESSED)
        key = (row.node, row.indicator, pooled)
        if key not in known:
            known[key] = _metadata(row, plan, answers, pooling, levels, pooled)
        out.append(row.amended(**known[key]) if known[key] else row)
    return out
