"""Debian root file systems for the offline stand-in images, made with mmdebstrap.

The stand-in base image is built in layers, like the official one. One mmdebstrap run
makes a minimal Debian (``--variant=minbase``), then installs python3, then python3-pip,
and its hooks take a snapshot after each stage. The layers are the first snapshot and the
files each later stage added or changed (:func:`layer_diff`), three tar files cached
(``LABKIT_CACHE_DIR``, default ``~/.cache/labkit``) so that a second preparation on the
same machine skips mmdebstrap.

- As root, mmdebstrap runs in its ``root`` mode; as any other user in ``unshare`` mode,
  where the kernel allows unprivileged user namespaces and ``newuidmap`` exists
  (Debian's ``uidmap``). When neither works the error says what to run once as root.
- The packages always come from a *Debian* mirror: the one this machine's apt uses when it
  is one, else ``deb.debian.org``, even on Ubuntu (``LABKIT_DEBIAN_MIRROR`` overrides).
- A mirror frozen at a date serves Release files past their Valid-Until: they are accepted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from labkit import engine
from labkit.engine import PrepareError

SUITE = "bookworm"
#: The layers of the base, bottom first: (name, the packages that stage installs).
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("debian", ()), ("python", ("python3",)), ("pip", ("python3-pip",)))
LAYOUT = "layers-v1"  # part of the cache key: a new layout makes new tarballs
#: Left out of every snapshot: what mmdebstrap's own clean-up removes from its output.
SNAPSHOT_EXCLUDES = ("./var/lib/apt/lists/*", "./var/cache/apt/*", "./var/log/*", "./tmp/*",
                     "./etc/hostname", "./etc/resolv.conf", "./etc/apt/apt.conf.d/99mmdebstrap",
                     "./var/cache/debconf/*-old", "./var/lib/dpkg/*-old")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"),
           Path("/etc/apt/sources.list.d/ubuntu.sources"))
HOST_CA_IN_IMAGE = "usr/local/share/ca-certificates/labkit-host-ca.crt"
INSTALL_HINT = ("Install it once as root: "
                "`sudo apt-get install mmdebstrap uidmap debian-archive-keyring`.")

Progress = Callable[[str, str], None]


def _quiet(image: str, stage: str) -> None:
    pass


def cache_root(environ: dict[str, str] | None = None) -> Path:
    """Where the debootstrap tarball is kept between preparations."""
    env = os.environ if environ is None else environ
    if env.get("LABKIT_CACHE_DIR"):
        return Path(env["LABKIT_CACHE_DIR"])
    xdg = env.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "labkit"


def debian_mirror(sources: Iterable[Path] = SOURCES, environ: dict[str, str] | None = None) -> str:
    """The Debian mirror this machine's apt uses for the main archive (not security)."""
    env = os.environ if environ is None else environ
    if env.get("LABKIT_DEBIAN_MIRROR"):
        return env["LABKIT_DEBIAN_MIRROR"]
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        found = parse_mirror(text)
        if found:
            return found
    return DEFAULT_MIRROR


def is_debian_mirror(uri: str) -> bool:
    """True for a Debian archive URI (``.../debian``), not security, not Ubuntu's."""
    url = urlparse(uri)
    return (url.scheme in ("http", "https") and url.path.rstrip("/").endswith("/debian")
            and "security" not in uri)


def parse_mirror(text: str) -> str | None:
    """The first Debian archive URI in a deb822 ``.sources`` or one-line list (an Ubuntu
    machine's lists name none: the stand-ins are Debian)."""
    uris: list[str] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(
            (m.group(1).lower(), m.group(2).strip())
            for m in re.finditer(r"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.MULTILINE)
        )
        if "uris" in fields and "deb" in fields.get("types", "deb").split():
            uris.extend(fields["uris"].split())
    for line in text.splitlines():
        m = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+", line)
        if m:
            uris.append(m.group(1))
    for uri in uris:
        if is_debian_mirror(uri):
            return uri.rstrip("/")
    return None


def mmdebstrap_mode(which: Callable[[str], str | None] = shutil.which,
                    euid: Callable[[], int] = os.geteuid) -> str:
    """``root`` or ``unshare``: how mmdebstrap can run for this user (or a clear refusal)."""
    if which("mmdebstrap") is None:
        raise PrepareError("The offline base image is made with mmdebstrap, which is not "
                           "installed.", INSTALL_HINT)
    if euid() == 0:
        return "root"
    if which("newuidmap") is None:
        raise PrepareError(
            "Without root, mmdebstrap needs newuidmap (Debian's uidmap package).",
            "Install it once (`sudo apt-get install uidmap`), or run "
            "`sudo labkit prepare --offline` once: the images then serve every user.")
    return "unshare"


def ensure_mmdebstrap(say: Progress = _quiet, label: str = engine.BASE_IMAGE) -> None:
    """Install mmdebstrap with apt-get when missing and we are root on Debian/Ubuntu."""
    if shutil.which("mmdebstrap") or os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    say(label, "installing mmdebstrap (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "mmdebstrap",
                 "debian-archive-keyring"]):  # the keyring: Ubuntu lacks Debian's by default
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise PrepareError(f"`{' '.join(cmd)}` failed:\n{done.stderr.strip()[-800:]}",
                               INSTALL_HINT)


