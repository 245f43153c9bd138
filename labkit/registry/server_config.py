"""What goes into the registry container: its config file and htpasswd (bcrypt), as a tar
for ``put_archive`` (nothing is bind-mounted: the engine may be remote), and reading back.
"""

from __future__ import annotations

import io
import tarfile
import time
from typing import Any

import bcrypt
from docker.errors import NotFound

CONFIG_DIR = "/etc/docker/registry"
DATA_DIR = "/var/lib/registry"
REALM = "labkit-registry"
BCRYPT_ROUNDS = 5  # what `htpasswd -B` uses; the registry checks the hash on every request


def htpasswd_line(username: str, password: str, rounds: int = BCRYPT_ROUNDS) -> str:
    """One htpasswd entry with a bcrypt hash, as ``htpasswd -Bbn`` writes it."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()
    return f"{username}:{hashed}\n"


def config_yaml(realm: str = REALM) -> str:
    """The registry's config.yml: filesystem storage, deletes allowed, HTTPS only (the
    certificate and key of :mod:`labkit.registry.tls`), htpasswd auth."""
    return (
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {DATA_DIR}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: :5000\n  tls:\n    certificate: {CONFIG_DIR}/tls.crt\n"
        f"    key: {CONFIG_DIR}/tls.key\n"
        f"auth:\n  htpasswd:\n    realm: {realm}\n    path: {CONFIG_DIR}/htpasswd\n"
    )


def config_tar(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def read_config_file(container: Any, path: str) -> str | None:
    try:
        stream, _ = container.get_archive(path)
    except NotFound:
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        fh = tar.extractfile(member) if member else None
        return fh.read().decode() if fh else None


def htpasswd_matches(text: str | None, username: str, password: str) -> bool:
    for line in (text or "").splitlines():
        user, _, hashed = line.partition(":")
        if user == username and hashed:
            try:
                return bcrypt.checkpw(password.encode(), hashed.encode())
            except ValueError:
                return False
    return False
