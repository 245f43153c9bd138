"""Unit tests of labkit.images.builder on stream chunks recorded from a real 20.10 engine."""

from __future__ import annotations

import json
from pathlib import Path

import docker.errors
import matplotlib
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from labkit import images
from labkit.engine import config
from labkit.engine.errors import BuildFailed, ImageMissing

from .conftest import FakeClient

DATA = Path(__file__).parent / "data"
CLASSIC = images.BuilderChoice("classic", "a test of the classic builder's stream.")


def chunks(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line]


def parse(name: str, clock=None) -> images.BuildStreamParser:
    parser = images.BuildStreamParser(**({"clock": clock} if clock else {}))
    for chunk in chunks(name):
        parser.feed(chunk)
    parser.finish()
    return parser


@pytest.fixture(autouse=True)
def h2_settings(course_settings, tmp_path):
    course_settings(user="h2", state_dir=tmp_path / "state")  # a build's record goes there
    yield config.settings()


class Ticker:
    """A clock that advances one second per reading."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


# ------------------------------------------------------------------ the stream parser


def test_cold_build_has_every_step_with_its_instruction():
    p = parse("build_cold.jsonl")
    assert [s.number for s in p.steps] == [1, 2, 3, 4, 5]
    assert {s.total for s in p.steps} == {5}
    assert p.steps[1].instruction == "RUN pip install flask"
    assert p.steps[3].instruction == "COPY app.py /app.py"


def test_cold_build_rebuilds_every_step_after_from():
    p = parse("build_cold.jsonl")
    assert p.steps[0].status == "base"
    assert [s.status for s in p.steps[1:]] == ["rebuilt"] * 4


def test_cold_build_keeps_run_output_and_ids():
    p = parse("build_cold.jsonl")
    run = p.steps[1]
    assert any(line.startswith("Successfully installed") for line in run.output)
    assert run.container_id == "5113a1e1bcd4"
    assert run.image_id == "e66b4f282e2d"
    assert p.steps[0].image_id == "34fd85531d8a"
    assert p.image_id == "sha256:576fc2f7ec0a449d203442a9d93555ffbdb3466ce411d6716a8ceaed016d45a1"
    assert p.short_id == "576fc2f7ec0a"
    assert p.tags == ["h2/rec:latest"]


def test_output_lines_are_free_of_terminal_colours():
    p = parse("build_cold.jsonl")
    assert not any("\x1b" in line for s in p.steps for line in s.output)


def test_a_label_step_of_the_recording_is_a_step_like_any_other():
    p = parse("build_cold.jsonl")  # recorded when labkit still passed --label
    assert p.steps[4].instruction == "LABEL org.labkit.namespace=h2"
    assert p.steps[4].status == "rebuilt"


def test_rebuild_after_edit_uses_cache_until_copy():
    p = parse("build_cached_after_edit.jsonl")
    assert [s.status for s in p.steps] == ["base", "cached", "cached", "rebuilt", "rebuilt"]


def test_rebuild_after_edit_reuses_the_layers_of_the_build_before():
    before = parse("build_all_cached.jsonl")  # recorded just before app.py was edited
    after = parse("build_cached_after_edit.jsonl")
    assert [s.image_id for s in after.steps[:3]] == [s.image_id for s in before.steps[:3]]
    assert after.steps[3].image_id != before.steps[3].image_id


def test_all_cached_build_reports_cache_for_every_step():
    p = parse("build_all_cached.jsonl")
    assert all(s.cached for s in p.steps[1:])


def test_step_seconds_run_from_its_line_to_the_next():
    p = parse("build_cold.jsonl", clock=Ticker())
    assert all(s.seconds == 1.0 for s in p.steps)


def test_step_line_split_over_chunks_starts_the_step_once():
    parser = images.BuildStreamParser()
    events = parser.feed({"stream": "Step 1/2 : FROM base"})
    assert events == []
    events = parser.feed({"stream": "\n"})
    assert [e.kind for e in events] == ["step"]


def test_next_step_closes_the_previous_one():
    parser = images.BuildStreamParser()
    parser.feed({"stream": "Step 1/2 : FROM base\n"})
    events = parser.feed({"stream": "Step 2/2 : RUN true\n"})
    assert [e.kind for e in events] == ["step_done", "step"]


def test_failing_run_names_the_step():
    with pytest.raises(BuildFailed) as info:
        parse("build_failing_run.jsonl")
    assert info.value.step == (
        'Step 2/6 : RUN echo "installing things" && ls /nonexistent-dir && echo never'
    )


def test_failing_run_carries_the_tail_of_its_output():
    with pytest.raises(BuildFailed) as info:
        parse("build_failing_run.jsonl")
    assert info.value.log_tail.splitlines() == [
        "installing things",
        "ls: cannot access '/nonexistent-dir': No such file or directory",
    ]


def test_failing_run_says_the_exit_code_and_has_a_hint():
    with pytest.raises(BuildFailed) as info:
        parse("build_failing_run.jsonl")
    assert "returned a non-zero code: 2" in info.value.message
    assert info.value.hint


def test_tail_is_limited():
    parser = images.BuildStreamParser()
    parser.feed({"stream": "Step 1/1 : RUN noisy\n"})
    for i in range(40):
        parser.feed({"stream": f"line {i}\n"})
    with pytest.raises(BuildFailed) as info:
        parser.feed({"error": "boom", "errorDetail": {"message": "boom"}})
    assert info.value.log_tail.splitlines() == [f"line {i}" for i in range(25, 40)]


def test_bad_instruction_names_the_dockerfile_line():
    recorded = json.loads((DATA / "build_bad_instruction.json").read_text())
    error = images.parse_error_to_build_failed(recorded["explanation"], recorded["dockerfile"])
    assert error.step == "line 2: RUNN pip install flask"
    assert "unknown instruction: RUNN" in error.message


# ------------------------------------------------------------------ result and command


def result(name: str = "build_cached_after_edit.jsonl") -> images.BuildResult:
    p = parse(name, clock=Ticker())
    return images.BuildResult(p.image_id or "", "h2/hello:latest", p.steps, 7.0,
                              images.build_command("h2/hello:latest", "/x"), CLASSIC)


def test_result_counts_cached_and_rebuilt_steps():
    r = result()
    assert [s.number for s in r.cached_steps] == [2, 3]
    assert [s.number for s in r.rebuilt_steps] == [4, 5]


def test_result_table_has_one_row_per_step():
    table = result().table()
    assert list(table.columns) == ["step", "instruction", "status", "cached", "seconds",
                                   "image_id"]
    assert table["step"].tolist() == [1, 2, 3, 4, 5]
    assert table.loc[3, "image_id"] == "d25c2a09bb2c"


def test_result_finds_a_dockerfile_step_by_keyword():
    assert result().step("copy").number == 4


def test_build_command_is_the_plain_docker_build():
    cmd = images.build_command("h2/hello:latest", "/x")
    assert str(cmd) == "docker build -t h2/hello:latest /x"


def test_build_command_uses_dot_for_the_current_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert str(images.build_command("a:b", tmp_path, nocache=True)) == (
        "docker build -t a:b --no-cache ."
    )


def test_image_name_is_namespaced():
    assert images.image_name("python-hello-world") == "h2/python-hello-world"
    assert images.image_name("other/x") == "other/x"


# ------------------------------------------------------------------ FROM lines


def test_base_images_of_the_lab_dockerfile():
    assert images.base_images("FROM python:3.11-slim-bookworm\nRUN pip install flask\n") == [
        "python:3.11-slim-bookworm"
    ]


def test_base_images_skip_stages_scratch_and_flags():
    text = (
        "ARG PY=3.11\n"
        "# a comment\n"
        "from --platform=linux/amd64 python:${PY}-slim AS builder\n"
        "RUN true\n"
        "FROM builder AS second\n"
        "FROM scratch\n"
        "FROM registry:2\n"
        "COPY --from=builder /a /a\n"
    )
    assert images.base_images(text) == ["python:3.11-slim", "registry:2"]


# ------------------------------------------------------------------ build() with a fake client


class FakeAPI:
    def __init__(self, present: set[str], stream: list[dict] | Exception) -> None:
        self.present = present
        self.stream = stream
        self.build_kwargs: dict | None = None

    def inspect_image(self, name: str) -> dict:
        if name not in self.present:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return {"Id": "sha256:" + "0" * 64}

    def images(self, all: bool = False, **kwargs) -> list[dict]:
        """``docker image ls --all``: what the test put in ``listed`` (none by default)."""
        return list(getattr(self, "listed", []))

    def build(self, **kwargs):
        self.build_kwargs = kwargs
        if isinstance(self.stream, Exception):
            raise self.stream
        return iter(self.stream)


def context(tmp_path: Path, dockerfile: str) -> Path:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    (tmp_path / "app.py").write_text("print('hi')\n")
    return tmp_path


LAB_DOCKERFILE = ("FROM python:3.11-slim-bookworm\nRUN pip install flask\n"
                  'CMD ["python","app.py"]\nCOPY app.py /app.py\n')


def test_build_streams_the_recorded_build_into_a_result(tmp_path):
    api = FakeAPI({"python:3.11-slim-bookworm"}, chunks("build_cached_after_edit.jsonl"))
    r = images.build(context(tmp_path, LAB_DOCKERFILE), "hello", client=FakeClient(api),
                     show=False, builder="classic")
    assert r.image_id.startswith("sha256:cbdaea18ff8d")
    assert r.tag == "h2/hello:latest"
    assert len(r.steps) == 5
    assert r.builder.name == "classic"
    # recorded as this learner's image, in the learner's state folder
    assert r.image_id.removeprefix("sha256:") in images.owned.recorded_ids()


def test_a_classic_build_records_its_untagged_steps_down_to_the_base(tmp_path):
    """Its step images become dangling once the image goes with ``--no-prune``: still the
    learner's. The base, and what is under it, is not."""
    api = FakeAPI({"python:3.11-slim-bookworm"}, chunks("build_cached_after_edit.jsonl"))
    final = "sha256:cbdaea18ff8d952a52bdecf5bcb32403c929788f53f373df5acbb7e27d168742"
    api.listed = [
        {"Id": final, "ParentId": "sha256:" + "c2" * 32, "RepoTags": ["h2/hello:latest"]},
        {"Id": "sha256:" + "c2" * 32, "ParentId": "sha256:" + "c1" * 32, "RepoTags": None},
        {"Id": "sha256:" + "c1" * 32, "ParentId": "sha256:" + "ba" * 32, "RepoTags": None},
        {"Id": "sha256:" + "ba" * 32, "ParentId": "sha256:" + "b0" * 32,
         "RepoTags": ["python:3.11-slim-bookworm"]},
        {"Id": "sha256:" + "b0" * 32, "ParentId": "", "RepoTags": None},
    ]
    images.build(context(tmp_path, LAB_DOCKERFILE), "hello", client=FakeClient(api),
                 show=False, builder="classic")
    recorded = images.owned.recorded_ids()
    assert {"c2" * 32, "c1" * 32} <= recorded
    assert not {"ba" * 32, "b0" * 32} & recorded


