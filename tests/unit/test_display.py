"""Unit tests of labkit.render.builds on recorded build streams (no engine, no kernel)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit import images
from labkit.engine import config
from labkit.engine.errors import BuildFailed
from labkit.render import builds as display

DATA = Path(__file__).parent / "data"
COMMAND = images.build_command("h2/hello:latest", "/ctx")
CLASSIC = images.BuilderChoice("classic", "a test of the classic builder's stream.")


@pytest.fixture(autouse=True)
def h2_settings(course_settings):
    course_settings(user="h2")
    yield


def steps_in(name: str) -> int:
    """How many steps the recorded build has (``Step 1/N``)."""
    first = next(json.loads(x)["stream"] for x in (DATA / name).read_text().splitlines()
                 if json.loads(x).get("stream", "").startswith("Step 1/"))
    return int(first.split("/")[1].split()[0])


def play(progress: display.BuildProgress, name: str) -> images.BuildResult:
    parser = images.BuildStreamParser()
    for line in (DATA / name).read_text().splitlines():
        progress.update(parser.feed(json.loads(line)))
    progress.update(parser.finish())
    result = images.BuildResult(parser.image_id or "", "h2/hello:latest", parser.steps, 0.5,
                                COMMAND, CLASSIC)
    progress.done(result)
    return result


def test_plain_progress_marks_each_step(capsys):
    play(display.BuildProgress(COMMAND, widgets=False), "build_cached_after_edit.jsonl")
    lines = capsys.readouterr().out.splitlines()
    n = steps_in("build_cached_after_edit.jsonl")
    assert lines[:5] == [
        f"Step 1/{n} : FROM python:3.11-slim-bookworm",
        "  -> base image",
        f"Step 2/{n} : RUN pip install flask",
        "  -> cached",
        f'Step 3/{n} : CMD ["python","app.py"]',
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
    n = steps_in("build_cold.jsonl")
    assert progress._bar.value == n
    assert progress._bar.description == f"Step {n}/{n}"
    assert progress._bar.bar_style == "success"
    assert "Successfully installed" in progress._log.value


def test_widget_progress_lists_steps_with_their_cache_status(capsys):
    progress = display.BuildProgress(COMMAND, widgets=True)
    result = play(progress, "build_cached_after_edit.jsonl")
    assert progress._steps.value.count("<b>cached</b>") == len(result.cached_steps) == 2
    assert progress._steps.value.count("rebuilt in") == len(result.rebuilt_steps) > 0


def test_step_note_says_cached_rebuilt_or_base():
    assert display.step_note(images.BuildStep(2, 4, "RUN x", cached=True)) == "cached"
    assert display.step_note(images.BuildStep(1, 4, "FROM x")) == "base image"
    assert display.step_note(images.BuildStep(3, 4, "RUN y", seconds=1.5)) == "rebuilt in 1.50 s"


def test_outside_a_kernel_there_is_no_notebook():
    assert display.in_notebook() is False


def test_push_table_renders_layers_whose_size_the_engine_did_not_report():
    import pandas as pd

    from labkit.engine.commands import docker
    from labkit.registry.push_stream import PushResult
    from labkit.render.pushes import push_html

    layers = pd.DataFrame({"layer": ["a" * 12, "b" * 12], "status": ["pushed", "exists"],
                           "bytes_pushed": [2048, 0],
                           "bytes_total": pd.array([171, pd.NA], dtype="Int64")})
    result = PushResult("localhost:5000/student/app", "latest", "sha256:" + "0" * 64, 947,
                        layers, 0.1, docker("push", "localhost:5000/student/app:latest"))
    page = push_html(result)
    assert "171 B" in page
    assert "pushed 1, exists 1, mounted 0" in page
    assert "docker push localhost:5000/student/app:latest" in page


# ------------------------------------------------------- static outputs that replace widgets
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def published():
    """What an IPython shell would send to the notebook (displays and their updates)."""
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    before, shell.display_pub = shell.display_pub, CapturingDisplayPublisher()
    yield shell.display_pub.outputs
    shell.display_pub = before
    InteractiveShell.clear_instance()


def fail(progress: display.BuildProgress, name: str) -> BuildFailed:
    parser = images.BuildStreamParser()
    with pytest.raises(BuildFailed) as info:
        for line in (DATA / name).read_text().splitlines():
            progress.update(parser.feed(json.loads(line)))
    progress.update(parser.finish())
    progress.fail(info.value)
    return info.value


def test_build_widget_is_replaced_by_a_static_rendering_once_done(published):
    play(display.BuildProgress(COMMAND, widgets=True), "build_cached_after_edit.jsonl")
    first, last = published[0], published[-1]
    assert WIDGET_VIEW in first["data"]
    display_id = first["transient"]["display_id"]
    assert last["update"] is True and last["transient"]["display_id"] == display_id
    assert set(last["data"]) == {"text/plain", "text/html"}


def test_finished_build_output_lists_each_step_with_cache_fact_and_seconds():
    progress = display.BuildProgress(COMMAND, widgets=True)
    result = play(progress, "build_cached_after_edit.jsonl")
    n = steps_in("build_cached_after_edit.jsonl")
    out = progress.final
    assert out is not None
    text = out.text.splitlines()
    assert text[0].startswith("Built h2/hello:latest")
    assert text[1] == f"Built with the classic builder: {CLASSIC.reason}"
    assert text[2] == f"$ {COMMAND}"
    assert text[3] == f"Step 1/{n} : FROM python:3.11-slim-bookworm  -> base image"
    assert text[4] == f"Step 2/{n} : RUN pip install flask  -> cached"
    assert sum("-> rebuilt in " in line for line in text) == len(
        result.rebuilt_steps)
    assert out.html.count("<tr><td>") == n
    assert "docker build -t h2/hello:latest" in out.html
    assert "<details><summary>build log" in out.html


def test_failed_build_output_names_the_error_and_the_log_tail_without_ansi():
    progress = display.BuildProgress(COMMAND, widgets=True)
    error = fail(progress, "build_failing_run.jsonl")
    out = progress.final
    assert out is not None
    assert out.text.startswith(f"Build failed: {error.message}")
    assert "ls: cannot access '/nonexistent-dir': No such file or directory" in out.text
    assert "labkit-build-failed" in out.html
    assert "\x1b" not in out.text + out.html
    assert progress._bar.bar_style == "danger"


def test_plain_build_output_carries_no_ansi(capsys):
    fail(display.BuildProgress(COMMAND, widgets=False), "build_failing_run.jsonl")
    out = capsys.readouterr().out
    assert "No such file or directory" in out
    assert "\x1b" not in out


def push_stream(name: str):
    from labkit.registry.push_stream import PushStream

    return PushStream().feed_all(json.loads(x) for x in (DATA / name).read_text().splitlines()
                                 if x.strip())


def test_push_bar_is_replaced_by_the_layer_table(published):
    from labkit.render.pushes import PushProgress

    progress = PushProgress("localhost:5000/h3/python-hello-world:latest", widgets=True)
    stream = push_stream("push_first.jsonl")
    progress.update(stream)
    progress.close()
    assert WIDGET_VIEW in published[0]["data"]
    last = published[-1]
    assert last["update"] is True
    assert last["transient"]["display_id"] == published[0]["transient"]["display_id"]
    assert set(last["data"]) == {"text/plain", "text/html"}
    text = last["data"]["text/plain"].splitlines()
    assert text[0] == ("localhost:5000/h3/python-hello-world:latest: 3/3 layers done, "
                       "201.1 MB of 192.7 MB")
    assert [line.split()[:2] for line in text[1:]] == [
        ["d0fde0d93f33", "pushed"], ["dc0a9fba9dcc", "pushed"], ["456046bfaa51", "pushed"]]
    assert last["data"]["text/html"].count("<td style='text-align:left'>pushed</td>") == 3


def test_failed_push_output_says_why():
    from labkit.render.pushes import push_progress_output

    out = push_progress_output("r/x:latest", push_stream("push_unauthorized.jsonl"))
    assert out.text.splitlines()[0] == (
        "r/x:latest: push failed: unauthorized: authentication required")
    assert "labkit-push-failed" in out.html
    assert len(out.text.splitlines()) == 4  # the three layers, still preparing


def test_push_progress_outside_a_kernel_draws_nothing(capsys):
    from labkit.render.pushes import PushProgress

    progress = PushProgress("r/x:latest")
    progress.update(push_stream("push_second.jsonl"))
    progress.close()
    assert progress.final is None
    assert capsys.readouterr().out == ""


def test_strip_ansi_removes_colour_cursor_and_title_sequences():
    from labkit.engine.text import strip_ansi

    raw = "\x1b]0;title\x07\x1b[1;31mred\x1b[0m \x1b[2K\x1b[1Gline\x1b(B done\x1b[?25h"
    assert strip_ansi(raw) == "red line done"
