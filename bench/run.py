"""Benchmark: the lab's docker steps through labkit and through the `docker` CLI, same run.

Each round does, with each tool in turn (alternating which goes first): edit app.py, cached
rebuild (only COPY runs), run with a published port until the app answers, read the logs,
tag for the registry, push (one new layer), history, remove the container. Prints each
step's median time and the ratio labkit / CLI.

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
from labkit.config import settings, use
from labkit.course import DOCKERFILE, app_source

STEPS = ["build (cached)", "run + answer", "logs", "tag", "push (1 new layer)", "history",
         "remove"]


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
    """Run the docker CLI; return its stdout."""
    out = subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True,
                         check=True, env=env)
    return out.stdout


def labkit_round(ctx: Path, reg: registry.Registry, times: dict[str, list[float]]) -> None:
    """One round of the lab's steps through labkit."""
    app_holder: dict[str, containers.RunningApp] = {}
    ref = registry.repository_for("bench-labkit", reg)
    times["build (cached)"].append(timed(lambda: images.build(ctx, "bench-labkit", show=False)))
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


def cli_round(ctx: Path, reg: registry.Registry, env: dict[str, str],
              times: dict[str, list[float]]) -> None:
    """The same round with the plain docker CLI."""
    s = settings()
    name = s.image_name("bench-cli")
    cname = s.container_name("bench-cli")
    labels = [a for k, v in s.labels("bench").items() for a in ("--label", f"{k}={v}")]
    ref = registry.repository_for("bench-cli", reg)
    times["build (cached)"].append(timed(lambda: docker_cli("build", "-q", *labels, "-t", name,
                                                            str(ctx), env=env)))

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


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    use(replace(settings(), user=f"bench{uuid.uuid4().hex[:6]}"))
    from labkit import cleanup

    reg = registry.start_registry()
    registry.login(reg)
    user, password = registry.credentials(reg)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DOCKER_CONFIG": str(Path(tmp) / "docker-config")}
        docker_cli("login", reg.address, "-u", user, "--password-stdin", stdin=password, env=env)
        ctx_l, ctx_c = Path(tmp) / "labkit", Path(tmp) / "cli"
        for ctx in (ctx_l, ctx_c):
            ctx.mkdir()
            (ctx / "Dockerfile").write_text(DOCKERFILE)
        times: dict[str, dict[str, list[float]]] = {"labkit": defaultdict(list),
                                                   "cli": defaultdict(list)}
        try:
            for round_no in range(args.rounds + 1):  # round 0 warms the cache, not counted
                for ctx in (ctx_l, ctx_c):  # a message of its own: no cache hit on the other's
                    message = f"hello {ctx.name} round {round_no} {uuid.uuid4().hex[:6]}!"
                    (ctx / "app.py").write_text(app_source(message))
                sink: dict[str, dict[str, list[float]]] = (
                    {"labkit": defaultdict(list), "cli": defaultdict(list)} if round_no == 0
                    else times)
                order = ["labkit", "cli"] if round_no % 2 else ["cli", "labkit"]
                for tool in order:
                    if tool == "labkit":
                        labkit_round(ctx_l, reg, sink["labkit"])
                    else:
                        cli_round(ctx_c, reg, env, sink["cli"])
                print(f"round {round_no}/{args.rounds} done", file=sys.stderr)
        finally:
            subprocess.run(["docker", "rm", "-f", settings().container_name("bench-cli")],
                           capture_output=True)
            cleanup.clean(show=False)
    print(f"\n{'step':<22}{'labkit s':>10}{'docker s':>10}{'ratio':>8}")
    total_l = total_c = 0.0
    worst = 0.0
    for step in STEPS:
        lab = statistics.median(times["labkit"][step])
        cli = statistics.median(times["cli"][step])
        total_l, total_c = total_l + lab, total_c + cli
        worst = max(worst, lab / cli)
        print(f"{step:<22}{lab:>10.3f}{cli:>10.3f}{lab / cli:>8.2f}")
    print(f"{'whole lab':<22}{total_l:>10.3f}{total_c:>10.3f}{total_l / total_c:>8.2f}")
    print(f"\nmedian of {args.rounds} alternating rounds; engine {engine.info().version}; "
          f"target: every ratio <= 1.10 (worst: {worst:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
