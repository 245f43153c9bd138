"""The base stand-in (``python:3.11-slim-bookworm``) built in layers, like the official image.

A Dockerfile ``FROM scratch`` adds the cached layer tarballs of :mod:`labkit.offline.debian_rootfs`
one by one (Debian, then Python, then pip), sets the official image's ``ENV`` and ``CMD``, and makes
it act like it: a ``python`` command and no EXTERNALLY-MANAGED marker, so that
``RUN pip install flask`` works. Trusting the host's CA bundle is its own two steps, named
by the file they copy. The classic builder (never pulling) builds it, so ``docker history``
shows each instruction, as it does for the official image.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import docker

from labkit import engine
from labkit.engine import DockerCommand, PrepareError
from labkit.engine import docker as docker_cmd
from labkit.offline.debian_rootfs import HOST_CA_IN_IMAGE, BaseLayers, base_layers, host_ca_bundle

Progress = Callable[[str, str], None]

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_CA_FILE = "labkit-host-ca.crt"  # its name in the build context
BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def standin_labels(role: str) -> dict[str, str]:
    """Labels of a stand-in: managed and marked, but in no namespace (every user shares it)."""
    return {engine.LABEL_STANDIN: "true", engine.LABEL_MANAGED: "true", engine.LABEL_ROLE: role}


def base_dockerfile(layers: BaseLayers, labels: dict[str, str], *, host_ca: bool = False) -> str:
    """The base's Dockerfile: the official image's instructions, over Debian's packages."""
    debian, python, pip = layers.names
    fixes = ["ln -svT python3 /usr/bin/python",
             "rm -fv /usr/lib/python3*/EXTERNALLY-MANAGED"]
    if layers.removed:
        fixes.append("rm -rf " + " ".join(shlex.quote(p.removeprefix(".")) for p in layers.removed))
    lines = [
        "# The offline stand-in for the official python image: the same kind of layers,",
        "# made from Debian's packages (python3 and python3-pip from Debian bookworm).",
        "FROM scratch",
        f"ADD {debian}.tar /",
        'CMD ["bash"]',
        f"ENV PATH={PATH}",
        "ENV LANG=C.UTF-8",
        f"ENV PYTHON_VERSION={layers.python_version}",
        f"ADD {python}.tar /",
        f"ADD {pip}.tar /",
        "RUN set -eux; " + "; ".join(fixes),
    ]
    if host_ca:
        lines += [
            "# Trust the host's CA bundle (LABKIT_TRUST_HOST_CA): for TLS-inspecting networks.",
            f"COPY {HOST_CA_FILE} /{HOST_CA_IN_IMAGE}",
            f"RUN cp /{HOST_CA_IN_IMAGE} {BUNDLE}",
        ]
    lines.append('CMD ["python3"]')
    lines.append("LABEL " + " ".join(f"{k}={v}" for k, v in labels.items()))  # one step
    return "\n".join(lines) + "\n"


def write_context(layers: BaseLayers, dockerfile: str, ca_bundle: bytes | None = None) -> Path:
    """Make the layers' directory the build context: its Dockerfile, and the CA bundle or not."""
    directory = layers.directory
    (directory / "Dockerfile").write_text(dockerfile)
    (directory / ".dockerignore").write_text("layers.json\n")
    ca_file = directory / HOST_CA_FILE
    if ca_bundle is not None:
        ca_file.write_bytes(ca_bundle)
    else:
        ca_file.unlink(missing_ok=True)
    return directory


def build_base(name: str = engine.BASE_IMAGE, *, role: str = "base",
               trust_host_ca: bool = False, client: docker.DockerClient,
               progress: Progress, cache_dir: Path | None = None,
               ) -> tuple[docker.models.images.Image, DockerCommand]:
    """Build the base stand-in in layers; returns (docker-py Image, the equivalent command)."""
    bundle = host_ca_bundle() if trust_host_ca else None
    layers = base_layers(cache_dir=cache_dir, progress=progress, label=name)
    labels = standin_labels(role)
    dockerfile = base_dockerfile(layers, labels, host_ca=bundle is not None)
    context = write_context(layers, dockerfile, bundle)
    stream = client.api.build(path=str(context), tag=name, pull=False, rm=True, forcerm=True,
                              decode=True)
    image_id = follow_build(stream, name, progress)
    if image_id is None:
        raise PrepareError(f"Building the {name} stand-in gave no image.",
                           f"Run `docker build {context}` to see the engine's answer.")
    return client.images.get(name), docker_cmd("build", "-t", name, str(context))


def follow_build(stream: Iterable[dict[str, Any]], name: str, say: Progress) -> str | None:
    """Read a legacy build stream: report each step, raise on an error, return the image id."""
    tail: list[str] = []
    image_id = None
    step = ""
    for chunk in stream:
        for line in _lines(chunk.get("stream", "")):
            tail = (tail + [line])[-20:]
            m = re.match(r"^Step (\d+/\d+) : (.*)$", line)
            if m:
                step = line
                say(name, f"step {m.group(1)}: {m.group(2)[:70]}")
            m = re.match(r"^Successfully built ([0-9a-f]+)$", line)
            if m:
                image_id = m.group(1)
        if "error" in chunk:
            detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
            raise PrepareError(
                f"Building the {name} stand-in failed at {step or 'the start'}: {detail}\n"
                + "\n".join(tail),
                "Check that the Debian mirror is reachable from containers, then retry.",
            )
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = aux["ID"]
    return image_id


def _lines(text: str) -> Iterator[str]:
    for line in text.splitlines():
        line = line.rstrip()
        if line:
            yield line
