"""The classic builder's context: written as the docker CLI writes it (what its COPY
cache key hashes), from a real folder; no engine."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from labkit.images.build_context import cli_context


def _headers(folder: Path) -> dict[str, bytes]:
    data = cli_context(folder).getvalue()
    found, offset = {}, 0
    while any(data[offset:offset + 512]):
        header = data[offset:offset + 512]
        size = int(header[124:136].strip(b"\0 ") or b"0", 8)
        if header[156:157] != b"x":  # a PAX record belongs to the next entry
            found[header[:100].rstrip(b"\0").decode()] = header
        offset += 512 + -(-size // 512) * 512
    return found


def test_entries_carry_go_type_bits_and_root_owner(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY app.py /app.py\n")
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / "src").mkdir()
    os.symlink("app.py", tmp_path / "link.py")
    headers = _headers(tmp_path)
    assert headers["app.py"][100:108] == b"0100644\0"
    assert headers["src/"][100:108] == b"0040755\0"
    assert headers["link.py"][100:108] == b"0120777\0"
    assert all(h[108:124] == b"0000000\0" * 2 for h in headers.values())


def test_the_tar_stays_valid_and_applies_dockerignore(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / "secret.env").write_text("TOKEN=x\n")
    (tmp_path / ".dockerignore").write_text("# no secrets\nsecret.env\nDockerfile\n")
    with tarfile.open(fileobj=cli_context(tmp_path)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == [".dockerignore", "Dockerfile", "app.py"]
        app = tar.extractfile(members["app.py"])
        assert app is not None and app.read() == b"print('hi')\n"
        assert members["app.py"].mode & 0o7777 == 0o644 and members["app.py"].uid == 0
