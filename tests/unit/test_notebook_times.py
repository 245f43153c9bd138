"""testbed.notebooks: how an executed notebook's cell times are read and reported."""

from __future__ import annotations

import nbformat

from testbed import notebooks as bench


def executed(seconds: list[float], markdown: str = "", tags: list[str] | None = None):
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(markdown))
    for i, s in enumerate(seconds):
        cell = nbformat.v4.new_code_cell(f"step_{i}()\nmore()")
        cell.metadata["execution"] = {
            "iopub.execute_input": "2026-01-01T00:00:00.000000Z",
            "shell.execute_reply": f"2026-01-01T00:00:{s:09.6f}Z"}
        if tags and i == 0:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    return nb


def test_cell_times_come_from_nbclient_timing_with_the_first_line():
    times = bench.cell_times("05", executed([1.5, 0.25]))
    assert [(t.index, t.seconds, t.first_line) for t in times] == [
        (1, 1.5, "step_0()"), (2, 0.25, "step_1()")]


def test_a_cell_announced_with_its_duration_is_an_experiment():
    times = bench.cell_times("09", executed([20.0, 4.0], "This experiment takes about 20 s."))
    assert [t.experiment for t in times] == [True, False]
    assert bench.cell_times("09", executed([20.0], tags=["experiment"]))[0].experiment


def test_report_flags_slow_set_up_cells_and_the_course_goal():
    lines = bench.report(bench.cell_times("05", executed([4.0, 1.0])))
    assert lines[1].split()[:4] == ["05", "2", "5.00", "4.00"]
    assert any(line.startswith("whole course: 5.0 s") and "within" in line for line in lines)
    assert any("SLOW" in line and "step_0()" in line for line in lines)


def test_report_says_when_the_course_is_over_its_goal():
    lines = bench.report(bench.cell_times("08", executed([2.0] * 31)))
    assert any("OVER the 60 s goal" in line for line in lines)
    assert not any("SLOW" in line for line in lines)


def test_a_duration_may_wrap_onto_the_next_line():
    assert bench.says_how_long("The build takes\nabout 5 s the first time.")
    assert bench.says_how_long("The next cell takes about 10–60 s, on a busy engine.")
    assert not bench.says_how_long("The build takes a few seconds.")
