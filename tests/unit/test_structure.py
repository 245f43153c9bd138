"""labkit's shape: concept packages with public faces, no cycle, and no drawing on import.

The rules, checked on the source with ``ast`` (imports inside functions included; imports
under ``if TYPE_CHECKING:`` are for annotations only and are left out):

- every module is in a concept package (``labkit/<package>/<module>.py``) but the entry
  points (``labkit/__init__.py``, ``labkit/cli.py``);
- every package has an ``__init__.py`` whose ``__all__`` names only what it binds;
- from outside a package, labkit code imports the package (``from labkit import images``) or
  names of its ``__all__`` (``from labkit.images import build``), never one of its modules;
- no module imports another module's ``_private`` name;
- no import cycle between modules, nor between packages;
- importing labkit or any package but ``labkit.render`` loads no IPython, pandas, ipywidgets
  or matplotlib.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import labkit

ROOT = Path(labkit.__file__).parent
ENTRY_POINTS = {"labkit", "labkit.cli"}
RENDER = "labkit.render"
HEAVY = ("IPython", "pandas", "ipywidgets", "matplotlib")


@dataclass(frozen=True)
class Import:
    """One labkit import: the importing module, the module named, the names taken, the line."""

    source: str
    target: str
    names: tuple[str, ...]
    line: int


def module_name(path: Path) -> str:
    """``labkit/images/builder.py`` -> ``labkit.images.builder`` (``__init__`` -> package)."""
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every labkit module by name."""
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def packages() -> set[str]:
    """The concept packages: ``labkit.<name>`` folders."""
    return {f"labkit.{p.parent.name}" for p in ROOT.glob("*/__init__.py")}


def package_of(module: str) -> str | None:
    """The concept package ``module`` belongs to (None for an entry point)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and module not in ENTRY_POINTS else None


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node under ``node``, leaving out ``if TYPE_CHECKING:`` blocks."""
    for child in ast.iter_child_nodes(node):
        if _type_checking_only(child):
            continue
        yield child
        yield from _walk(child)


def imports(name: str, path: Path) -> list[Import]:
    """The labkit imports of one module, anywhere in it (inside functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in _walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [Import(name, a.name, (), node.lineno) for a in node.names
                      if a.name.split(".")[0] == "labkit"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != "labkit":
                continue
            names = tuple(a.name for a in node.names)
            # ``from labkit.images import builder``: the module itself when it is one
            subs = [n for n in names if f"{target}.{n}" in modules()]
            found += [Import(name, f"{target}.{n}", (), node.lineno) for n in subs]
            rest = tuple(n for n in names if n not in subs)
            if rest or not subs:
                found.append(Import(name, target, rest, node.lineno))
    return found


def all_imports() -> list[Import]:
    """Every labkit import in labkit."""
    return [i for name, path in modules().items() for i in imports(name, path)]


def face(package: str) -> set[str]:
    """What a package's ``__init__`` lists in ``__all__``."""
    tree = ast.parse((ROOT / package.split(".")[1] / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def module_edges() -> dict[str, set[str]]:
    """Module -> the labkit modules it imports (a package's ``__init__`` for its face)."""
    edges: dict[str, set[str]] = {name: set() for name in modules()}
    for imp in all_imports():
        target = imp.target
        while target not in edges and "." in target:
            target = target.rpartition(".")[0]
        if target != imp.source:
            edges[imp.source].add(target)
    return edges


# --------------------------------------------------------------------------- the rules


def test_every_module_is_in_a_concept_package_but_the_entry_points():
    loose = {name for name in modules() if package_of(name) is None} - ENTRY_POINTS
    assert loose == set()
    assert packages() == {f"labkit.{p.name}" for p in ROOT.iterdir()
                          if p.is_dir() and any(p.glob("*.py"))}


@pytest.mark.parametrize("package", sorted(packages()))
def test_every_package_has_a_face_that_binds_what_it_lists(package):
    tree = ast.parse((ROOT / package.split(".")[1] / "__init__.py").read_text())
    bound = {a.asname or a.name for node in tree.body
             if isinstance(node, ast.ImportFrom | ast.Import) for a in node.names}
    bound |= {t.id for node in tree.body if isinstance(node, ast.Assign)
              for t in node.targets if isinstance(t, ast.Name)}
    listed = face(package)
    assert listed, f"{package} has no __all__"
    assert listed - bound == set()
    assert tree.body and isinstance(tree.body[0], ast.Expr), f"{package} has no docstring"


def test_other_packages_are_reached_through_their_face_only():
    wrong = []
    for imp in all_imports():
        target_package = package_of(imp.target) if imp.target != "labkit" else None
        if target_package is None or target_package == package_of(imp.source):
            continue
        through_face = imp.target == target_package and set(imp.names) <= face(target_package)
        offered = imp.target.rpartition(".")[2] in face(target_package)  # a listed module
        if not (through_face or (imp.target.count(".") == 2 and offered and not imp.names)):
            wrong.append(f"{imp.source}:{imp.line} imports {imp.target} {imp.names}")
    assert wrong == []


def test_the_notebooks_import_the_packages_faces_only():
    wrong = []
    for notebook in sorted((ROOT.parent / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        for line in code.splitlines():
            if not line.lstrip().startswith(("from labkit", "import labkit")):
                continue
            node = ast.parse(line.strip()).body[0]
            if isinstance(node, ast.Import) or not isinstance(node, ast.ImportFrom):
                wrong.append(f"{notebook.name}: {line.strip()}")
            elif node.module == "labkit":
                wrong += [f"{notebook.name}: {a.name}" for a in node.names
                          if f"labkit.{a.name}" not in packages()]
            elif node.module not in packages() or not {a.name for a in node.names} <= face(
                    node.module):
                wrong.append(f"{notebook.name}: {line.strip()}")
    assert wrong == []


def test_no_module_imports_another_modules_private_name():
    private = [f"{i.source}:{i.line} {i.target}.{n}" for i in all_imports() for n in i.names
               if n.startswith("_") and not n.startswith("__")]
    assert private == []


def test_no_import_cycle_between_modules():
    assert cycles(module_edges()) == []


def test_no_import_cycle_between_packages():
    edges: dict[str, set[str]] = {}
    for source, targets in module_edges().items():
        here = package_of(source) or source
        edges.setdefault(here, set())
        edges[here] |= {package_of(t) or t for t in targets} - {here}
    assert cycles(edges) == []


def test_the_domain_packages_never_import_the_rendering_layer():
    allowed = (RENDER, "labkit.course")  # the course, the top layer, sets a shell up for it
    drawn = [f"{i.source}:{i.line}" for i in all_imports()
             if i.target.startswith(RENDER) and package_of(i.source) not in allowed]
    assert drawn == []


@pytest.mark.parametrize("module", ["labkit", *sorted(packages() - {RENDER})])
def test_importing_loads_nothing_that_draws(module):
    code = (f"import sys, {module}; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_the_checks_see_imports_inside_functions_and_leave_type_checking_out(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text("from typing import TYPE_CHECKING\n"
                      "if TYPE_CHECKING:\n    from labkit.images import BuildResult\n"
                      "def f():\n    from labkit.registry import push\n")
    found = imports("labkit.sample.sample", source)
    assert [(i.target, i.names) for i in found] == [("labkit.registry", ("push",))]
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
