"""Unit tests of BuildKit's side of labkit.images: which builder the CLI uses, and the CLI's
progress (``rawjson`` and ``plain``) recorded from docker CLI 28.5.2 with buildx 0.29.1
against a Docker 28.5 engine (containerd image store), parsed into steps and layers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit import images
from labkit.engine.errors import BuildFailed

DATA = Path(__file__).parent / "data" / "buildkit"
#: The recorded builds' Dockerfile (the failing and the misspelt ones are in the tests).
LAB = json.loads((DATA / "image.json").read_text())["dockerfile"]


def parse(name: str) -> images.RawJsonParser | images.PlainParser:
    parser: images.RawJsonParser | images.PlainParser = (
        images.RawJsonParser() if name.endswith(".rawjson") else images.PlainParser())
    for line in (DATA / name).read_text().splitlines(keepends=True):
        parser.feed(line)
    parser.finish()
    return parser


def events(name: str) -> list[images.BuildEvent]:
    parser = images.RawJsonParser() if name.endswith(".rawjson") else images.PlainParser()
    out: list[images.BuildEvent] = []
    for line in (DATA / name).read_text().splitlines(keepends=True):
        out += parser.feed(line)
    return out


# ------------------------------------------------------------------ which builder


@pytest.mark.parametrize(("cli", "buildx", "env", "name", "progress"), [
    ("Docker version 28.5.2+dfsg4, build 1", "github.com/docker/buildx 0.29.1+ds1 0.29.1",
     {}, "buildkit", "rawjson"),
    ("Docker version 26.1.5+dfsg1, build a", "github.com/docker/buildx 0.13.1+ds1 0.13.1",
     {}, "buildkit", "plain"),
    ("Docker version 28.5.2, build 1", "github.com/docker/buildx v0.29.1 abc",
     {"DOCKER_BUILDKIT": "0"}, "classic", ""),
    ("Docker version 28.2.2, build e6534b4", None, {}, "classic", ""),
    ("Docker version 20.10.24+dfsg1, build 297e128", None, {}, "classic", ""),
    ("Docker version 20.10.24+dfsg1, build 297e128", "github.com/docker/buildx v0.10.4 x",
     {}, "classic", ""),
    ("Docker version 20.10.24+dfsg1, build 297e128", "github.com/docker/buildx v0.10.4 x",
     {"DOCKER_BUILDKIT": "1"}, "buildkit", "plain"),
])
def test_the_builder_is_the_one_the_cli_uses(cli, buildx, env, name, progress):
    chosen = images.decide(cli, buildx, env)
    assert chosen.name == name
    assert chosen.progress == progress


def test_a_cli_without_buildx_says_it_warns_since_23():
    chosen = images.decide("Docker version 28.2.2, build e6534b4", None, {})
    assert "DEPRECATED" in chosen.reason and "23.0" in chosen.reason


def test_no_cli_means_the_classic_builder_through_the_api():
    assert images.decide(None, None, {}).name == "classic"


def test_the_probe_asks_the_cli_twice():
    asked: list[list[str]] = []

    def run(args: list[str]) -> tuple[int, str]:
        asked.append(args)
        if args == ["--version"]:
            return 0, "Docker version 28.5.2+dfsg4, build 1\n"
        return 0, "github.com/docker/buildx 0.29.1+ds1 0.29.1+ds1-4\n"

    chosen = images.probe(run, environ={})
    assert asked == [["--version"], ["buildx", "version"]]
    assert chosen.buildkit and chosen.cli_version == "28.5.2"
    assert chosen.buildx_version == "0.29.1"


def test_a_failing_buildx_version_means_no_buildx():
    def run(args: list[str]) -> tuple[int, str]:
        if args == ["--version"]:
            return 0, "Docker version 28.2.2, build e6534b4"
        return 1, "docker: 'buildx' is not a docker command."

    assert images.probe(run, environ={}).name == "classic"


# ------------------------------------------------------------------ rawjson and plain


@pytest.mark.parametrize(("name", "workdir"), [("cold.rawjson", "rebuilt"),
                                               ("cold.plain", "cached")])
def test_a_cold_build_has_every_step(name, workdir):
    steps = parse(name).steps
    assert [s.number for s in steps] == [1, 2, 3, 4]
    assert {s.total for s in steps} == {4}
    assert [s.keyword for s in steps] == ["FROM", "WORKDIR", "RUN", "COPY"]
    assert steps[2].instruction == "RUN echo building && echo second line"
    assert steps[2].title == "[3/4] RUN echo building && echo second line"
    assert steps[2].output == ["building", "second line"]
    # the plain one was recorded with --no-cache, where BuildKit still reuses a WORKDIR
    assert [s.status for s in steps[1:]] == [workdir, "rebuilt", "rebuilt"]


@pytest.mark.parametrize("name", ["rebuild.rawjson", "rebuild.plain"])
def test_a_rebuild_after_an_app_change_reruns_only_copy(name):
    steps = parse(name).steps
    assert [(s.keyword, s.status) for s in steps] == [
        ("FROM", "base"), ("WORKDIR", "cached"), ("RUN", "cached"), ("COPY", "rebuilt")]


def test_rawjson_seconds_are_completed_minus_started():
    steps = parse("cold.rawjson").steps
    assert all(s.seconds >= 0 for s in steps)
    assert steps[2].seconds > 0  # the RUN ran a shell


def test_events_announce_each_step_before_it_is_done():
    seen = events("cold.rawjson")
    for step in parse("cold.rawjson").steps:
        kinds = [e.kind for e in seen if e.step is not None and e.step.title == step.title]
        assert kinds[0] == "step" and kinds[-1] == "step_done"
        assert kinds.count("step") == 1 and kinds.count("step_done") == 1
    assert [e.line for e in seen if e.kind == "output"] == ["building", "second line"]


@pytest.mark.parametrize("name", ["fail.rawjson", "fail.plain"])
def test_a_failing_run_names_its_step_and_output(name):
    error = parse(name).failure("FROM python:3.11-slim-bookworm\nRUN echo before && ls /nope\n")
    assert isinstance(error, BuildFailed)
    assert error.step == "[2/3] RUN echo before && ls /nope"
    assert "exit code: 2" in error.message
    assert "ls: cannot access '/nope'" in (error.log_tail or "")
    assert "RUN line" in (error.hint or "")


def test_the_failing_step_is_the_one_that_failed_not_the_one_it_cancelled():
    # COPY of a missing file fails while the base image is still being resolved:
    # BuildKit cancels the FROM vertex, and its "context canceled" may be reported first.
    base, copy = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    lines = [
        {"vertexes": [{"digest": base, "name": "[1/2] FROM docker.io/library/python:3.11",
                       "started": "2026-12-05T20:45:26.1Z"}]},
        {"vertexes": [{"digest": copy, "name": "[2/2] COPY missing.py .",
                       "started": "2026-12-05T20:45:26.2Z"}]},
        {"vertexes": [{"digest": base, "name": "[1/2] FROM docker.io/library/python:3.11",
                       "started": "2026-12-05T20:45:26.1Z",
                       "completed": "2026-12-05T20:45:26.3Z",
                       "error": "failed to load ref: context canceled"}]},
        {"vertexes": [{"digest": copy, "name": "[2/2] COPY missing.py .",
                       "started": "2026-12-05T20:45:26.2Z",
                       "completed": "2026-12-05T20:45:26.3Z",
                       "error": 'failed to calculate checksum of ref x::y: "/missing.py": '
                                'not found'}]},
    ]
    parser = images.RawJsonParser()
    for line in lines:
        parser.feed(json.dumps(line) + "\n")
    parser.feed('ERROR: failed to build: failed to solve: "/missing.py": not found\n')
    parser.finish()
    error = parser.failure("FROM python:3.11\nCOPY missing.py .\n")
    assert error.step == "[2/2] COPY missing.py ."
    assert "missing.py" in error.message and "canceled" not in error.message


def test_a_misspelt_instruction_is_the_same_error_as_with_the_classic_builder():
    text = "FROM python:3.11-slim-bookworm\nRUNN echo hi\n"
    error = parse("syntax.rawjson").failure(text)
    assert error.step == "line 2: RUNN echo hi"
    assert "unknown instruction: RUNN" in error.message
    assert "spelling" in (error.hint or "")


# ------------------------------------------------------------------ layers from the image


def test_each_step_that_made_a_layer_gets_its_diff_id():
    image = json.loads((DATA / "image.json").read_text())
    steps = parse("rebuild.rawjson").steps
    assert images.attach_layers(steps, image["history"], image["diff_ids"],
                                image["base_layers"])
    layers = {s.keyword: s.layer for s in steps}
    assert layers["COPY"] == image["diff_ids"][-1]
    assert layers["RUN"] == image["diff_ids"][-2]
    assert layers["WORKDIR"] == image["diff_ids"][-3]
    assert layers["FROM"] is None
    assert steps[3].made == image["diff_ids"][-1]


def test_layers_that_do_not_add_up_are_not_guessed():
    image = json.loads((DATA / "image.json").read_text())
    steps = parse("rebuild.rawjson").steps
    assert not images.attach_layers(steps, image["history"], image["diff_ids"],
                                    image["base_layers"] + 1)
    assert all(s.layer is None for s in steps)


def test_the_recorded_dockerfile_is_the_one_built():
    assert images.base_images(LAB) == ["python:3.11-slim-bookworm"]


# ------------------------------------------------------------------ shown to the learner


def test_buildkit_steps_show_as_in_a_terminal():
    from labkit.render import builds

    steps = parse("rebuild.rawjson").steps
    assert builds.terminal_line(steps[2]) == "=> CACHED [3/4] RUN echo building && echo second line"
    assert builds.terminal_line(steps[3]).startswith("=> [4/4] COPY app.py .  ")
    assert builds.terminal_line(images.BuildStep(2, 4, "RUN x", cached=True)) == (
        "Step 2/4 : RUN x  -> cached")


def test_after_a_classic_build_step_2_shows_a_labelled_sample_of_buildkit():
    from labkit import course
    from labkit.engine import docker as docker_cmd

    classic = images.decide("Docker version 20.10.24+dfsg1, build 297e128", None, {})
    result = images.BuildResult("sha256:" + "a" * 64, "u/app:latest", [], 0.1,
                                docker_cmd("build", "-t", "u/app:latest", "."), classic)
    sample = course.other_builder(result)
    assert isinstance(sample, course.RecordedSample)
    assert "not run on this engine" in sample._repr_markdown_()
    assert "#6 CACHED" in sample.text


def test_a_step_merged_with_another_build_is_one_step():
    # recorded: three builds of the same Dockerfile and the same app.py at once on one
    # engine; BuildKit merged their COPY and reported the other build's vertex too
    parser = parse("merged.rawjson")
    assert [(s.keyword, s.number) for s in parser.steps] == [("FROM", 1), ("RUN", 2),
                                                            ("COPY", 3)]
    assert [s.status for s in parser.steps] == ["base", "rebuilt", "rebuilt"]
    done = [e.step.keyword for e in events("merged.rawjson") if e.kind == "step_done" and e.step]
    assert sorted(done) == ["COPY", "FROM", "RUN"]


def test_a_merged_vertex_only_announced_does_not_undo_a_cache_hit():
    parser = images.RawJsonParser()
    for digest, cached, completed in (("sha256:a", True, "2026-12-05T20:00:01Z"),
                                      ("sha256:b", None, None)):
        parser.feed(json.dumps({"vertexes": [{
            "digest": digest, "name": "[2/3] RUN pip install flask", "cached": cached,
            "started": "2026-12-05T20:00:00Z", "completed": completed}]}))
    (step,) = parser.steps
    assert step.cached
