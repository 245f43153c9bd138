"""The error boundary's mapping: which labkit error each raw docker-py / connection error
becomes (the errors themselves are produced by a real engine in tests/integration)."""

from __future__ import annotations

from pathlib import Path

import docker.errors
import pytest
import requests

from labkit.engine import config
from labkit.engine import connection as engine
from labkit.engine import error_translation as boundary
from labkit.engine.errors import (
    ConfigError,
    EngineGone,
    EngineRefused,
    ImageMissing,
    InvalidName,
    LabkitError,
    StateError,
)
from labkit.registry import password as state


def api_error(explanation: str, status: int = 400) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError(f"{status} error", response, explanation=explanation)


def test_an_invalid_reference_is_an_invalid_name() -> None:
    got = boundary.translate(api_error("invalid reference format: repository name must be "
                                       "lowercase"), "run the container")
    assert isinstance(got, InvalidName)
    assert isinstance(got, ValueError)
    assert "lowercase" in (got.hint or "")


def test_docker_pys_own_tag_check_is_an_invalid_name() -> None:
    exc = docker.errors.DockerException("invalid tag 'a/Bad Name!:latest': invalid reference "
                                        "format")
    got = boundary.invalid_name("image", "a/Bad Name!:latest", exc, "docker image build")
    assert got.message.startswith("'a/Bad Name!:latest' is not a valid image name")
    assert "`docker image build` is refused the same way." in (got.hint or "")


def test_a_missing_image_is_image_missing() -> None:
    exc = docker.errors.ImageNotFound("No such image: x:1", explanation="No such image: x:1")
    assert isinstance(boundary.translate(exc, "run the container"), ImageMissing)


def test_any_other_refusal_keeps_the_engines_words_and_status() -> None:
    got = boundary.translate(api_error("failed to extract layer", 500), "build the image",
                             "docker image build .")
    assert isinstance(got, EngineRefused)
    assert got.status_code == 500
    assert got.message == "The Docker Engine refused to build the image: failed to extract layer"
    assert "`docker image build .` in a terminal does the same" in (got.hint or "")


def test_a_lost_connection_is_engine_gone_and_forgets_the_client(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_client", object())
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    got = boundary.translate(requests.ConnectionError("Connection aborted."), "list the images")
    assert isinstance(got, EngineGone)
    assert got.message == ("The Docker Engine at tcp://127.0.0.1:1 went away while labkit "
                           "was trying to list the images (ConnectionError).")
    assert engine._client is None


def test_a_labkit_error_passes_unchanged() -> None:
    error = LabkitError("x", "y")
    assert boundary.translate(error, "anything") is error


def test_the_decorator_chains_the_raw_error() -> None:
    @boundary.boundary("stop the container")
    def refuse() -> None:
        raise api_error("conflict", 409)

    with pytest.raises(EngineRefused) as caught:
        refuse()
    assert isinstance(caught.value.__cause__, docker.errors.APIError)


def test_the_notebook_handler_shows_the_translated_error() -> None:
    shown = []

    class Shell:
        def _showtraceback(self, etype, value, stb):  # noqa: ANN001
            shown.append((etype, stb))

    boundary.show_in_notebook(Shell(), docker.errors.APIError, api_error("nope", 500), None)
    ((etype, stb),) = shown
    assert etype is EngineRefused
    assert stb[0].startswith("EngineRefused: The Docker Engine refused to run this cell: nope")


def test_an_invalid_user_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        config.from_env({"LABKIT_USER": "Bad User!"})
    assert isinstance(caught.value, ValueError)
    assert "export LABKIT_USER=" in (caught.value.hint or "")


def test_an_unreadable_state_file_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "student.json"
    path.mkdir()  # a folder where the file should be: reading it fails
    with pytest.raises(StateError, match="cannot read its state file"):
        state.load(path)
