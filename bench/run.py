"""Benchmark: the lab's docker steps through labkit and through the `docker` CLI, same run.

Each round does, with each tool in turn (alternating which goes first): edit app.py, cached
rebuild (only COPY runs), run with a published port until the app answers, read the logs,
tag for the registry, push (one new layer), history, remove the container. Prints each
step's median time and the ratio labkit / CLI.

Like for like: labkit drives the classic builder through the Engine API, so the CLI builds
with ``DOCKER_BUILDKIT=0`` too (Docker 23+ would otherwise use BuildKit). On such engines
one extra row, for information, times the CLI's BuildKit cached rebuild (its own context,
its own cache) when this machine's CLI can build with BuildKit (the buildx plugin); if it
cannot, the row is skipped and the reason printed.

    python bench/run.py [--rounds 7] [--buildkit auto|no]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import requests

from labkit import containers, engine, images, registry
from labkit.course import DOCKERFILE, app_source
from labkit.engine import settings, use
from labkit.images import CLASSIC_BUILDER_ENV

STEPS = ["build (cached)", "run + answer", "logs", "tag", "push (1 new layer)", "history",
         "remove"]
#: The extra, informational row: the CLI's own default builder on Docker 23+.
BUILDKIT_STEP = "build (cached) BuildKit"
BUILDKIT_ENV = {"DOCKER_BUILDKIT": "1"}


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn`` took."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def wait_http(url: str, timeout: float = 30) -> None:
    """Poll ``url`` until it answers (the same loop for both tools)."""
    deadline = time.monotonic() + timeout
    with requests.Session() as s:
        s.trust_env = False
        while True:
            try:
                if s.get(url, timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(url)
            time.sleep(0.05)


def docker_cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    """Run the docker CLI; return its stdout (its stderr in the error when it fails)."""
    out = subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True,
                         env=env)
    if out.returncode:
        raise RuntimeError(f"docker {' '.join(args)} failed ({out.returncode}): "
                           f"{out.stderr.strip()[-800:]}")
    return out.stdout


def cli_env(config_dir: Path) -> dict[str, str]:
    """The CLI's environment: a private DOCKER_CONFIG (the bench's own login), in which the
    user's CLI plugins (buildx) stay visible, and the classic builder, as labkit uses."""
    user_config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    config_dir.mkdir(parents=True, exist_ok=True)
    if (user_config / "cli-plugins").is_dir():
        (config_dir / "cli-plugins").symlink_to(user_config / "cli-plugins")
    return {**os.environ, "DOCKER_CONFIG": str(config_dir), **CLASSIC_BUILDER_ENV}


def buildkit_unavailable(env: dict[str, str], engine_version: str) -> str | None:
    """Why the CLI's BuildKit row cannot be measured here, or None when it can be tried."""
    if engine.legacy_cli_builder(engine_version):
        return (f"Docker {engine_version} < 23: the CLI's default builder there is the "
                "classic one, measured above")
    client = subprocess.run(["docker", "version", "--format", "{{.Client.Version}}"],
                            capture_output=True, text=True, env=env).stdout.strip() or "?"
    probe = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True,
                           env={**env, **BUILDKIT_ENV})
    if probe.returncode:
        said = (probe.stderr or probe.stdout).strip().splitlines()
        return (f"the docker CLI here ({client}) has no buildx plugin, which it needs to "
                f"build with BuildKit (`docker buildx version`: {said[0] if said else '?'})")
    return None


#: The goal for a cached rebuild after an app.py change through labkit (seconds).
REBUILD_GOAL_S = 0.3


