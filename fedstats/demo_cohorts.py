"""The demo's cohort questions: a pathway through two periods and a cohort comparison.

- Pathway: the employment rate of each arrival cohort of non-EU citizens, in the earlier
  and the later period (both charged to one budget: the same persons).
- Cohort comparison: refugees (reason ``INTPROT``) by years of residence, each compared
  with refugees who arrived 10 or more years ago (``yearesid=Y_GE10``).

SDMX has no dimension for arrival cohorts or cohort comparators, so these outcomes are
written as CSV and HTML in their own folder.
"""

from __future__ import annotations

from coordinator.client import ProgressFn
from coordinator.config import CoordinatorConfig
from coordinator.rows import BenchmarkRow
from coordinator.run import QueryOutcome, run_pathway, run_query
from indicators.spec import Query

__all__ = ["COHORT", "FORMATS", "cohort_lines", "run_cohort_queries"]

COHORT = "Y2015-2019"
FORMATS = ["csv", "html"]
RHO = 0.035


def run_cohort_queries(
    config: CoordinatorConfig, periods: list[str], progress: ProgressFn | None = None
) -> tuple[list[QueryOutcome], QueryOutcome]:
    """The pathway (one outcome per period) and the cohort comparison."""
    pathway = run_pathway(
        config,
        Query(("employment_rate",), "citizen", ("arrival_cohort",), "NAT", RHO),
        periods,
        progress=progress,
    )
    comparison = run_query(
        config,
        Query(("employment_rate",), "reason", ("yearesid",), "yearesid=Y_GE10", RHO),
        progress=progress,
    )
    return pathway, comparison


def _value(row: BenchmarkRow | None) -> str:
    if row is None or row.value is None:
        return ":" + (row.flags if row else "")
    return f"{row.value:.1f}{row.flags}"


def cohort_lines(pathway: list[QueryOutcome], comparison: QueryOutcome) -> list[str]:
    """A few readable lines: the pathway of one cohort and the refugees' cohort gap."""
    lines = [f"\nEmployment rate of non-EU citizens who arrived {COHORT[1:]}, by period (%):"]
    by_node: dict[str, list[str]] = {}
    for outcome in pathway:
        for row in outcome.rows:
            if row.group == "NEU27_2020_FOR" and row.breakdown == {"arrival_cohort": COHORT}:
                by_node.setdefault(row.node, []).append(f"{row.time_period} {_value(row)}")
    for node, values in by_node.items():
        lines.append(f"  {'pooled' if node == '*' else node:<11} " + "  ->  ".join(values))
    lines.append("Refugees (INTPROT) in employment, under 5 years of residence vs 10+ (%):")
    for row in comparison.rows:
        if row.group == "INTPROT" and row.breakdown == {"yearesid": "Y_LT5"}:
            gap = "" if row.gap is None else f"  gap {row.gap:+.1f} points"
            name = "pooled" if row.node == "*" else row.node
            versus = ":" if row.comparator_value is None else f"{row.comparator_value:.1f}"
            lines.append(f"  {name:<11} {_value(row)} vs {versus}{gap}".rstrip())
    return lines
