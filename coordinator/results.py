"""A node's answer as the coordinator reads it: its released tables, checked against the plan."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from common.errors import FedstatsError, Reason
from coordinator.bases import Margin, read_margins
from coordinator.flags import Flags
from indicators.spec import Plan, TableSpec
from privacy.disclosure import DisclosureRules
from privacy.estimators import Cells
from protos import node_pb2 as pb

__all__ = ["NodeTables", "read_result"]


@dataclass(frozen=True)
class NodeTables:
    """One node's released tables, keyed by table spec key."""

    node_id: str
    geo: str
    time_period: str
    source: str
    rules: DisclosureRules
    cells: dict[str, Cells]
    cell_flags: dict[str, list[Flags]]
    poverty_line: float | None = None
    deviations: dict[str, str] = field(default_factory=dict)
    poverty_line_source: str = ""
    country: str = ""
    margins: dict[str, tuple[Margin, ...]] = field(default_factory=dict)
    concepts: dict[str, str] = field(default_factory=dict)  # variable: "input=code;..."
    geo_level: str = ""
    name: str = ""
    cached: bool = False  # the node answered from its cache (charging nothing)

    def deviates(self, spec: TableSpec) -> bool:
        """Whether the node's definition of a variable the table reads deviates."""
        return any(v in self.deviations for v in spec.variables())


def read_result(result: pb.QueryResult, plan: Plan) -> NodeTables:
    """Check a node's answer against the local plan and read its cells.

    Raises:
        FedstatsError: When the node's tables do not match the plan (reason
            ``PROTOCOL_MISMATCH``): the node runs another catalogue version.
    """
    by_key = {t.key: t for t in result.tables}
    cells: dict[str, Cells] = {}
    flags: dict[str, list[Flags]] = {}
    margins: dict[str, tuple[Margin, ...]] = {}
    if set(by_key) != {spec.key for spec in plan.tables}:
        raise FedstatsError(
            f"node {result.node_id} answered with other tables than it was asked for",
            reason=Reason.PROTOCOL_MISMATCH,
            hint="node and coordinator must run the same fedstats catalogue version",
        )
    for spec in plan.tables:
        table = by_key.get(spec.key)
        if table is None or len(table.counts) != spec.n_cells:
            raise FedstatsError(
                f"node {result.node_id} answered with tables that do not match the query",
                reason=Reason.PROTOCOL_MISMATCH,
                hint="node and coordinator must run the same fedstats catalogue version",
            )
        samples = list(table.sample_counts) if table.sample_counts else None
        cells[spec.key] = Cells.of(
            table.counts, table.sigma, samples, table.sample_sigma, result.design_effect or 1.0
        )
        margins[spec.key] = read_margins(table)
        try:
            flags[spec.key] = [_cell_flags(f) for f in table.cell_flags]
        except ValueError as exc:
            raise FedstatsError(
                f"node {result.node_id} answered with unknown cell flags ({exc})",
                reason=Reason.PROTOCOL_MISMATCH,
                hint="node and coordinator must run the same fedstats catalogue version",
            ) from None
    return NodeTables(
        node_id=result.node_id,
        geo=result.geo,
        time_period=result.time_period,
        source=result.source,
        rules=_rules(result.disclosure),
        cells=cells,
        cell_flags=flags,
        margins=margins,
        poverty_line=result.poverty_line or None,
        poverty_line_source=result.poverty_line_source if result.poverty_line else "",
        deviations=dict(result.deviations),
        country=result.country,
        concepts=dict(result.concepts),
        geo_level=result.geo_level,
        name=result.name,
        cached=result.cached,
    )


@functools.lru_cache(maxsize=256)
def _cell_flags(text: str) -> Flags:
    """A released cell's flags (made once per text: 300 tables repeat a few texts).

    Raises:
        ValueError: On a letter that is not a flag (never cached).
    """
    return Flags(text)


def _rules(d: pb.Disclosure) -> DisclosureRules:
    """A node's rules from the wire (0 in a newer field: the field's default)."""
    defaults = DisclosureRules()
    return DisclosureRules(
        min_count=d.min_count,
        unreliable_below=d.unreliable_below,
        max_cv=d.max_cv,
        unknown_flag=d.unknown_flag or defaults.unknown_flag,
        unknown_suppress=d.unknown_suppress or defaults.unknown_suppress,
        weighted=d.weighted,
        certainty=d.certainty or defaults.certainty,
        name=d.rules,
    )
