"""This release's own version, as the package metadata states it."""

from __future__ import annotations

import functools
from importlib import metadata

__all__ = ["DISTRIBUTION", "software_version"]

DISTRIBUTION = "fedstats"


@functools.cache
def software_version() -> str:
    """The installed fedstats version (pyproject.toml's), or ``unknown`` when not installed.

    Read once per process (the installed package does not change under it): reading the
    metadata costs milliseconds, and a release names the version once per row group.
    """
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"
