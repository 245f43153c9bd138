"""The committed notebooks' outputs read anywhere and come from one clean run (`make notebooks`).

No engine needed: these read the .ipynb files as GitHub and nbviewer would.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: What ipywidgets puts in text/plain: the widget's repr, e.g. ``VBox(children=(...``.
WIDGET_REPR = re.compile(r"^[A-Z][A-Za-z]*\((children|value|layout|description|options)=")


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def text(value: object) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def outputs(nb: dict):
    for index, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            yield index, out


def strings(value: object):
    """Every string inside an output (its text, data, traceback lines)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 10


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_terminal_cell_stops_at_its_first_failing_command(path: Path):
    """A `%%bash` cell fails only when its last command fails, unless it says otherwise."""
    cells = load(path)["cells"]
    bash = [(index, "".join(cell["source"]).splitlines()) for index, cell in enumerate(cells)
            if cell["cell_type"] == "code" and "".join(cell["source"]).startswith("%%bash")]
    loose = [index for index, lines in bash if lines[1:2] != ["set -euo pipefail"]]
    assert loose == [], f"{path.name}: %%bash cells {loose} go on after a failing command"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_ansi_escape_in_any_output(path: Path):
    found = [index for index, out in outputs(load(path))
             if any("\x1b" in piece for piece in strings(out))]
    assert found == [], f"{path.name}: cells {found} store ANSI escape codes"


#: What an output made on a learner's machine never shows: a port open to every address, a
#: container's own address on a DinD engine (unreachable from the learner's browser), or a
#: folder of the machine that ran it.
NOT_A_LEARNERS_VIEW = re.compile(
    r"0\.0\.0\.0|\b172\.(1[6-9]|2\d|3[01])\.\d+\.\d+|/root/|/home/\w|/tmp/labkit-|/work/")


#: What shows those addresses for a reason: Flask's own log lines, read from inside its
#: container (03 explains them), and app.py's ``host="0.0.0.0"``.
FLASK_LOG_LINE = re.compile(r"^( \* Running on .*|\S+ - - \[[^\]]+\] \"[A-Z]+ .*)$"
                            r"|host=\"0\.0\.0\.0\"", re.M)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_output_shows_an_open_port_a_dind_address_or_a_machine_path(path: Path):
    found = sorted({(index, m.group(0)) for index, out in outputs(load(path))
                    for value in strings(out)
                    for m in NOT_A_LEARNERS_VIEW.finditer(FLASK_LOG_LINE.sub("", value))})
    assert found == [], f"{path.name}: (cell, what) {found}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_widget_output_has_a_readable_fallback(path: Path):
    bare = []
    for index, out in outputs(load(path)):
        data = out.get("data", {})
        if WIDGET_VIEW not in data:
            continue
        plain = text(data.get("text/plain")).strip()
        readable_plain = len(plain) > 20 and not WIDGET_REPR.match(plain)
        if not (text(data.get("text/html")).strip() or readable_plain):
            bare.append(index)
    assert bare == [], f"{path.name}: cells {bare} show a widget with nothing readable"


def test_all_notebooks_carry_the_same_run_stamp():
    stamps = {path.name: load(path)["metadata"].get("labkit", {}) for path in NOTEBOOKS}
    runs = {name: stamp.get("run") for name, stamp in stamps.items()}
    assert None not in runs.values(), f"not stamped (run `make notebooks`): {runs}"
    assert len(set(runs.values())) == 1, f"outputs from several runs: {runs}"
    for name, stamp in stamps.items():
        assert stamp.get("engine") and stamp.get("image_store"), f"{name}: {stamp}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_execution_counts_are_one_run_in_order(path: Path):
    counts = [cell.get("execution_count") for cell in load(path)["cells"]
              if cell["cell_type"] == "code" and text(cell.get("source")).strip()]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: {counts}"


# ------------------------------------------------- the cleaning testbed.notebooks applies
def _tool():
    from testbed import notebooks

    return notebooks


def test_cleaning_strips_ansi_from_tracebacks_and_streams_and_drops_timings():
    import nbformat

    tool = _tool()
    cell = nbformat.v4.new_code_cell("1/0")
    cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00Z"}
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="\x1b[31mred\x1b[0m\n"),
                    nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="x",
                                           traceback=["\x1b[0;31mZeroDivisionError\x1b[0m"])]
    nb = nbformat.v4.new_notebook(cells=[cell])
    tool.clean_outputs(nb)
    assert cell.outputs[0]["text"] == "red\n"
    assert cell.outputs[1]["traceback"] == ["ZeroDivisionError"]
    assert "execution" not in cell.metadata


def test_cleaning_joins_a_stream_the_kernel_sent_in_pieces():
    import nbformat

    tool = _tool()
    cell = nbformat.v4.new_code_cell("!docker build .")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="Bu"),
                    nbformat.v4.new_output("stream", name="stdout", text="ildKit\n"),
                    nbformat.v4.new_output("stream", name="stderr", text="warning\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="done\n")]
    tool.clean_outputs(nbformat.v4.new_notebook(cells=[cell]))
    assert [(o["name"], o["text"]) for o in cell.outputs] == [
        ("stdout", "BuildKit\n"), ("stderr", "warning\n"), ("stdout", "done\n")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_stored_stream_is_split_in_pieces(path: Path):
    split = [index for index, cell in enumerate(load(path)["cells"])
             for a, b in itertools.pairwise(cell.get("outputs", []))
             if a.get("output_type") == b.get("output_type") == "stream"
             and a.get("name") == b.get("name")]
    assert split == [], f"{path.name}: cells {split} store a stream in pieces"


def test_the_state_folder_of_the_run_is_no_machine_path_in_an_output():
    import nbformat

    tool = _tool()
    cell = nbformat.v4.new_code_cell("reg")
    cell.outputs = [nbformat.v4.new_output("execute_result", data={
        "text/plain": "Registry(ca_file='/tmp/run-state/student-ca.pem')"})]
    tool.clean_outputs(nbformat.v4.new_notebook(cells=[cell]), "/tmp/run-state")
    assert cell.outputs[0]["data"]["text/plain"] == (
        f"Registry(ca_file='{tool.STATE_FOLDER}/student-ca.pem')")


def test_docker_logins_credentials_file_is_named_as_a_learner_has_it():
    import nbformat

    tool = _tool()
    cell = nbformat.v4.new_code_cell("%%bash")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=(
        "WARNING! Your password will be stored unencrypted in /srv/ci/cfg/config.json.\n"))]
    tool.clean_outputs(nbformat.v4.new_notebook(cells=[cell]), "/tmp/run-state", "/srv/ci/cfg/")
    assert cell.outputs[0]["text"] == (
        "WARNING! Your password will be stored unencrypted in ~/.docker/config.json.\n")


def test_widget_state_is_kept_only_for_displayed_widgets_and_their_children():
    import nbformat

    tool = _tool()
    cell = nbformat.v4.new_code_cell("w")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "text/plain": "x", WIDGET_VIEW: {"model_id": "aa", "version_major": 2}})]
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb.metadata["widgets"] = {tool.WIDGET_STATE: {"state": {
        "aa": {"state": {"children": ["IPY_MODEL_bb"]}}, "bb": {"state": {}},
        "cc": {"state": {}}}, "version_major": 2, "version_minor": 0}}
    tool.prune_widget_state(nb)
    assert set(nb.metadata["widgets"][tool.WIDGET_STATE]["state"]) == {"aa", "bb"}
    cell.outputs = []
    tool.prune_widget_state(nb)
    assert "widgets" not in nb.metadata
