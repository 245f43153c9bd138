"""Many learners at once on ONE engine (`make test-concurrency LEARNERS=N`).

    python -m testbed.concurrency [--learners N] [--engine SPEC] [--notebooks "02 03"]

Starts a DinD engine of its own (testbed.dind, state in CONCURRENCY_DIND_STATE, default
.cache/dind-concurrency), then N learners at the same moment, each with its own LABKIT_USER
(learner-1 .. learner-N), state directory and docker CLI configuration (the engine's
own CLI and plugins, the learner's own logins), each running the course's notebooks in order
under nbval as `make test` does. The learners share one copy of the notebooks, as learners
sharing a checkout do (the first one owns workspace/, the others get learners/<user>/). At
the end: pass or fail, wall time and slowest notebook per learner, the machine's load; the
engine is removed, also on failure. Exit status 1 when any learner failed.

The flags' defaults come from the environment: LEARNERS (8), ENGINE (28.5+containerd+api1.44),
NOTEBOOKS (only the notebooks whose names start so; default all, in order), and
CONCURRENCY_LOGS=DIR keeps each learner's log and JUnit report there, with the engine's
images as the learners left them (engine-state.txt: names, parents, layers); default: a
scratch folder, removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from testbed import dind, engines

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Outcome:
    """One learner's run: its number, pytest's exit status, its wall time in seconds."""

    learner: int
    returncode: int
    wall: int


def choose(notebooks: list[Path], prefixes: list[str]) -> list[Path]:
    """The notebooks whose names start with one of ``prefixes`` (all when none is given)."""
    if not prefixes:
        return notebooks
    return [nb for nb in notebooks if any(nb.name.startswith(p) for p in prefixes)]


def slowest_notebook(report: Path) -> tuple[str, float]:
    """The notebook whose cells took longest in a JUnit report, with their total seconds."""
    per_nb: dict[str, float] = defaultdict(float)
    if report.exists():
        for case in ET.parse(report).iter("testcase"):
            per_nb[case.get("classname") or case.get("file") or "?"] += \
                float(case.get("time", 0))
    name, seconds = max(per_nb.items(), key=lambda kv: kv[1], default=("?", 0.0))
    return name.rsplit(".", 1)[0].split("/")[-1], seconds


def summary(outcomes: list[Outcome], logs: Path) -> list[str]:
    """One line per learner (pass or FAIL, wall time, slowest notebook), then min/median/max."""
    lines = [f"{'learner':<12} {'result':<6} {'wall':>7}  slowest notebook"]
    for o in sorted(outcomes, key=lambda o: o.learner):
        name, seconds = slowest_notebook(logs / f"learner-{o.learner}.xml")
        lines.append(f"learner-{o.learner:<4} {'pass' if o.returncode == 0 else 'FAIL':<6} "
                     f"{o.wall:>5} s  {name} {seconds:.0f} s")
        if o.returncode:
            log = logs / f"learner-{o.learner}.log"
            tail = log.read_text(errors="replace").splitlines() if log.exists() else []
            lines.append("    " + "\n    ".join(
                line for line in tail if "FAILED" in line or "Error" in line)[:2000])
    walls = sorted(o.wall for o in outcomes)
    lines.append(f"wall time per learner: min {walls[0]} s, median {walls[len(walls) // 2]} s, "
                 f"max {walls[-1]} s")
    return lines


def load() -> str:
    """The machine's load averages (1, 5, 15 minutes)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def learner_command(run: list[str], folder: Path, report: Path) -> list[str]:
    """pytest under nbval over ``run``, as `make test` runs the notebooks."""
    # a kernel starting under load may take over nbval's default minute
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
            str(folder), "--nbval-lax", "--nbval-sanitize-with",
            str(ROOT / "tests" / "nbval_sanitize.cfg"), "--nbval-cell-timeout", "900",
            "--nbval-kernel-startup-timeout", "300", "--junitxml", str(report), *run]


def docker_config(engine_env: dict[str, str], folder: Path) -> Path:
    """A learner's own docker CLI configuration in ``folder`` (their `docker login`s, as in
    a home of their own), with the CLI plugins of the engine's configuration."""
    folder.mkdir(parents=True, exist_ok=True)
    given = Path(engine_env.get("DOCKER_CONFIG") or Path.home() / ".docker")
    if (given / "cli-plugins").is_dir():
        (folder / "cli-plugins").symlink_to(given / "cli-plugins")
    return folder


