"""How to cite a release: its id, version, issuing body and date (DESIGN section 6).

The same text goes into the report's "How to cite" block, the SDMX structure header and
every node's reference-metadata file, so a figure is cited the same way wherever it is
read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from common.versions import software_version
from coordinator.rows import BenchmarkRow

__all__ = ["Citation", "release_id", "with_release"]


@dataclass(frozen=True)
class Citation:
    """A release one can cite.

    Attributes:
        release: ``<coordinator id>-<UTC date>-<short hash of the query ids>``.
        issuer: The issuing body (``[coordinator] issuer``; its id when not given).
        version: The release's version (``[coordinator] release_version``).
        issued: When the release was written (UTC).
    """

    release: str
    issuer: str
    version: str
    issued: dt.datetime

    def text(self) -> str:
        """One citation line, e.g. for a footnote."""
        return (
            f"{self.issuer} ({self.issued:%Y}). Migrant integration benchmark, release "
            f"{self.release}, version {self.version}, issued {self.issued:%Y-%m-%d}. "
            f"Produced with fedstats {software_version()} from differentially private "
            "tables of the participating data holders."
        )

    def record(self) -> dict[str, str]:
        """The citation as JSON fields."""
        return {
            "release": self.release,
            "issuer": self.issuer,
            "version": self.version,
            "issued": self.issued.isoformat(timespec="seconds"),
            "how_to_cite": self.text(),
        }


def release_id(coordinator_id: str, query_ids: Sequence[str], when: dt.datetime) -> str:
    """``<coordinator id>-<UTC date>-<short hash of the query ids>`` (DESIGN section 6)."""
    digest = hashlib.sha256("\n".join(sorted(query_ids)).encode()).hexdigest()[:10]
    return f"{coordinator_id}-{when.astimezone(dt.UTC):%Y%m%d}-{digest}"


def with_release(rows: Iterable[BenchmarkRow], release: str) -> list[BenchmarkRow]:
    """The rows, each naming the release they are published in."""
    return [row.amended(release=release) for row in rows]