def labkit_round(ctx: Path, reg: registry.Registry, times: dict[str, list[float]],
                 builds: list[images.BuildResult] | None = None) -> None:
    """One round of the lab's steps through labkit (each build's result into ``builds``)."""
    app_holder: dict[str, containers.RunningApp] = {}
    ref = registry.repository_for("bench-labkit", reg)
    built: dict[str, images.BuildResult] = {}
    times["build (cached)"].append(timed(lambda: built.setdefault(
        "r", images.build(ctx, "bench-labkit", show=False))))
    if builds is not None:
        builds.append(built["r"])
    times["run + answer"].append(timed(lambda: app_holder.setdefault(
        "app", containers.run(settings().image_name("bench-labkit"), name="bench-labkit"))))
    app = app_holder["app"]
    times["logs"].append(timed(app.logs))
    times["tag"].append(timed(lambda: registry.tag_for_registry(
        settings().image_name("bench-labkit"), "bench-labkit", registry=reg)))
    times["push (1 new layer)"].append(timed(lambda: registry.push(ref, registry=reg,
                                                                   show=False)))
    times["history"].append(timed(lambda: images.history(settings().image_name("bench-labkit"))))
    times["remove"].append(timed(app.remove))


def cli_labels() -> list[str]:
    return [a for k, v in settings().image_labels().items() for a in ("--label", f"{k}={v}")]


def cli_build(ctx: Path, name: str, env: dict[str, str]) -> str:
    """`docker image build -q` of ``ctx`` (the builder is whatever ``env`` selects)."""
    return docker_cli("image", "build", "-q", *cli_labels(), "-t", name, str(ctx), env=env)


def cli_round(ctx: Path, reg: registry.Registry, env: dict[str, str],
              times: dict[str, list[float]]) -> None:
    """The same round with the plain docker CLI (classic builder: DOCKER_BUILDKIT=0)."""
    s = settings()
    name = s.image_name("bench-cli")
    cname = s.container_name("bench-cli")
    labels = cli_labels()
    ref = registry.repository_for("bench-cli", reg)
    times["build (cached)"].append(timed(lambda: cli_build(ctx, name, env)))

    def run() -> None:
        docker_cli("run", "-d", "--name", cname, *labels, "-p",
                   f"{engine.bind_ip()}::5000", name, env=env)
        port = docker_cli("port", cname, "5000/tcp", env=env).split(":")[-1].strip()
        wait_http(f"http://{engine.publish_host()}:{port}/")

    times["run + answer"].append(timed(run))
    times["logs"].append(timed(lambda: docker_cli("logs", cname, env=env)))
    times["tag"].append(timed(lambda: docker_cli("tag", name, ref, env=env)))
    times["push (1 new layer)"].append(timed(lambda: docker_cli("push", "-q", ref, env=env)))
    times["history"].append(timed(lambda: docker_cli("history", name, env=env)))
    times["remove"].append(timed(lambda: docker_cli("rm", "-f", cname, env=env)))


