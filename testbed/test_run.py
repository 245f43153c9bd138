"""`make test` and `make test-quick`: every stage, side by side where the machine allows.

    python -m testbed.test_run [--quick] [--lanes N] [--since EPOCH]

`make test` (the Makefile runs scripts/venv.sh first: the venv must exist before this runs):
  1. venv (timed by the Makefile: ``--since`` is when it started);
  2. side by side: [the engine (scripts/engine.sh), the course images (labkit prepare), the
     engine stand-ins of the matrix (built once per Debian release), Chromium when it is
     missing (apt-get, as root)] beside [ruff, mypy, unit tests];
  3. in up to ``--lanes`` lanes (LABKIT_TEST_LANES, default 3; 1 runs everything in a row):
     for each engine of the matrix (LABKIT_ENGINES, `make test ENGINES="..."`), a DinD
     engine of its own (state in .cache/dind-test-SPEC; every stage on it runs that engine
     image's own docker CLI, first on PATH from the env file: see testbed.dind) →
     integration tests → the notebooks
     in order (nbval); on the full engine (LABKIT_FULL_ENGINE, default the last one) also
     the notebooks again in reverse order and the browser test; and, on this machine's
     engine, a DinD session's own test (tests/testbed), three learners at once
     (testbed.concurrency) and the classroom (tests/classroom, needs root). The full
     engine's job and the host's start first: they are the longest.

The engine matrix, each built from Debian's packages by testbed.engines, never pulled:
  20.10                    the oldest engine supported (Debian bookworm), overlay2
  28.5+api1.44             a current engine (forky) refusing APIs below 1.44, as Engine 29
  28.5+containerd+api1.44  the same on the containerd image store (Docker 29's default for
                           new installs, Docker Desktop's): the full engine.
Everything engine-specific runs on all three; what does not depend on the engine (notebook
order, the browser) runs once, where users are. With LABKIT_DIND_HOST (a CI service such
as docker:dind) that engine alone is tested, in a row, and the concurrency and classroom
stages are skipped (they start engines of their own on this machine's engine, which such a
job does not have): the summary says so.

`make test-quick` (the contributor's loop, a few minutes): ruff, mypy and unit tests beside
the engine and the course images, then the notebooks in order on one DinD engine
(LABKIT_ENGINE, `make test-quick ENGINE=...`, default 28.5+containerd+api1.44). The
summary names what it leaves to `make test`.

nbval runs on a scratch copy of notebooks/ (.cache/test-run/nbval-SPEC/notebooks: the
notebooks and whatever lies beside them, without workspace/ and checkpoints), as learner
``nbval`` (LABKIT_USER) with a labkit state folder of its own (LABKIT_STATE_DIR): it never
shares notebooks/workspace/ or the user's labkit state with `make lab`.

Stages that run side by side write their output to .cache/test-run/logs/STAGE.log; the
summary at the end gives every stage's time and lane, says for every stage that did not run
why, and repeats the end of a failing stage's log. Whatever the run started (DinD engines,
the engine) is stopped at the end, also on failure or Ctrl-C; the exit status is the first
failing stage's, and 1 when a stage that should run could not (NOT RUN: the browser test
without Chromium and without root to install it; the classroom without root).
Images are pulled where a registry answers, else built from Debian packages; with
LABKIT_OFFLINE=1 (`make test OFFLINE=1`) nothing is ever pulled.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from testbed import engines
from testbed.dind import read_env
from testbed.engines import MATRIX
from testbed.stages import Env, Interrupted, Result, Runner, Stage, environment

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / ".cache" / "test-run"
QUICK_ENGINE = engines.DEFAULT_SPEC
SERVICE = "service"  # the engine named by LABKIT_DIND_HOST
NBVAL_USER = "nbval"
NBVAL_OPTIONS = ("-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-sanitize-with",
                 str(ROOT / "tests" / "nbval_sanitize.cfg"), "--nbval-cell-timeout", "600")
#: The variables that would point a command at another engine than the DinD one.
ENGINE_VARIABLES = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT")
CHROMIUM_PATHS = ("/usr/lib/chromium/chromium",)


@dataclass(frozen=True)
class Plan:
    """What this machine and environment allow: read once, before anything runs."""

    engines: tuple[str, ...]
    full: str
    quick: bool
    service: bool  # LABKIT_DIND_HOST: a CI service's engine is the only DinD engine
    root: bool
    apt: bool
    chromium: bool
    offline: bool
    trust_host_ca: bool
    lanes: int
    scratch: Path = SCRATCH  # nbval's copies of the notebooks, and the stage logs


    @classmethod
    def from_environ(cls, env: Mapping[str, str], quick: bool, lanes: int | None,
                     scratch: Path = SCRATCH) -> Plan:
        """The plan for ``env`` (LABKIT_ENGINES, LABKIT_FULL_ENGINE, LABKIT_DIND_HOST, ...)."""
        service = bool(env.get("LABKIT_DIND_HOST"))
        if service:
            engines: tuple[str, ...] = (SERVICE,)
        elif quick:
            engines = (env.get("LABKIT_ENGINE") or QUICK_ENGINE,)
        else:
            engines = tuple(env.get("LABKIT_ENGINES", "").split()) or MATRIX
        full = SERVICE if service else env.get("LABKIT_FULL_ENGINE") or engines[-1]
        chromium = env.get("LABKIT_CHROMIUM", "")
        return cls(
            engines=engines, full=full, quick=quick, service=service,
            root=os.geteuid() == 0, apt=shutil.which("apt-get") is not None,
            chromium=(bool(chromium) and os.access(chromium, os.X_OK))
            or shutil.which("chromium") is not None
            or any(os.access(p, os.X_OK) for p in CHROMIUM_PATHS),
            offline=env.get("LABKIT_OFFLINE", "0") == "1",
            trust_host_ca=env.get("LABKIT_TRUST_HOST_CA", "1") == "1",
            lanes=1 if service else (lanes or int(env.get("LABKIT_TEST_LANES", "3"))),
            scratch=scratch,
        )


# ---------------------------------------------------------------------- engines
def dind(action: str, state: Path, spec: str) -> Stage:
    """The one place that starts or stops a DinD engine (``state`` holds its env file)."""
    engine = None if spec == SERVICE else spec
    return Stage(f"{action} DinD engine {spec}", [sys.executable, "-m", "testbed.dind", action],
                 env={"LABKIT_DIND_STATE": str(state), "LABKIT_ENGINE": engine})


def state_dir(spec: str) -> Path:
    """Where the DinD engine of ``spec`` keeps its env file and certificates."""
    return ROOT / ".cache" / f"dind-test-{spec.replace('+', '-')}"


def in_dind(state: Path, extra: Mapping[str, str] | None = None) -> Env:
    """The environment of a command run against the DinD engine of ``state`` (read when the
    command starts: the env file is written by the stage that starts the engine)."""

    def env() -> dict[str, str | None]:
        out: dict[str, str | None] = dict.fromkeys(ENGINE_VARIABLES)
        out.update(read_env(state / "env"))
        out.update(extra or {})
        return out

    return env


def engine_images(specs: Sequence[str]) -> list[Stage]:
    """One stand-in build per Debian release of the matrix (28.5 and 28.5+containerd share
    their image), before the matrix, so that engines side by side never build it twice."""
    seen: dict[str, str] = {}
    for spec in specs:
        if spec != SERVICE:
            seen.setdefault(engines.parse(spec).version, spec)
    return [Stage(f"engine image {version}",
                  [sys.executable, "-m", "testbed.engines", "build", spec])
            for version, spec in seen.items()]


# ---------------------------------------------------------------------- notebooks
def notebooks() -> list[Path]:
    """The course's notebooks, in order."""
    return sorted((ROOT / "notebooks").glob("*.ipynb"))


