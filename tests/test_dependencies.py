"""pyproject.toml says what sd_core uses: every third-party import is a declared dependency (or
an optional extra), and every declared core dependency is imported (issue 17, point 7)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def imported_top_levels() -> dict[str, str]:
    """Top-level module → first file importing it, over sd_core."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "sd_core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                found.setdefault(n.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_imports_and_declared_dependencies_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_name(r) for r in project["dependencies"]}
    extras = {_name(r) for reqs in project["optional-dependencies"].values() for r in reqs}
    dists = metadata.packages_distributions()
    used: dict[str, str] = {}
    for module, where in imported_top_levels().items():
        if module in sys.stdlib_module_names or module == "sd_core":
            continue
        for dist in dists.get(module, [module]):
            used[dist.lower().replace("_", "-")] = where
    undeclared = {d: w for d, w in used.items() if d not in core | extras}
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
    unused = sorted(core - set(used) - {"tomli"})  # tomli: only where Python lacks tomllib
    assert not unused, f"declared but never imported by sd_core: {unused}"
