"""The registry's HTTP API, asked directly: catalog, tags, and manifests (Docker v2 and OCI,
an index or manifest list followed to this platform's image).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import docker
import requests
from docker.utils import parse_repository_tag

from labkit import engine
from labkit.engine import RegistryError
from labkit.registry.model import Registry
from labkit.registry.server import PASSWORD_HINT, START_HINT, api_session, resolve_registry

if TYPE_CHECKING:
    import pandas as pd

# --------------------------------------------------------------------------- HTTP API queries


MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
#: What a tag may point to besides one image: a list of per-platform manifests. The
#: containerd image store (Docker 29, Docker Desktop) can push one.
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, MANIFEST_LIST, OCI_MANIFEST, MANIFEST_V2))


def _api(registry: Registry | str | None, client: docker.DockerClient | None) -> Registry:
    reg = resolve_registry(registry, client)
    if not reg.api_url:
        raise RegistryError(
            f"labkit cannot list the contents of {reg.address}: only the local registry's "
            "HTTP API is queried.",
            "Look at the repository on the registry's web site, or unset LABKIT_REGISTRY to "
            "use the local registry.",
        )
    if reg.local:
        engine.require_reachable("the local registry's HTTP API")
    return reg


def repository_path(reg: Registry, repository: str) -> str:
    repo: str = parse_repository_tag(repository)[0]
    return repo.removeprefix(f"{reg.address}/")


def _get(reg: Registry, path: str, headers: dict[str, str] | None = None) -> requests.Response:
    with api_session(reg) as session:
        try:
            resp = session.get(f"{reg.api_url}{path}", headers=headers or {}, timeout=10)
        except requests.RequestException as exc:
            raise RegistryError(f"The registry at {reg.api_url} does not answer "
                                f"({type(exc).__name__}).", START_HINT) from None
    if resp.status_code == 401:
        raise RegistryError(f"The registry at {reg.address} refused the credentials.",
                            PASSWORD_HINT)
    return resp


def _check(reg: Registry, resp: requests.Response, path: str) -> requests.Response:
    """``resp`` if it is a success, else the :class:`RegistryError` its status means (what
    ``raise_for_status`` would raise as a bare HTTPError)."""
    code = resp.status_code
    if code < 400:
        return resp
    said = f"The registry at {reg.address} answered {code} {resp.reason or ''}".rstrip()
    if code >= 500:
        where = f"`docker container logs {reg.name}`" if reg.local else "its status page"
        raise RegistryError(f"{said} to GET {path}.",
                            f"The registry failed inside: {where} says why; "
                            + ("`labkit registry start` re-creates it (its data is kept)."
                               if reg.local else "try again later."))
    raise RegistryError(f"{said} to GET {path}.",
                        "Check the repository name and tag (`labkit.registry.catalog()`).")


def catalog(registry: Registry | str | None = None,
            client: docker.DockerClient | None = None) -> list[str]:
    """The repositories in the registry (``GET /v2/_catalog``)."""
    reg = _api(registry, client)
    resp = _check(reg, _get(reg, "/v2/_catalog?n=1000"), "/v2/_catalog")
    return sorted(resp.json().get("repositories") or [])


def tags(repository: str, registry: Registry | str | None = None,
         client: docker.DockerClient | None = None) -> list[str]:
    """The tags of one repository (``GET /v2/<name>/tags/list``); [] when it does not exist."""
    reg = _api(registry, client)
    path = f"/v2/{repository_path(reg, repository)}/tags/list"
    resp = _get(reg, path)
    if resp.status_code == 404:
        return []
    _check(reg, resp, path)
    return sorted(resp.json().get("tags") or [])


def manifest(repository: str, tag: str = "latest", registry: Registry | str | None = None,
             client: docker.DockerClient | None = None) -> dict[str, Any]:
    """The image manifest: its digest, config digest, and layers with compressed sizes."""
    reg = _api(registry, client)
    url = f"/v2/{repository_path(reg, repository)}/manifests/"
    resp = _get(reg, url + tag, headers={"Accept": MANIFEST_ACCEPT})
    if resp.status_code == 404:
        raise RegistryError(f"{repository}:{tag} is not in the registry at {reg.address}.",
                            "Push it first (`labkit.registry.publish(...)`).")
    _check(reg, resp, url + tag)
    body, digest = resp.json(), resp.headers.get("Docker-Content-Digest")
    entry = platform_manifest(body)
    if entry is None:
        return parse_manifest(body, digest)
    one = _check(reg, _get(reg, url + entry["digest"], headers={"Accept": MANIFEST_ACCEPT}),
                 url + entry["digest"])
    info = parse_manifest(one.json(), digest)
    info.update(index_media_type=body.get("mediaType"), manifest_digest=entry["digest"])
    return info


def platform_manifest(body: dict[str, Any], os_name: str = "linux") -> dict[str, Any] | None:
    """The image manifest an index or manifest list points to; None for a plain manifest.

    Entries for attestations (platform ``unknown/unknown``) are not images; among the rest
    the first for ``os_name`` is taken (the course builds for the engine's own platform).
    """
    if body.get("mediaType") not in (OCI_INDEX, MANIFEST_LIST) and "manifests" not in body:
        return None
    images = [m for m in body.get("manifests") or []
              if (m.get("platform") or {}).get("os", os_name) == os_name]
    if not images:
        raise RegistryError("The registry's index lists no image for this platform.",
                            "Push the image again from this engine.")
    found: dict[str, Any] = images[0]
    return found


def parse_manifest(body: dict[str, Any], digest: str | None = None) -> dict[str, Any]:
    """Shape an image manifest: media type, digest, config digest, layers (digest, size).

    ``digest`` is what the tag points to (what ``docker push`` reports); for an index it
    differs from ``manifest_digest``, the image manifest's own.
    """
    layers = [{"digest": x.get("digest"), "size": int(x.get("size", 0)),
               "media_type": x.get("mediaType")} for x in body.get("layers") or []]
    return {
        "media_type": body.get("mediaType"),
        "digest": digest,
        "manifest_digest": digest,
        "index_media_type": None,
        "config_digest": (body.get("config") or {}).get("digest"),
        "layers": layers,
        "total_size": sum(x["size"] for x in layers),
    }


def manifest_frame(info: dict[str, Any]) -> pd.DataFrame:
    """The manifest's layers as a DataFrame (digest, compressed size)."""
    import pandas as pd
    return pd.DataFrame(info["layers"], columns=["digest", "size", "media_type"])


def blob_check(repository: str, digest: str, registry: Registry | str | None = None,
               client: docker.DockerClient | None = None) -> tuple[int, bool]:
    """Download one blob as any client would (``GET /v2/<repo>/blobs/<digest>``), hashing
    it as it streams: (bytes received, whether they hash to ``digest``)."""
    import hashlib

    reg = _api(registry, client)
    algorithm, _, expected = digest.partition(":")
    hasher = hashlib.new(algorithm)
    size = 0
    with api_session(reg) as session:
        try:
            path = repository_path(reg, repository)
            resp = session.get(f"{reg.api_url}/v2/{path}/blobs/{digest}",
                               stream=True, timeout=30)
            if resp.status_code in (401, 404):
                return 0, False
            _check(reg, resp, f"/v2/{path}/blobs/{digest}")
            for chunk in resp.iter_content(1 << 20):
                hasher.update(chunk)
                size += len(chunk)
        except requests.RequestException as exc:
            raise RegistryError(f"The registry at {reg.api_url} does not answer "
                                f"({type(exc).__name__}).", START_HINT) from None
    return size, hasher.hexdigest() == expected