def rebuild_line(times: dict[str, dict[str, list[float]]],
                 builds: list[images.BuildResult]) -> str:
    """The cached rebuild after an app.py change: labkit vs `docker build`, against the goal,
    with what the engine rebuilt (layers: steps that made a layer; LABEL steps)."""
    lab = statistics.median(times["labkit"]["build (cached)"])
    cli = statistics.median(times["cli"]["build (cached)"])
    rebuilt = [[s.keyword for s in b.rebuilt_steps] for b in builds]
    layers = {sum(k in ("COPY", "ADD", "RUN") for k in r) for r in rebuilt}
    labels = {r.count("LABEL") for r in rebuilt}
    verdict = "within" if lab <= REBUILD_GOAL_S else "OVER"
    return (f"\ncached rebuild after an app.py change: labkit {lab:.3f} s, docker build "
            f"(classic builder) {cli:.3f} s, ratio {lab / cli:.2f}; rebuilt layers "
            f"{'/'.join(map(str, sorted(layers)))}, LABEL steps "
            f"{'/'.join(map(str, sorted(labels)))} (rebuilt: {', '.join(rebuilt[-1])}); "
            f"{verdict} the {REBUILD_GOAL_S} s goal")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--buildkit", choices=["auto", "no"], default="auto",
                        help="auto: time the CLI's BuildKit cached rebuild too, on Docker 23+ "
                             "when the CLI can (an extra row, for information)")
    args = parser.parse_args(argv)
    use(replace(settings(), user=f"bench{uuid.uuid4().hex[:6]}"))
    from labkit import cleanup

    info = engine.info()
    reg = registry.start_registry()
    registry.login(reg)
    user, password = registry.credentials(reg)
    with tempfile.TemporaryDirectory() as tmp:
        env = cli_env(Path(tmp) / "docker-config")
        docker_cli("login", reg.address, "-u", user, "--password-stdin", stdin=password, env=env)
        no_buildkit = ("not asked (--buildkit no)" if args.buildkit == "no"
                       else buildkit_unavailable(env, info.version))
        ctx_l, ctx_c, ctx_b = Path(tmp) / "labkit", Path(tmp) / "cli", Path(tmp) / "buildkit"
        for ctx in (ctx_l, ctx_c, ctx_b):
            ctx.mkdir()
            (ctx / "Dockerfile").write_text(DOCKERFILE)
        bk_name, bk_env = settings().image_name("bench-cli-buildkit"), {**env, **BUILDKIT_ENV}
        times: dict[str, dict[str, list[float]]] = {"labkit": defaultdict(list),
                                                   "cli": defaultdict(list)}
        builds: list[images.BuildResult] = []
        try:
            for round_no in range(args.rounds + 1):  # round 0 warms the cache, not counted
                for ctx in (ctx_l, ctx_c, ctx_b):  # a message of its own: no cache hit on
                    message = f"hello {ctx.name} round {round_no} {uuid.uuid4().hex[:6]}!"
                    (ctx / "app.py").write_text(app_source(message))  # another's build
                sink: dict[str, dict[str, list[float]]] = (
                    {"labkit": defaultdict(list), "cli": defaultdict(list)} if round_no == 0
                    else times)
                order = ["labkit", "cli"] if round_no % 2 else ["cli", "labkit"]
                for tool in order:
                    if tool == "labkit":
                        labkit_round(ctx_l, reg, sink["labkit"], builds if round_no else None)
                    else:
                        cli_round(ctx_c, reg, env, sink["cli"])
                if no_buildkit is None:  # BuildKit has its own cache: its own context
                    try:
                        seconds = timed(lambda: cli_build(ctx_b, bk_name, bk_env))
                    except RuntimeError as exc:
                        if round_no:
                            raise
                        no_buildkit = f"the first BuildKit build failed: {exc}"
                    else:
                        sink["cli"][BUILDKIT_STEP].append(seconds)
                print(f"round {round_no}/{args.rounds} done", file=sys.stderr)
        finally:
            subprocess.run(["docker", "rm", "-f", settings().container_name("bench-cli")],
                           capture_output=True)
            cleanup.clean(show=False)
    print(f"\n{'step':<24}{'labkit s':>10}{'docker s':>10}{'ratio':>8}")
    total_l = total_c = 0.0
    worst = 0.0
    for step in STEPS:
        lab = statistics.median(times["labkit"][step])
        cli = statistics.median(times["cli"][step])
        total_l, total_c = total_l + lab, total_c + cli
        worst = max(worst, lab / cli)
        print(f"{step:<24}{lab:>10.3f}{cli:>10.3f}{lab / cli:>8.2f}")
    print(f"{'whole lab':<24}{total_l:>10.3f}{total_c:>10.3f}{total_l / total_c:>8.2f}")
    if no_buildkit is None:
        lab = statistics.median(times["labkit"]["build (cached)"])
        cli = statistics.median(times["cli"][BUILDKIT_STEP])
        print(f"{BUILDKIT_STEP + ' *':<24}{lab:>10.3f}{cli:>10.3f}{lab / cli:>8.2f}")
        print("* labkit's classic build vs the CLI's BuildKit one (its default on Docker 23+):"
              " for information, not in 'whole lab' nor in the target")
    else:
        print(f"({BUILDKIT_STEP}: skipped, {no_buildkit})")
    print(rebuild_line(times, builds))
    print(f"\nmedian of {args.rounds} alternating rounds; engine Docker {info.version}, "
          f"{info.store_label}; CLI builds with DOCKER_BUILDKIT=0 (the classic builder, as "
          f"labkit); target: every ratio <= 1.10 (worst: {worst:.2f})")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback from deep in a build stream
        print("bench/run.py: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
