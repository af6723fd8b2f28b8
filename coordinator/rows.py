"""The benchmark row: one line of ``benchmark.csv``, what every output format writes.

Rows are made in `coordinator.combine` and amended by `coordinator.rowmeta` (metadata)
and `coordinator.publish.citation` (the release id); every writer
(`coordinator.publish`), provenance and the report read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from coordinator.flags import NONE, Flags, Status
from privacy.estimators import Estimate

__all__ = ["POOLED", "TOTAL", "BenchmarkRow", "row_of"]

POOLED = "*"
"""The node (and geo) of a pooled row: every answering node's cells side by side."""
TOTAL = "TOTAL"
"""The comparator (and group) of the whole population."""


@dataclass(frozen=True)
class BenchmarkRow:
    """One row of benchmark.csv, an immutable value; rates in percent, None where not published.

    ``comparator`` names the comparator group: ``TOTAL``, or the group dimension's native
    group (``NAT`` for country of birth and citizenship, ``NB_NBP`` for migration
    background, ``NAP`` for reason and years of residence), or a cohort comparator
    ``DIM=CODE``: the same group in the same breakdown cell but for DIM set to CODE.
    """

    node: str
    geo: str
    time_period: str
    indicator: str
    group_dim: str
    group: str
    breakdown: Mapping[str, str]
    comparator: str
    unit: str
    flags: Flags = NONE
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    comparator_value: float | None = None
    gap: float | None = None
    gap_ci_low: float | None = None
    gap_ci_high: float | None = None
    denominator: float | None = None
    unknown_share: float | None = None
    status: Status = Status.PUBLISHED
    poverty_line: float | None = None
    aggregate: str = ""
    poverty_line_source: str = ""
    estimate: Estimate | None = field(default=None, repr=False)
    geo_level: str = ""  # the territorial level of geo (set by coordinator.rowmeta)
    source: str = ""  # register | survey | census; pooled: the members' joined by +
    deviation: str = ""  # concept codes ("wstatus=register_activity") and the node's notes
    release: str = ""  # the citable release id (set when published)

    def amended(self, **changes: Any) -> BenchmarkRow:
        """This row with some fields changed (`dataclasses.replace`, for many rows).

        The copy takes this row's field values as they are, then the changes; unlike
        ``replace`` it does not run ``__init__`` over every field again (rows have no
        ``__post_init__``), which made adding metadata to a 300-city query's rows slow.

        Raises:
            TypeError: A change names no field of the row.
        """
        return self.amended_by(changes)

    def amended_by(self, changes: Mapping[str, Any]) -> BenchmarkRow:
        """`amended` with the changes as a mapping (the caller's own: not copied as keywords).

        Raises:
            TypeError: A change names no field of the row.
        """
        if not _FIELDS.issuperset(changes):
            unknown = changes.keys() - _FIELDS
            raise TypeError(f"BenchmarkRow has no field(s) {', '.join(sorted(unknown))}")
        values = self.__dict__.copy()
        values.update(changes)
        return row_of(values)


def row_of(fields: dict[str, Any]) -> BenchmarkRow:
    """A row whose instance dict is ``fields``: every field of the row, by name, in order."""
    row = object.__new__(BenchmarkRow)
    object.__setattr__(row, "__dict__", fields)  # frozen: set as the instance's own
    return row


_FIELDS = frozenset(f.name for f in fields(BenchmarkRow))
