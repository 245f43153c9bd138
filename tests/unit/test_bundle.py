"""Bundle checksums without an engine: the sidecar file's format and its refusals."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from labkit.engine.errors import PrepareError
from labkit.offline import bundle


def test_the_checksum_sits_beside_the_bundle(tmp_path: Path) -> None:
    assert bundle.checksum_path(tmp_path / "c.tar") == tmp_path / "c.tar.sha256"


def test_file_sha256_reads_in_chunks_and_reports_progress(tmp_path: Path) -> None:
    data = b"x" * (bundle.CHUNK + 10)
    (tmp_path / "f").write_bytes(data)
    seen: list[tuple[int, int]] = []
    got = bundle.file_sha256(tmp_path / "f", lambda d, t: seen.append((d, t)))
    assert got == hashlib.sha256(data).hexdigest()
    assert seen == [(bundle.CHUNK, len(data)), (len(data), len(data))]


def test_a_sha256sum_line_is_read(tmp_path: Path) -> None:
    (tmp_path / "c.tar.sha256").write_text("AB" * 32 + "  c.tar\n")
    assert bundle.expected_sha256(tmp_path / "c.tar") == "ab" * 32


@pytest.mark.parametrize("text", [None, "", "not-a-checksum  c.tar\n"])
def test_a_missing_or_empty_checksum_is_refused(tmp_path: Path, text: str | None) -> None:
    if text is not None:
        (tmp_path / "c.tar.sha256").write_text(text)
    with pytest.raises(PrepareError) as caught:
        bundle.expected_sha256(tmp_path / "c.tar")
    assert caught.value.hint
