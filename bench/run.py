"""Benchmark: the lab's docker steps through labkit and through the `docker` CLI, same run.

Each round does, with each tool in turn (alternating which goes first): edit app.py, cached
rebuild (only COPY runs), run with a published port until the app answers, read the logs,
tag for the registry, push (one new layer), history, remove the container. Prints each
step's median time and the ratio labkit / CLI.

Like for like: the CLI is the one on PATH (under `make bench`, the engine's own: 20.10's
without buildx, 28.5's with it) and builds with its own default builder, as `docker build`
does for a user of that engine: BuildKit where the CLI has buildx, the classic builder
where it has not. labkit picks its builder by the same rule, so both sides build with the
same builder; the table says which.

    python bench/run.py [--rounds 7]
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

STEPS = ["build (cached)", "run + answer", "logs", "tag", "push (1 new layer)", "history",
         "remove"]
#: What selects the CLI's builder: left out, so that it builds with its default.
BUILDER_VARIABLES = ("DOCKER_BUILDKIT", "BUILDX_BUILDER")


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
    CLI plugins of the environment's configuration (buildx) stay visible, and no variable
    that would pick a builder other than the CLI's default."""
    user_config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    config_dir.mkdir(parents=True, exist_ok=True)
    if (user_config / "cli-plugins").is_dir():
        (config_dir / "cli-plugins").symlink_to(user_config / "cli-plugins")
    env = {k: v for k, v in os.environ.items() if k not in BUILDER_VARIABLES}
    return env | {"DOCKER_CONFIG": str(config_dir)}


def cli_builder(env: dict[str, str]) -> str:
    """The builder `docker build` uses by default with ``env``'s CLI: BuildKit from CLI 23
    on when it has the buildx plugin, else the classic builder; and the CLI's version."""
    client = subprocess.run(["docker", "version", "--format", "{{.Client.Version}}"],
                            capture_output=True, text=True, env=env).stdout.strip() or "?"
    buildx = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True,
                            env=env).returncode == 0
    major = client.split(".")[0]
    modern = major.isdigit() and int(major) >= 23
    return f"{'BuildKit' if modern and buildx else 'the classic builder'} (CLI {client}" + \
        f"{', buildx' if buildx else ', no buildx'})"


#: The goal for a cached rebuild after an app.py change through labkit (seconds), and for
#: labkit's time against the CLI's on the same builder.
REBUILD_GOAL_S = 0.3
REBUILD_RATIO = 1.05
#: The goal for the whole lab: labkit against the same commands typed.
WHOLE_LAB_RATIO = 1.0


def labkit_builders(builds: list[images.BuildResult]) -> set[str]:
    """Which builders labkit's builds ran on, as their results say."""
    return {b.builder.label for b in builds}


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
    """The labels labkit puts on an app's container, as `docker run` flags."""
    return [a for k, v in settings().labels("app").items() for a in ("--label", f"{k}={v}")]


def cli_build(ctx: Path, name: str, env: dict[str, str]) -> str:
    """`docker build -q -t NAME CONTEXT`, as a learner types it (the CLI's default builder)."""
    return docker_cli("build", "-q", "-t", name, str(ctx), env=env)


def cli_round(ctx: Path, reg: registry.Registry, env: dict[str, str],
              times: dict[str, list[float]]) -> None:
    """The same round with the plain docker CLI (its default builder)."""
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
                 builds: list[images.BuildResult], builder: str) -> str:
    """The cached rebuild after an app.py change: labkit vs `docker build`, against the goal,
    with what the engine rebuilt (layers: the rebuilt steps that made a layer)."""
    lab = statistics.median(times["labkit"]["build (cached)"])
    cli = statistics.median(times["cli"]["build (cached)"])
    rebuilt = [[s.keyword for s in b.rebuilt_steps] for b in builds]
    layers = {sum(k in ("COPY", "ADD", "RUN") for k in r) for r in rebuilt}
    verdict = "within" if lab <= REBUILD_GOAL_S else "OVER"
    ratio = "within" if lab / cli <= REBUILD_RATIO else "OVER"
    return (f"\ncached rebuild after an app.py change: labkit {lab:.3f} s, docker build "
            f"on {builder} {cli:.3f} s, ratio {lab / cli:.2f} ({ratio} {REBUILD_RATIO}); "
            f"rebuilt layers {'/'.join(map(str, sorted(layers)))} "
            f"(rebuilt: {', '.join(rebuilt[-1])}); "
            f"{verdict} the {REBUILD_GOAL_S} s goal")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    use(replace(settings(), user=f"bench{uuid.uuid4().hex[:6]}"))
    from labkit import cleanup

    info = engine.info()
    reg = registry.start_registry()
    registry.login(reg)
    user, password = registry.credentials(reg)
    with tempfile.TemporaryDirectory() as tmp:
        env = cli_env(Path(tmp) / "docker-config")
        builder = cli_builder(env)
        docker_cli("login", reg.address, "-u", user, "--password-stdin", stdin=password, env=env)
        ctx_l, ctx_c = Path(tmp) / "labkit", Path(tmp) / "cli"
        for ctx in (ctx_l, ctx_c):
            ctx.mkdir()
            (ctx / "Dockerfile").write_text(DOCKERFILE)
        times: dict[str, dict[str, list[float]]] = {"labkit": defaultdict(list),
                                                   "cli": defaultdict(list)}
        builds: list[images.BuildResult] = []
        try:
            for round_no in range(args.rounds + 1):  # round 0 warms the cache, not counted
                for ctx in (ctx_l, ctx_c):  # a message of its own: no cache hit on
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
    whole = total_l / total_c
    print(f"{'whole lab':<24}{total_l:>10.3f}{total_c:>10.3f}{whole:>8.2f}  "
          f"({'within' if whole <= WHOLE_LAB_RATIO else 'OVER'} {WHOLE_LAB_RATIO})")
    print(rebuild_line(times, builds, builder))
    print(f"\nmedian of {args.rounds} alternating rounds; engine Docker {info.version}, "
          f"{info.store_label}; the CLI builds with {builder}, its default; "
          f"labkit's builds: {', '.join(sorted(labkit_builders(builds))) or '?'} "
          f"(worst step ratio: {worst:.2f})")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback from deep in a build stream
        print("bench/run.py: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
