"""Docker Engine stand-ins for the engine matrix, built from Debian's own packages.

A SPEC names an engine and how it is started:  ``VERSION[+containerd][+api1.44]``

- ``VERSION``: 20.10 (Debian bookworm), 26.1 (trixie) or 28.5 (forky): the docker.io
  package of that Debian release, with its containerd and runc;
- ``+containerd``: the containerd image store (Docker 29's and Docker Desktop's default);
- ``+api1.44``: refuse clients older than API 1.44, exactly as Engine 29 does
  (``DOCKER_MIN_API_VERSION=1.44`` in dockerd's environment).

Nothing is pulled from a container registry: ``build`` makes ``labkit-engine:VERSION`` on
the current engine unless it exists: mmdebstrap writes a minimal Debian with docker.io and
the docker:dind-like entrypoint of images/dind to a tarball, which ``docker import`` turns
into an image (~30 s). It needs mmdebstrap (installed with apt-get when missing, as root)
and root, or a user allowed unprivileged user namespaces (mmdebstrap's unshare mode).

    python -m testbed.engines list | image SPEC | flags SPEC | build SPEC
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from labkit.offline import debian_mirror

ROOT = Path(__file__).resolve().parent.parent
#: Engine version -> the Debian release whose docker.io package it is.
SUITES = {"20.10": "bookworm", "26.1": "trixie", "28.5": "forky"}
OPTIONS = ("containerd", "api1.44")
#: The engine learners most often have: Docker 29's image store and API floor.
DEFAULT_SPEC = "28.5+containerd+api1.44"
#: The oldest and the newest engine of the matrix (what the benchmark compares).
BENCH_SPECS = ("20.10", DEFAULT_SPEC)
#: The engines `make test` runs on (LABKIT_ENGINES replaces them): oldest, current, current
#: on the containerd image store (the last gets the full run).
MATRIX = ("20.10", "28.5+api1.44", DEFAULT_SPEC)
PACKAGES = "docker.io,iptables,openssl,ca-certificates,procps,iproute2"
#: Debian releases whose archive has the buildx plugin: their docker CLI builds with BuildKit,
#: as Docker CE's, Docker Desktop's and docker:dind's do (bookworm's 20.10 has none).
BUILDX_SUITES = ("trixie", "forky")
#: The label recording which packages an engine image was made from (a changed list rebuilds it).
PACKAGES_LABEL = "org.labkit.packages"
#: What docker's image store reports in `docker info`'s driver status on containerd.
CONTAINERD_SNAPSHOTTER = "io.containerd.snapshotter.v1"


class SpecError(ValueError):
    """An engine spec that names no known engine or option."""


@dataclass(frozen=True)
class EngineSpec:
    """What a spec asks for: the engine's version, its image store, its minimum API."""

    text: str
    version: str
    containerd: bool
    min_api: str | None

    @property
    def suite(self) -> str:
        """The Debian release whose docker.io this engine is."""
        return SUITES[self.version]

    @property
    def packages(self) -> str:
        """The Debian packages of this engine's image (docker-buildx where the release has it)."""
        return PACKAGES + (",docker-cli,docker-buildx" if self.suite in BUILDX_SUITES else "")

    @property
    def image(self) -> str:
        """The stand-in engine image that runs this spec."""
        return f"labkit-engine:{self.version}"

    @property
    def environment(self) -> dict[str, str]:
        """dockerd's environment in the stand-in (what its entrypoint reads)."""
        env = {}
        if self.containerd:
            env["DOCKERD_CONTAINERD_SNAPSHOTTER"] = "1"
        if self.min_api:
            env["DOCKER_MIN_API_VERSION"] = self.min_api
        return env

    def run_flags(self) -> list[str]:
        """The extra `docker run` flags that start this spec."""
        return [arg for key, value in self.environment.items()
                for arg in ("-e", f"{key}={value}")]


def parse(spec: str) -> EngineSpec:
    """The spec ``VERSION[+containerd][+api1.44]``, or SpecError saying what is known."""
    version, *options = spec.split("+")
    if version not in SUITES:
        raise SpecError(f"Unknown engine version '{version}': use 20.10, 26.1 or 28.5.")
    for option in options:
        if option not in OPTIONS:
            raise SpecError(f"Unknown engine option '+{option}' in '{spec}': "
                            "use +containerd or +api1.44.")
    return EngineSpec(spec, version, "containerd" in options,
                      "1.44" if "api1.44" in options else None)


def listing() -> str:
    """The versions and options a spec may name."""
    return f"{' '.join(SUITES)}   options: {' '.join('+' + o for o in OPTIONS)}"


