"""Hatchling build hook: generate the gRPC code from protos/*.proto at build time.

Generated modules are written next to their .proto files (``protos/x_pb2.py``) so they
import as ``protos.x_pb2``; they are git-ignored and shipped as build artifacts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def generate(root: Path) -> list[Path]:
    """Run grpc_tools.protoc over every proto file under ``root/protos``."""
    from grpc_tools import protoc  # imported lazily: only the build needs it

    protos = sorted((root / "protos").glob("*.proto"))
    if not protos:
        raise RuntimeError(f"no .proto files under {root / 'protos'}")
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{root}",
        f"-I{include}",
        f"--python_out={root}",
        f"--pyi_out={root}",
        f"--grpc_python_out={root}",
        *[str(p.relative_to(root)) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {', '.join(p.name for p in protos)}")
    return protos


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Generates protobuf and gRPC modules before hatchling collects files."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Generate code for both wheel and editable builds."""
        generate(Path(self.root))


if __name__ == "__main__":
    generate(Path(__file__).resolve().parent)
    sys.exit(0)