def scratch_notebooks(spec: str, scratch: Path) -> Path:
    """A fresh copy of notebooks/ (and what lies beside them) for nbval on ``spec``: its
    own workspace/, never the one `make lab` uses."""
    base = scratch / f"nbval-{spec.replace('+', '-')}"
    shutil.rmtree(base, ignore_errors=True)
    target = base / "notebooks"
    shutil.copytree(ROOT / "notebooks", target, ignore=shutil.ignore_patterns(
        "workspace", "learners", ".ipynb_checkpoints", "__pycache__"))
    (base / "state").mkdir()
    return target


def nbval(spec: str, state: Path, copy: Path, reverse: bool = False) -> Stage:
    """The notebooks of ``copy`` under nbval against the DinD engine of ``state``."""
    order = sorted(copy.glob("*.ipynb"), reverse=reverse)
    name = (f"notebooks again, reversed (nbval, {spec})" if reverse
            else f"notebooks in order (nbval, {spec})")
    learner = {"LABKIT_USER": NBVAL_USER, "LABKIT_STATE_DIR": str(copy.parent / "state")}
    return Stage(name, [pytest(), "--rootdir", str(ROOT), *NBVAL_OPTIONS, *map(str, order)],
                 env=in_dind(state, learner))


# ---------------------------------------------------------------------- stages
def pytest() -> str:
    """The venv's pytest."""
    return str(Path(sys.executable).parent / "pytest")