def test_build_never_pulls_and_adds_no_label(tmp_path):
    api = FakeAPI({"python:3.11-slim-bookworm"}, chunks("build_all_cached.jsonl"))
    images.build(context(tmp_path, LAB_DOCKERFILE), "hello", client=FakeClient(api), show=False,
                 builder="classic")
    assert api.build_kwargs is not None
    assert api.build_kwargs["pull"] is False
    assert "labels" not in api.build_kwargs
    assert api.build_kwargs["decode"] is True


def test_missing_base_image_offline_raises_before_building(tmp_path):
    config.use(config.Settings(user="h2", offline=True))
    api = FakeAPI(set(), [])
    with pytest.raises(ImageMissing) as info:
        images.build(context(tmp_path, LAB_DOCKERFILE), "hello", client=FakeClient(api),
                     show=False, builder="classic")
    assert "labkit prepare" in (info.value.hint or "")
    assert api.build_kwargs is None


def test_engine_refusing_the_dockerfile_is_a_build_failure(tmp_path):
    recorded = json.loads((DATA / "build_bad_instruction.json").read_text())
    error = docker.errors.APIError("400 Client Error", explanation=recorded["explanation"])
    api = FakeAPI({"python:3.11-slim-bookworm"}, error)
    with pytest.raises(BuildFailed) as info:
        images.build(context(tmp_path, recorded["dockerfile"]), "bad", client=FakeClient(api),
                     show=False, builder="classic")
    assert info.value.step == "line 2: RUNN pip install flask"


