"""What each benchmark row measures: source, concepts, territorial level and release.

Rows come out of `coordinator.combine` with their numbers; this module adds the metadata
a reader needs to cite and compare them (DESIGN section 6): the node's ``source`` type,
its ``deviation`` (concept codes of the controlled vocabulary, ``input=code``, then the
node's notes), the ``geo_level`` of its ``geo``, and the ``release`` id. A pooled row
names its composition: its ``geo`` lists the members' codes joined by ``+``, its source,
level and concept codes are the members'. Everything is read from the nodes' signed
results, so ``fedstats verify`` recomputes the same columns.

A node that declares ``unmapped = "unknown"`` on an outcome input (concept code
``unmapped_as_unknown``, `indicators.concepts`) counts values outside its code map as an
unknown outcome: its rows of indicators reading that input, and pooled rows it is a
member of, are flagged ``d`` and their deviation states the row's own noisy
``unknown_share`` (`unmapped_note`). The flag reads only that public declaration and the
noisy share, never the node's exact ``unmapped_share_ceil``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from coordinator.combine import pool_members, poverty_lines
from coordinator.flags import DEVIATES, Status
from coordinator.pooling import Pooling
from coordinator.results import NodeTables
from coordinator.rows import POOLED, BenchmarkRow
from indicators.catalogue import BELOW_LINE
from indicators.concepts import UNMAPPED_AS_UNKNOWN
from indicators.spec import Plan

__all__ = ["RowMeta", "codes_of", "describe_rows", "unmapped_note"]


def codes_of(answer: NodeTables, variables: Iterable[str]) -> list[str]:
    """The node's non-harmonised concept codes behind ``variables``, ``input=code``, sorted."""
    found = {c for v in variables for c in answer.concepts.get(v, "").split(";") if c}
    return sorted(found)


def _unmapped(codes: Iterable[str]) -> bool:
    """Whether ``input=code`` pairs (or ``node:input=code``) hold ``unmapped_as_unknown``."""
    return any(c.endswith(f"={UNMAPPED_AS_UNKNOWN.code}") for c in codes)


def unmapped_note(unknown_share: float | None, published: bool = True, pooled: bool = False) -> str:
    """The stated share of a row whose outcome counts unmapped values as unknown.

    A pooled row's share is the pooled cell's, all members' unknown outcomes together, and
    says so (each flagged member's own share is on its own row). A row that is not
    published states no share: its noisy unknown share there may be anything from 0 to
    100% and would read as a fact.

    Args:
        unknown_share: The row's noisy unknown share in percent (``BenchmarkRow``), or
            None where the node released no unknown-outcome margin.
        published: Whether the row's value is published.
        pooled: Whether the row pools several nodes.
    """
    maps = "their code maps" if pooled else "the code map"
    if unknown_share is None:
        return (
            "the population cell's unknown share is not released; its unknown outcomes "
            f"include values outside {maps}"
        )
    if not published:
        return (
            "no unknown share is stated where the value is not published; values outside "
            f"{maps} count as unknown"
        )
    if pooled:
        return (
            f"{unknown_share:.1f}% of the pooled population cell has an unknown outcome, all "
            "members' together, values outside the named members' code maps included; each "
            "member's own share is on its row"
        )
    return (
        f"{unknown_share:.1f}% of the population cell has an unknown outcome, values "
        "outside the code map included"
    )


def _deviation(
    answer: NodeTables, variables: tuple[str, ...], pairs: list[str], row: BenchmarkRow | None
) -> str:
    """``input=code`` pairs, then the node's notes in brackets (without repeating the codes).

    ``row`` is read only when the pairs count unmapped values as unknown (its share).
    """
    notes = [answer.deviations[v] for v in variables if v in answer.deviations]
    for variable, code in (p.split("=", 1) for p in pairs):
        notes = [n.replace(f"{variable}: {code}: ", "").replace(f"{code}: ", "") for n in notes]
    if _unmapped(pairs):
        assert row is not None
        notes.append(unmapped_note(row.unknown_share, row.status == Status.PUBLISHED))
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


def _node_fixed(
    answer: NodeTables, variables: tuple[str, ...]
) -> tuple[dict[str, str], Callable[[BenchmarkRow], dict[str, Any]] | None]:
    """What every row of an answering node's indicator gains, and what depends on the row.

    The second part is None unless the node counts unmapped values as unknown: then each
    row's deviation states its own unknown share, and it is ``d``.
    """
    pairs = codes_of(answer, variables)
    fixed = {"source": answer.source, "geo_level": answer.geo_level}
    if not _unmapped(pairs):
        return {**fixed, "deviation": _deviation(answer, variables, pairs, None)}, None
    return fixed, lambda r: {
        "deviation": _deviation(answer, variables, pairs, r),
        "flags": r.flags | DEVIATES,
    }