@dataclass(frozen=True)
class BaseLayers:
    """The cached layer tarballs of the base, bottom first, and what they hold."""

    directory: Path
    names: tuple[str, ...]  # one per stage: debian, python, pip
    python_version: str  # e.g. 3.11.2, from the python layer's dpkg status
    removed: tuple[str, ...] = ()  # paths a later stage deleted (an ADD cannot delete)

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.tar"

    @property
    def paths(self) -> list[Path]:
        return [self.path(name) for name in self.names]


def layers_key(mirror: str) -> str:
    """The cache key of the layer tarballs: suite, stages, layout and mirror."""
    stages = ";".join(f"{name}={','.join(pkgs)}" for name, pkgs in STAGES)
    return hashlib.sha256(f"mmdebstrap|{SUITE}|minbase|{stages}|{LAYOUT}|{mirror}".encode()
                          ).hexdigest()[:12]


def base_layers(*, mirror: str | None = None, cache_dir: Path | None = None,
                progress: Progress | None = None, label: str = engine.BASE_IMAGE) -> BaseLayers:
    """The base's layer tarballs (Debian, Python, pip), made once and cached."""
    say = progress or _quiet
    mirror = mirror or debian_mirror()
    root = cache_dir or cache_root()
    target = root / f"debian-{SUITE}-{LAYOUT}-{layers_key(mirror)}"
    if (target / "layers.json").is_file():
        say(label, f"using the cached layers of the base ({target.name})")
        return _read_layers(target)
    ensure_mmdebstrap(say, label)
    mode = mmdebstrap_mode()
    root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="rootfs-", dir=root))
    try:
        snaps = workdir / "snapshots"
        snaps.mkdir()
        say(label, f"mmdebstrap {SUITE} from {mirror} ({mode} mode, then python3, then pip; "
                   "about 50 s)")
        _run_mmdebstrap(snaps, mirror, mode, say, label)
        _split(snaps, workdir / "layers", say, label)
        os.replace(workdir / "layers", target)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _read_layers(target)


def _split(snaps: Path, out: Path, say: Progress, label: str) -> BaseLayers:
    """Turn the stage snapshots into layer tarballs and write ``layers.json``."""
    out.mkdir()
    names = tuple(name for name, _ in STAGES)
    os.replace(snaps / f"{names[0]}.tar", out / f"{names[0]}.tar")
    removed: list[str] = []
    lower = out / f"{names[0]}.tar"
    for name in names[1:]:
        upper = snaps / f"{name}.tar"
        diff = layer_diff(lower, upper, out / f"{name}.tar")
        removed.extend(diff.removed)
        say(label, f"layer {name}: {diff.added} files added, {diff.changed} changed")
        lower = upper
    version = python_version(out / "python.tar")
    meta = {"names": list(names), "python_version": version, "removed": removed}
    (out / "layers.json").write_text(json.dumps(meta, indent=1))
    return _read_layers(out)


def _read_layers(directory: Path) -> BaseLayers:
    meta = json.loads((directory / "layers.json").read_text())
    return BaseLayers(directory, tuple(meta["names"]), meta["python_version"],
                      tuple(meta.get("removed", ())))


def snapshot_hook(out: Path) -> str:
    """A customize hook that packs the chroot as it is now into ``out`` (same file system
    only: /proc, /sys and /dev stay out; apt's lists and caches too)."""
    excludes = " ".join(f"--exclude={shlex.quote(p)}" for p in SNAPSHOT_EXCLUDES)
    return (f'tar -C "$1" --one-file-system --numeric-owner --sort=name {excludes} '
            f"-cf {shlex.quote(str(out))} .")


def mmdebstrap_command(outdir: Path, mirror: str, mode: str) -> list[str]:
    """The mmdebstrap line: minimal Debian, a snapshot, each stage's packages, a snapshot."""
    hooks = ['--customize-hook=rm -f "$1"/etc/hostname']
    for name, packages in STAGES:
        if packages:
            hooks.append('--customize-hook=chroot "$1" apt-get install -y -q '
                         f"--no-install-recommends {' '.join(packages)}")
        hooks.append(f"--customize-hook={snapshot_hook(outdir / f'{name}.tar')}")
    return ["mmdebstrap", f"--mode={mode}", "--variant=minbase",
            '--aptopt=Acquire::Check-Valid-Until "false"', *hooks, SUITE, "/dev/null", mirror]


