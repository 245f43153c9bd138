"""How many learners this machine holds: a classroom of its own, with 1, 2, 3... at once.

For each K, K learners start their servers at once through the hub's REST API; the script
times "start server" -> "the hub says ready" -> "the first cell of a notebook ran", then
runs the same course steps in every server at once (`jupyter execute`, as in the classroom
test) and reads each learner's memory (their server + their engine, which holds what they
run). It prints a Markdown table and the learner count at which a step would take twice
as long as for one learner alone (measured up to the largest K, a straight line beyond).

    .venv/bin/python bench/classroom.py --max 3        (as root; `make images` first)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "classroom"))
from hubclient import Hub, KeepAlive, first_cell_notebook  # noqa: E402

STEPS = ("02-build-image.ipynb", "03-run-container.ipynb")
UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mem_bytes(text: str) -> int:
    number, unit = re.match(r"([\d.]+)\s*([A-Za-z]+)", text).groups()
    return int(float(number) * UNITS[unit])


def memory(hub: Hub, name: str) -> int:
    out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}",
                          hub.server_container(name), hub.engine_container(name)],
                         capture_output=True, text=True, check=True).stdout
    return sum(mem_bytes(line.split("/")[0]) for line in out.splitlines())


def round_of(hub: Hub, k: int, first: Path, alive: KeepAlive) -> dict:
    names = [f"k{k}n{i}" for i in range(1, k + 1)]

    def start(name: str) -> tuple[float, float]:
        hub.create_user(name)
        t0 = time.monotonic()
        hub.start_server(name)
        ready = hub.wait_ready(name)
        alive.add(name, hub.token_for(name, [f"access:servers!user={name}"]))
        subprocess.run(["docker", "cp", str(first),
                        f"{hub.server_container(name)}:/tmp/first-cell.ipynb"], check=True)
        done = hub.exec(name, "jupyter", "execute", "/tmp/first-cell.ipynb")
        if done.returncode:
            raise RuntimeError(done.stderr[-2000:])
        return ready, time.monotonic() - t0

    def steps(name: str) -> dict[str, float]:
        out = {}
        for step in STEPS:
            seconds, done = hub.execute(name, step)
            if done.returncode:
                raise RuntimeError(f"{name} {step}: {done.stderr[-2000:]}")
            out[step[:2]] = seconds
        return out

    with ThreadPoolExecutor(k) as pool:
        started = list(pool.map(start, names))
        stepped = list(pool.map(steps, names))
    mem = [memory(hub, name) for name in names]
    for name in names:
        alive.drop(name)
        hub.stop_server(name)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {"k": k, "ready_s": mean([r for r, _ in started]),
            "first_cell_s": mean([f for _, f in started]),
            **{f"step{s[:2]}_s": mean([t[s[:2]] for t in stepped]) for s in STEPS},
            "memory_mib": mean(mem) / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max", type=int, default=3, help="largest number of learners at once")
    args = parser.parse_args()
    name = "labkit-classroom-bench"
    env = dict(os.environ, CLASSROOM_NAME=name, LEARNERS=str(args.max),
               CLASSROOM_PORT=str(free_port()), CLASSROOM_HUB_PORT=str(free_port()),
               CLASSROOM_PROXY_API_PORT=str(free_port()),
               CLASSROOM_SERVICE_PORT=str(free_port()))
    script = str(ROOT / "scripts/classroom.sh")
    subprocess.run([script, "start"], env=env, check=True)
    try:
        secret = dict(line.split("=", 1) for line in
                      (ROOT / ".cache/classroom" / name / "secrets.env").read_text().split())
        hub = Hub(f"http://127.0.0.1:{env['CLASSROOM_PORT']}", secret["CLASSROOM_ADMIN_TOKEN"],
                  name)
        first = first_cell_notebook(Path(tempfile.mkdtemp()))
        with KeepAlive(hub) as alive:
            rows = [round_of(hub, k, first, alive) for k in range(1, args.max + 1)]
    finally:
        subprocess.run([script, "stop"], env=env | {"CLEAN": "1"}, check=False)
    print(json.dumps(rows, indent=2))
    base = {key: rows[0][key] for key in rows[0] if key.startswith("step")}
    print("\n| learners at once | start → ready | start → first cell | "
          + " | ".join(f"step {k[4:6]}" for k in base) + " | memory per learner |")
    print("|---|---|---|" + "---|" * len(base) + "---|")
    for row in rows:
        cells = " | ".join(f"{row[k]:.0f} s ({row[k] / base[k]:.1f}×)" for k in base)
        print(f"| {row['k']} | {row['ready_s']:.0f} s | {row['first_cell_s']:.0f} s | {cells} "
              f"| {row['memory_mib']:.0f} MiB |")
    for key in base:  # slowdown = a + b*k through the measured points (least squares)
        ks = [r["k"] for r in rows]
        ys = [r[key] / base[key] for r in rows]
        mk, my = sum(ks) / len(ks), sum(ys) / len(ys)
        var = sum((x - mk) ** 2 for x in ks)
        b = sum((x - mk) * (y - my) for x, y in zip(ks, ys, strict=True)) / var if var else 0
        a = my - b * mk
        twice = (2 - a) / b if b > 0 else float("inf")
        print(f"step {key[4:6]}: twice as slow at about {twice:.1f} learners "
              f"(slowdown ≈ {a:.2f} + {b:.2f}·k)")


if __name__ == "__main__":
    main()