def test_missing_dockerfile_is_a_build_failure(tmp_path):
    with pytest.raises(BuildFailed):
        images.build(tmp_path, "none", client=FakeClient(FakeAPI(set(), [])), show=False,
                     builder="classic")


# ------------------------------------------------------------------ history, sizes, lists


def recorded_history() -> list[dict]:
    return chunks("history.jsonl")


def test_history_instructions_are_cleaned():
    frame = images.history_frame(recorded_history())
    assert frame["instruction"].tolist() == [
        "LABEL org.labkit.role=app",
        "LABEL org.labkit.namespace=h2",
        "LABEL org.labkit.managed=true",
        "COPY file:21e68cbb0d12 in /app.py",
        'CMD ["python" "app.py"]',
        "RUN pip install flask",
        "(Imported from -)",
    ]


def test_history_sizes_and_flags():
    frame = images.history_frame(recorded_history())
    assert frame["size_bytes"].tolist() == [0, 0, 0, 169, 0, 4987613, 187679512]
    assert frame["size"].tolist() == ["0B", "0B", "0B", "169B", "0B", "4.99MB", "188MB"]
    assert frame["empty"].tolist() == [True, True, True, False, True, False, False]


def test_history_image_ids_are_short_or_missing():
    entries = recorded_history()
    entries[-1] = {**entries[-1], "Id": "<missing>"}
    frame = images.history_frame(entries)
    assert frame["image"].tolist()[:2] == ["576fc2f7ec0a", "98dc82b9722c"]
    assert frame["image"].tolist()[-1] == "<missing>"


