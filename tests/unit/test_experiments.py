"""Unit tests of labkit.experiments.cache_order on synthetic builds (no engine)."""

from __future__ import annotations

from pathlib import Path

import docker.errors
import matplotlib
import pytest
from matplotlib.figure import Figure

from labkit import experiments
from labkit.course.workspace import DOCKERFILE
from labkit.engine import config
from labkit.engine.commands import docker as docker_cmd
from labkit.experiments.cache_order import COPY_FIRST, LAB_ORDER, CacheExperiment, Round
from labkit.images import BuilderChoice
from labkit.images.build_stream import BuildStep
from labkit.images.builder import BuildResult

from .conftest import FakeClient


@pytest.fixture(autouse=True)
def h6_settings(course_settings):
    course_settings(user="h6")
    yield config.settings()


def fake_build(instructions: list[str], rebuilt: set[str], seconds: dict[str, float],
               image_id: str = "sha256:" + "a" * 64) -> BuildResult:
    """A BuildResult as images.build makes it: FROM and the Dockerfile's steps."""
    steps = []
    for number, instruction in enumerate(instructions, start=1):
        keyword = instruction.split()[0]
        steps.append(BuildStep(
            number, len(instructions), instruction,
            cached=keyword not in rebuilt and keyword != "FROM",
            seconds=seconds.get(keyword, 0.001)))
    total = sum(s.seconds for s in steps)
    return BuildResult(image_id, "h6/x:latest", steps, total, docker_cmd("build"),
                       BuilderChoice("classic", "a test."))


LAB = ["FROM base", "RUN pip install flask", 'CMD ["python", "app.py"]', "COPY app.py /app.py"]
FIRST = ["FROM base", "COPY app.py /app.py", "RUN pip install flask", 'CMD ["python", "app.py"]']


def experiment(lab_seconds=(0.1, 0.2, 0.15), first_seconds=(3.0, 2.5, 4.0)) -> CacheExperiment:
    rounds = []
    for number, (lab, first) in enumerate(zip(lab_seconds, first_seconds, strict=True), 1):
        rounds.append(Round(LAB_ORDER, number, ("COPY",), lab, lab + 1.5))
        rounds.append(Round(COPY_FIRST, number, ("COPY", "RUN", "CMD"), first, first + 1.5))
    return CacheExperiment(rounds)


def test_measure_leaves_out_from_and_labkit_labels():
    result = fake_build(LAB, {"COPY"}, {"COPY": 0.2, "FROM": 0.01})
    measured = experiments.measure(LAB_ORDER, 1, result)
    assert measured.rebuilt == ("COPY",)


def test_measure_times_the_dockerfiles_steps():
    result = fake_build(FIRST, {"COPY", "RUN", "CMD"}, {"COPY": 0.25, "RUN": 3.0, "CMD": 0.25})
    measured = experiments.measure(COPY_FIRST, 2, result)
    assert measured.rebuilt == ("COPY", "RUN", "CMD")
    assert measured.seconds == pytest.approx(0.001 + 0.25 + 3.0 + 0.25)
    assert measured.build_seconds == pytest.approx(measured.seconds)


def test_rounds_frame_columns_and_values():
    frame = experiment().table()
    assert list(frame.columns) == experiments.COLUMNS
    assert frame["rebuilt_steps"].tolist() == [1, 3, 1, 3, 1, 3]
    assert frame.loc[1, "rebuilt"] == "COPY, RUN, CMD"


def test_summary_medians_and_rebuilt_steps():
    summary = experiment().summary().set_index("dockerfile")
    assert summary.loc[LAB_ORDER, "median_seconds"] == pytest.approx(0.15)
    assert summary.loc[COPY_FIRST, "median_seconds"] == pytest.approx(3.0)
    assert summary.loc[COPY_FIRST, "rebuilt_steps"] == 3
    assert summary["same_every_round"].all()


def test_summary_notices_rounds_that_disagree():
    results = experiment()
    results.rounds[0] = Round(LAB_ORDER, 1, ("RUN", "CMD", "COPY"), 3.0, 4.0)
    summary = results.summary().set_index("dockerfile")
    assert not summary.loc[LAB_ORDER, "same_every_round"]
    assert summary.loc[LAB_ORDER, "rebuilt"] == "COPY"  # the most frequent


