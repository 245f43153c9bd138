"""The package's shape: domain modules draw nothing, and every module stays small."""

from __future__ import annotations

import ast
from pathlib import Path

import labkit
from labkit import progress

PACKAGE = Path(labkit.__file__).parent
DOMAIN = ("images", "registry", "layers", "build_stream", "push_stream", "history", "sizes",
          "progress")
RENDERING = ("display", "widgets", "ipywidgets", "IPython", "matplotlib", "plots")


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (also inside functions), but for a
    result's own ``_repr_html_`` (how Jupyter shows a returned value: no widget, static)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name.startswith("_repr_"):
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add(node.module or "")
    return found


def test_domain_modules_import_no_renderer():
    for name in DOMAIN:
        imports = imported_modules(PACKAGE / f"{name}.py")
        drawn = {m for m in imports if m.split(".")[0] in RENDERING
                 or m.split(".")[0].startswith(("display", "widgets", "plots", "layer_plots"))}
        assert not drawn, f"{name}.py imports {sorted(drawn)}"


def test_show_uses_the_renderers_the_rendering_layer_registered():
    from labkit.display import BuildProgress
    from labkit.display_registry import PushProgress

    assert progress._build_renderer is BuildProgress
    assert progress._push_renderer is PushProgress


def test_every_module_has_at_most_400_lines():
    sizes = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py")}
    assert {n: s for n, s in sizes.items() if s > 400} == {}