def test_history_created_is_a_utc_datetime():
    frame = images.history_frame(recorded_history())
    assert frame.loc[0, "created"].timestamp() == 1795906453


@pytest.mark.parametrize(
    ("created_by", "expected"),
    [
        ("/bin/sh -c #(nop)  CMD [\"python\"]", 'CMD ["python"]'),
        ("|1 VERSION=3 /bin/sh -c pip install flask==$VERSION", "RUN pip install flask==$VERSION"),
        ("RUN /bin/sh -c pip install flask # buildkit", "RUN pip install flask"),
        ("/bin/sh -c #(nop) WORKDIR /app", "WORKDIR /app"),
    ],
)
def test_clean_created_by(created_by, expected):
    assert images.clean_created_by(created_by) == expected


IMAGE_LIST = [
    {"Id": "sha256:" + "a" * 64, "RepoTags": ["python:3.11-slim-bookworm"], "Created": 10,
     "Size": 100, "Labels": {"org.labkit.managed": "true", "org.labkit.standin": "true",
                             "org.labkit.role": "base"}},
    {"Id": "sha256:" + "b" * 64, "RepoTags": ["h2/hello:latest", "h2/hello:v2"], "Created": 20,
     "Size": 200, "Labels": {"org.labkit.managed": "true", "org.labkit.standin": "true",
                             "org.labkit.namespace": "h2", "org.labkit.role": "app"}},
    {"Id": "sha256:" + "c" * 64, "RepoTags": ["h3/hello:latest"], "Created": 30, "Size": 300,
     "Labels": {"org.labkit.managed": "true", "org.labkit.namespace": "h3"}},
    # built by hand FROM a stand-in: inherits its labels, but is not a course image
    {"Id": "sha256:" + "d" * 64, "RepoTags": ["mine:latest"], "Created": 40, "Size": 400,
     "Labels": {"org.labkit.managed": "true", "org.labkit.standin": "true",
                "org.labkit.role": "base"}},
]


def test_list_shows_this_namespace_and_the_base_images():
    frame = images.images_frame(IMAGE_LIST, "h2")
    assert frame["image"].tolist() == ["h2/hello:latest", "h2/hello:v2",
                                       "python:3.11-slim-bookworm"]


def test_list_marks_only_base_images_as_stand_ins():
    frame = images.images_frame(IMAGE_LIST, "h2")
    assert frame["standin"].tolist() == [False, False, True]


def test_list_of_every_namespace_leaves_hand_made_images_out():
    frame = images.images_frame(IMAGE_LIST, None)
    assert "mine:latest" not in frame["image"].tolist()
    assert "h3/hello:latest" in frame["image"].tolist()


