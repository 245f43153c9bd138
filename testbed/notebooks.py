"""The one notebook runner: stored outputs (`make notebooks`) and the course's cell times.

    python -m testbed.notebooks store [--engine SPEC] [--out DIR]
    python -m testbed.notebooks execute [--out DIR] [--spec SPEC] NOTEBOOK...
    python -m testbed.notebooks time [--rounds 2] [NOTEBOOK...]

Each notebook runs with nbclient in a fresh kernel, in order, in one scratch folder (the
learner's workspace is not touched), against the engine the environment names.

store    Regenerate every notebook's stored outputs from one clean run: start a fresh DinD
         engine of its own (SPEC, default 28.5+containerd+api1.44: the image store and API
         floor of Docker 29 / Docker Desktop; state in NOTEBOOKS_DIND_STATE, default
         .cache/dind-notebooks), run ``execute`` against it with a state directory of its
         own and LABKIT_USER=NOTEBOOKS_USER (default student), and remove the engine at the
         end, also on failure. OUT=DIR (--out) writes them there instead of notebooks/.
execute  Only when every notebook has run are they written (default: where they came
         from), cleaned: no ANSI escape codes in any output, no volatile metadata (timings,
         widget state no output refers to), the same stamp in each:
         ``metadata.labkit = {run, engine, image_store, ...}``.
time     The whole course run ``--rounds`` times (default 2); the last (warm) run is
         reported: one row per notebook (cells, total seconds, the slowest cell), the whole
         course against the 60 s goal, and every cell over 3 s that is not an experiment.
         An experiment is a code cell tagged ``experiment``, or one whose markdown cell
         just before says how long it takes ("takes about 20 s").
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from labkit import engine
from labkit.engine import strip_ansi
from testbed import dind, engines

ROOT = Path(__file__).resolve().parent.parent
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_MODEL_REF = re.compile(r"IPY_MODEL_([0-9a-f]+)")
COURSE_GOAL_S = 60.0
CELL_GOAL_S = 3.0
_SAYS_HOW_LONG = re.compile(r"\btakes?\s+(about|around|up to|roughly)\s+\d+(\s*[-–]\s*\d+)?\s*"
                            r"(s\b|seconds|min)", re.IGNORECASE)


class NotebookFailed(RuntimeError):
    """A cell of a notebook raised (the message holds the notebook and nbclient's report)."""


def course_notebooks() -> list[Path]:
    """The course's notebooks, in order."""
    return sorted((ROOT / "notebooks").glob("*.ipynb"), key=lambda p: p.name)


def execute(path: Path, scratch: Path, timeout: int, record_timing: bool = False) -> Any:
    """``path`` executed in a fresh kernel whose working folder is ``scratch``."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            record_timing=record_timing,
                            resources={"metadata": {"path": str(scratch)}})
    try:
        client.execute()
    except CellExecutionError as exc:
        raise NotebookFailed(f"{path.name} failed:\n{plain(str(exc))}") from None
    return nb


# ------------------------------------------------------------------ stored outputs
#: The engine spec that means this machine's own engine, not a DinD one.
LOCAL = "local"
#: What a stored output says instead of the run's labkit state folder (a temporary path).
STATE_FOLDER = "<the labkit state folder>"
#: What it says instead of the docker CLI's configuration folder (``docker login`` names it).
DOCKER_CONFIG_FOLDER = "~/.docker"


def docker_config_dir() -> str:
    """The docker CLI's configuration folder here: ``$DOCKER_CONFIG``, else ``~/.docker``."""
    return os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")


def plain(value: Any, state_dir: str = "", docker_config: str = "") -> Any:
    """``value`` (text, a list of lines, or JSON data) without ANSI escapes in its strings,
    with ``state_dir`` (a machine path) named :data:`STATE_FOLDER` and ``docker_config``
    :data:`DOCKER_CONFIG_FOLDER`."""
    if isinstance(value, str):
        text = strip_ansi(value)
        for path, name in ((state_dir, STATE_FOLDER), (docker_config, DOCKER_CONFIG_FOLDER)):
            text = text.replace(path.rstrip("/"), name) if path else text
        return text
    if isinstance(value, list):
        return [plain(x, state_dir, docker_config) for x in value]
    if isinstance(value, dict):
        return {k: plain(v, state_dir, docker_config) for k, v in value.items()}
    return value


def merge_streams(outputs: list[Any]) -> list[Any]:
    """``outputs`` with each run of stream outputs of one name (stdout, stderr) joined into
    one: the kernel sends a stream in pieces, cut anywhere, even mid-word."""
    merged: list[Any] = []
    for out in outputs:
        last = merged[-1] if merged else None
        if (out.get("output_type") == "stream" and last is not None
                and last.get("output_type") == "stream" and last.get("name") == out.get("name")):
            last["text"] = "".join(last["text"]) + "".join(out["text"])
        else:
            merged.append(out)
    return merged


def clean_outputs(nb: Any, state_dir: str = "", docker_config: str = "") -> None:
    """Join split streams; strip ANSI codes and the paths of the state folder and the docker
    CLI's configuration from every output, and each cell's execution timings."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if "outputs" in cell:
            cell["outputs"] = merge_streams(cell["outputs"])
        for out in cell.get("outputs", []):
            for key in ("text", "evalue", "traceback"):
                if key in out:
                    out[key] = plain(out[key], state_dir, docker_config)
            if "data" in out:
                out["data"] = plain(out["data"], state_dir, docker_config)


def referenced_models(nb: Any) -> set[str]:
    """Widget models some output displays, with every model they refer to (children, layouts)."""
    roots = {out["data"][WIDGET_VIEW]["model_id"] for cell in nb.cells
             for out in cell.get("outputs", []) if WIDGET_VIEW in out.get("data", {})}
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        model = todo.pop()
        if model in seen or model not in state:
            continue
        seen.add(model)
        todo += _MODEL_REF.findall(json.dumps(state[model]))
    return seen


def prune_widget_state(nb: Any) -> None:
    """Keep only the widget state that a stored output needs; drop the key when none does."""
    widgets = nb.metadata.get("widgets", {}).get(WIDGET_STATE)
    keep = referenced_models(nb)
    if not widgets or not keep:
        nb.metadata.pop("widgets", None)
        return
    widgets["state"] = {k: v for k, v in widgets["state"].items() if k in keep}


def engine_stamp(spec: str, run_id: str) -> dict[str, str]:
    """What the outputs came from: the run, the engine's version and image store."""
    facts = engine.info()
    return {"run": run_id, "engine": facts.version, "api": facts.api_version,
            "image_store": facts.image_store, "storage_driver": facts.storage_driver,
            "engine_spec": spec}


def store(paths: list[Path], out: Path | None, spec: str, run_id: str, timeout: int) -> int:
    """Run every notebook, then write each one cleaned and stamped (to ``out`` if given)."""
    stamp = engine_stamp(spec, run_id)
    print(f"notebooks: run {run_id} on Docker {stamp['engine']} ({stamp['image_store']})")
    executed = []
    with tempfile.TemporaryDirectory(prefix="labkit-notebooks-") as scratch:
        for path in paths:
            started = time.monotonic()
            try:
                executed.append(execute(path, Path(scratch), timeout))
            except NotebookFailed as exc:
                print(f"notebooks: {exc}", file=sys.stderr)
                return 1
            print(f"notebooks: {path.name} ran in {time.monotonic() - started:.1f} s",
                  flush=True)
    for path, nb in zip(paths, executed, strict=True):
        clean_outputs(nb, os.environ.get("LABKIT_STATE_DIR", ""), docker_config_dir())
        prune_widget_state(nb)
        nb.metadata["labkit"] = copy.deepcopy(stamp)
        target = (out or path.parent) / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        print(f"notebooks: wrote {target}")
    return 0


def execute_as_learner(env: dict[str, str], spec: str, out: Path | None) -> int:
    """``execute`` every course notebook in a process of its own, as the course's default
    learner with a fresh state folder, whatever this shell sets: the stored outputs are what
    a learner sees."""
    with tempfile.TemporaryDirectory(prefix="labkit-notebooks-state.") as run_state:
        env = {k: v for k, v in env.items()
               if k not in (*dind.LEARNER_VARIABLES, "LABKIT_HIDE_COMMANDS")} | {
            "LABKIT_USER": os.environ.get("NOTEBOOKS_USER") or "student",
            "LABKIT_STATE_DIR": run_state}
        command = [sys.executable, "-m", "testbed.notebooks", "execute", "--spec", spec,
                   *(["--out", str(out.resolve())] if out else []),
                   *map(str, course_notebooks())]
        return subprocess.run(command, env=env, cwd=ROOT, check=False).returncode


def store_on_own_engine(spec: str, out: Path | None) -> int:
    """`make notebooks`: a fresh DinD engine of its own (``ENGINE=local``: this machine's
    engine, whose published ports are this machine's loopback), ``execute`` there."""
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode:
        print("notebooks: no Docker engine answers here; run 'make images' first (it starts "
              "one and prepares the course images).", file=sys.stderr)
        return 1
    if spec == LOCAL:
        return execute_as_learner(dict(os.environ), LOCAL, out)
    parsed = engines.parse(spec)
    state = Path(os.environ.get("NOTEBOOKS_DIND_STATE") or ROOT / ".cache" / "dind-notebooks")
    return dind.run_on(dind.own_engine(parsed, state), "notebooks",
                       lambda session: execute_as_learner(session.environ(),
                                                          parsed.text, out))


# ------------------------------------------------------------------ cell times
@dataclass(frozen=True)
class CellTime:
    """One executed code cell: where it is, how long it took, whether it measures."""

    notebook: str
    index: int
    seconds: float
    first_line: str
    experiment: bool


def says_how_long(markdown: str) -> bool:
    """True when a markdown cell announces a duration ("takes about 20 s")."""
    return bool(_SAYS_HOW_LONG.search(markdown))


def _seconds(cell: Any) -> float:
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not start or not end:
        return 0.0
    parse = datetime.fromisoformat
    return max(0.0, (parse(end.replace("Z", "+00:00")) -
                     parse(start.replace("Z", "+00:00"))).total_seconds())


def cell_times(name: str, nb: Any) -> list[CellTime]:
    """The code cells of an executed notebook with their times (nbclient's record_timing)."""
    out, previous_md = [], ""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            previous_md = cell.source
            continue
        if cell.cell_type != "code":
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        lines = [x for x in cell.source.splitlines() if x.strip()]
        out.append(CellTime(name, index, _seconds(cell), lines[0][:70] if lines else "",
                            "experiment" in tags or says_how_long(previous_md)))
        previous_md = ""
    return out


def report(times: list[CellTime]) -> list[str]:
    """The table, the course total against its goal, and the slow non-experiment cells."""
    lines = [f"{'notebook':<26} {'cells':>5} {'total s':>8} {'slowest s':>9}  slowest cell"]
    names = list(dict.fromkeys(t.notebook for t in times))
    for name in names:
        cells = [t for t in times if t.notebook == name]
        slow = max(cells, key=lambda t: t.seconds)
        lines.append(f"{name:<26} {len(cells):>5} {sum(t.seconds for t in cells):>8.2f} "
                     f"{slow.seconds:>9.2f}  [{slow.index}] {slow.first_line}")
    total = sum(t.seconds for t in times)
    verdict = "within" if total <= COURSE_GOAL_S else "OVER"
    lines.append(f"whole course: {total:.1f} s of cell time, {verdict} the "
                 f"{COURSE_GOAL_S:.0f} s goal")
    flagged = [t for t in times if t.seconds > CELL_GOAL_S and not t.experiment]
    for t in flagged:
        lines.append(f"  SLOW (> {CELL_GOAL_S:.0f} s, not an experiment): {t.notebook} "
                     f"[{t.index}] {t.seconds:.2f} s  {t.first_line}")
    for t in times:
        if t.experiment and t.seconds > CELL_GOAL_S:
            lines.append(f"  experiment (says how long): {t.notebook} [{t.index}] "
                         f"{t.seconds:.2f} s  {t.first_line}")
    if not flagged:
        lines.append(f"no cell that sets up or shows something takes over {CELL_GOAL_S:.0f} s")
    return lines


def time_course(paths: list[Path], rounds: int, timeout: int) -> int:
    """Run the course ``rounds`` times in one scratch folder; report the last run."""
    times: list[CellTime] = []
    with tempfile.TemporaryDirectory(prefix="labkit-bench-notebooks-") as scratch:
        for number in range(1, max(1, rounds) + 1):
            print(f"course run {number} of {rounds}"
                  f"{' (warm: reported)' if number == rounds else ''}", flush=True)
            times = []
            for path in paths:
                started = time.monotonic()
                try:
                    nb = execute(path, Path(scratch), timeout, record_timing=True)
                except NotebookFailed as exc:
                    print(f"bench: {str(exc)[-2000:]}", file=sys.stderr)
                    return 1
                print(f"  {path.name}: {time.monotonic() - started:.1f} s wall", flush=True)
                times += cell_times(path.stem, nb)
    print("\n".join(report(times)))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``store | execute | time``: see the module's docstring."""
    parser = argparse.ArgumentParser(prog="python -m testbed.notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    own = commands.add_parser("store", help="stored outputs from a DinD engine of its own")
    own.add_argument("--engine", default=engines.DEFAULT_SPEC,
                     help=f"the engine spec, or '{LOCAL}' for this machine's engine")
    own.add_argument("--out", type=Path, help="write the executed notebooks here")
    run = commands.add_parser("execute", help="stored outputs from the environment's engine")
    run.add_argument("notebooks", nargs="+", type=Path)
    run.add_argument("--out", type=Path, help="write the executed notebooks here")
    run.add_argument("--spec", default="", help="the engine spec, for the stamp")
    run.add_argument("--run-id", default="")
    run.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    timing = commands.add_parser("time", help="the warm course's cell times")
    timing.add_argument("notebooks", nargs="*", type=Path)
    timing.add_argument("--rounds", type=int, default=2,
                        help="runs of the whole course; the last one is reported (default 2)")
    timing.add_argument("--timeout", type=int, default=600)
    args = parser.parse_args(argv)
    if args.command == "store":
        dind.exit_on_sigterm()
        if args.engine != LOCAL:
            try:
                engines.parse(args.engine)
            except engines.SpecError as exc:
                print(exc, file=sys.stderr)
                return 2
        return store_on_own_engine(args.engine, args.out)
    if args.command == "execute":
        run_id = args.run_id or (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
                                 + f"-{secrets.token_hex(3)}")
        return store(sorted(args.notebooks, key=lambda p: p.name), args.out, args.spec,
                     run_id, args.timeout)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]*-*.ipynb"))
    return time_course(paths, args.rounds, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