def say(message: str) -> None:
    """One line of progress, named after this tool."""
    print(f"engines: {message}", flush=True)


def image_present(name: str, packages: str | None = None) -> bool:
    """True when the current engine has the image ``name`` (made from ``packages``, if given)."""
    answer = subprocess.run(["docker", "image", "inspect", "--format",
                             f'{{{{index .Config.Labels "{PACKAGES_LABEL}"}}}}', name],
                            capture_output=True, text=True, check=False)
    if answer.returncode != 0:
        return False
    return packages is None or answer.stdout.strip() == packages


def _need_mmdebstrap() -> None:
    if shutil.which("mmdebstrap"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("installing mmdebstrap (apt-get)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
        # debian-archive-keyring: Debian has it; Ubuntu needs it to check Debian's archive
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                        "mmdebstrap", "debian-archive-keyring"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        return
    raise SystemExit("Building an engine stand-in needs mmdebstrap: run 'sudo apt-get "
                     "install mmdebstrap uidmap debian-archive-keyring' once.")


def build(spec: EngineSpec) -> None:
    """Make the stand-in image of ``spec`` on the current engine unless it exists."""
    if image_present(spec.image, spec.packages):
        say(f"{spec.image} is present")
        return
    started = time.monotonic()
    _need_mmdebstrap()
    mode = "root" if os.geteuid() == 0 else "unshare"
    mirror = debian_mirror()
    say(f"building {spec.image} from Debian {spec.suite}'s docker.io ({mirror}, "
        f"mmdebstrap --mode={mode})")
    entrypoint = ROOT / "images" / "dind" / "dockerd-entrypoint.sh"
    strap = ["mmdebstrap", f"--mode={mode}", "--variant=minbase", f"--include={spec.packages}",
             # a mirror frozen at a date serves Release files past their Valid-Until
             "--aptopt=Acquire::Check-Valid-Until \"false\"",
             f"--customize-hook=copy-in {entrypoint} /usr/local/bin",
             '--customize-hook=chmod 0755 "$1/usr/local/bin/dockerd-entrypoint.sh"',
             '--customize-hook=mkdir -p "$1/certs/client" && chmod 1777 "$1/certs" '
             '"$1/certs/client"',
             spec.suite, "-", mirror]
    changes = ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "ENV DOCKER_TLS_CERTDIR=/certs", 'VOLUME ["/var/lib/docker"]',
               "EXPOSE 2375 2376", 'ENTRYPOINT ["dockerd-entrypoint.sh"]',
               "LABEL org.labkit.managed=true org.labkit.standin=true "
               f"org.labkit.role=engine-matrix {PACKAGES_LABEL}={spec.packages}"]
    importer = ["docker", "import", *(f"--change={c}" for c in changes), "-", spec.image]
    with tempfile.TemporaryFile() as log:
        strapping = subprocess.Popen(strap, stdout=subprocess.PIPE, stderr=log)
        imported = subprocess.run(importer, stdin=strapping.stdout, stdout=subprocess.DEVNULL,
                                  check=False)
        assert strapping.stdout is not None
        strapping.stdout.close()
        if strapping.wait() == 0 and imported.returncode == 0:
            version = subprocess.run(["docker", "run", "--rm", "--entrypoint", "dockerd",
                                      spec.image, "--version"], capture_output=True,
                                     text=True, check=False).stdout.strip()
            say(f"built {spec.image} ({version}) in {time.monotonic() - started:.0f} s")
            return
        log.seek(0)
        sys.stderr.write("\n".join(log.read().decode(errors="replace").splitlines()[-20:]))
    subprocess.run(["docker", "image", "rm", spec.image], capture_output=True, check=False)
    if mode == "unshare":
        raise SystemExit("mmdebstrap could not build without root here: run "
                         f"'sudo {sys.executable} -m testbed.engines build {spec.text}' once.")
    raise SystemExit(f"mmdebstrap failed (log above): check that {mirror} is reachable, "
                     "or set LABKIT_DEBIAN_MIRROR.")


def main(argv: list[str] | None = None) -> int:
    """``list | image SPEC | flags SPEC | build SPEC``."""
    parser = argparse.ArgumentParser(prog="python -m testbed.engines",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["list", "image", "flags", "build"])
    parser.add_argument("spec", nargs="?", default=DEFAULT_SPEC)
    args = parser.parse_args(argv)
    if args.command == "list":
        print(listing())
        return 0
    try:
        spec = parse(args.spec)
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.command == "image":
        print(spec.image)
    elif args.command == "flags":
        print(" ".join(spec.run_flags()))
    else:
        build(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