class TagAPI:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def tag(self, image, repository, tag):
        self.calls.append((image, repository, tag))
        return True


def test_tag_returns_the_equivalent_command():
    api = TagAPI()
    cmd = images.tag("h2/hello:latest", "localhost:5000/h2/hello", "v2", client=FakeClient(api))
    assert api.calls == [("h2/hello:latest", "localhost:5000/h2/hello", "v2")]
    assert str(cmd) == "docker image tag h2/hello:latest localhost:5000/h2/hello:v2"


# ------------------------------------------------------------------ chart


def test_layer_sizes_chart_draws_one_bar_per_layer_on_a_log_scale():
    from labkit.render import plots

    ax = plots.layer_sizes_chart(images.history_frame(recorded_history()),
                                 ax=Figure().subplots())
    assert isinstance(ax, Axes)
    assert len(ax.patches) == 7
    assert ax.get_xscale() == "log"


def test_layer_sizes_chart_is_linear_for_similar_sizes():
    from labkit.render import plots

    entries = [{**e, "Size": 1000 + i} for i, e in enumerate(recorded_history())]
    ax = plots.layer_sizes_chart(images.history_frame(entries), ax=Figure().subplots())
    assert ax.get_xscale() == "linear"


def test_importing_plots_leaves_matplotlib_settings_alone():
    import importlib

    from labkit.render import plots

    before = dict(matplotlib.rcParams)
    importlib.reload(plots)
    assert dict(matplotlib.rcParams) == before


# An image built in the terminal with a plain `docker build -t h2/...` on a base that
# carries no labkit labels: its name under the learner's makes it this learner's.
NO_LABEL = {"Id": "sha256:" + "e" * 64, "RepoTags": ["h2/pulled-base:latest"], "Created": 50,
            "Size": 500, "Labels": None}


def test_a_name_under_the_learners_makes_an_image_theirs():
    frame = images.images_frame([*IMAGE_LIST, NO_LABEL], "h2")
    assert "h2/pulled-base:latest" in frame["image"].tolist()
    assert "h2/pulled-base:latest" not in images.images_frame([NO_LABEL], "h2-b")["image"].tolist()


def test_a_built_image_does_not_show_the_role_its_stand_in_base_passed_on():
    entry = {**IMAGE_LIST[1], "Labels": {"org.labkit.managed": "true", "org.labkit.standin": "true",
                                         "org.labkit.role": "base", "org.labkit.namespace": "h2"}}
    frame = images.images_frame([IMAGE_LIST[0], entry], "h2")
    assert frame.set_index("image")["role"].to_dict() == {
        "h2/hello:latest": "", "h2/hello:v2": "", "python:3.11-slim-bookworm": "base"}


def test_the_namespace_label_filter():
    assert config.Settings(user="h2").label_filters() == ["org.labkit.namespace=h2"]


class RecordingObserver:
    """A build observer that keeps what it was told."""

    def __init__(self) -> None:
        self.kinds: list[str] = []
        self.result: images.BuildResult | None = None
        self.error: Exception | None = None

    def update(self, events) -> None:
        self.kinds += [e.kind for e in events]

    def done(self, result: images.BuildResult) -> None:
        self.result = result

    def fail(self, error: Exception) -> None:
        self.error = error


def test_build_tells_its_observer_every_step_and_the_result(tmp_path):
    api = FakeAPI({"python:3.11-slim-bookworm"}, chunks("build_cached_after_edit.jsonl"))
    seen = RecordingObserver()
    result = images.build(context(tmp_path, LAB_DOCKERFILE), "hello", client=FakeClient(api),
                          show=False, observer=seen, builder="classic")
    assert seen.result is result and seen.error is None
    assert seen.kinds.count("step") == len(result.steps) == 5
    assert seen.kinds.count("step_done") == 5


def test_a_failed_build_tells_its_observer_the_error(tmp_path):
    api = FakeAPI({"python:3.11-slim-bookworm"}, chunks("build_failing_run.jsonl"))
    seen = RecordingObserver()
    with pytest.raises(BuildFailed) as raised:
        images.build(context(tmp_path, LAB_DOCKERFILE), "hello", client=FakeClient(api),
                     show=False, observer=seen, builder="classic")
    assert seen.error is raised.value and seen.result is None
