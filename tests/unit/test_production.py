"""Step 10's helpers that need no engine: pins read from ``pip freeze``, the FROM lines a
digest pin rewrites, the part of a Dockerfile a ``--target`` build reads."""

from __future__ import annotations

from pathlib import Path

from labkit import images
from labkit.course import production
from labkit.engine import docker as docker_cmd

FREEZE = """blinker==1.9.0
click==8.5.1
Flask==3.1.3
Jinja2==3.1.6
markupsafe==3.0.4
typing_extensions==4.12.2
-e git+https://example.org/repo.git#egg=mine
pkg @ file:///tmp/pkg
"""


def test_parse_pins_keeps_exact_pins_with_pip_normalised_names():
    pins = production.parse_pins(FREEZE)
    assert pins == {"blinker": "1.9.0", "click": "8.5.1", "flask": "3.1.3", "jinja2": "3.1.6",
                    "markupsafe": "3.0.4", "typing-extensions": "4.12.2"}


def test_a_range_is_no_pin():
    assert production.parse_pins("flask>=3\nclick\njinja2~=3.1\n") == {}


MULTI = """FROM python:3.11-slim-bookworm AS build
RUN echo build > /marker

FROM --platform=linux/amd64 python:3.11-slim-bookworm
COPY --from=build /marker /marker
FROM python:3.11-slim-bookworm-extra
"""


def _pinned(reference: str) -> production.PinnedBase:
    return production.PinnedBase("python:3.11-slim-bookworm", reference, "sha256:" + "a" * 64,
                                 "test", (), docker_cmd("image", "inspect", "x"))


def test_pin_from_rewrites_every_from_of_the_base_and_nothing_else(tmp_path: Path):
    (tmp_path / "Dockerfile").write_text(MULTI)
    ref = "python:3.11-slim-bookworm@sha256:" + "a" * 64
    text = production.pin_from(_pinned(ref), tmp_path)
    assert text.splitlines()[0] == f"FROM {ref} AS build"
    assert f"FROM --platform=linux/amd64 {ref}" in text
    assert "FROM python:3.11-slim-bookworm-extra" in text  # another image: left alone
    assert "COPY --from=build /marker /marker" in text
    assert (tmp_path / "Dockerfile").read_text() == text


def test_pin_from_twice_changes_nothing_more(tmp_path: Path):
    (tmp_path / "Dockerfile").write_text(MULTI)
    pinned = _pinned("localhost:5000/ann/python@sha256:" + "b" * 64)
    once = production.pin_from(pinned, tmp_path)
    assert production.pin_from(pinned, tmp_path) == once


def test_stage_text_ends_with_the_target_stage():
    assert images.stage_text(MULTI, "build") == (
        "FROM python:3.11-slim-bookworm AS build\nRUN echo build > /marker\n\n")
    assert images.stage_text(MULTI, "BUILD").startswith("FROM python")
    assert images.stage_text(MULTI, "nope") == MULTI


def test_build_command_names_the_target():
    assert str(images.build_command("ann/app:1", "/x", target="build")) == (
        "docker build -t ann/app:1 --target build /x")


def test_write_folder_holds_a_secret_and_notes_and_no_ignore_file(tmp_path: Path):
    folder = tmp_path / "production"
    folder.mkdir()
    (folder / ".dockerignore").write_text(".env\n")
    production.write_folder(folder)
    assert sorted(p.name for p in folder.iterdir()) == [".env", "app.py", "notes"]
    assert (folder / production.NOTES_FILE).stat().st_size == production.NOTES_BYTES
    mtime = (folder / "app.py").stat().st_mtime_ns
    production.write_folder(folder)
    assert (folder / "app.py").stat().st_mtime_ns == mtime  # same content: not rewritten
