"""Words of the HTML report: labels of groups and dimensions, and the keys of its rows.

Every element of the report that shows a benchmark row's own numbers carries that row's
``data-key`` (see ``row_key``), so tests can check what a row discloses.
"""

from __future__ import annotations

from coordinator.rows import POOLED, TOTAL, BenchmarkRow
from indicators.spec import parse_comparator
from indicators.variables import AGE, CATEGORICAL

__all__ = ["DIM_LABELS", "GROUP_LABELS", "group_label", "line_label", "row_key"]

GROUP_LABELS = {
    "c_birth": {
        "NAT": "native-born residents",
        "EU27_2020_FOR": "residents born in another EU country",
        "NEU27_2020_FOR": "residents born outside the EU",
        "FOR": "foreign-born residents",
        "UNK": "residents whose country of birth is unknown",
        TOTAL: "all residents",
    },
    "citizen": {
        "NAT": "nationals",
        "EU27_2020_FOR": "citizens of another EU country",
        "NEU27_2020_FOR": "non-EU citizens (third-country nationals)",
        "STLS": "stateless residents",
        "FOR": "foreign citizens",
        "UNK": "residents whose citizenship is unknown",
        TOTAL: "all residents",
    },
}
DIM_LABELS = {
    "c_birth": "country of birth",
    "citizen": "citizenship",
    "yearesid": "years of residence",
    "arrival_cohort": "year of arrival",
}


def group_label(group_dim: str, group: str) -> str:
    """A group's label; for a cohort comparator ``DIM=CODE``, the same group in that cell."""
    cohort = parse_comparator(group) if "=" in group else None
    if cohort is not None:
        dim, code = cohort
        variable = CATEGORICAL.get(dim) if dim != AGE else None
        label = code
        if variable is not None and variable.labels and code in variable.codes:
            label = variable.labels[variable.codes.index(code)].lower()
        return f"the same group, {DIM_LABELS.get(dim, dim)}: {label}"
    return GROUP_LABELS.get(group_dim, {}).get(group, group)


def row_key(row: BenchmarkRow) -> str:
    """The ``data-key`` of a benchmark row's elements in the report."""
    return "|".join([row.node, row.indicator, row.group_dim, row.group, *row.breakdown.values()])


def line_label(node: str, cell: tuple[str, ...]) -> str:
    """A chart or table line's label: the city (or ``pooled``) and its breakdown cell."""
    return " ".join(["pooled" if node == POOLED else node, *cell])