def test_rebuilt_per_round():
    assert experiment().rebuilt_per_round(COPY_FIRST) == [("COPY", "RUN", "CMD")] * 3


def test_favoured_is_the_lower_median():
    assert experiment().favoured == LAB_ORDER
    assert experiment(lab_seconds=(5, 5, 5)).favoured == COPY_FIRST


def test_median_of_an_unknown_dockerfile():
    with pytest.raises(KeyError):
        experiment().median_seconds("nope")


def test_conclusion_not_attempted():
    check = experiments.check_conclusion(None, experiment())
    assert check.passed is None
    assert experiments.check_conclusion("  ", experiment()).passed is None


@pytest.mark.parametrize("answer", ["lab-order", "Lab order: pip install stays cached",
                                    "LAB_ORDER"])
def test_conclusion_right(answer):
    assert experiments.check_conclusion(answer, experiment()).passed is True


@pytest.mark.parametrize("answer", ["copy-first", "copy first, it is simpler"])
def test_conclusion_wrong(answer):
    check = experiments.check_conclusion(answer, experiment())
    assert check.passed is False
    assert check.hint


def test_conclusion_follows_the_measurement():
    upside_down = experiment(lab_seconds=(5, 5, 5))
    assert experiments.check_conclusion("copy-first", upside_down).passed is True


def test_conclusion_naming_both_or_neither_fails():
    assert experiments.check_conclusion("lab-order or copy-first", experiment()).passed is False
    assert experiments.check_conclusion("the fast one", experiment()).passed is False


def test_write_dockerfiles(tmp_path: Path):
    folders = experiments.write_dockerfiles(tmp_path)
    first = (folders[COPY_FIRST] / "Dockerfile").read_text().split("\n")
    assert [ln.split()[0] for ln in first if ln] == ["FROM", "COPY", "RUN", "CMD"]
    assert (folders[LAB_ORDER] / "Dockerfile").read_text() == DOCKERFILE


def test_new_message_is_new_each_time():
    assert experiments.new_message() != experiments.new_message()


class FakeImages:
    def __init__(self, tagged: dict[str, str] | None = None) -> None:
        self.removed: list[str] = []
        self.tagged = tagged or {}

    def get(self, name: str):
        if name not in self.tagged:
            raise docker.errors.ImageNotFound(name)
        return type("Image", (), {"id": self.tagged[name]})()

    def remove(self, image_id: str) -> None:
        self.removed.append(image_id)
        if image_id.endswith("busy"):
            raise docker.errors.APIError("conflict")


class FakeApi:
    """The low-level calls images.remove_replaced makes (no parents recorded)."""

    def __init__(self, images: FakeImages) -> None:
        self._images = images

    def images(self, all: bool = False) -> list[dict]:  # noqa: A002 - docker-py's name
        return []

    def remove_image(self, image_id: str, noprune: bool = False) -> None:
        assert noprune, "a replaced image's parents are the cache of the next build"
        self._images.remove(image_id)


def client_with(tagged: dict[str, str] | None = None) -> FakeClient:
    """A client whose images are ``tagged`` (name -> id)."""
    images = FakeImages(tagged)
    return FakeClient(FakeApi(images), images=images)


class CacheSimulator:
    """Builds like the classic builder: a step is cached when it and every step before it
    saw the same inputs (COPY: the file's content) as an earlier build."""

    def __init__(self) -> None:
        self.seen: set[tuple] = set()
        self.calls: list[tuple[str, str]] = []

    def __call__(self, path, name, *, role, show, client) -> BuildResult:
        path = Path(path)
        app = (path / "app.py").read_text()
        lines = [ln for ln in (path / "Dockerfile").read_text().splitlines() if ln]
        self.calls.append((name, app))
        key: tuple = ()
        rebuilt = set()
        for line in lines:
            key = (*key, line, app if line.startswith("COPY") else "")
            if key not in self.seen and not line.startswith("FROM"):
                rebuilt.add(line.split()[0])
            self.seen.add(key)
        secs = {"RUN": 3.0, "COPY": 0.1, "CMD": 0.1}
        return fake_build(lines, rebuilt, secs, image_id=f"sha256:{len(self.calls)}")


