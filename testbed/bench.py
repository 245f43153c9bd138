"""`make bench`: the benchmarks on the oldest and the newest engine of the engine matrix.

    python -m testbed.bench [--rounds N] [--engines "SPEC ..."] [--only run|layers|notebooks]

For each engine SPEC (see testbed.engines; default: 20.10 and 28.5+containerd+api1.44, or
BENCH_ENGINES) start that engine stand-in as a Docker-in-Docker engine of its own
(testbed.dind, with a state directory of its own under .cache/, driven by that engine's
own docker CLI), run bench/run.py (the lab's steps, labkit vs the docker CLI on the same
builder, and the cached rebuild against its goals),
bench/layers.py (layer analysis vs `docker image save`) and the course's cell times
(`python -m testbed.notebooks time`: every notebook run twice, the warm run's cell times
against the course's goals) against it, each under a header naming the engine, then
remove that engine. Whatever this run started is removed on exit, also on failure or
Ctrl-C; the exit status is the first failure's. --rounds N is passed to bench/run.py and
bench/layers.py (the notebooks run twice).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labkit import engine
from testbed import dind, engines

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ("run", "layers", "notebooks")
#: Exit statuses of an interrupted run (Ctrl-C, SIGTERM): no further engine is started.
INTERRUPTED = (130, 143)
#: What each benchmark is called in its header and in the times.
TITLES = {"run": "bench/run.py", "layers": "bench/layers.py",
          "notebooks": "the course's cell times (testbed.notebooks time)"}


def state_dir(spec: engines.EngineSpec) -> Path:
    """The state directory of the benchmark's engine ``spec``."""
    return ROOT / ".cache" / f"dind-bench-{spec.text.replace('+', '-')}"


def header(what: str, spec: str) -> str:
    """The line that names a benchmark and the engine of the environment it runs against."""
    i = engine.info()
    return (f"\n=== {what} on {spec}: Docker {i.version}, {i.store_label}, "
            f"API {i.api_version} (minimum {i.min_api_version}) at {i.host} ===")


def command(which: str, rounds: list[str]) -> list[str]:
    """The command of one benchmark (run against the engine of its environment)."""
    if which == "notebooks":
        return [sys.executable, "-m", "testbed.notebooks", "time"]
    return [sys.executable, str(ROOT / "bench" / f"{which}.py"), *rounds]


class Bench:
    """The run: its engines one after the other, and a line of time per step."""

    def __init__(self, only: str | None, rounds: list[str]) -> None:
        self.only, self.rounds = only, rounds
        self.times: list[str] = []

    def time(self, started: float, what: str) -> None:
        """Remember how long ``what`` took."""
        self.times.append(f"{time.monotonic() - started:5.0f} s  {what}")

    def on(self, spec: engines.EngineSpec, base: dict[str, str]) -> int:
        """Start ``spec``, run the benchmarks against it, stop it (dind.run_on, also on
        failure or interruption); the first failure's status, 130/143 when interrupted."""
        print(f"\n==> engine {spec.text}", flush=True)
        started = time.monotonic()

        def benchmarks(session: dind.Dind) -> int:
            self.time(started, f"{spec.text}: start")
            rc = 0
            for which in BENCHMARKS:
                if self.only and self.only != which:
                    continue
                t0 = time.monotonic()
                env = session.environ(base)  # the engine's own docker CLI first on PATH
                title = [sys.executable, "-m", "testbed.bench", "--header", TITLES[which],
                         spec.text]
                brc = subprocess.run(title, env=env, cwd=ROOT, check=False).returncode or \
                    subprocess.run(command(which, self.rounds), env=env, cwd=ROOT,
                                   check=False).returncode
                self.time(t0, f"{spec.text}: {TITLES[which]}"
                          + (f" FAILED (exit {brc})" if brc else ""))
                if brc in INTERRUPTED:
                    return brc
                rc = rc or brc
            return rc

        rc = dind.run_on(dind.own_engine(spec, state_dir(spec)), "bench", benchmarks)
        if not any(line.endswith(f"{spec.text}: start") for line in self.times):
            self.time(started, f"{spec.text}: the engine did not start")
        return rc


def main(argv: list[str] | None = None) -> int:
    """Prepare the images, then bench each engine in turn; print the times."""
    parser = argparse.ArgumentParser(prog="python -m testbed.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", help="passed to bench/run.py and bench/layers.py")
    parser.add_argument("--engines", default=os.environ.get("BENCH_ENGINES")
                        or " ".join(engines.BENCH_SPECS))
    parser.add_argument("--only", choices=BENCHMARKS)
    parser.add_argument("--header", nargs=2, metavar=("WHAT", "SPEC"),
                        help="only print the header naming the environment's engine")
    args = parser.parse_args(argv)
    if args.header:
        print(header(*args.header), flush=True)
        return 0
    specs = [engines.parse(s) for s in args.engines.split()]
    dind.exit_on_sigterm()
    bench = Bench(args.only, ["--rounds", args.rounds] if args.rounds else [])
    t0, rc, host_engine_ours = time.monotonic(), 0, False
    # labkit's per-user state (the bench's registry password) lives and dies with this run.
    with tempfile.TemporaryDirectory() as labkit_state:
        base = os.environ | {"LABKIT_STATE_DIR": labkit_state}
        try:
            if subprocess.run(["docker", "info"], capture_output=True,
                              check=False).returncode:
                subprocess.run([str(ROOT / "scripts" / "engine.sh"), "start"], check=True)
                host_engine_ours = True
            prepare = [str(Path(sys.executable).parent / "labkit"), "prepare"]
            if os.environ.get("LABKIT_OFFLINE") == "1":
                prepare.append("--offline")
            if os.environ.get("LABKIT_TRUST_HOST_CA") == "1":
                prepare.append("--trust-host-ca")
            # the images each engine is given
            subprocess.run(prepare, env=base, stdout=subprocess.DEVNULL, check=True)
            for spec in specs:
                status = bench.on(spec, base)
                if status in INTERRUPTED:
                    rc = status
                    break
                rc = rc or status
        except subprocess.CalledProcessError as exc:
            rc = rc or exc.returncode
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
        except KeyboardInterrupt:
            rc = 130
        finally:
            if host_engine_ours:
                subprocess.run([str(ROOT / "scripts" / "engine.sh"), "stop"], check=False)
            print()
            print("\n".join(bench.times))
            print(f"{time.monotonic() - t0:5.0f} s  whole bench (exit {rc})")
    return rc


if __name__ == "__main__":
    sys.exit(main())
