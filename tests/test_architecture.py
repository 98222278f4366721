"""The import graph of probe: every module imports on its own, no cycles, rooms in order.

Run ``python -m pytest tests/test_architecture.py`` to check it. The modules are those under
``probe/``, ``viewers/`` (installed as ``probe.viewers``) and ``recipes/`` (``probe.recipes``).
The graph is read statically from the source: every ``import``/``from ... import`` of a probe
module, at module level or inside a function, except those under ``if TYPE_CHECKING:`` (they
never run). ``import probe`` followed by ``probe.NAME`` (or ``from probe import NAME``) counts
as an import of the module that defines ``NAME`` in the lazy map of ``probe/__init__.py``.

Rooms, in the order data flows; a module imports only from its own room or an earlier one:

    base < analysis < models < capture < attribution < evaluation < viewers < commands
         < recipes < cli

``probe/__init__.py`` (the lazy façade) belongs to no room. Outside its own room a module
imports public names only: private modules of another room are fine
(``from probe.capture._trace import Trace``), private names are not
(``from probe.capture._capture import _is_vision``).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# source folder -> installed package name (setup.cfg package_dir)
FOLDERS = {"probe": "probe", "viewers": "probe.viewers", "recipes": "probe.recipes"}
FACADE = "probe"
MAX_LINES = 600

ROOMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base",
     ("probe._errors", "probe._version", "probe._progress", "probe._report", "probe._text",
      "probe._atomic", "probe._index")),
    ("analysis", ("probe.analysis",)),
    ("models", ("probe.models",)),
    ("capture", ("probe.capture",)),
    ("attribution", ("probe.attribution",)),
    ("evaluation", ("probe.evaluation",)),
    ("viewers", ("probe.viewers",)),
    ("commands", ("probe.commands",)),
    ("recipes", ("probe.recipes",)),
    ("cli", ("probe.cli",)),
)


# ----------------------------------------------------------------------------- the modules
def _modules() -> dict[str, Path]:
    """Installed module name -> source file, for every module of probe, viewers and recipes."""
    found: dict[str, Path] = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _room(module: str) -> int | None:
    """Index of the room ``module`` belongs to, ``None`` for the façade or no room."""
    for index, (_, prefixes) in enumerate(ROOMS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return None


def _lazy_map() -> dict[str, str]:
    """The façade's public name -> defining module (the ``_LAZY`` dict of probe/__init__.py)."""
    tree = ast.parse(MODULES[FACADE].read_text())
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) else None
        )
        if isinstance(target, ast.Name) and target.id == "_LAZY":
            return ast.literal_eval(node.value)  # type: ignore[arg-type]
    raise AssertionError("probe/__init__.py has no _LAZY map")


LAZY = _lazy_map()


# ----------------------------------------------------------------------------- the imports
@dataclass(frozen=True)
class Import:
    """One runtime import of a probe module: ``importer -> module``, maybe of one ``name``."""

    importer: str
    module: str
    name: str | None  # the imported attribute (not a module), if any
    line: int


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@dataclass
class _Scanner(ast.NodeVisitor):
    """Collects the runtime imports of probe modules in one module's source."""

    module: str
    is_package: bool
    imports: list[Import] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)  # local name -> probe module
    attributes: list[tuple[str, str, int]] = field(default_factory=list)  # (alias, attr, line)

    def _package(self) -> str:
        return self.module if self.is_package else self.module.rpartition(".")[0]

    def _absolute(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        base = self._package().split(".")
        base = base[: len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] != "probe":
                continue
            target = _known(alias.name)
            self.imports.append(Import(self.module, target, None, node.lineno))
            if alias.asname:
                self.aliases[alias.asname] = target
            else:
                self.aliases["probe"] = FACADE  # `import probe.x.y` binds the name probe

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        source = self._absolute(node)
        if source.split(".")[0] != "probe":
            return
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            if submodule in MODULES:  # `from probe.capture import _trace`: a module
                self.imports.append(Import(self.module, submodule, None, node.lineno))
                self.aliases[alias.asname or alias.name] = submodule
            elif source == FACADE and alias.name in LAZY:  # `from probe import rollout`
                self.imports.append(Import(self.module, LAZY[alias.name], alias.name, node.lineno))
            else:
                self.imports.append(Import(self.module, _known(source), alias.name, node.lineno))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name):
            self.attributes.append((node.value.id, node.attr, node.lineno))
        self.generic_visit(node)

    # annotations never run (`from __future__ import annotations`)
    def visit_arg(self, node: ast.arg) -> None:
        return

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for child in (*node.decorator_list, *node.args.defaults, *node.args.kw_defaults):
            if child is not None:
                self.visit(child)
        for statement in node.body:
            self.visit(statement)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]


