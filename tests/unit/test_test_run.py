"""`make test`'s runner (testbed.stages, testbed.test_run), with real commands and no engine:
stages in a row and side by side, the summary, exit statuses, clean-up, and the plan."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from testbed import test_run
from testbed.stages import Runner, Stage

ROOT = Path(__file__).resolve().parents[2]


def sh(script: str) -> list[str]:
    return ["bash", "-c", script]


def runner(tmp_path: Path) -> tuple[Runner, io.StringIO]:
    out = io.StringIO()
    return Runner(tmp_path / "logs", out=out), out


def test_a_row_stops_at_the_first_failure_and_exits_with_its_status(tmp_path: Path) -> None:
    run, out = runner(tmp_path)
    run.row([Stage("one", sh(f"touch {tmp_path}/one")),
             Stage("two", sh("exit 3")),
             Stage("three", sh(f"touch {tmp_path}/three"))])
    assert run.finish() == 3
    assert (tmp_path / "one").exists()
    assert not (tmp_path / "three").exists()
    text = out.getvalue()
    assert "two  FAILED (exit 3)" in text
    assert "three  not started: an earlier stage failed" in text
    assert "total (exit 3)" in text


def test_skipped_stages_say_why_and_the_run_passes(tmp_path: Path) -> None:
    run, out = runner(tmp_path)
    run.row([Stage("ran", sh("true")), Stage("left out", skip="no such engine here")])
    assert run.finish() == 0
    assert "left out  skipped: no such engine here" in out.getvalue()


def test_a_stage_that_cannot_run_fails_the_run_after_everything_else(tmp_path: Path) -> None:
    run, out = runner(tmp_path)
    run.row([Stage("browser", sh("true"), not_run="no Chromium"),
             Stage("after", sh(f"touch {tmp_path}/after"))])
    assert run.finish() == 1
    assert (tmp_path / "after").exists()
    assert "browser  NOT RUN: no Chromium" in out.getvalue()


def test_lanes_run_side_by_side_with_a_log_per_stage(tmp_path: Path) -> None:
    run, out = runner(tmp_path)
    start = time.monotonic()
    ok = run.lanes([[Stage("a", sh("sleep 1; echo from-a"))],
                    [Stage("b", sh("sleep 1; echo from-b"))]], width=2)
    assert ok
    assert time.monotonic() - start < 1.9  # side by side, not one after the other
    assert (tmp_path / "logs" / "a.log").read_text() == "from-a\n"
    assert (tmp_path / "logs" / "b.log").read_text() == "from-b\n"
    assert run.finish() == 0
    assert {r.lane for r in run.results} == {1, 2}
    assert "ran side by side, 2 lanes" in out.getvalue()


def test_a_failing_lane_shows_its_log_and_no_new_stage_starts(tmp_path: Path) -> None:
    run, out = runner(tmp_path)
    ok = run.lanes([[Stage("slow", sh("sleep 1")), Stage("later", sh("true"))],
                    [Stage("broken", sh("echo the cause; exit 5"))]], width=2)
    assert not ok
    assert run.finish() == 5
    text = out.getvalue()
    assert "the end of broken's log" in text
    assert "the cause" in text
    assert "later  [lane 1]  not started: an earlier stage failed" in text


def test_the_first_failure_in_time_gives_the_exit_status(tmp_path: Path) -> None:
    run, _ = runner(tmp_path)
    run.lanes([[Stage("late", sh("sleep 1; exit 7"))], [Stage("early", sh("exit 4"))]],
              width=2)
    assert run.finish() == 4


def test_clean_ups_run_after_a_failure_last_added_first(tmp_path: Path) -> None:
    run, _ = runner(tmp_path)
    order: list[str] = []
    run.on_exit("engine", lambda: order.append("engine"))
    run.on_exit("dind", lambda: order.append("dind"))
    run.row([Stage("fails", sh("exit 1"))])
    assert run.finish() == 1
    assert order == ["dind", "engine"]


def test_ctrl_c_stops_the_running_stage_runs_the_clean_up_and_exits_130(
        tmp_path: Path) -> None:
    program = f"""
import signal, sys
from pathlib import Path
from testbed.stages import Interrupted, Runner, Stage
from testbed.test_run import interrupted
signal.signal(signal.SIGINT, interrupted)
run = Runner(Path({str(tmp_path)!r}) / "logs")
run.on_exit("mark", lambda: Path({str(tmp_path)!r}, "cleaned").touch())
try:
    run.lanes([[Stage("long", ["bash", "-c", "echo $$ > {tmp_path}/a; exec sleep 60"])],
               [Stage("other", ["bash", "-c", "echo $$ > {tmp_path}/b; exec sleep 60"])]], 2)
except Interrupted as stop:
    run.interrupt(stop.returncode)
