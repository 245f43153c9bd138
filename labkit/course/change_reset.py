"""Step 5 as if for the first time: forget an earlier run's changed app, locally and in
the local registry, and push the original again (``course.fresh_start_for_change``)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import docker
import docker.errors

from labkit import engine
from labkit.course.workspace import APP_NAME
from labkit.engine import LabkitError

if TYPE_CHECKING:
    from labkit.images import BuildResult
    from labkit.registry import PushResult, Registry


def forget_change(original: BuildResult, client: docker.DockerClient | None = None) -> list[str]:
    """Remove this user's earlier builds of a changed app, built on ``original``'s steps.

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
    for container in owned.own_containers(cli, all=True):
        if container.get("ImageID") in doomed:  # ours, running an image to forget
            api.remove_container(container["Id"], force=True)
    removed: list[str] = []
    for image_id in sorted(doomed, key=lambda i: -doomed[i]):  # children before parents
        try:
            api.remove_image(image_id, force=True, noprune=True)  # parents: see experiments
            removed.append(image_id[:19])
        except docker.errors.NotFound:
            pass  # went with a child removed before it
        except docker.errors.APIError as exc:
            raise LabkitError(f"Could not remove the earlier build {image_id[:19]}: "
                              f"{exc.explanation}", "Run the clean-up notebook, then this one."
                              ) from None
    return removed


def fresh_start_for_change(before: BuildResult,
                           client: docker.DockerClient | None = None) -> PushResult:
    """Make step 5 start as if for the first time; returns the push of the original.

    Forgets earlier builds of a changed app (the build cache) and pushes the original
    again; in the local registry, the repository then forgets every blob the original does
    not use (an earlier run's changed layer), so the next push uploads that layer again.
    Only when that cannot be done is the local registry emptied (its data volume removed).
    """
    from labkit import registry

    cli = client or engine.client()
    forget_change(before, client=cli)
    reg = registry.start_registry(client=cli)
    registry.login(reg, client=cli)
    ref = registry.tag_for_registry(before.image_id, APP_NAME, registry=reg, client=cli)
    pushed = registry.push(ref, registry=reg, client=cli, show=False)
    if registry.configured_registry() is not None or _forget_other_blobs(reg, ref, cli):
        return pushed
    registry.stop_registry(remove=True, client=cli)
    with contextlib.suppress(docker.errors.NotFound):
        cli.volumes.get(registry.volume_name()).remove(force=True)
    reg = registry.start_registry(client=cli)
    registry.login(reg, client=cli)
    ref = registry.tag_for_registry(before.image_id, APP_NAME, registry=reg, client=cli)
    return registry.push(ref, registry=reg, client=cli, show=False)


def _forget_other_blobs(reg: Registry, ref: str, cli: docker.DockerClient) -> bool:
    """Unlink from ``ref``'s repository in the local registry the blobs its manifest does
    not name (``DELETE /v2/<name>/blobs/<digest>``; the data stays until garbage
    collection). False when the registry's files or API cannot be reached."""
    from labkit.registry import DATA_DIR, api_session, manifest, repository_path

    if not reg.container_id or not reg.api_url:
        return False
    info = manifest(ref, "latest", reg, client=cli)
    keep = {info["config_digest"], *(x["digest"] for x in info["layers"])}
    keep |= {info.get("digest"), info.get("manifest_digest")}
    path = repository_path(reg, ref)
    links = f"{DATA_DIR}/docker/registry/v2/repositories/{path}/_layers/sha256"
    try:
        code, out = cli.containers.get(reg.container_id).exec_run(["ls", links])
    except docker.errors.APIError:
        return False
    if code != 0:
        return False
    doomed = [f"sha256:{d}" for d in out.decode().split() if f"sha256:{d}" not in keep]
    with api_session(reg) as session:
        for digest in doomed:
            resp = session.delete(f"{reg.api_url}/v2/{path}/blobs/{digest}", timeout=10)
            if resp.status_code not in (202, 404):
                return False
    return True


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
