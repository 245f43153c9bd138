"""Every notebook, opened in JupyterLab in a real Chromium, runs all its cells without error.

The notebooks run against the engine the environment names (DOCKER_HOST etc.), on a copy
of notebooks/ served by the `lab_server` fixture. Step-specific checks look at what a
learner sees: the build's progress bar (02), the app's link answering (03), the layer
chart (06). A self-check on a generated notebook proves the harness itself detects errors,
widgets, images and cells that never ran.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page

if TYPE_CHECKING:  # the fixture's type; conftest modules are not imported by name
    from conftest import LabServer

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

#: How long one notebook may take to run all its cells (builds and pushes included).
NOTEBOOK_TIMEOUT = float(os.environ.get("LABKIT_BROWSER_TIMEOUT", "900"))
KERNEL_START_TIMEOUT = 120.0

#: The notebook on show (other tabs' panels are hidden).
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"

#: What the page holds for every cell: prompt, outputs, errors, widgets, images, links.
CELLS_JS = """
() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return null;
  return Array.from(panel.querySelectorAll('.jp-Notebook .jp-Cell')).map((cell) => {
    const prompt = cell.querySelector('.jp-InputArea-prompt');
    const texts = (mime) => Array.from(
      cell.querySelectorAll(`.jp-OutputArea-output[data-mime-type="${mime}"]`)
    ).map((node) => node.textContent);
    return {
      code: cell.classList.contains('jp-CodeCell'),
      prompt: prompt ? prompt.textContent.trim() : '',
      errors: [],
      stderr: texts('application/vnd.jupyter.stderr'),
      widgets: cell.querySelectorAll('.jp-OutputArea-output .jupyter-widgets').length,
      progress: cell.querySelectorAll(
        '.jp-OutputArea-output :is(.widget-hprogress, .widget-vprogress, .widget-progress)'
      ).length,
      builds: cell.querySelectorAll('.jp-OutputArea-output .labkit-build').length,
      images: cell.querySelectorAll('.jp-OutputArea-output img').length,
      links: Array.from(cell.querySelectorAll('.jp-OutputArea-output a[href]')).map((a) => ({
        href: a.href, text: a.textContent.trim(), app: a.getAttribute('data-labkit-app-url'),
      })),
    };
  });
}
"""


@dataclass
class CellState:
    """One cell as the page shows it, with what the notebook file says about it."""

    index: int
    code: bool
    prompt: str
    errors: list[str]  # error outputs: from the saved notebook (the page shows them as stderr)
    stderr: list[str]
    widgets: int
    progress: int
    builds: int
    images: int
    links: list[dict]
    source: str = ""
    raises: bool = False  # tagged "raises-exception": an error here is expected

    @property
    def executed(self) -> bool:
        return re.fullmatch(r"\[\d+\]:", self.prompt) is not None

    @property
    def running(self) -> bool:
        return self.prompt == "[*]:"

    @property
    def must_run(self) -> bool:
        return self.code and bool(self.source.strip())

    def problems(self) -> list[str]:
        """Errors a learner would see: error outputs, or a traceback printed to stderr."""
        if self.raises:
            return []
        found = list(self.errors)
        found += [text for text in self.stderr if "Traceback (most recent call last)" in text]
        return found


@dataclass
class NotebookRun:
    """The state of every cell once "Run All" finished (or stopped at an error)."""

    name: str
    cells: list[CellState] = field(default_factory=list)
    finished: bool = False

    def errors(self) -> dict[int, list[str]]:
        return {cell.index: cell.problems() for cell in self.cells if cell.problems()}

    def not_executed(self) -> list[int]:
        return [cell.index for cell in self.cells if cell.must_run and not cell.executed]

    def executed(self) -> list[int]:
        return [cell.index for cell in self.cells if cell.executed]

    def count(self, attribute: str) -> int:
        return sum(getattr(cell, attribute) for cell in self.cells)

    def links(self) -> list[dict]:
        return [link for cell in self.cells for link in cell.links]


def _notebook_cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _read_cells(page: Page, source_cells: list[dict]) -> list[CellState]:
    raw = page.evaluate(CELLS_JS) or []
    cells = []
    for index, data in enumerate(raw):
        cell = CellState(index=index, **data)
        if index < len(source_cells):
            source = source_cells[index].get("source", "")
            cell.source = "".join(source) if isinstance(source, list) else source
            cell.raises = "raises-exception" in source_cells[index].get("metadata", {}).get(
                "tags", [])
        cells.append(cell)
    return cells


def _menu(page: Page, menu: str, command: str) -> None:
    """Click a menu bar entry, then one of its commands (as a learner would)."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(rf"^{menu}$")).click()
    page.locator(f'.lm-Menu-item[data-command="{command}"]').first.click()


