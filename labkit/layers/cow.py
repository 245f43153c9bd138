"""Copy-on-write: what a running container changes on top of its image's layers.

A container adds one thin writable layer over the image's read-only layers. Changing a
file copies it up from the lower layer that holds it; deleting one leaves a whiteout.
Starting many containers from one image therefore adds only their writable layers.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import docker
from docker.models.containers import Container
from docker.utils import decode_json_header

from labkit import engine
from labkit.engine import ContainerFailed, DockerCommand, settings
from labkit.engine import docker as docker_cmd
from labkit.layers.analysis import ImageLayers, analyze

if TYPE_CHECKING:
    import pandas as pd

KINDS = {0: "changed", 1: "added", 2: "deleted"}
DIFF_COLUMNS = ["path", "change", "size_bytes", "lower_layer", "lower_bytes",
                "lower_instruction"]
DEMO_COLUMNS = ["containers", "start_seconds", "seconds_per_container", "written_bytes",
                "size_rw_bytes", "size_rw_per_container", "layers_bytes_before",
                "layers_bytes_after", "layers_added_bytes", "image_bytes", "full_copies_bytes"]
#: Each demo container writes a 4096-byte file into its own layer, says so on its output,
#: then waits (a shell, not Python: ten interpreters starting at once cost seconds, and the
#: demo is about disk). Its output, not a look at its files, tells that the note is written:
#: on the containerd store, asking for a file's details mounts the container's file system
#: and adds folders to its writable layer, which would change what is measured.
DEMO_NOTE, DEMO_NOTE_BYTES, DEMO_READY = "/tmp/cow-note.txt", 4096, "note written"
DEMO_COMMAND = ["sh", "-c", f"printf '%{DEMO_NOTE_BYTES}s' '' > {DEMO_NOTE} && "
                f"echo '{DEMO_READY}' && exec sleep 300"]


def _cli(client: docker.DockerClient | None) -> docker.DockerClient:
    from labkit.engine import client as default_client

    return client or default_client()


def _container(ref: str | Container, cli: docker.DockerClient) -> Container:
    return ref if isinstance(ref, Container) else cli.containers.get(ref)


def path_stat(container: str | Container, path: str,
              client: docker.DockerClient | None = None) -> dict[str, Any] | None:
    """``{name, size, mode, mtime, linkTarget}`` of a path in a container, without its data.

    Uses ``HEAD /containers/{id}/archive`` (what ``docker cp`` asks first); None if absent.
    """
    cli = _cli(client)
    cid = container.id if isinstance(container, Container) else container
    res = cli.api.head(cli.api._url("/containers/{0}/archive", cid), params={"path": path},
                       timeout=30)
    header = res.headers.get("X-Docker-Container-Path-Stat")
    if res.status_code != 200 or not header:
        return None
    stat: dict[str, Any] = decode_json_header(header)
    return stat


def diff(container: str | Container, analysis: ImageLayers | None = None,
         client: docker.DockerClient | None = None) -> pd.DataFrame:
    """``docker container diff`` joined with the image's layers (DIFF_COLUMNS).

    For each path: ``change`` (changed / added / deleted), its ``size_bytes`` now in the
    container (regular files only), and the ``lower_layer`` it came from with that copy's
    size and instruction. ``analysis`` is the image's layer analysis (computed if omitted).
    """
    import pandas as pd
    cli = _cli(client)
    ctr = _container(container, cli)
    if analysis is None:
        analysis = analyze(ctr.attrs["Image"], client=cli)
    rows = []
    for item in cli.api.diff(ctr.id) or []:
        path, change = item["Path"], KINDS.get(item["Kind"], str(item["Kind"]))
        size = None
        if change != "deleted":
            stat = path_stat(ctr, path, client=cli)
            if stat is not None and not (int(stat.get("mode", 0)) >> 31) & 1:  # not a dir
                size = int(stat.get("size", 0))
        lower = analysis.owner(path)
        rows.append({
            "path": path, "change": change, "size_bytes": size,
            "lower_layer": lower[0] if lower else None,
            "lower_bytes": lower[1] if lower else None,
            "lower_instruction": analysis.layers[lower[0]].instruction if lower else None,
        })
    df = pd.DataFrame(rows, columns=DIFF_COLUMNS)
    for col in ("size_bytes", "lower_layer", "lower_bytes"):
        df[col] = df[col].astype("Int64")
    return df


@dataclass(frozen=True)
class WritableLayer:
    """A container's own layer: ``size_rw`` (its changes) and ``size_root_fs`` (all)."""

    container: str
    size_rw: int
    size_root_fs: int
    command: DockerCommand


