"""A stage runner: stages in a row or in lanes side by side, each timed, one summary at the end.

A :class:`Stage` is one command (or a Python callable returning an exit status). A stage
that cannot or should not run here is not dropped: it carries its reason, and the summary
says it. ``skip`` is a stage left out on purpose (the run still passes); ``not_run`` is one
that should have run but cannot here (the run fails at the end, after everything else ran).

:meth:`Runner.row` runs stages one after the other, their output on the terminal.
:meth:`Runner.lanes` runs jobs (each a list of stages in a row) in at most N lanes side by
side; each stage's output goes to a log file of its own, and the tail of a failing stage's
log is printed at the end. After the first failure no new stage starts (those still
running finish); the run's exit status is that of the first stage that failed.

Every command runs in a process group of its own; on Ctrl-C or SIGTERM every group still
running is terminated, and the clean-up callables given to the runner run in any case,
also on failure (:meth:`Runner.finish`).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

#: How many lines of a failing stage's log the summary repeats.
LOG_TAIL = 60

Action = Sequence[str] | Callable[[], int]
#: A stage's environment on top of this process's (None unsets a variable), or a callable
#: that gives it when the stage starts (e.g. read from a file an earlier stage wrote).
Env = Mapping[str, str | None] | Callable[[], Mapping[str, str | None]]


@dataclass(frozen=True)
class Stage:
    """One step of a run: a command (argv) or a callable, its environment, or why not."""

    name: str
    action: Action | None = None
    env: Env | None = None
    skip: str | None = None  # why it is left out on purpose (the run still passes)
    not_run: str | None = None  # why it cannot run here (the run fails at the end)


@dataclass
class Result:
    """What became of one stage."""

    name: str
    status: str  # "ok", "FAILED", "skipped", "NOT RUN", "not started"
    seconds: float = 0.0
    returncode: int = 0
    reason: str = ""
    lane: int | None = None  # the lane it ran in, when stages ran side by side
    log: Path | None = None
    started: float = field(default=0.0, repr=False)
    ended: float = field(default=0.0, repr=False)


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: the run stops, the clean-up still runs."""

    def __init__(self, returncode: int) -> None:
        super().__init__(f"interrupted (exit {returncode})")
        self.returncode = returncode