def tool(name: str) -> str:
    """A command of the venv (ruff, mypy, labkit)."""
    return str(Path(sys.executable).parent / name)


def checks() -> list[Stage]:
    """Lint and unit tests: no engine needed."""
    return [Stage("lint (ruff)", [tool("ruff"), "check", str(ROOT)]),
            Stage("lint (mypy)", [tool("mypy")]),
            Stage("unit tests", [pytest(), "-q", "-p", "no:cacheprovider", "tests/unit"])]


def browser_wanted(plan: Plan) -> bool:
    """True when this run has a browser test to run (the full engine, not the quick run)."""
    return not plan.quick and (ROOT / "tests" / "browser").is_dir() and plan.full in plan.engines


def chromium_stage(plan: Plan) -> Stage | None:
    """Debian's Chromium for the browser test when it is missing (Playwright's own download
    does not work everywhere); None when there is nothing to install."""
    if not browser_wanted(plan) or plan.chromium or not (plan.root and plan.apt):
        return None
    command = ("export DEBIAN_FRONTEND=noninteractive && apt-get update -qq && "
               "apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "
               "chromium >/dev/null")
    return Stage("chromium (apt-get)", ["bash", "-c", command])


def browser_missing(plan: Plan) -> str | None:
    """Why the browser test cannot run here, if it cannot."""
    if plan.chromium or (plan.root and plan.apt):
        return None
    return ("the browser test needs Chromium, and installing it needs root: run "
            "'sudo apt-get install chromium' once (or set LABKIT_CHROMIUM)")


def prepare(plan: Plan) -> list[list[Stage]]:
    """Stage 2: the engine and what runs on it, beside lint and unit tests."""
    args = [tool("labkit"), "prepare"]
    if plan.trust_host_ca:
        args.append("--trust-host-ca")
    if plan.offline:
        args.append("--offline")
    engine = [Stage("engine", [str(ROOT / "scripts" / "engine.sh"), "start"]),
              Stage("course images", args), *engine_images(plan.engines)]
    chromium = chromium_stage(plan)
    if chromium is not None:
        engine.append(chromium)
    return [engine, checks()]


def engine_job(plan: Plan, spec: str) -> list[Stage]:
    """Everything that runs on the DinD engine of ``spec``, from its start to its stop."""
    state = state_dir(spec)
    job = [dind("start", state, spec)]
    if plan.quick:
        job.append(Stage(f"integration tests ({spec})",
                         skip="make test-quick leaves them to make test"))
    else:
        job.append(Stage(f"integration tests ({spec})",
                         [pytest(), "-q", "-p", "no:cacheprovider", "--durations=20",
                          "-m", "integration", "tests/integration"], env=in_dind(state)))
    if notebooks():
        copy = scratch_notebooks(spec, plan.scratch)
        job.append(nbval(spec, state, copy))
        if spec == plan.full and not plan.quick:
            job.append(nbval(spec, state, copy, reverse=True))
    if browser_wanted(plan) and spec == plan.full:
        job.append(Stage(f"browser test ({spec})", [pytest(), "-q", "tests/browser"],
                         env=in_dind(state), not_run=browser_missing(plan)))
    job.append(dind("stop", state, spec))
    return job


