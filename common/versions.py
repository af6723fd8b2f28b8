"""This release's own version, as the package metadata states it."""

from __future__ import annotations

from importlib import metadata

__all__ = ["DISTRIBUTION", "software_version"]

DISTRIBUTION = "fedstats"


def software_version() -> str:
    """The installed fedstats version (pyproject.toml's), or ``unknown`` when not installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"