def writable_layer(container: str | Container,
                   client: docker.DockerClient | None = None) -> WritableLayer:
    """The size of a container's writable layer, as ``docker container ls --size`` shows."""
    cli = _cli(client)
    cid = container.id if isinstance(container, Container) else container
    found = engine.containers_with_size(cli, all=True, filters={"id": cid})
    if not found:
        found = engine.containers_with_size(cli, all=True, filters={"name": cid})
    if not found:
        raise ContainerFailed(f"There is no container {cid!r}.",
                              hint="Check its name with `docker container ls -a`.")
    c = found[0]
    name = (c.get("Names") or [cid])[0].lstrip("/")
    return WritableLayer(container=name, size_rw=int(c.get("SizeRw") or 0),
                         size_root_fs=int(c.get("SizeRootFs") or 0),
                         command=docker_cmd("container", "ls", "--size", "--filter",
                                            f"name={name}"))


def _wait_until(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def layers_size(client: docker.DockerClient | None = None,
                timeout: float = engine.BUSY_TIMEOUT) -> int:
    """The engine's image-layer storage in bytes (``docker system df``'s LayersSize).

    The engine runs one disk-usage computation at a time: this waits for another caller's
    to finish (:func:`labkit.engine.disk.df`) instead of failing.
    """
    return int(engine.df(_cli(client), timeout=timeout).get("LayersSize") or 0)


def _remove_demo(cli: docker.DockerClient) -> None:
    """Remove every demo container of this namespace, several at a time."""
    found = cli.api.containers(all=True, filters={"label": settings().label_filters(
        "cow-demo")})

    def remove(cid: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            cli.api.remove_container(cid, force=True)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(remove, [c["Id"] for c in found]))


def _sizes_rw(cli: docker.DockerClient) -> dict[str, int]:
    """``SizeRw`` of every demo container, from one ``docker container ls --size``."""
    found = engine.containers_with_size(cli, all=True, filters={"label": settings().label_filters(
        "cow-demo")})
    return {c["Id"]: int(c.get("SizeRw") or 0) for c in found}


def demo(image: str, counts: Sequence[int] = (1, 5, 10), command: Sequence[str] | None = None,
         client: docker.DockerClient | None = None, engine_storage: bool = False,
         ) -> pd.DataFrame:
    """Start N containers from one image for each N and measure what they add (DEMO_COLUMNS).

    The containers are started one after the other up to the largest N, and measured
    whenever N of them run: disk, the sum of their writable layers (``SizeRw``) and the
    engine's layer storage (``docker system df``) before the first and with N running;
    time, starting those N. They need no network (``--network none``: the demo is about
    disk, and a network interface per container is most of a start's time in DinD). Every
    container is labelled ``cow-demo`` and removed again, even on failure.
    ``engine_storage=True`` also measures the engine's whole layer storage (``docker system
    df``, ``layers_bytes_*``) before and with N running; it costs seconds per measurement
    on an engine holding many images, so the columns are None without it.

    ``written_bytes`` is what the containers wrote (None for a ``command`` of the caller's);
    ``size_rw_bytes`` what the engine counts for their writable layers: the files' bytes on
    the classic store (overlay2), the disk blocks the layer uses on the containerd store (a
    4 kB block for every folder in it too: ``/tmp``, copied up to hold the note, and the
    layer's own top folder).
    """
    import pandas as pd

    from labkit.images import get_image

    cli = _cli(client)
    img = get_image(image, client=cli)
    cmd = list(command or DEMO_COMMAND)
    s = settings()
    image_bytes = int(img.attrs.get("Size") or 0)
    wanted = sorted({int(n) for n in counts if int(n) > 0})
    rows = []

    def wrote(c: Container) -> bool:
        if command is None:  # the container's word, where a diff walks the whole tree
            return DEMO_READY.encode() in cli.api.logs(c.id, stdout=True, stderr=False)
        return bool(cli.api.diff(c.id))

    _remove_demo(cli)
    try:
        before = layers_size(cli) if engine_storage else None
        started: list[Container] = []
        seconds = 0.0
        for n in wanted:
            fresh: list[Container] = []
            t0 = time.perf_counter()
            for i in range(len(started), n):
                fresh.append(cli.containers.run(
                    img.id, cmd, detach=True, name=s.container_name(f"cow-{i}"),
                    network_mode="none", labels=s.labels("cow-demo")))
            seconds += time.perf_counter() - t0
            started += fresh
            for c in fresh:  # each has written its note (a change in its own layer)
                _wait_until(lambda c=c: wrote(c), timeout=15)
            sizes = _sizes_rw(cli)
            after = layers_size(cli) if engine_storage else None
            size_rw = sum(sizes.get(c.id, 0) for c in started)
            rows.append({
                "containers": n, "start_seconds": seconds, "seconds_per_container": seconds / n,
                "written_bytes": n * DEMO_NOTE_BYTES if command is None else None,
                "size_rw_bytes": size_rw, "size_rw_per_container": size_rw // n,
                "layers_bytes_before": before,
                "layers_bytes_after": after,
                "layers_added_bytes": after - before if after is not None and before is not None
                else None,
                "image_bytes": image_bytes, "full_copies_bytes": n * image_bytes,
            })
    finally:
        _remove_demo(cli)
    return pd.DataFrame(rows, columns=DEMO_COLUMNS)
