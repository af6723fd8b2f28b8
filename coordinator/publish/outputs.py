"""The benchmark of one or more queries, written in the formats asked for.

The top of the publishing floor: ``benchmark.csv`` and ``benchmark.parquet``
(``coordinator.publish.tables``), SDMX (``coordinator.publish.sdmx``) and the HTML report
(``coordinator.publish.report``). Every output publishes the same numbers
(``coordinator.publish.numbers``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from common.collector import collector_paused
from common.errors import FedstatsError, Reason
from coordinator.publish.beside import Beside
from coordinator.publish.citation import Citation, with_release
from coordinator.publish.outcome import Outcome
from coordinator.publish.refmeta import FOLDER, write_reference_metadata
from coordinator.publish.report.page import write_report
from coordinator.publish.tables import write_csv, write_parquet

if TYPE_CHECKING:
    from coordinator.rows import BenchmarkRow

__all__ = ["FORMATS", "check_formats", "output_files", "write_outputs"]

FORMATS = ("csv", "parquet", "sdmx", "html")


def check_formats(formats: Sequence[str]) -> list[str]:
    """The requested formats, deduplicated, in their given order.

    Raises:
        FedstatsError: An unknown format, or none (reason ``UNSUPPORTED_FORMAT``).
    """
    wanted = list(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown or not wanted:
        raise FedstatsError(
            f"unknown output format(s): {', '.join(unknown)}" if unknown else "no output format",
            reason=Reason.UNSUPPORTED_FORMAT,
            field="--format",
            hint=f"choose one or more of {','.join(FORMATS)}, e.g. --format csv,html",
        )
    return wanted


def output_files(written: dict[str, Path]) -> list[Path]:
    """Every file ``write_outputs`` wrote (the ``sdmx`` entry is a directory), sorted."""
    files: list[Path] = []
    for path in written.values():
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return files


def write_outputs(
    outcomes: Sequence[Outcome],
    out_dir: Path,
    formats: Sequence[str],
    citation: Citation | None = None,
) -> dict[str, Path]:
    """Write the benchmark of one or more queries in the requested formats.

    Everything that can fail (an unknown format, rows SDMX cannot express) fails before
    the first file is written.

    Args:
        outcomes: The queries' outcomes; their rows are written together.
        out_dir: Directory for ``benchmark.csv``, ``benchmark.parquet``, ``sdmx/`` and
            ``report.html``.
        formats: Names from ``FORMATS``.
        citation: The release the outputs form: every row names its id, the report and
            the SDMX header say how to cite it, and ``metadata/`` holds each node's
            reference metadata (entry ``metadata``).

    Returns:
        The path written per format (for ``sdmx`` the directory holding the structure
        message and the SDMX-CSV files; for ``metadata`` the reference-metadata folder).

    Raises:
        FedstatsError: An unknown format (``UNSUPPORTED_FORMAT``) or rows SDMX cannot
            express; nothing is written then.
    """
    wanted = check_formats(formats)
    with collector_paused():
        return _write(outcomes, out_dir, wanted, citation)


def _write(
    outcomes: Sequence[Outcome], out_dir: Path, wanted: list[str], citation: Citation | None
) -> dict[str, Path]:
    """`write_outputs` of checked formats: the report on another core while the rest is written.

    A failure anywhere (SDMX's checks of the rows included) leaves no report behind and
    none of the directories this call made.
    """
    rows = [row for outcome in outcomes for row in outcome.rows]
    if citation is not None:
        rows = with_release(rows, citation.release)
    made = [d for d in (out_dir, *out_dir.parents) if not d.exists()]
    out_dir.mkdir(parents=True, exist_ok=True)
    report = None
    if "html" in wanted and len(wanted) > 1:  # `beside`: on the other core meanwhile
        report = Beside.start(
            lambda path: write_report(outcomes, path, citation), out_dir / "report.html"
        )
    try:
        written = _write_here(rows, outcomes, out_dir, wanted, citation, report is None)
        if report is not None:
            report.finish()
            written["html"] = report.path
    except BaseException:
        if report is not None:
            report.finish(keep=False)
        for directory in made:  # innermost first; only those still empty
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    return {key: written[key] for key in [*wanted, "metadata"] if key in written}


def _write_here(
    rows: list[BenchmarkRow],
    outcomes: Sequence[Outcome],
    out_dir: Path,
    wanted: list[str],
    citation: Citation | None,
    report: bool,
) -> dict[str, Path]:
    """The outputs this process writes (the report too when ``report``); SDMX's checks first."""
    release = None
    if "sdmx" in wanted:
        from coordinator.publish.sdmx import prepare_sdmx  # sdmx1 takes a second to import

        release = prepare_sdmx(rows, citation)
    written: dict[str, Path] = {}
    for fmt in wanted:
        if fmt == "csv":
            written[fmt] = out_dir / "benchmark.csv"
            write_csv(rows, written[fmt])
        elif fmt == "parquet":
            written[fmt] = out_dir / "benchmark.parquet"
            write_parquet(rows, written[fmt])
        elif fmt == "sdmx" and release is not None:
            written[fmt] = out_dir / "sdmx"
            release.write(written[fmt])
        elif fmt == "html" and report:
            written[fmt] = out_dir / "report.html"
            write_report(outcomes, written[fmt], citation)
    if citation is not None:
        write_reference_metadata(outcomes, out_dir, citation)
        written["metadata"] = out_dir / FOLDER
    return written
