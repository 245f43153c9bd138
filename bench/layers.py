"""Benchmark: layer analysis time and peak memory against `docker image save > /dev/null`.

Builds an image of about 1 GB (the base plus two random 400 MB layers writing the
same file, so 400 MB are wasted), measures for it and for the largest course image:

- the floor: ``docker image save IMAGE > /dev/null`` (median of the rounds);
- ``labkit.layers.analysis.analyze(IMAGE)`` in a fresh child process: wall time, and the child's
  peak resident memory (VmHWM), with the same child's memory after its imports alone.

Targets: analysis ≤ 2 × the floor, and peak memory < 150 MB whatever the image size.
Run: ``python bench/layers.py [--size-mb 400] [--rounds 3] [--keep]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import subprocess
import sys
import tarfile
import time

import docker

from labkit import engine
from labkit.engine import BASE_IMAGE, DIND_IMAGE, REGISTRY_IMAGE, settings

CHILD = r"""
import json, sys, time
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
import docker, pandas
from labkit import engine, layers
after_import = hwm()
client = engine.connect()
t = time.perf_counter()
result = layers.analyze(sys.argv[1], client=client, cache=False)  # a real read, every time
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "peak_bytes": hwm(), "import_bytes": after_import,
                  "files": len(result.files), "total_bytes": result.total_bytes,
                  "wasted_bytes": result.wasted_bytes, "efficiency": result.efficiency}))
"""

MB = 1_000_000


def build_big(client: docker.DockerClient, size_mb: int) -> str:
    """FROM the base, two layers writing /big1 with `size_mb` MB of random bytes."""
    tag = settings().image_name("bench-layers-big")
    dockerfile = (f"FROM {BASE_IMAGE}\n"
                  f"RUN head -c {size_mb}M /dev/urandom > /big1\n"
                  f"RUN head -c {size_mb}M /dev/urandom > /big1\n").encode()
    ctx = io.BytesIO()
    with tarfile.open(fileobj=ctx, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    ctx.seek(0)
    client.images.build(fileobj=ctx, custom_context=True, tag=tag, pull=False, rm=True,
                        forcerm=True)
    return tag


def save_floor(image: str) -> float:
    t = time.perf_counter()
    subprocess.run(["docker", "image", "save", image], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def analyse_in_child(image: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, image], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def largest_course_image(client: docker.DockerClient) -> str | None:
    present = []
    for name in (BASE_IMAGE, REGISTRY_IMAGE, DIND_IMAGE):
        with contextlib.suppress(docker.errors.ImageNotFound):
            present.append((client.images.get(name).attrs["Size"], name))
    return max(present)[1] if present else None


def measure(image: str, size: int, rounds: int) -> dict:
    floors, runs = [], []
    for _ in range(rounds):
        floors.append(save_floor(image))
        runs.append(analyse_in_child(image))
    seconds = statistics.median(r["seconds"] for r in runs)
    floor = statistics.median(floors)
    last = runs[-1]
    return {"image": image, "size_MB": size / MB, "files": last["files"],
            "save_floor_s": floor, "analysis_s": seconds, "ratio": seconds / floor,
            "peak_MB": max(r["peak_bytes"] for r in runs) / MB,
            "imports_MB": last["import_bytes"] / MB,
            "wasted_MB": last["wasted_bytes"] / MB, "efficiency": last["efficiency"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the big image afterwards")
    args = parser.parse_args(argv)
    client = engine.connect()
    rows = []
    big = None
    try:
        course = largest_course_image(client)
        if course:
            rows.append(measure(course, client.images.get(course).attrs["Size"], args.rounds))
        t = time.perf_counter()
        big = build_big(client, args.size_mb)
        print(f"built {big} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        rows.append(measure(big, client.images.get(big).attrs["Size"], args.rounds))
    finally:
        if big and not args.keep:
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(big, force=True)
    cols = ["image", "size_MB", "files", "save_floor_s", "analysis_s", "ratio", "peak_MB",
            "imports_MB", "wasted_MB", "efficiency"]
    print(" | ".join(cols))
    ok = True
    for r in rows:
        print(" | ".join(f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
        ok = ok and r["ratio"] <= 2.0 and r["peak_MB"] < 150
    print(f"targets (analysis ≤ 2× floor, peak < 150 MB): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