def _known(name: str) -> str:
    """The longest prefix of ``name`` that is a probe module."""
    parts = name.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    return ".".join(parts) or name


def _scan(module: str, source: str, is_package: bool = False) -> list[Import]:
    """The runtime imports of probe modules in ``source``, the code of ``module``."""
    scanner = _Scanner(module, is_package)
    scanner.visit(ast.parse(source))
    imports = list(scanner.imports)
    for alias, attr, line in scanner.attributes:
        target = scanner.aliases.get(alias)
        if target is None:
            continue
        if target == FACADE and attr in LAZY:  # `import probe` ... `probe.rollout(...)`
            imports.append(Import(module, LAZY[attr], attr, line))
        elif f"{target}.{attr}" in MODULES:
            imports.append(Import(module, f"{target}.{attr}", None, line))
        elif target != FACADE:  # `import probe.capture._capture as c` ... `c._is_vision`
            imports.append(Import(module, target, attr, line))
    return imports


IMPORTS = {m: _scan(m, path.read_text(), path.name == "__init__.py") for m, path in MODULES.items()}


def _graph() -> dict[str, set[str]]:
    return {m: {i.module for i in imports if i.module != m} for m, imports in IMPORTS.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycle paths ``[a, b, ..., a]``: the shortest one through each module on a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:  # Tarjan
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)

    cycles = set()
    for component in components:
        for start in component:
            cycle = _shortest_cycle(graph, component, start)
            first = cycle.index(min(cycle))  # one rotation per cycle
            cycles.add(tuple(cycle[first:] + cycle[:first]))
    return sorted([*cycle, cycle[0]] for cycle in cycles)


def _shortest_cycle(graph: dict[str, set[str]], component: set[str], start: str) -> list[str]:
    """Breadth-first inside ``component``: the shortest ``[start, ..., last]`` back to start."""
    previous: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & component):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return path[::-1]
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"{start} is on no cycle of its component")


# ----------------------------------------------------------------------------- the tests
def test_every_module_imports_on_its_own():
    """Each module imports first in a clean state: no probe module is loaded before it.

    ``__main__`` modules are entry points (importing one runs the command): they are left
    to the static checks below.
    """
    code = (
        "import importlib, json, sys, traceback\n"
        "failures = {}\n"
        "for name in json.loads(sys.argv[1]):\n"
        "    for loaded in [m for m in sys.modules if m == 'probe' or m.startswith('probe.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except BaseException as exc:\n"
        "        failures[name] = traceback.format_exception_only(type(exc), exc)[-1].strip()\n"
        "print(json.dumps(failures))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code,
         json.dumps(sorted(m for m in MODULES if not m.endswith(".__main__")))],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    failures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not failures, "modules that fail to import on their own:\n" + "\n".join(
        f"  {name}: {error}" for name, error in sorted(failures.items())
    )


SAMPLE = """
from __future__ import annotations
from typing import TYPE_CHECKING
import torch
from probe._errors import ProbeError
from . import _trace
from ._trace import Trace
if TYPE_CHECKING:
    from probe.models._registry import LoadedModel
else:
    from probe.analysis import _fusion
def f(x: probe.Trace, n: int = 3) -> probe.Trace:
    import probe
    from probe.capture._capture import _is_vision
    return probe.rollout(x)
"""


def test_the_scan_reads_runtime_imports_only():
    """Module-level, function-level, relative and façade imports count; imports under
    TYPE_CHECKING and names in annotations do not."""
    found = {(i.module, i.name) for i in _scan("probe.capture._sample", SAMPLE)}
    assert found == {
        ("probe._errors", "ProbeError"),
        ("probe.capture._trace", None),
        ("probe.capture._trace", "Trace"),
        ("probe.analysis._fusion", None),
        ("probe", None),
        ("probe.capture._capture", "_is_vision"),
        ("probe.analysis._rollout", "rollout"),
    }
    assert set(MODULES) >= {"probe", "probe.cli", "probe.viewers", "probe.viewers._style",
                            "probe.recipes", "probe.recipes.demo"}


