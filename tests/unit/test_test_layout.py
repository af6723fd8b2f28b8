"""The tests' own layout: helpers come from ``tests/support``, never from ``conftest`` or
another test file, and no test file is named after an issue."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def imported_names(path: Path) -> set[str]:
    """Dotted names a file imports: ``from a import b`` counts both ``a`` and ``a.b``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def is_test_module(name: str) -> bool:
    return name == "tests.conftest" or name.rsplit(".", 1)[-1].startswith("test_")


def test_no_test_imports_conftest_or_another_test_file() -> None:
    offenders = {
        str(path.relative_to(TESTS)): sorted(filter(is_test_module, imported_names(path)))
        for path in TESTS.rglob("*.py")
    }
    assert not {path: names for path, names in offenders.items() if names}


def test_the_checker_sees_every_form_of_import(tmp_path: Path) -> None:
    module = tmp_path / "test_x.py"
    module.write_text(
        "import tests.unit.test_a\nfrom tests.conftest import pki\n"
        "from tests.integration import test_b\nfrom tests.support.pki import pki\n"
    )
    assert set(filter(is_test_module, imported_names(module))) == {
        "tests.unit.test_a", "tests.conftest", "tests.integration.test_b",
    }  # fmt: skip


def test_test_files_are_named_after_behaviour_not_issues() -> None:
    numbered = [p.name for p in TESTS.rglob("test_*.py") if re.search(r"issue_?\d", p.name)]
    assert not numbered
