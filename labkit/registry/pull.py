"""Pull: get an image back from the registry, as any other machine would.

The proof that a registry makes an image available elsewhere: remove the image from this
engine (:func:`forget_local`), pull it (:func:`pull`), and compare what arrived with what
was pushed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
from docker.utils import parse_repository_tag

from labkit import engine
from labkit.engine import DockerCommand, RegistryError, html_of, settings
from labkit.engine import docker as docker_cmd
from labkit.images import owned
from labkit.registry.http_commands import CommandLines
from labkit.registry.model import Registry
from labkit.registry.server import credentials, resolve_registry

if TYPE_CHECKING:
    import pandas as pd

#: The engine's last word on a layer, as ``docker pull`` prints it, and what it means.
FINAL_STATUS = {"Already exists": "already here", "Pull complete": "downloaded",
                "Download complete": "downloaded"}
LAYER_COLUMNS = ["layer", "status"]


@dataclass
class PullResult:
    """A finished pull: the image that arrived and what happened to each of its layers."""

    reference: str
    image_id: str
    diff_ids: list[str]
    layers: pd.DataFrame
    seconds: float
    command: DockerCommand

    @property
    def counts(self) -> dict[str, int]:
        """How many layers were downloaded, and how many the engine already had (a layer
        the stream does not name was not downloaded: the containerd store names none when
        it has them all)."""
        got = self.layers["status"].value_counts() if len(self.layers) else {}
        downloaded = int(got.get("downloaded", 0))
        return {"downloaded": downloaded, "already here": len(self.diff_ids) - downloaded}

    def __repr__(self) -> str:
        counts = self.counts
        return (f"$ {self.command}\n{self.reference}: {counts['downloaded']} layers downloaded, "
                f"{counts['already here']} already here, in {self.seconds:.2f} s")

    def _repr_html_(self) -> str:
        return html_of(self)


def layer_statuses(chunks: Iterable[Mapping[str, Any]]) -> tuple[pd.DataFrame, str | None]:
    """The pull stream read: one row per layer with its final status, and the error, if any."""
    import pandas as pd
    final: dict[str, str] = {}
    error = None
    for chunk in chunks:
        if chunk.get("error") or chunk.get("errorDetail"):
            error = str(chunk.get("error") or chunk["errorDetail"].get("message", ""))
            continue
        status, layer = str(chunk.get("status", "")), chunk.get("id")
        if layer and status in FINAL_STATUS and final.get(layer) != "downloaded":
            final[layer] = FINAL_STATUS[status]
    rows = [{"layer": k, "status": v} for k, v in final.items()]
    return pd.DataFrame(rows, columns=LAYER_COLUMNS), error


def _tags_of(image: Any) -> list[str]:
    return [t for t in image.tags if not t.endswith("<none>")]


def forget_local(reference: str, client: docker.DockerClient | None = None
                 ) -> CommandLines:
    """Remove the image ``reference`` names from this engine, under all of its names.

    Only an image of this learner (:mod:`labkit.images.owned`) is removed, with this
    learner's containers that run it; its parent steps stay (``noprune``), so the build
    cache survives. A container or a name that is not this learner's keeps the image:
    :class:`RegistryError` says so.
    Returns the equivalent commands (shown one per line).
    """
    cli = client or engine.client()
    try:
        image = cli.images.get(reference)
    except docker.errors.ImageNotFound:
        return CommandLines()
    recorded = owned.recorded_ids()
    if not owned.is_own_image(image.attrs, recorded):
        raise RegistryError(f"{reference} is not one of your images (none of its names is "
                            f"under '{settings().namespace}/'): labkit will not remove it.",
                            f"Remove it yourself if you mean it: `docker image rm {reference}`.")
    tags = _tags_of(image)
    foreign = [t for t in tags if not owned.is_own_reference(t)]
    if foreign:
        raise RegistryError(f"{reference} also has names that are not yours: "
                            f"{', '.join(foreign)}; labkit will not remove them.",
                            f"Remove them yourself if you mean it: `docker image rm "
                            f"{' '.join(foreign)}`.")
    commands: list[DockerCommand] = []
    mine = {image.id.removeprefix("sha256:")}
    for c in cli.containers.list(all=True, filters={"ancestor": image.id}):
        if not owned.is_own_container(c.attrs, mine):
            raise RegistryError(f"The container {c.name}, not yours, uses {reference}.",
                                f"Stop and remove it first: `docker container rm -f {c.name}`.")
        c.remove(force=True)
        commands.append(docker_cmd("container", "rm", "-f", c.name))
    for tag in tags:
        with contextlib.suppress(docker.errors.ImageNotFound):
            cli.api.remove_image(tag, noprune=True)
    if tags:
        commands.append(docker_cmd("image", "rm", "--no-prune", *tags))
    return CommandLines(commands)


def pull(reference: str, registry: Registry | str | None = None,
         client: docker.DockerClient | None = None,
         on_progress: Callable[[Mapping[str, Any]], None] | None = None) -> PullResult:
    """``docker pull reference`` from the course's registry, with its credentials.

    Raises :class:`RegistryError` naming what went wrong (not found, refused, no registry).
    """
    import pandas as pd
    cli = client or engine.client()
    reg = resolve_registry(registry, client)
    user, password = credentials(reg)
    repo, tag = parse_repository_tag(reference)
    tag = tag or "latest"
    command = docker_cmd("pull", f"{repo}:{tag}")
    chunks: list[Mapping[str, Any]] = []
    started = time.perf_counter()
    try:
        for chunk in cli.api.pull(repo, tag=tag, stream=True, decode=True,
                                  auth_config={"username": user, "password": password}):
            chunks.append(chunk)
            if on_progress is not None:
                on_progress(chunk)
    except docker.errors.APIError as exc:
        chunks.append({"error": str(exc.explanation or exc)})
    seconds = time.perf_counter() - started
    layers, error = layer_statuses(chunks)
    if error:
        raise RegistryError(f"Pull of {repo}:{tag} failed: {error}", _hint(error))
    image = cli.images.get(f"{repo}:{tag}")
    diff_ids = list(image.attrs["RootFS"]["Layers"])
    if not len(layers):  # nothing downloaded, nothing named: every layer was here
        layers = pd.DataFrame([{"layer": d.split(":")[-1][:12], "status": "already here"}
                               for d in diff_ids], columns=LAYER_COLUMNS)
    layers.attrs["command"] = command
    return PullResult(f"{repo}:{tag}", image.id, diff_ids, layers, seconds, command)


def _hint(error: str) -> str:
    text = error.lower()
    if "unauthorized" in text or "authentication required" in text:
        return "Log in first (`registry.login(reg)`, or `docker login` in a terminal)."
    if "not found" in text or "unknown" in text:
        return "Push the image first (step 4), then pull it."
    if "connection refused" in text or "dial tcp" in text:
        return "The registry is not running: `labkit registry start`."
    return "Read the message above; `labkit doctor` checks the engine and the registry."


def served_layers(repository: str, tag: str = "latest", registry: Registry | str | None = None,
                  client: docker.DockerClient | None = None) -> pd.DataFrame:
    """Every layer the registry's manifest lists, downloaded as a new machine would get it:
    digest, size in the manifest, bytes received, and whether they hash to the digest."""
    import pandas as pd

    from labkit.registry.api import blob_check, manifest

    info = manifest(repository, tag, registry, client)
    rows = []
    for layer in info["layers"]:
        received, matches = blob_check(repository, layer["digest"], registry, client)
        rows.append({"digest": layer["digest"].split(":")[-1][:12], "size": layer["size"],
                     "received": received, "digest_matches": matches})
    return pd.DataFrame(rows, columns=["digest", "size", "received", "digest_matches"])
