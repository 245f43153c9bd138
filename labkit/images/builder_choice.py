"""Which builder labkit uses: the one the learner's own ``docker build`` would use.

The docker CLI on PATH decides, against the engine labkit talks to (the same DOCKER_HOST,
TLS and context environment): CLI 23.0 or newer with the buildx plugin builds with BuildKit
unless ``DOCKER_BUILDKIT=0``; an older CLI only with ``DOCKER_BUILDKIT=1``; a CLI without
buildx falls back to the classic builder (and, since 23.0, prints a DEPRECATED warning).
labkit drives BuildKit through the CLI (docker-py cannot: it lacks the ``/grpc`` session),
and the classic builder through the Engine API.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import docker

from labkit import engine

BuilderName = Literal["buildkit", "classic"]

#: buildx learned ``--progress=rawjson`` (BuildKit's own record of each step) in 0.15.
RAWJSON_SINCE = (0, 15)

#: Runs one CLI command and returns (exit status, what it printed); injectable for tests.
Runner = Callable[[list[str]], tuple[int, str]]

_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")
_FALSE = {"0", "f", "false"}
_TRUE = {"1", "t", "true"}


@dataclass(frozen=True)
class BuilderChoice:
    """The builder labkit uses for this engine, and why, in one sentence."""

    name: BuilderName
    reason: str
    cli_version: str | None = None
    buildx_version: str | None = None
    progress: Literal["rawjson", "plain", ""] = ""  # the CLI's progress format (BuildKit)

    @property
    def buildkit(self) -> bool:
        """True when builds go through BuildKit (the docker CLI with buildx)."""
        return self.name == "buildkit"

    @property
    def label(self) -> str:
        """``BuildKit`` or ``the classic builder``."""
        return "BuildKit" if self.buildkit else "the classic builder"

    @property
    def sentence(self) -> str:
        """Which builder runs and why, e.g. for a notebook or ``labkit doctor``."""
        return f"labkit builds with {self.label}: {self.reason}"

    def __str__(self) -> str:
        return self.sentence

    def _repr_markdown_(self) -> str:
        return self.sentence


def _version(text: str) -> tuple[int, int, int] | None:
    match = _VERSION_RE.search(text)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def _plain_version(text: str | None) -> str:
    found = _version(text or "")
    return ".".join(str(x) for x in found) if found else "?"


def decide(cli_version: str | None, buildx_version: str | None,
           environ: Mapping[str, str]) -> BuilderChoice:
    """The CLI's own rule, from ``docker --version``, ``docker buildx version`` (``None``
    when that failed) and ``DOCKER_BUILDKIT``."""
    if cli_version is None:
        return BuilderChoice("classic", "there is no docker CLI on PATH, so labkit drives the "
                             "engine's classic builder through its API.")
    cli = _plain_version(cli_version)
    major = (_version(cli_version) or (0, 0, 0))[0]
    flag = environ.get("DOCKER_BUILDKIT", "").strip().lower()
    bx = _version(buildx_version) if buildx_version is not None else None
    # rawjson needs buildx 0.15, and a CLI older than 23.0 builds with its own client
    progress: Literal["rawjson", "plain"] = (
        "rawjson" if bx is not None and bx[:2] >= RAWJSON_SINCE and major >= 23 else "plain")
    bx_text = _plain_version(buildx_version)
    if flag in _FALSE:
        return BuilderChoice("classic", f"DOCKER_BUILDKIT={environ['DOCKER_BUILDKIT']} is set, "
                             f"so `docker build` (CLI {cli}) uses the classic builder too.",
                             cli, bx_text if bx else None)
    if major >= 23 or flag in _TRUE:
        if bx is None:
            warns = " (and prints a DEPRECATED warning, as every CLI since 23.0 does)" \
                if major >= 23 else ""
            return BuilderChoice("classic", f"the docker CLI {cli} here has no buildx plugin, "
                                 f"so `docker build` falls back to the classic builder{warns}.",
                                 cli)
        why = "" if major >= 23 else " with DOCKER_BUILDKIT=1"
        return BuilderChoice("buildkit", f"the docker CLI {cli} here has buildx {bx_text}, so "
                             f"`docker build`{why} uses BuildKit.", cli, bx_text, progress)
    return BuilderChoice("classic", f"the docker CLI {cli} here (older than 23.0) uses the "
                         "classic builder unless DOCKER_BUILDKIT=1.", cli,
                         bx_text if bx else None)


def cli_environ() -> dict[str, str]:
    """The environment the docker CLI runs with: this process's, so it reaches the same
    engine as the docker-py client (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH,
    DOCKER_CONTEXT, DOCKER_CONFIG)."""
    return dict(os.environ)


def run_cli(args: list[str]) -> tuple[int, str]:
    """Run ``docker ARGS`` with :func:`cli_environ`; (exit status, stdout and stderr)."""
    try:
        done = subprocess.run(["docker", *args], capture_output=True, text=True,
                              env=cli_environ(), timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return done.returncode, done.stdout + done.stderr


def probe(run: Runner = run_cli, environ: Mapping[str, str] | None = None) -> BuilderChoice:
    """Ask the CLI on PATH (two calls: ``docker --version``, ``docker buildx version``)."""
    env = cli_environ() if environ is None else environ
    if run is run_cli and shutil.which("docker", path=env.get("PATH")) is None:
        return decide(None, None, env)
    code, out = run(["--version"])
    if code != 0:
        return decide(None, None, env)
    bx_code, bx_out = run(["buildx", "version"])
    return decide(out.strip(), bx_out.strip() if bx_code == 0 else None, env)


_chosen: weakref.WeakKeyDictionary[docker.DockerClient, BuilderChoice] = (
    weakref.WeakKeyDictionary())


def which_builder(client: docker.DockerClient | None = None) -> BuilderChoice:
    """The builder for this engine connection, decided once per client (it costs two CLI
    calls) and shown by ``labkit doctor``."""
    cli = client or engine.client()
    try:
        return _chosen[cli]
    except KeyError:
        pass
    except TypeError:  # a client that cannot be remembered (a test's stand-in)
        return probe()
    chosen = probe()
    _chosen[cli] = chosen
    return chosen


def forget_builder(client: docker.DockerClient | None = None) -> None:
    """Decide again on next use (after PATH, DOCKER_BUILDKIT or the CLI changed)."""
    if client is None:
        _chosen.clear()
    else:
        _chosen.pop(client, None)
