"""sdmx1's data model and XML writer, imported without the rest of the package.

``import sdmx`` runs the package's ``__init__``, which imports its web client and its
pandas converter (``requests`` and ``pandas``): about 0.5 s of CPU on every ``fedstats
query --format sdmx``, for parts the coordinator never uses (it builds a structure
message and writes it as XML). `sdmx_parts` registers the package without running its
``__init__``, so ``sdmx.model``, ``sdmx.message`` and ``sdmx.writer.xml`` import on their
own; the first use of anything else on the package (``sdmx.to_csv``, ``sdmx.Client``)
runs the ``__init__`` then, and the package is whole from there on.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

__all__ = ["sdmx_parts"]


def sdmx_parts() -> None:
    """Register the ``sdmx`` package so that its submodules import without its ``__init__``.

    Does nothing when ``sdmx`` is already imported (or being imported).
    """
    if "sdmx" in sys.modules:
        return
    spec = importlib.util.find_spec("sdmx")
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return  # not a package we know how to load in parts: a plain import will do
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def whole(name: str) -> Any:
        """A submodule of that name (``from sdmx import model``), else the whole package."""
        if not name.startswith("__") and importlib.util.find_spec(f"sdmx.{name}") is not None:
            return importlib.import_module(f"sdmx.{name}")
        del package.__dict__["__getattr__"]
        loader.exec_module(package)
        return getattr(package, name)

    package.__dict__["__getattr__"] = whole
    sys.modules["sdmx"] = package