def run_learners(session: dind.Dind, count: int, run: list[str], scratch: Path,
                 logs: Path) -> list[Outcome]:
    """``count`` learners at the same moment against ``session``'s engine; their outcomes."""
    base = {k: v for k, v in os.environ.items()
            if k not in (*dind.LEARNER_VARIABLES, "LABKIT_DIND_HOST")}
    started: dict[int, tuple[subprocess.Popen[bytes], float]] = {}
    try:
        for i in range(1, count + 1):
            engine_env = session.environ(base)
            env = engine_env | {
                "LABKIT_USER": f"learner-{i}", "LABKIT_STATE_DIR": str(scratch / f"state-{i}"),
                "DOCKER_CONFIG": str(docker_config(engine_env, scratch / f"docker-{i}"))}
            with (logs / f"learner-{i}.log").open("wb") as log:
                process = subprocess.Popen(
                    learner_command(run, scratch / "notebooks", logs / f"learner-{i}.xml"),
                    cwd=scratch / "notebooks", env=env, stdout=log, stderr=subprocess.STDOUT)
            started[i] = (process, time.monotonic())
        outcomes: dict[int, Outcome] = {}
        while len(outcomes) < len(started):  # each learner's time ends when its run ends
            for i, (process, t0) in started.items():
                rc = process.poll()
                if i not in outcomes and rc is not None:
                    outcomes[i] = Outcome(i, rc, int(time.monotonic() - t0))
            time.sleep(0.5)
        return list(outcomes.values())
    finally:
        for process, _ in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def engine_state(session: dind.Dind) -> str:
    """The engine's images when the learners are done: every image (untagged ones too) with
    its names, parent, creation time and layers, for telling after the run why a fact failed."""
    listed = session.docker("image", "ls", "--all", "--quiet", "--no-trunc")
    ids = list(dict.fromkeys(listed.stdout.split()))
    if not ids:
        return f"no image listed ({listed.stderr.strip()})\n"
    fmt = ("{{.Id}} tags={{json .RepoTags}} parent={{.Parent}} created={{.Created}} "
           "layers={{json .RootFS.Layers}}")
    inspected = session.docker("image", "inspect", "--format", fmt, *ids)
    return inspected.stdout + inspected.stderr


def main(argv: list[str] | None = None) -> int:
    """Start the engine, run the learners, print the summary, stop the engine."""
    parser = argparse.ArgumentParser(prog="python -m testbed.concurrency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", default=os.environ.get("LEARNERS") or "8")
    parser.add_argument("--engine", default=os.environ.get("ENGINE") or engines.DEFAULT_SPEC)
    parser.add_argument("--notebooks", default=os.environ.get("NOTEBOOKS") or "",
                        help="name prefixes, e.g. \"00 01\"")
    args = parser.parse_args(argv)
    if not args.learners.isdigit() or int(args.learners) < 1:
        print(f"LEARNERS must be a positive number, not '{args.learners}'.", file=sys.stderr)
        return 2
    count, spec = int(args.learners), engines.parse(args.engine)
    chosen = choose(sorted((ROOT / "notebooks").glob("*.ipynb")), args.notebooks.split())
    if not chosen:
        print(f"No notebook starts with: {args.notebooks}", file=sys.stderr)
        return 2
    dind.exit_on_sigterm()
    t0 = time.monotonic()
    state = Path(os.environ.get("CONCURRENCY_DIND_STATE")
                 or ROOT / ".cache" / "dind-concurrency")
    session = dind.own_engine(spec, state)
    with tempfile.TemporaryDirectory(prefix="labkit-concurrency.") as scratch_dir:
        scratch = Path(scratch_dir)
        logs = Path(os.environ.get("CONCURRENCY_LOGS") or scratch / "logs")
        logs.mkdir(parents=True, exist_ok=True)
        (scratch / "notebooks").mkdir()
        for nb in chosen:
            shutil.copy(nb, scratch / "notebooks")

        def learners(session: dind.Dind) -> int:
            print(f"concurrency: {count} learners, {len(chosen)} notebooks each, on "
                  f"{spec.text}; {os.cpu_count()} CPUs, load {load()}", flush=True)
            outcomes = run_learners(session, count, [nb.name for nb in chosen], scratch, logs)
            print(f"concurrency: all {count} done after {time.monotonic() - t0:.0f} s; "
                  f"load {load()}")
            print("\n".join(summary(outcomes, logs)))
            failed = sum(1 for o in outcomes if o.returncode)
            (logs / "engine-state.txt").write_text(engine_state(session))
            if failed:
                print(f"concurrency: {failed} of {count} learners FAILED (logs: {logs}; "
                      "the engine's images at the end: engine-state.txt)")
            else:
                print(f"concurrency: all {count} learners passed")
            return 1 if failed else 0

        return dind.run_on(session, "concurrency", learners)


if __name__ == "__main__":
    sys.exit(main())
