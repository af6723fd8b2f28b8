"""The coordinator's import graph: no circle, and the publishing floor above the pipeline."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = {
    "coordinator.client", "coordinator.combine", "coordinator.config", "coordinator.estimates",
    "coordinator.results", "coordinator.rows", "coordinator.run", "coordinator.provenance",
}  # fmt: skip
PUBLISHING = "coordinator.publish"
REPORT = "coordinator.publish.report"


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Every module of a package by dotted name (a package by its own name)."""
    names = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The modules of ``modules`` that a module imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for item in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(item, ast.Import):
            targets = [alias.name for alias in item.names]
        elif isinstance(item, ast.ImportFrom):
            base = item.module or ""
            if item.level:
                anchor = package.split(".")[: len(package.split(".")) - item.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" for alias in item.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # a name inside a module: the module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Which module of the package imports which other module of it."""
    names = module_names(root, package)
    return {name: imports_of(name, path, set(names)) for name, path in names.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle, as the modules along it (first repeated last), or []."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        path.pop()
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return []


def test_the_coordinator_has_no_import_circle() -> None:
    graph = import_graph(ROOT, "coordinator")
    assert len(graph) > 10
    assert find_cycle(graph) == []


def test_the_pipeline_imports_no_writer_and_the_writers_no_pipeline() -> None:
    graph = import_graph(ROOT, "coordinator")
    for name in sorted(PIPELINE - {"coordinator.provenance"}):
        assert not {m for m in graph[name] if m.startswith(PUBLISHING)}, name
    # provenance writes the outputs it signs and recomputes benchmark.csv: it uses the
    # writers, never the report's modules
    assert not {m for m in graph["coordinator.provenance"] if m.startswith(REPORT)}
    for name in (n for n in graph if n.startswith(PUBLISHING)):
        assert not graph[name] & {"coordinator.run", "coordinator.provenance"}, name


def test_only_the_format_dispatcher_reaches_into_the_report() -> None:
    graph = import_graph(ROOT, "coordinator")
    outside = {
        name for name, targets in graph.items()
        if not name.startswith(REPORT) and any(t.startswith(REPORT) for t in targets)
    }  # fmt: skip
    assert outside == {"coordinator.publish.outputs"}


def test_the_checker_sees_a_circle(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f() -> None:\n    from ..c import g\n")
    (package / "c.py").write_text("import pkg.a\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.a"] == {"pkg.sub", "pkg.sub.b"}
    assert graph["pkg.sub.b"] == {"pkg.c"}
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]
    (package / "c.py").write_text("import os\n")
    assert find_cycle(import_graph(tmp_path, "pkg")) == []
