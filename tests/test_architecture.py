"""The layers of docs/architecture.md hold: no import circle in sd_core, no import from a lower
layer to a higher one, plugins use only sd_core's public names, and modules and functions stay
short.

Imports are read from the source (module level and inside functions alike, ``TYPE_CHECKING``
blocks included), so a lazy import is an import too. ``from pkg import sub`` counts as an import
of the submodule ``pkg.sub``, not of ``pkg`` itself, as Python runs it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "sd_core"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
MAX_ROOT_MODULES = 8


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def core_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(CORE.rglob("*.py"))}


def imported_modules(path: Path, name: str, modules: set[str]) -> set[str]:
    """The sd_core modules a module imports (relative imports resolved). ``from X import Y``
    imports the submodule ``X.Y`` where there is one, else a name of ``X``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return (found & modules) - {name}


def import_graph() -> dict[str, set[str]]:
    """sd_core module → the sd_core modules it imports."""
    modules = core_modules()
    return {name: imported_modules(path, name, set(modules)) for name, path in modules.items()}


def layers() -> list[list[str]]:
    """The layers, top first, from the ``layers`` block of docs/architecture.md."""
    text = ARCHITECTURE.read_text()
    block = re.search(r"```text layers\n(.*?)```", text, re.S)
    assert block, f"{ARCHITECTURE} has no ```text layers block"
    out = []
    for line in block.group(1).splitlines():
        line = line.split("#")[0].strip()
        if line:
            out.append([word for word in re.split(r"[\s,]+", line) if word])
    return out


def layer_of(module: str, table: list[list[str]]) -> int:
    """Index of the layer (0 = top) whose longest listed prefix names the module."""
    best, where = -1, None
    for index, names in enumerate(table):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, where = len(prefix), index
    assert where is not None, f"{module} is in no layer of {ARCHITECTURE.name}: add it there"
    return where


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward_imports(graph: dict[str, set[str]], table: list[list[str]]) -> list[str]:
    out = []
    for module, targets in sorted(graph.items()):
        mine = layer_of(module, table)
        for target in sorted(targets):
            theirs = layer_of(target, table)
            if theirs < mine:
                out.append(f"{module} (layer {mine}: {' '.join(table[mine])}) imports {target} "
                           f"(layer {theirs}: {' '.join(table[theirs])})")
    return out


def test_the_checker_sees_circles_upward_imports_and_lazy_imports():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    table = [["x.top"], ["x.mid", "x.low.special"], ["x.low", "x"]]
    assert upward_imports({"x.low.a": {"x.mid.b"}}, table)
    assert upward_imports({"x.mid.b": {"x.top"}}, table)
    assert not upward_imports({"x.top.c": {"x.low.a", "x"}, "x.low.special.s": {"x.mid.b"}}, table)
    graph = import_graph()
    # function-level imports count: the CLI's command modules import their stages inside functions
    assert "sd_core.preprocess.runner" in graph["sd_core.cli.preprocess"]
    # ``from pkg import submodule`` is an import of the submodule
    assert "sd_core.runs.tracking" in graph["sd_core.training.loop"]
    assert "sd_core.runs" not in graph["sd_core.training.loop"]


def test_no_import_circle_in_sd_core():
    found = cycles(import_graph())
    assert not found, "import circles in sd_core:\n" + "\n".join(" → ".join(c) for c in found)


def test_no_import_from_a_lower_layer_to_a_higher_one():
    upward = upward_imports(import_graph(), layers())
    assert not upward, "imports against docs/architecture.md's layers:\n" + "\n".join(upward)


def test_every_module_is_in_a_listed_layer_and_the_root_stays_small():
    table = layers()
    for module in core_modules():
        layer_of(module, table)
    root = sorted(p.name for p in CORE.glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES, f"{len(root)} modules at sd_core's root: {root}"


def _sources() -> list[Path]:
    files = sorted(CORE.rglob("*.py"))
    files += sorted(p for p in (ROOT / "plugins").rglob("*.py") if ".egg-info" not in str(p))
    return files


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_are_short(path):
    lines = path.read_text().splitlines()
    assert len(lines) <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)}: {len(lines)} lines"
    long = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                long.append(f"{node.name} ({length} lines, line {node.lineno})")
    assert not long, f"{path.relative_to(ROOT)}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_plugins_import_only_public_names_of_sd_core():
    private = []
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        if ".egg-info" in str(path):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sd_core"):
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("sd_core")]
            for name in names:
                if any(part.startswith("_") for part in name.split(".")):
                    private.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert not private, "plugins import private names of sd_core:\n" + "\n".join(private)


def test_old_import_paths_still_work_with_a_deprecation_warning():
    import importlib
    import sys

    from sd_core._moved import MOVED

    for old, new in MOVED.items():
        sys.modules.pop(old, None)
        with pytest.warns(DeprecationWarning, match=re.escape(old) + " has moved"):
            module = importlib.import_module(old)
        targets = (new,) if isinstance(new, str) else new
        first = importlib.import_module(targets[0])
        public = [n for n in vars(first) if not n.startswith("_")]
        assert public, new
        assert getattr(module, public[0]) is getattr(first, public[0])
    from sd_core.signals.windows import make_windows

    with pytest.warns(DeprecationWarning):
        sys.modules.pop("sd_core.signal", None)
        from sd_core.signal import make_windows as old_make_windows  # the second of its two new homes
    assert old_make_windows is make_windows
