"""The classic builder's cache: each step's image has the previous step's as its parent.

Removing an image must not take the steps another image builds on with it (the containerd
image store prunes untagged parents unless told not to).
"""

from __future__ import annotations

from collections.abc import Mapping

import docker
import docker.errors

from labkit import engine


def parent_chain(parents: Mapping[str, str], image_id: str) -> list[str]:
    """An image id and its parents' ids, from one image listing (``{id: ParentId}``; the
    classic builder records each step's parent)."""
    out: list[str] = []
    current = image_id
    while current and current not in out:
        out.append(current)
        current = parents.get(current, "")
    return out


def remove_replaced(old_id: str, new_id: str,
                    client: docker.DockerClient | None = None) -> list[str]:
    """Remove the steps of ``old_id`` that ``new_id`` does not build on, newest first.

    A BuildKit image has no parent chain (no image per step; its cache lives apart, see
    ``docker buildx du``): then only ``old_id`` itself is removed.

    Each removal keeps its parents (``noprune``): the containerd image store would
    otherwise also delete untagged parents that ``new_id`` still builds on (the cached
    steps), where the classic store keeps any parent another image uses.
    """
    cli = client or engine.client()
    parents = {i["Id"]: i.get("ParentId") or "" for i in engine.images(cli, all=True)}
    keep = set(parent_chain(parents, new_id))
    removed = []
    for image_id in parent_chain(parents, old_id):
        if image_id in keep:
            break
        try:
            cli.api.remove_image(image_id, noprune=True)
            removed.append(image_id)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError:  # still used (a container, another tag): keep it
            break
    return removed