def _kernel_idle(page: Page) -> bool:
    return page.locator("#jp-main-statusbar", has_text=re.compile(r"\|\s*Idle")).count() > 0


def screenshot(page: Page, artifacts: Path, name: str) -> Path:
    path = artifacts / "screenshots" / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def open_notebook(page: Page, server: LabServer, relative: str, artifacts: Path) -> None:
    """Open one notebook in JupyterLab and wait until its kernel is idle."""
    page.goto(server.lab_url(relative))
    page.locator(f"{PANEL} .jp-Cell").first.wait_for(timeout=60_000)
    deadline = time.monotonic() + KERNEL_START_TIMEOUT
    while not _kernel_idle(page):
        if time.monotonic() > deadline:
            screenshot(page, artifacts, f"{Path(relative).stem}-kernel-not-idle")
            pytest.fail(f"{relative}: the kernel never became idle "
                        f"(status bar: {page.locator('#jp-main-statusbar').inner_text()!r})")
        page.wait_for_timeout(250)
    screenshot(page, artifacts, f"{Path(relative).stem}-opened")


def _saved_errors(path: Path) -> dict[int, list[str]]:
    """Error outputs per cell, from the notebook file (JupyterLab renders them as stderr)."""
    found: dict[int, list[str]] = {}
    for index, cell in enumerate(_notebook_cells(path)):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.setdefault(index, []).append(f"{output['ename']}: {output['evalue']}")
    return found


def run_all(page: Page, server: LabServer, relative: str, artifacts: Path,
            timeout: float = NOTEBOOK_TIMEOUT) -> NotebookRun:
    """Run → Run All Cells, wait until the kernel settles, save the copy, read the cells.

    "Run All" stops at the first failing cell (unless it is tagged raises-exception), so
    the run is over once no cell shows [*] and the kernel has stayed idle for a moment.
    """
    source_cells = _notebook_cells(server.root / relative)
    run = NotebookRun(relative)
    _menu(page, "Run", "runmenu:run-all")
    page.wait_for_timeout(500)  # let the queued cells show [*] before polling
    deadline = time.monotonic() + timeout
    settled = 0
    while time.monotonic() < deadline and settled < 3:
        cells = _read_cells(page, source_cells)
        busy = any(cell.running for cell in cells) or not _kernel_idle(page)
        settled = 0 if busy else settled + 1
        page.wait_for_timeout(400)
    run.finished = settled >= 3
    saved = save_copy(page, server, relative, artifacts)
    run.cells = _read_cells(page, source_cells)
    for index, errors in _saved_errors(saved).items():
        if index < len(run.cells):
            run.cells[index].errors = errors
    # The moment that matters: the first failing cell, else the last one that ran.
    shown = next(iter(run.errors()), None)
    if shown is None and run.executed():
        shown = run.executed()[-1]
    if shown is not None:
        page.locator(f"{PANEL} .jp-Cell").nth(shown).scroll_into_view_if_needed()
    screenshot(page, artifacts, f"{Path(relative).stem}-ran")
    return run


def save_copy(page: Page, server: LabServer, relative: str, artifacts: Path) -> Path:
    """Save the executed notebook (in the server's copy) and keep it as an artifact."""
    _menu(page, "File", "docmanager:save")
    page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty").wait_for(state="detached",
                                                                       timeout=30_000)
    target = artifacts / "notebooks" / Path(relative).name
    shutil.copy(server.root / relative, target)
    return target


def element_screenshot(page: Page, selector: str, artifacts: Path, name: str) -> None:
    element = page.locator(f"{PANEL} {selector}").first
    element.scroll_into_view_if_needed()
    element.screenshot(path=str(artifacts / "screenshots" / f"{name}.png"))


# ------------------------------------------------------------------ harness self-check
#: A stand-in for step 3's app: an HTTP server in the kernel, and a link to it.
APP_CELL = """import http.server, threading
from IPython.display import HTML

class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello world!")

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), Hello)
threading.Thread(target=server.serve_forever, daemon=True).start()
HTML(f'<a href="http://127.0.0.1:{server.server_port}/" data-labkit-app-url>the app</a>')"""

