"""Unit tests of labkit.display on recorded build streams (no engine, no kernel)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit import config, display, images

DATA = Path(__file__).parent / "data"
LABELS = {"org.labkit.managed": "true", "org.labkit.namespace": "h2", "org.labkit.role": "app"}
COMMAND = images.build_command("h2/hello:latest", "/ctx", labels=LABELS)


@pytest.fixture(autouse=True)
def h2_settings():
    before = config.settings()
    config.use(config.Settings(user="h2"))
    yield
    config.use(before)


def play(progress: display.BuildProgress, name: str) -> images.BuildResult:
    parser = images.BuildStreamParser(LABELS)
    for line in (DATA / name).read_text().splitlines():
        progress.update(parser.feed(json.loads(line)))
    progress.update(parser.finish())
    result = images.BuildResult(parser.image_id or "", "h2/hello:latest", parser.steps, 0.5,
                                COMMAND)
    progress.done(result)
    return result


def test_plain_progress_marks_each_step(capsys):
    play(display.BuildProgress(COMMAND, widgets=False), "build_cached_after_edit.jsonl")
    lines = capsys.readouterr().out.splitlines()
    assert lines[:5] == [
        "Step 1/7 : FROM python:3.11-slim-bookworm",
        "  -> base image",
        "Step 2/7 : RUN pip install flask",
        "  -> cached",
        'Step 3/7 : CMD ["python","app.py"]',
    ]
    assert lines[7].startswith("  -> rebuilt in ")


def test_plain_progress_ends_with_the_equivalent_command(capsys):
    play(display.BuildProgress(COMMAND, widgets=False), "build_cached_after_edit.jsonl")
    assert capsys.readouterr().out.splitlines()[-1] == f"$ {COMMAND}"


def test_command_is_hidden_when_asked(capsys):
    config.use(config.Settings(user="h2", show_commands=False))
    display.show_command(COMMAND)
    assert capsys.readouterr().out == ""


def test_widget_progress_reaches_the_last_step(capsys):
    progress = display.BuildProgress(COMMAND, widgets=True)
    play(progress, "build_cold.jsonl")
    assert progress._bar.value == 7
    assert progress._bar.description == "Step 7/7"
    assert progress._bar.bar_style == "success"
    assert "Successfully installed" in progress._log.value


def test_widget_progress_lists_steps_with_their_cache_status(capsys):
    progress = display.BuildProgress(COMMAND, widgets=True)
    play(progress, "build_cached_after_edit.jsonl")
    assert progress._steps.value.count("<b>cached</b>") == 2
    assert progress._steps.value.count("rebuilt in") == 4


def test_step_note_explains_labkit_label_steps():
    step = images.BuildStep(5, 7, "LABEL org.labkit.managed=true", cached=True,
                            added_by_labkit=True)
    assert display.step_note(step) == "cached (LABEL added by the engine for labkit's --label)"


def test_outside_a_kernel_there_is_no_notebook():
    assert display.in_notebook() is False


def test_readable_size_leaves_missing_values_blank():
    import pandas as pd

    from labkit.display import readable_size

    assert [readable_size(x) for x in (None, float("nan"), pd.NA)] == ["", "", ""]
    assert [readable_size(x) for x in (5, 1500, 2_500_000)] == ["5 B", "1.5 kB", "2.5 MB"]


def test_push_table_renders_layers_whose_size_the_engine_did_not_report():
    import pandas as pd

    from labkit.commands import docker
    from labkit.display_registry import push_html
    from labkit.registry import PushResult

    layers = pd.DataFrame({"layer": ["a" * 12, "b" * 12], "status": ["pushed", "exists"],
                           "bytes_pushed": [2048, 0],
                           "bytes_total": pd.array([171, pd.NA], dtype="Int64")})
    result = PushResult("localhost:5000/student/app", "latest", "sha256:" + "0" * 64, 947,
                        layers, 0.1, docker("push", "localhost:5000/student/app:latest"))
    page = push_html(result)
    assert "171 B" in page
    assert "pushed 1, exists 1, mounted 0" in page
    assert "docker push localhost:5000/student/app:latest" in page