sys.exit(run.finish())
"""
    proc = subprocess.Popen([sys.executable, "-c", program], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not all((tmp_path / lane).exists() for lane in "ab"):  # both stages started
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert (tmp_path / "cleaned").exists()
    assert "total (exit 130)" in out
    for lane in "ab":  # both stages' commands were stopped, not left running
        pid = (tmp_path / lane).read_text().strip()
        assert not Path(f"/proc/{pid}").exists()


# ---------------------------------------------------------------------- the plan
@pytest.fixture
def plan(tmp_path: Path):  # noqa: ANN201 - a plan factory whose scratch folder is tmp_path
    def make(env: dict[str, str], quick: bool = False) -> test_run.Plan:
        return test_run.Plan.from_environ(env, quick, None, scratch=tmp_path / "scratch")
    return make


def stages(jobs: list[list[Stage]]) -> dict[str, Stage]:
    return {stage.name: stage for job in jobs for stage in job}


def test_with_a_ci_service_engine_the_host_stages_are_skipped_with_the_reason(plan) -> None:
    the_plan = plan({"LABKIT_DIND_HOST": "tcp://docker:2376"})
    assert the_plan.engines == (test_run.SERVICE,)
    assert the_plan.lanes == 1
    by_name = stages(test_run.matrix(the_plan))
    for name in ("DinD engine session (tests/testbed)", "three learners at once on one engine",
                 "classroom (JupyterHub, three learners; Kubernetes engine pod)"):
        assert by_name[name].skip is not None
        assert "LABKIT_DIND_HOST" in by_name[name].skip
    assert by_name["integration tests (service)"].action is not None


def test_the_full_engine_runs_first_with_the_reversed_notebooks_and_the_browser(plan) -> None:
    the_plan = plan({"LABKIT_ENGINES": "20.10 28.5+containerd+api1.44"})
    jobs = test_run.matrix(the_plan)
    assert jobs[0][0].name == "start DinD engine 28.5+containerd+api1.44"
    names = [s.name for s in jobs[0]]
    assert "notebooks again, reversed (nbval, 28.5+containerd+api1.44)" in names
    assert "browser test (28.5+containerd+api1.44)" in names
    assert jobs[0][-1].name == "stop DinD engine 28.5+containerd+api1.44"
    other = [s.name for s in jobs[2]]
    assert "integration tests (20.10)" in other
    assert not any("reversed" in n or "browser" in n for n in other)


def test_the_quick_run_is_one_engine_and_says_what_it_leaves_out(plan) -> None:
    the_plan = plan({"LABKIT_ENGINES": "20.10 28.5+api1.44"}, quick=True)
    assert the_plan.engines == (test_run.QUICK_ENGINE,)
    by_name = stages(test_run.matrix(the_plan))
    assert by_name[f"integration tests ({test_run.QUICK_ENGINE})"].skip
    assert by_name[f"notebooks in order (nbval, {test_run.QUICK_ENGINE})"].action
    assert not any("reversed" in n or "browser" in n for n in by_name)


def test_without_root_the_classroom_is_not_run_and_says_why(plan) -> None:
    by_name = stages([test_run.host_job(replace(plan({}), root=False))])
    assert "needs root" in (by_name["classroom (JupyterHub, three learners; Kubernetes "
                                    "engine pod)"].not_run or "")


def test_each_debian_release_of_the_matrix_is_built_once() -> None:
    built = test_run.engine_images(["20.10", "28.5+api1.44", "28.5+containerd+api1.44"])
    assert [s.action[-1] for s in built if isinstance(s.action, list)] == ["20.10",
                                                                           "28.5+api1.44"]


def test_nbval_runs_a_scratch_copy_as_its_own_learner_on_the_dind_engine(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "dind"
    state.mkdir()
    (state / "env").write_text("DOCKER_HOST=tcp://10.0.0.2:2376\nDOCKER_TLS_VERIFY=1\n")
    monkeypatch.setenv("DOCKER_CONTEXT", "elsewhere")
    copy = test_run.scratch_notebooks("28.5", tmp_path / "scratch")
    names = sorted(p.name for p in copy.iterdir())
    assert names == sorted(p.name for p in (ROOT / "notebooks").iterdir()
                           if p.name not in {"workspace", "learners", ".ipynb_checkpoints"})
    stage = test_run.nbval("28.5", state, copy)
    assert stage.action is not None and not callable(stage.action)
    assert [a for a in stage.action if a.endswith(".ipynb")] == [
        str(p) for p in sorted(copy.glob("*.ipynb"))]
    env = test_run.environment(stage.env)
    assert env["LABKIT_USER"] == test_run.NBVAL_USER
    assert env["LABKIT_STATE_DIR"] == str(copy.parent / "state")
    assert env["DOCKER_HOST"] == "tcp://10.0.0.2:2376"
    assert "DOCKER_CONTEXT" not in env