def test_run_warms_up_then_alternates_rounds(tmp_path: Path):
    sim, cli = CacheSimulator(), client_with()
    results = experiments.run(2, tmp_path, client=cli, build=sim)
    assert [(r.dockerfile, r.round) for r in results.rounds] == [
        (LAB_ORDER, 1), (COPY_FIRST, 1), (LAB_ORDER, 2), (COPY_FIRST, 2)]
    assert len(sim.calls) == 6  # a warm-up build of each, then 2 rounds each


def test_run_builds_a_never_seen_app_each_round(tmp_path: Path):
    sim = CacheSimulator()
    experiments.run(2, tmp_path, client=client_with(), build=sim)
    measured = [app for _, app in sim.calls[2:]]
    assert len(set(measured)) == len(measured)


def test_run_warms_up_with_the_same_app_every_time(tmp_path: Path):
    sim = CacheSimulator()
    experiments.run(1, tmp_path, client=client_with(), build=sim)
    experiments.run(1, tmp_path, client=client_with(), build=sim)
    assert sim.calls[0][1] == sim.calls[4][1]


def test_run_measures_what_the_cache_did(tmp_path: Path):
    results = experiments.run(2, tmp_path, client=client_with(), build=CacheSimulator())
    assert set(results.rebuilt_per_round(LAB_ORDER)) == {("COPY",)}
    assert set(results.rebuilt_per_round(COPY_FIRST)) == {("COPY", "RUN", "CMD")}
    assert results.favoured == LAB_ORDER


def test_run_a_second_time_measures_the_same(tmp_path: Path):
    sim = CacheSimulator()
    experiments.run(1, tmp_path, client=client_with(), build=sim)
    again = experiments.run(2, tmp_path, client=client_with(), build=sim)
    assert set(again.rebuilt_per_round(LAB_ORDER)) == {("COPY",)}


def test_run_removes_each_replaced_image(tmp_path: Path):
    cli = client_with()
    experiments.run(2, tmp_path, client=cli, build=CacheSimulator())
    # builds 1, 2 warm up (they stay: the next run's cache); rounds 3..6; 5 and 6 stay.
    assert sorted(cli.images.removed) == ["sha256:3", "sha256:4"]


def test_run_removes_the_previous_runs_last_image(tmp_path: Path):
    cli = client_with({"h6/cache-lab-order:latest": "sha256:old"})
    results = experiments.run(1, tmp_path, client=cli, build=CacheSimulator())
    assert cli.images.removed == ["sha256:old"]
    assert results.warm_ups == {LAB_ORDER: "sha256:1", COPY_FIRST: "sha256:2"}


def test_plot_draws_one_bar_per_dockerfile_without_global_changes():
    from labkit.render import experiments_plots

    before = dict(matplotlib.rcParams)
    results = experiment()
    ax = experiments_plots.plot_rebuild_times(results.summary(), results.table())
    assert isinstance(ax.figure, Figure)
    assert len(ax.patches) == 2
    assert [t.get_text() for t in ax.get_xticklabels()] == [LAB_ORDER, COPY_FIRST]
    assert any("3 steps rebuilt" in t.get_text() for t in ax.texts)
    assert dict(matplotlib.rcParams) == before
    import matplotlib.pyplot as plt

    plt.close(ax.figure)


def test_compare_dockerfiles_side_by_side():
    frame = experiments.compare_dockerfiles()
    assert list(frame.columns) == [LAB_ORDER, COPY_FIRST]
    assert frame[COPY_FIRST].str.split().str[0].tolist() == ["FROM", "COPY", "RUN", "CMD"]
    assert frame[LAB_ORDER].str.split().str[0].tolist() == ["FROM", "RUN", "CMD", "COPY"]


def test_table_carries_the_build_commands(tmp_path: Path):
    results = experiments.run(1, tmp_path, client=client_with(), build=CacheSimulator())
    assert len(results.table().attrs["command"]) == 2