def _run_mmdebstrap(out: Path, mirror: str, mode: str, say: Progress, label: str) -> None:
    proc = subprocess.Popen(mmdebstrap_command(out, mirror, mode), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        tail = (tail + [line.rstrip()])[-15:]
        m = re.match(r"^I: (\w+ing) ", line)  # "I: downloading packages...", once each
        if m and "--customize-hook" in line:
            pkgs = re.search(r"--no-install-recommends ([\w.+ -]+)", line)
            step = f"apt-get install {pkgs.group(1).strip()}" if pkgs else "snapshot (tar)"
            say(label, f"mmdebstrap: {step}")
        elif m:
            say(label, f"mmdebstrap: {line[3:].strip().rstrip('.')}")
    if proc.wait() != 0:
        hint = (f"Check that {mirror} is reachable, or set LABKIT_DEBIAN_MIRROR to a Debian "
                "mirror.")
        if mode == "unshare":
            hint += " Without root this also needs unprivileged user namespaces: or run " \
                    "`sudo labkit prepare --offline` once."
        raise PrepareError(f"mmdebstrap failed (exit {proc.returncode}):\n" + "\n".join(tail),
                           hint)


@dataclass(frozen=True)
class LayerDiff:
    """What one stage changed: counts of entries added and changed, paths removed."""

    added: int
    changed: int
    removed: tuple[str, ...]


def _meta(member: tarfile.TarInfo) -> tuple[Any, ...]:
    return (member.type, member.mode, member.uid, member.gid, member.size, member.mtime,
            member.linkname, member.devmajor, member.devminor)


def layer_diff(lower: Path, upper: Path, out: Path) -> LayerDiff:
    """Write to ``out`` the entries of ``upper`` that are new or differ from ``lower``.

    Entries are compared by their metadata (type, mode, owner, size, mtime, link). A hard
    link whose target is not in the layer becomes a regular file. Paths that ``upper`` no
    longer has are returned, not written (an ``ADD`` cannot delete).
    """
    with tarfile.open(lower, mode="r:") as low:
        before = {m.name: _meta(m) for m in low}
    added = changed = 0
    written: set[str] = set()
    seen: set[str] = set()
    with tarfile.open(upper, mode="r:") as src, \
            tarfile.open(out, mode="w:", format=tarfile.GNU_FORMAT) as dst:
        for member in src:
            seen.add(member.name)
            old = before.get(member.name)
            if old == _meta(member):
                continue
            added, changed = (added + 1, changed) if old is None else (added, changed + 1)
            if member.islnk() and member.linkname not in written:
                data = src.extractfile(member)
                member = _as_file(member, src.getmember(member.linkname))
                dst.addfile(member, data)
            else:
                dst.addfile(member, src.extractfile(member) if member.isreg() else None)
            written.add(member.name)
    return LayerDiff(added, changed, tuple(sorted(n for n in before if n not in seen)))


def _as_file(link: tarfile.TarInfo, target: tarfile.TarInfo) -> tarfile.TarInfo:
    info = tarfile.TarInfo(link.name)
    info.type, info.size, info.mode = tarfile.REGTYPE, target.size, target.mode
    info.uid, info.gid, info.mtime = target.uid, target.gid, target.mtime
    return info


def python_version(layer: Path) -> str:
    """The upstream version of Debian's python3.N package in a layer (``3.11.2``)."""
    with tarfile.open(layer, mode="r:") as tar:
        try:
            handle = tar.extractfile("./var/lib/dpkg/status")
        except KeyError:
            handle = None
        text = handle.read().decode() if handle is not None else ""
    m = re.search(r"^Package: python3\.\d+\n(?:[^\n]+\n)*?Version: (?:\d+:)?([\d.]+)", text,
                  re.MULTILINE)
    if not m:
        raise PrepareError("The python layer of the base names no python3.N package.",
                           "Remove the cached layers (LABKIT_CACHE_DIR) and prepare again.")
    return m.group(1)


def host_ca_bundle(path: Path | None = None) -> bytes:
    """The host's CA bundle, refusing clearly when it is not there."""
    path = path or engine.settings().host_ca_bundle
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PrepareError(
            f"The host's CA bundle {path} cannot be read ({exc.strerror}).",
            "Set LABKIT_HOST_CA_BUNDLE to your CA bundle, or prepare without --trust-host-ca.",
        ) from exc