def _fixed(
    row: BenchmarkRow,
    plan: Plan,
    answers: Mapping[str, NodeTables],
    pooling: Pooling,
    levels: Mapping[str, str] | None,
    pooled: bool,
) -> tuple[dict[str, str], Callable[[BenchmarkRow], dict[str, Any]] | None]:
    """What every row of the row's node and indicator gains, and what depends on the row.

    The second part is None unless the node (or a pooled member) counts unmapped values
    as unknown: then each row's deviation states its own unknown share, and it is ``d``.
    """
    variables = plan.indicator(row.indicator)[1].variables()
    answer = answers.get(row.node)
    if answer is not None:
        return _node_fixed(answer, variables)
    if pooled:
        members = [answers[n] for n in _members(plan, row.indicator, answers, pooling)]
        codes = [f"{a.node_id}:{c}" for a in members for c in codes_of(a, variables)]
        fixed = {
            "geo": "+".join(a.geo for a in members),
            "source": _joined(a.source for a in members),
            "geo_level": _joined(a.geo_level for a in members),
        }
        if not _unmapped(codes):
            return {**fixed, "deviation": ";".join(codes)}, None
        return fixed, lambda r: {
            "deviation": ";".join(codes)
            + f" ({unmapped_note(r.unknown_share, r.status == Status.PUBLISHED, pooled=True)})",
            "flags": r.flags | DEVIATES,
        }
    if row.node != POOLED:
        return {"geo_level": (levels or {}).get(row.node, "")}, None
    return {}, None


class RowMeta:
    """The metadata of one query's rows (`describe_rows`), some given as rows are made.

    `node_fields` gives an answering node's fields that do not depend on the row, for
    `coordinator.combine.benchmark_rows` to make its rows with; `describe` then adds the
    metadata to every other row (and leaves those rows as they are).
    """

    def __init__(
        self,
        plan: Plan,
        answers: Mapping[str, NodeTables],
        pooling: Pooling,
        levels: Mapping[str, str] | None = None,
    ) -> None:
        """The metadata of rows of ``plan`` over ``answers``, pooled by ``pooling``."""
        self.plan, self.answers, self.pooling, self.levels = plan, answers, pooling, levels
        self._given: set[tuple[str, str]] = set()  # (node, indicator) made with their fields

    def node_fields(self, node: str, indicator: str) -> dict[str, str] | None:
        """The fields every row of an answering node's indicator has, made with them.

        None when some depend on the row (or the node did not answer): `describe` adds them.
        """
        answer = self.answers.get(node)
        if answer is None:
            return None
        fixed, per_row = _node_fixed(answer, self.plan.indicator(indicator)[1].variables())
        if per_row is not None:
            return None
        self._given.add((node, indicator))
        return fixed

    def describe(self, rows: Sequence[BenchmarkRow]) -> list[BenchmarkRow]:
        """The rows with ``source``, ``deviation`` and ``geo_level`` (and pooled composition).

        Rows of nodes without an answer get the ``geo_level`` they described (``levels``),
        and a blank source and deviation: nothing they signed says more. What a node's
        rows share is read once per node and indicator; rows made with `node_fields` have
        it already.
        """
        out: list[BenchmarkRow] = []
        append = out.append
        known: dict[tuple[str, str, bool], tuple[dict[str, str], Any]] = {}
        given = self._given
        kept = ("", "")  # the last (node, indicator) whose rows were made with their fields
        for row in rows:
            node, indicator = row.node, row.indicator
            if node == kept[0] and indicator == kept[1]:  # a run of one node's rows
                append(row)
                continue
            pooled = node == POOLED and row.status in (Status.PUBLISHED, Status.SUPPRESSED)
            if not pooled and (node, indicator) in given:
                kept = (node, indicator)
                append(row)
                continue
            key = (node, indicator, pooled)
            if key not in known:
                known[key] = _fixed(
                    row, self.plan, self.answers, self.pooling, self.levels, pooled
                )  # fmt: skip
            fixed, per_row = known[key]
            changes = {**fixed, **per_row(row)} if per_row is not None else fixed
            out.append(row.amended_by(changes) if changes else row)
        return out


def describe_rows(
    rows: Sequence[BenchmarkRow],
    plan: Plan,
    answers: Mapping[str, NodeTables],
    pooling: Pooling,
    levels: Mapping[str, str] | None = None,
) -> list[BenchmarkRow]:
    """The rows with ``source``, ``deviation`` and ``geo_level`` (and pooled composition).

    Rows of nodes without an answer get the ``geo_level`` they described (``levels``),
    and a blank source and deviation: nothing they signed says more. What a node's rows
    share is read once per node and indicator.
    """
    return RowMeta(plan, answers, pooling, levels).describe(rows)
