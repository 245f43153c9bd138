"""Debian root file systems for the offline stand-in images, made with mmdebstrap.

The stand-in base image starts as a minimal Debian root file system (``--variant=minbase``
with python3 and pip), written as a tar file and cached (``LABKIT_CACHE_DIR``, default
``~/.cache/labkit``) so that a second preparation on the same machine skips it.

- As root, mmdebstrap runs in its ``root`` mode; as any other user in ``unshare`` mode,
  where the kernel allows unprivileged user namespaces and ``newuidmap`` exists
  (Debian's ``uidmap``). When neither works the error says what to run once as root.
- The packages always come from a *Debian* mirror: the one this machine's apt uses when it
  is one, else ``deb.debian.org``, even on Ubuntu (``LABKIT_DEBIAN_MIRROR`` overrides).
- A mirror frozen at a date serves Release files past their Valid-Until: they are accepted.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlparse

from . import config
from .errors import PrepareError

SUITE = "bookworm"
INCLUDE = ("python3", "python3-pip")
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


def ensure_mmdebstrap(say: Progress = _quiet, label: str = config.BASE_IMAGE) -> None:
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


def rootfs_tarball(*, mirror: str | None = None, cache_dir: Path | None = None,
                   progress: Progress | None = None, label: str = config.BASE_IMAGE) -> Path:
    """The minimal Debian root file system as a tar file, made once and cached."""
    say = progress or _quiet
    mirror = mirror or debian_mirror()
    key = hashlib.sha256(f"mmdebstrap|{SUITE}|minbase|{','.join(INCLUDE)}|{mirror}".encode())
    root = cache_dir or cache_root()
    target = root / f"debian-{SUITE}-minbase-{key.hexdigest()[:12]}.tar"
    if target.is_file():
        say(label, f"using the cached Debian root file system ({target.name})")
        return target
    ensure_mmdebstrap(say, label)
    mode = mmdebstrap_mode()
    root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="rootfs-", dir=root))
    try:
        partial = workdir / "rootfs.tar"
        say(label, f"mmdebstrap {SUITE} from {mirror} ({mode} mode, about 30 s)")
        _run_mmdebstrap(partial, mirror, mode, say, label)
        os.replace(partial, target)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return target


def mmdebstrap_command(out: Path, mirror: str, mode: str) -> list[str]:
    """The mmdebstrap line: minimal Debian with python3 and pip, as a tar file."""
    return ["mmdebstrap", f"--mode={mode}", "--variant=minbase",
            f"--include={','.join(INCLUDE)}", '--aptopt=Acquire::Check-Valid-Until "false"',
            "--customize-hook=rm -f \"$1\"/etc/hostname \"$1\"/var/log/*.log",
            SUITE, str(out), mirror]


def _run_mmdebstrap(out: Path, mirror: str, mode: str, say: Progress, label: str) -> None:
    proc = subprocess.Popen(mmdebstrap_command(out, mirror, mode), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        tail = (tail + [line.rstrip()])[-15:]
        m = re.match(r"^I: (\w+ing) ", line)  # "I: downloading packages...", once each
        if m:
            say(label, f"mmdebstrap: {line[3:].strip().rstrip('.')}")
    if proc.wait() != 0:
        hint = (f"Check that {mirror} is reachable, or set LABKIT_DEBIAN_MIRROR to a Debian "
                "mirror.")
        if mode == "unshare":
            hint += " Without root this also needs unprivileged user namespaces: or run " \
                    "`sudo labkit prepare --offline` once."
        raise PrepareError(f"mmdebstrap failed (exit {proc.returncode}):\n" + "\n".join(tail),
                           hint)


def customise_rootfs(source: io.BufferedIOBase, out: io.BufferedIOBase, *,
                     ca_bundle: bytes | None = None) -> list[str]:
    """Copy a root file system tar, making it act like the official slim image.

    ``python`` becomes a command, pip may install system-wide (EXTERNALLY-MANAGED is
    dropped) and, given ``ca_bundle``, the host's CA bundle replaces the image's and is
    kept for ``update-ca-certificates``. Returns what was changed, one line each.
    """
    changes: list[str] = []
    have_python = False
    with tarfile.open(fileobj=source, mode="r:") as src, \
            tarfile.open(fileobj=out, mode="w:", format=tarfile.GNU_FORMAT) as dst:
        for member in src:
            path = member.name.removeprefix("./")
            if re.fullmatch(r"usr/lib/python3[.\d]*/EXTERNALLY-MANAGED", path):
                changes.append(f"removed /{path}")
                continue
            if path == "usr/bin/python":
                have_python = True
            if ca_bundle is not None and path == "etc/ssl/certs/ca-certificates.crt":
                _add_bytes(dst, member.name, ca_bundle, member)
                changes.append(f"replaced /{path} with the host's CA bundle")
                continue
            dst.addfile(member, src.extractfile(member) if member.isreg() else None)
        if not have_python:
            link = tarfile.TarInfo("./usr/bin/python")
            link.type, link.linkname, link.mode = tarfile.SYMTYPE, "python3", 0o777
            dst.addfile(link)
            changes.append("added /usr/bin/python -> python3")
        if ca_bundle is not None:
            _add_bytes(dst, "./" + HOST_CA_IN_IMAGE, ca_bundle)
            changes.append(f"added /{HOST_CA_IN_IMAGE}")
    return changes


def _add_bytes(dst: tarfile.TarFile, name: str, data: bytes,
               like: tarfile.TarInfo | None = None) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
    if like is not None:
        info.mode, info.mtime = like.mode, like.mtime
    dst.addfile(info, io.BytesIO(data))


def host_ca_bundle(path: Path | None = None) -> bytes:
    """The host's CA bundle, refusing clearly when it is not there."""
    path = path or config.settings().host_ca_bundle
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PrepareError(
            f"The host's CA bundle {path} cannot be read ({exc.strerror}).",
            "Set LABKIT_HOST_CA_BUNDLE to your CA bundle, or prepare without --trust-host-ca.",
        ) from exc