SELF_CHECK_CELLS = [
    ("markdown", "# Harness self-check", []),
    ("code", "import ipywidgets\nipywidgets.IntProgress(value=3, max=3)", []),
    ("code", "import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [1, 2])\nplt.show()", []),
    ("code", APP_CELL, []),
    ("code", "raise ValueError('expected')", ["raises-exception"]),
    ("code", "print('after an expected error')", []),
    ("code", "", []),
    ("code", "1 / 0", []),
    ("code", "print('never runs')", []),
]


def _write_notebook(path: Path, cells: list[tuple[str, str, list[str]]]) -> None:
    notebook = {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                    "language": "python"}},
        "cells": [
            {"cell_type": kind, "id": f"cell-{i}", "metadata": {"tags": tags}, "source": source,
             **({"outputs": [], "execution_count": None} if kind == "code" else {})}
            for i, (kind, source, tags) in enumerate(cells)
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook, indent=1))


def test_harness_detects_errors_widgets_images_and_unrun_cells(
        page: Page, lab_server: LabServer, artifacts: Path) -> None:
    relative = "_browser-self-check/self-check.ipynb"
    _write_notebook(lab_server.root / relative, SELF_CHECK_CELLS)
    open_notebook(page, lab_server, relative, artifacts)
    run = run_all(page, lab_server, relative, artifacts, timeout=120)
    assert run.finished
    assert list(run.errors()) == [7], run.errors()
    assert "ZeroDivisionError" in run.errors()[7][0]
    assert run.not_executed() == [8]
    assert run.cells[5].executed  # "raises-exception" let Run All go on
    assert run.count("progress") == 1
    assert run.count("images") == 1
    assert len(app_links(run)) == 1
    check_progress(page, run, artifacts)
    check_app_answers(page, run)
    check_chart(page, run, artifacts)


# ------------------------------------------------------------------ the course notebooks
COURSE = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))


def _step(name: str) -> str:
    return name.split("-", 1)[0]


def app_links(run: NotebookRun) -> list[str]:
    """The app's URL(s): links marked data-labkit-app-url, else http://HOST:PORT/ links."""
    links = run.links()
    marked = [link["href"] for link in links if link["app"] is not None]
    if marked:
        return marked
    return [link["href"] for link in links
            if re.fullmatch(r"https?://[^/\s]+:\d+/?", link["href"])]


def check_progress(page: Page, run: NotebookRun, artifacts: Path) -> None:
    assert run.count("progress") > 0, f"{run.name}: no progress bar widget rendered"
    element_screenshot(page, ".jp-OutputArea-output .jupyter-widgets", artifacts,
                       f"{Path(run.name).stem}-progress")


def check_build_output(page: Page, run: NotebookRun, artifacts: Path) -> None:
    # The live progress bar ends as the build's static steps table (readable anywhere).
    assert run.count("builds") > 0, f"{run.name}: no build output (steps table) rendered"
    element_screenshot(page, ".jp-OutputArea-output .labkit-build", artifacts,
                       f"{Path(run.name).stem}-build")


def check_app_answers(page: Page, run: NotebookRun) -> None:
    urls = app_links(run)
    assert urls, f"{run.name}: no link to the app in any output"
    response = page.request.get(urls[0], timeout=30_000)
    assert response.ok, f"{urls[0]} answered {response.status}"
    assert "hello world" in response.text().lower(), response.text()


def check_chart(page: Page, run: NotebookRun, artifacts: Path) -> None:
    assert run.count("images") > 0, f"{run.name}: no chart (img output) rendered"
    element_screenshot(page, ".jp-OutputArea-output img", artifacts,
                       f"{Path(run.name).stem}-chart")


@pytest.mark.browser
@pytest.mark.parametrize("name", COURSE)
def test_notebook_runs_in_jupyterlab(page: Page, lab_server: LabServer, artifacts: Path,
                                     name: str) -> None:
    open_notebook(page, lab_server, name, artifacts)
    run = run_all(page, lab_server, name, artifacts)

    assert run.errors() == {}, f"{name}: cells show errors: {run.errors()}"
    assert run.finished, f"{name}: Run All did not finish within {NOTEBOOK_TIMEOUT:.0f} s"
    assert run.not_executed() == [], f"{name}: cells never ran: {run.not_executed()}"
    step = _step(name)
    if step == "02":
        check_build_output(page, run, artifacts)
    if step == "03":
        check_app_answers(page, run)
    if step == "06":
        check_chart(page, run, artifacts)
