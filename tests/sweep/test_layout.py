"""The house rules the tree must keep (issue 8): Ray only in the adapter folder, no import circle in the
sweep wing, no module over 400 lines. Static checks over the source, so they name the offending file."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "vaeray"
ADAPTER = PACKAGE / "sweep" / "ray"
RAY_IMPORT = re.compile(r"^\s*(import ray\b|from ray\b)", re.M)


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path, root: Path = PACKAGE.parent) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path = PACKAGE.parent) -> set[str]:
    """Every module ``path`` imports, at any depth (TYPE_CHECKING blocks and late imports included): a circle
    hidden in a function is still a circle a reader has to untangle."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)  # `from . import results` names a module
    return found


def test_only_the_adapter_folder_imports_ray():
    offenders = [str(p.relative_to(PACKAGE.parent)) for p in modules() if RAY_IMPORT.search(p.read_text()) and ADAPTER not in p.parents]
    assert offenders == []
    assert {p.name for p in ADAPTER.glob("*.py") if RAY_IMPORT.search(p.read_text())} == {
        "trainable.py", "scheduler.py", "callbacks.py", "runner.py", "local.py"
    }


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= 400


def test_the_sweep_wing_has_no_import_circle():
    wing = {module_name(p): p for p in (PACKAGE / "sweep").rglob("*.py") if p.name != "__init__.py"}
    graph = {m: {t for t in imports_of(p) if t in wing and t != m} for m, p in wing.items()}
    assert graph["vaeray.sweep.spec"].isdisjoint({"vaeray.sweep.dryrun", "vaeray.sweep.results", "vaeray.sweep.plan"})

    def circle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return trail + [start]
                if nxt not in trail:
                    stack.append((nxt, trail + [nxt]))
        return None

    circles = [c for m in graph if (c := circle_from(m))]
    assert circles == []


def test_the_circle_check_sees_circles(tmp_path):
    """The check above would catch a circle: a two-module one written the way the old spec -> dryrun ->
    results -> spec chain was (one leg under TYPE_CHECKING, one as a late import)."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import X\n")
    b.write_text("def f():\n    from .a import Y\n")
    pkg = tmp_path.name
    assert f"{pkg}.b" in imports_of(a, tmp_path.parent) and f"{pkg}.a" in imports_of(b, tmp_path.parent)