def host_job(plan: Plan) -> list[Stage]:
    """A DinD session's own test, many learners at once, then the classroom: all three on
    this machine's engine, each starting and stopping engines of its own."""
    session = "DinD engine session (tests/testbed)"
    concurrency = "three learners at once on one engine"
    classroom = "classroom (JupyterHub, three learners; Kubernetes engine pod)"
    why = None
    if plan.quick:
        why = "make test-quick leaves it to make test"
    elif plan.service:
        why = ("LABKIT_DIND_HOST is set: it starts engines of its own on this machine's "
               "engine, and this job's only engine is the CI service's")
    if why is not None:
        return [Stage(session, skip=why), Stage(concurrency, skip=why),
                Stage(classroom, skip=why)]
    return [
        Stage(session, [pytest(), "-q", "-p", "no:cacheprovider", "tests/testbed"]),
        Stage(concurrency, [sys.executable, "-m", "testbed.concurrency", "--learners", "3",
                            "--notebooks", "00 01 02 07"],
              env={"CONCURRENCY_LOGS": str(plan.scratch / "logs" / "concurrency")}),
        Stage(classroom, [pytest(), "-q", "-p", "no:cacheprovider", "tests/classroom"],
              not_run=None if plan.root else (
                  "the classroom test needs root (each learner's engine disk is a loop "
                  "mount): run make test as root, or make test-classroom with sudo")),
    ]


def matrix(plan: Plan) -> list[list[Stage]]:
    """Stage 3's jobs, the longest first: the full engine's, the host's, then the others."""
    jobs = {spec: engine_job(plan, spec) for spec in plan.engines}
    first = [jobs.pop(plan.full)] if plan.full in jobs else []
    return [*first, host_job(plan), *jobs.values()]


# ---------------------------------------------------------------------- the run
def run(plan: Plan, runner: Runner) -> None:
    """Every stage of ``plan``; what ran, failed or did not run is in ``runner.results``."""
    runner.on_exit("engine", lambda: cleanup(
        Stage("engine", [str(ROOT / "scripts" / "engine.sh"), "stop"])))
    for spec in plan.engines:  # stopped at the end whatever happens (stopping is idempotent)
        stop = dind("stop", state_dir(spec), spec)
        runner.on_exit(stop.name, functools.partial(cleanup, stop))
    if not runner.lanes(prepare(plan), width=min(plan.lanes, 2)):
        return
    runner.lanes(matrix(plan), width=plan.lanes)


def cleanup(stage: Stage) -> int:
    """Run a clean-up command now, on the terminal, whatever became of the run."""
    assert stage.action is not None and not callable(stage.action)
    return subprocess.run(list(stage.action), env=environment(stage.env), check=False,
                          stdin=subprocess.DEVNULL).returncode


def interrupted(signum: int, _frame: FrameType | None) -> None:
    """Ctrl-C (exit 130) or SIGTERM (143): unwind to the clean-up."""
    raise Interrupted(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="make test-quick")
    parser.add_argument("--lanes", type=int, help="stages side by side (1: all in a row)")
    parser.add_argument("--since", type=float,
                        help="when `make` started (epoch seconds): the venv stage's start")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    os.environ.setdefault("LABKIT_OFFLINE", "0")
    os.environ.setdefault("LABKIT_TRUST_HOST_CA", "1")
    plan = Plan.from_environ(os.environ, args.quick, args.lanes)
    runner = Runner(plan.scratch / "logs", t0=args.since)
    if args.since is not None:
        runner.record(Result("venv", "ok", time.time() - args.since))
    shutil.rmtree(runner.log_dir, ignore_errors=True)
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    try:
        run(plan, runner)
    except Interrupted as stop:
        runner.interrupt(stop.returncode)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the clean-up is not cut short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