def test_the_cycle_search_reports_paths():
    graph = {"a": {"b"}, "b": {"c", "d"}, "c": {"a"}, "d": {"b"}, "e": {"a"}}
    assert _cycles(graph) == [["a", "b", "c", "a"], ["b", "d", "b"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join("  " + " -> ".join(c) for c in cycles)


def test_every_module_is_in_a_room():
    homeless = [m for m in MODULES if m != FACADE and _room(m) is None]
    assert not homeless, f"modules in no room (add them to ROOMS): {homeless}"


def _against_the_flow(imports: dict[str, list[Import]]) -> set[str]:
    bad = set()
    for module, found in imports.items():
        here = _room(module)
        if module == FACADE or here is None:
            continue
        for imp in found:
            there = _room(imp.module)
            if imp.module != FACADE and there is not None and there > here:
                rooms = f"{ROOMS[here][0]} imports later room {ROOMS[there][0]}"
                bad.add(f"{module} -> {imp.module} ({rooms})")
    return bad


def _private_across_rooms(imports: dict[str, list[Import]]) -> set[str]:
    bad = set()
    for module, found in imports.items():
        for imp in found:
            name = imp.name or ""
            if name.startswith("_") and not name.startswith("__"):
                if _room(imp.module) != _room(module):
                    bad.add(f"{module} -> {imp.module}.{name}")
    return bad


def test_the_room_rules_catch_violations():
    sample = {"probe.analysis._sample": _scan("probe.analysis._sample", SAMPLE)}
    # (the relative imports now point into probe.analysis, the one under TYPE_CHECKING is out)
    assert _against_the_flow(sample) == {
        "probe.analysis._sample -> probe.capture._capture (analysis imports later room capture)",
    }
    assert _private_across_rooms(sample) == {
        "probe.analysis._sample -> probe.capture._capture._is_vision",
    }
    inside = {"probe.capture._sample": _scan("probe.capture._sample", SAMPLE)}
    assert _against_the_flow(inside) == set() and _private_across_rooms(inside) == set()


def test_imports_go_to_the_same_or_an_earlier_room():
    bad = _against_the_flow(IMPORTS)
    assert not bad, "imports against the flow of rooms:\n" + "\n".join(
        "  " + line for line in sorted(bad)
    )


def test_no_private_names_across_rooms():
    bad = _private_across_rooms(IMPORTS)
    assert not bad, "private names used from another room:\n" + "\n".join(
        "  " + line for line in sorted(bad)
    )


def test_modules_are_short():
    long = {
        str(path.relative_to(ROOT)): n
        for path in MODULES.values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines:\n" + "\n".join(
        f"  {path}: {n}" for path, n in sorted(long.items())
    )


MAX_WIDTH = 100  # pyproject.toml [tool.ruff] line-length
#: folders whose Python files keep to MAX_WIDTH (the README's tables are not Python)
WIDTH_FOLDERS = ("probe", "viewers", "recipes", "tests")


def _too_wide(text: str) -> list[tuple[int, int]]:
    """``(line number, width)`` of the lines over :data:`MAX_WIDTH` characters; a line holding a
    URL is exempt (a URL cannot be wrapped)."""
    return [
        (number, len(line))
        for number, line in enumerate(text.splitlines(), 1)
        if len(line) > MAX_WIDTH and "http://" not in line and "https://" not in line
    ]


def test_the_width_rule_counts_characters_and_exempts_urls():
    assert _too_wide("x" * 100 + "\n" + "é" * 100) == []  # characters, not bytes
    assert _too_wide("ok\n" + "y" * 101) == [(2, 101)]
    assert _too_wide("# see https://example.org/" + "p" * 100) == []


def test_lines_fit_the_width():
    wide = {
        f"{path.relative_to(ROOT)}:{number}": width
        for folder in WIDTH_FOLDERS
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, width in _too_wide(path.read_text(encoding="utf-8"))
    }
    assert not wide, f"lines over {MAX_WIDTH} characters (wrap them):\n" + "\n".join(
        f"  {where}: {width}" for where, width in sorted(wide.items())
    )