class Runner:
    """Runs stages, remembers what became of each, and cleans up at the end."""

    def __init__(self, log_dir: Path, out: TextIO = sys.stdout, t0: float | None = None) -> None:
        self.log_dir = log_dir
        self.out = out
        self.t0 = time.time() if t0 is None else t0
        self.results: list[Result] = []
        self.cleanups: list[tuple[str, Callable[[], object]]] = []
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._stop = threading.Event()
        self._interrupt: int | None = None

    # ------------------------------------------------------------------ state
    @property
    def failed(self) -> Result | None:
        """The first stage that failed (by the time it ended), if any."""
        failures = [r for r in self.results if r.status == "FAILED"]
        return min(failures, key=lambda r: r.ended) if failures else None

    def record(self, result: Result) -> Result:
        """Add a stage's result (thread-safe)."""
        with self._lock:
            self.results.append(result)
        return result

    def on_exit(self, name: str, action: Callable[[], object]) -> None:
        """Run ``action`` at the end of the run, whatever happened (last added, first run)."""
        self.cleanups.append((name, action))

    # ------------------------------------------------------------------ running
    def _say(self, text: str) -> None:
        with self._lock:
            print(text, file=self.out, flush=True)

    def _call(self, stage: Stage, log: Path | None) -> int:
        action = stage.action
        assert action is not None
        if callable(action):
            return action()
        env = environment(stage.env)
        if log is None:
            self.out.flush()
            proc = subprocess.Popen(list(action), env=env, start_new_session=True)
        else:
            with log.open("wb") as sink:
                proc = subprocess.Popen(list(action), env=env, stdout=sink,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        with self._lock:
            self._procs.add(proc)
        try:
            return proc.wait()
        finally:
            with self._lock:
                self._procs.discard(proc)

    def run(self, stage: Stage, lane: int | None = None, log: Path | None = None) -> Result:
        """Run one stage (or record why it does not run) and return its result."""
        if stage.skip is not None:
            self._say(f"==> {stage.name}: skipped ({stage.skip})")
            return self.record(Result(stage.name, "skipped", reason=stage.skip, lane=lane,
                                      started=time.monotonic()))
        if stage.not_run is not None:
            self._say(f"==> {stage.name}: NOT RUN ({stage.not_run})")
            return self.record(Result(stage.name, "NOT RUN", reason=stage.not_run, lane=lane,
                                      started=time.monotonic()))
        if self._stop.is_set():
            reason = "an earlier stage failed" if self._interrupt is None else "interrupted"
            return self.record(Result(stage.name, "not started", reason=reason, lane=lane,
                                      started=time.monotonic()))
        where = f" (lane {lane}, log {log})" if log is not None else ""
        self._say(f"==> {stage.name}{where}")
        start = time.monotonic()
        try:
            code = self._call(stage, log)
        except Interrupted as stop:
            self.record(Result(stage.name, "FAILED", time.monotonic() - start, stop.returncode,
                               lane=lane, log=log, started=start, ended=time.monotonic()))
            self.interrupt(stop.returncode)
            raise
        except OSError as err:
            self._say(f"{stage.name}: {err}")
            code = 127
        seconds = time.monotonic() - start
        status = "ok" if code == 0 else "FAILED"
        if self._interrupt is not None and code != 0:
            status, code = "FAILED", self._interrupt
        result = self.record(Result(stage.name, status, seconds, code, lane=lane, log=log,
                                    started=start, ended=time.monotonic()))
        if code != 0:
            self._stop.set()
            if log is not None:
                self._say(f"==> {stage.name} FAILED (exit {code}) after {seconds:.0f} s; "
                          f"log: {log}")
        elif log is not None:
            self._say(f"==> {stage.name} done in {seconds:.0f} s")
        return result

    def row(self, stages: Sequence[Stage]) -> bool:
        """Run ``stages`` one after the other on the terminal; False once one failed."""
        for stage in stages:
            self.run(stage)
        return self.failed is None and self._interrupt is None

    def lanes(self, jobs: Sequence[Sequence[Stage]], width: int) -> bool:
        """Run ``jobs`` (each a row of stages) in at most ``width`` lanes side by side.

        Jobs are taken in the order given by whichever lane is free. With ``width`` 1 (or a
        single job) this is :meth:`row`, output on the terminal.
        """
        live = [job for job in jobs if any(runs(stage) for stage in job)]
        if width <= 1 or len(live) <= 1:  # nothing side by side: on the terminal
            return self.row([s for job in jobs for s in job])
        self.log_dir.mkdir(parents=True, exist_ok=True)
        todo: queue.Queue[Sequence[Stage]] = queue.Queue()
        for job in jobs:
            todo.put(job)

        def lane(number: int) -> None:
            while True:
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                for stage in job:
                    self.run(stage, lane=number, log=self.log_dir / f"{slug(stage.name)}.log")

        threads = [threading.Thread(target=lane, args=(n,), daemon=True)
                   for n in range(1, min(width, len(jobs)) + 1)]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)  # short waits: the main thread must see Ctrl-C at once
        except Interrupted as stop:
            self.interrupt(stop.returncode)
            for thread in threads:
                thread.join(30)  # each lane records its stage, terminated
            raise
        return self.failed is None and self._interrupt is None

    # ------------------------------------------------------------------ the end
    def interrupt(self, returncode: int) -> None:
        """Stop: no new stage starts, every command still running is terminated."""
        self._interrupt = returncode
        self._stop.set()
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            terminate(proc)

    def finish(self) -> int:
        """Run the clean-ups, print the summary, and return the run's exit status."""
        self._say("==> stopping what this run started")
        for name, action in reversed(self.cleanups):
            try:
                action()
            except Exception as err:  # noqa: BLE001 - every clean-up runs, whatever failed
                self._say(f"clean-up {name}: {err}")
        code = self.exit_status()
        self._say(summary(self.results, time.time() - self.t0, code))
        return code

    def exit_status(self) -> int:
        """The first failing stage's exit status; 1 when a stage could not run; else 0."""
        if self._interrupt is not None:
            return self._interrupt
        first = self.failed
        if first is not None:
            return first.returncode
        return 1 if any(r.status == "NOT RUN" for r in self.results) else 0


def runs(stage: Stage) -> bool:
    """True for a stage that has something to run (not skipped, not NOT RUN)."""
    return stage.action is not None and stage.skip is None and stage.not_run is None


def environment(extra: Env | None) -> dict[str, str]:
    """This process's environment with ``extra`` on top (None values unset a variable)."""
    overlay = extra() if callable(extra) else (extra or {})
    env = dict(os.environ)
    for key, value in overlay.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def terminate(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM to the process group of ``proc``, SIGKILL after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def slug(name: str) -> str:
    """A file name for a stage name."""
    keep = [c if c.isalnum() or c in ".+-" else "-" for c in name.lower()]
    return "-".join(part for part in "".join(keep).split("-") if part)


def tail(path: Path, lines: int = LOG_TAIL) -> str:
    """The last ``lines`` lines of a log file."""
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        return f"(no log: {err})"
    return "\n".join(text.splitlines()[-lines:])


def summary(results: Sequence[Result], total: float, code: int) -> str:
    """The table printed at the end: every stage in the order it started (or was met), its
    time, what became of it, and why."""
    lines = ["", "==> summary"]
    for r in sorted(results, key=lambda r: r.started):
        when = f"{r.seconds:5.0f} s" if r.status in {"ok", "FAILED"} else "    - "
        lane = f"  [lane {r.lane}]" if r.lane is not None else ""
        note = {"ok": "", "FAILED": f"  FAILED (exit {r.returncode})"}.get(
            r.status, f"  {r.status}: {r.reason}")
        lines.append(f"{when}  {r.name}{lane}{note}")
    lanes = sorted({r.lane for r in results if r.lane is not None})
    if lanes:
        lines.append(f"        (stages marked [lane N] ran side by side, {len(lanes)} lanes; "
                     "their logs are in the files named above)")
    for r in results:
        if r.status == "FAILED" and r.log is not None:
            lines += ["", f"==> the end of {r.name}'s log ({r.log}):", tail(r.log)]
    lines.append(f"{total:5.0f} s  total (exit {code})")
    return "\n".join(lines)
