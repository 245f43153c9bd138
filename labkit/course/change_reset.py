"""Step 5 as if for the first time: forget an earlier run's changed app, locally and in
the local registry, and push the original again (``course.fresh_start_for_change``)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import docker
import docker.errors

from labkit import engine
from labkit.course.workspace import APP_NAME
from labkit.engine import DockerCommand, LabkitError
from labkit.engine import docker as docker_cmd
from labkit.registry import CommandLines

if TYPE_CHECKING:
    from labkit.images import BuildResult
    from labkit.registry import PushResult, Registry


@dataclass
class FreshStart:
    """What :func:`fresh_start_for_change` did: each action in words, with the commands
    that do the same (none when there was nothing to do), and the push of the original."""

    pushed: PushResult
    actions: list[tuple[str, CommandLines]] = field(default_factory=list)

    #: At most this many commands are shown per action; the rest are counted.
    SHOWN = 4

    def __repr__(self) -> str:
        lines: list[str] = []
        for what, commands in self.actions:
            lines.append(f"# {what}")
            lines.extend(f"$ {command}" for command in commands[:self.SHOWN])
            if len(commands) > self.SHOWN:
                lines.append(f"# … and {len(commands) - self.SHOWN} more lines like the last")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return f"```bash\n{self!r}\n```"


def forget_change(original: BuildResult, client: docker.DockerClient | None = None
                  ) -> list[DockerCommand]:
    """Remove this user's earlier builds of a changed app, built on ``original``'s steps;
    returns the equivalent commands (none: nothing was removed).

    The build cache keys COPY on the file's content: after a first run of step 5 the
    changed app would come from the cache. Removing the images that share the original's
    steps up to COPY but differ from there (other versions of app.py) makes the lab's
    experiment start fresh each run. Only this learner's images (:mod:`labkit.images.owned`)
    and containers are removed.

    This is the classic builder's cache (step images, each the parent of the next). BuildKit
    keeps no image per step: its cache is keyed on content and lives apart from the images
    (``docker buildx du``), so after a BuildKit build there is nothing here to remove, and a
    re-run may show ``COPY`` as cached (the notebook says so).
    """
    from labkit.images import owned, parent_chain

    if original.builder.buildkit:
        return []
    cli = client or engine.client()
    api = cli.api
    parents = {i["Id"]: i.get("ParentId") or "" for i in engine.images(cli, all=True)}
    steps = list(original.steps)
    copy_at = [s.instruction.startswith("COPY") for s in steps].index(True)
    fork = api.inspect_image(steps[copy_at - 1].image_id)["Id"]  # the last step before COPY
    keep = set(parent_chain(parents, api.inspect_image(original.image_id)["Id"]))
    doomed = {}  # image id -> length of its chain
    for image in owned.own_images(cli, all=True):
        chain = parent_chain(parents, image["Id"])
        if image["Id"] not in keep and fork in chain:
            doomed[image["Id"]] = len(chain)
    commands: list[DockerCommand] = []
    for container in owned.own_containers(cli, all=True):
        if container.get("ImageID") in doomed:  # ours, running an image to forget
            api.remove_container(container["Id"], force=True)
            name = (container.get("Names") or [container["Id"][:12]])[0].lstrip("/")
            commands.append(docker_cmd("container", "rm", "-f", name))
    removed: list[str] = []
    for image_id in sorted(doomed, key=lambda i: -doomed[i]):  # children before parents
        try:
            api.remove_image(image_id, force=True, noprune=True)  # parents: see experiments
            removed.append(image_id.removeprefix("sha256:")[:12])
        except docker.errors.NotFound:
            pass  # went with a child removed before it
        except docker.errors.APIError as exc:
            raise LabkitError(f"Could not remove the earlier build {image_id[:19]}: "
                              f"{exc.explanation}", "Run the clean-up notebook, then this one."
                              ) from None
    if removed:
        commands.append(docker_cmd("image", "rm", "--force", "--no-prune", *removed))
    return commands


def fresh_start_for_change(before: BuildResult,
                           client: docker.DockerClient | None = None) -> FreshStart:
    """Make step 5 start as if for the first time; returns what it did, with the commands.

    Forgets earlier builds of a changed app (the classic builder's step images) and pushes
    the original again; in the local registry, the repository then forgets every blob the
    original does not use (an earlier run's changed layer), so the next push uploads that
    layer again. Only when that cannot be done is the local registry emptied (its data
    volume removed). Every action is listed with its equivalent commands.
    """
    from labkit import registry

    cli = client or engine.client()
    forgotten = forget_change(before, client=cli)
    if before.builder.buildkit:
        first = ("BuildKit's build cache is left as it is: if this engine built the changed "
                 "app.py before, COPY shows as cached", CommandLines())
    elif forgotten:
        first = ("removed your earlier builds of a changed app.py (their step images), so "
                 "that COPY runs again", CommandLines(forgotten))
    else:
        first = ("no earlier build of a changed app.py to remove", CommandLines())
    reg = registry.start_registry(client=cli)
    pushed, push_lines = _push_original(before, reg, cli)
    done = FreshStart(pushed, [first, ("pushed the original app again", push_lines)])
    if registry.configured_registry() is not None:
        done.actions.append((f"{reg.address} is not the course's registry: nothing unlinked "
                             "there", CommandLines()))
        return done
    unlinked = _forget_other_blobs(reg, pushed.repository, cli)
    if unlinked is not None:
        done.actions.append((
            "unlinked from your repository in the registry the blobs that none of its tags "
            "uses (an earlier run's changed layer, its configuration and build record), so "
            "that the next push uploads them again" if unlinked else
            "your repository in the registry holds no blob that none of its tags uses", unlinked))
        return done
    registry.stop_registry(remove=True, client=cli)
    with contextlib.suppress(docker.errors.NotFound):
        cli.volumes.get(registry.volume_name()).remove(force=True)
    reg = registry.start_registry(client=cli)
    pushed, push_lines = _push_original(before, reg, cli)
    done.pushed = pushed
    done.actions.append((
        "the registry's files could not be read: removed the registry with its data, "
        "started a new one, and pushed the original there",
        CommandLines([docker_cmd("container", "rm", "-f", reg.name),
                      docker_cmd("volume", "rm", registry.volume_name()),
                      "labkit registry start", *push_lines])))
    return done


def _push_original(before: BuildResult, reg: Registry, cli: docker.DockerClient
                   ) -> tuple[PushResult, CommandLines]:
    from labkit import registry

    login = registry.login(reg, client=cli)
    ref = registry.tag_for_registry(before.image_id, APP_NAME, registry=reg, client=cli)
    pushed = registry.push(ref, registry=reg, client=cli, show=False)
    return pushed, CommandLines([login.command, ref.command, docker_cmd("push", str(ref))])


def _forget_other_blobs(reg: Registry, ref: str, cli: docker.DockerClient
                        ) -> CommandLines | None:
    """Unlink from ``ref``'s repository in the local registry the blobs that no tag of it
    names (``DELETE /v2/<name>/blobs/<digest>``; the data stays until garbage collection):
    an earlier run's changed layer, which ``latest`` named until the original was pushed
    again, and the build records of earlier pushes. Blobs of the learner's other tags stay.
    Returns the equivalent ``curl`` lines; None when the registry's files or API cannot be
    reached."""
    from labkit.registry import DATA_DIR, api_session, curl, manifest, repository_path, tags

    if not reg.container_id or not reg.api_url:
        return None
    keep: set[str | None] = set()
    for tag in tags(ref, reg, client=cli):
        info = manifest(ref, tag, reg, client=cli)
        keep |= {info["config_digest"], *(x["digest"] for x in info["layers"])}
        keep |= {info.get("digest"), info.get("manifest_digest")}
    path = repository_path(reg, ref)
    links = f"{DATA_DIR}/docker/registry/v2/repositories/{path}/_layers/sha256"
    try:
        code, out = cli.containers.get(reg.container_id).exec_run(["ls", links])
    except docker.errors.APIError:
        return None
    if code != 0:
        return None
    doomed = [f"sha256:{d}" for d in out.decode().split() if f"sha256:{d}" not in keep]
    unlinked = []
    with api_session(reg) as session:
        for digest in doomed:
            resp = session.delete(f"{reg.api_url}/v2/{path}/blobs/{digest}", timeout=10)
            if resp.status_code == 202:
                unlinked.append(digest)
            elif resp.status_code != 404:  # 404: unlinked before (its folder stays)
                return None
    return curl(reg, *(f"/v2/{path}/blobs/{d}" for d in unlinked), method="DELETE")


def image_layer_pushes(pushed: PushResult, reg: Registry,
                       client: docker.DockerClient | None = None) -> dict[str, int]:
    """The push's counts for the image's own layers only: ``pushed``, ``exists``, ``mounted``
    and ``layers`` (how many the image has).

    A BuildKit build on the containerd image store also pushes an attestation (its build
    record, new at every build) beside the image's layers: it is no layer of the image. Push
    rows name a layer by its diff ID (classic image store) or its compressed digest
    (containerd's): both are matched.
    """
    from labkit.registry import manifest

    cli = client or engine.client()
    info = manifest(pushed.repository, pushed.tag, reg, client=cli)
    diff_ids = cli.api.inspect_image(f"{pushed.repository}:{pushed.tag}")["RootFS"]["Layers"]
    digests = [str(x["digest"]) for x in info["layers"]]
    shorts = {d.split(":")[-1][:12] for d in [*digests, *diff_ids]}
    rows = pushed.layers[pushed.layers["layer"].astype(str).str[:12].isin(shorts)]
    got = rows["status"].value_counts()
    counts = {k: int(got.get(k, 0)) for k in ("pushed", "exists", "mounted")}
    counts["layers"] = len(digests)
    return counts
