"""DESIGN section 1: which package may import which."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = {
    "common", "protos", "indicators", "privacy", "security", "node", "coordinator", "fedstats",
}  # fmt: skip
NETWORK = {"grpc", "grpc_health"}
FORBIDDEN = {
    # The ground floor imports no other package of the project.
    "common": PROJECT - {"common"},
    # Pure packages: no network, no servers. indicators owns the query's wire form.
    "indicators": NETWORK | {"privacy", "security", "node", "coordinator", "fedstats"},
    "privacy": NETWORK | {"protos", "indicators", "security", "node", "coordinator", "fedstats"},
    "security": {"privacy", "node", "coordinator", "fedstats"},
    "node": {"coordinator", "fedstats"},
    "coordinator": {"node", "fedstats"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for item in ast.walk(tree):
        if isinstance(item, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in item.names)
        elif isinstance(item, ast.ImportFrom) and item.module and item.level == 0:
            roots.add(item.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_rules(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules found in {package}/"
    offenders = {
        str(f.relative_to(ROOT)): sorted(imported_roots(f) & FORBIDDEN[package]) for f in files
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_the_checker_sees_violations(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import grpc\nfrom node.service import NodeService\n")
    assert imported_roots(bad) == {"grpc", "node"}


def test_generated_code_is_not_committed() -> None:
    tracked = (ROOT / ".gitignore").read_text()
    assert "protos/*_pb2.py" in tracked
    assert not [p for p in (ROOT / "protos").glob("*.proto") if p.name.endswith("_pb2.proto")]
