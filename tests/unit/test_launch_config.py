"""The ways to launch the course stay valid: conda/Binder environments, CI files, dev container.

No engine needed: the environments are compared with pyproject.toml, the CI files are
validated offline against the schemas that check-jsonschema ships, and a dead DOCKER_HOST
proves that "no engine" is one clear sentence, not a traceback.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

from labkit import binder, engine
from labkit.errors import EngineUnavailable

ROOT = Path(__file__).resolve().parents[2]

#: PyPI name -> conda-forge name, where they differ.
CONDA_NAMES = {
    "docker": "docker-py",
    "playwright": "playwright-python",
}

#: conda-only entries that have no counterpart in pyproject's dependency lists.
CONDA_ONLY = {"python", "pip"}

_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;#]*)")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _split(requirement: str) -> tuple[str, str]:
    """``"docker>=7.1"`` -> ``("docker", ">=7.1")`` (name normalised, spaces removed)."""
    match = _REQ.match(requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    return _normalise(match.group(1)), match.group(2).replace(" ", "")


def pyproject_requirements(path: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """[project] dependencies plus the `test` extra and python, by conda-forge name."""
    project = tomllib.loads(path.read_text())["project"]
    reqs = list(project["dependencies"]) + list(project["optional-dependencies"]["test"])
    out = {"python": project["requires-python"].replace(" ", "")}
    for req in reqs:
        name, spec = _split(req)
        out[CONDA_NAMES.get(name, name)] = spec
    return out


def environment(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def conda_requirements(env: dict) -> dict[str, str]:
    """The conda packages of an environment.yml (its pip section left out)."""
    out: dict[str, str] = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            name, spec = _split(dep)
            out[name] = spec
    return out


def pip_section(env: dict) -> list[str]:
    for dep in env["dependencies"]:
        if isinstance(dep, dict) and "pip" in dep:
            return list(dep["pip"])
    return []


def drift(pyproject: dict[str, str], conda: dict[str, str]) -> list[str]:
    """Every difference, one line each, naming the package."""
    problems = []
    for name in sorted(pyproject.keys() - conda.keys()):
        problems.append(f"{name}: in pyproject.toml, missing from environment.yml")
    for name in sorted(conda.keys() - pyproject.keys() - (CONDA_ONLY - {"python"})):
        problems.append(f"{name}: in environment.yml, missing from pyproject.toml")
    for name in sorted(pyproject.keys() & conda.keys()):
        if pyproject[name] != conda[name]:
            problems.append(
                f"{name}: pyproject.toml says {pyproject[name]!r}, "
                f"environment.yml says {conda[name]!r}"
            )
    return problems


# ------------------------------------------------------------------ environments
def test_environment_yml_matches_pyproject() -> None:
    conda = conda_requirements(environment(ROOT / "environment.yml"))
    problems = drift(pyproject_requirements(), conda)
    assert problems == [], "environment.yml drifted from pyproject.toml:\n" + "\n".join(problems)


def test_drift_names_the_package_that_differs() -> None:
    pyproject = {"python": ">=3.11", "docker-py": ">=7.1", "pandas": ">=2.0"}
    conda = {"python": ">=3.11", "pip": "", "docker-py": ">=7.0", "bcrypt": ">=4.0"}
    assert drift(pyproject, conda) == [
        "pandas: in pyproject.toml, missing from environment.yml",
        "bcrypt: in environment.yml, missing from pyproject.toml",
        "docker-py: pyproject.toml says '>=7.1', environment.yml says '>=7.0'",
    ]


def test_pypi_names_map_to_conda_forge_names() -> None:
    assert pyproject_requirements().get("docker-py") == ">=7.1"


def test_environment_yml_uses_conda_forge_and_installs_labkit() -> None:
    env = environment(ROOT / "environment.yml")
    assert env["channels"] == ["conda-forge"]
    assert "-e ." in pip_section(env)


def test_binder_environment_has_the_same_conda_packages() -> None:
    root = environment(ROOT / "environment.yml")
    binder_env = environment(ROOT / "binder" / "environment.yml")
    assert binder_env["channels"] == root["channels"]
    assert conda_requirements(binder_env) == conda_requirements(root)


def test_binder_environment_leaves_labkit_to_postbuild() -> None:
    # repo2docker installs binder/environment.yml before it copies the repository in.
    assert pip_section(environment(ROOT / "binder" / "environment.yml")) == []


def test_binder_postbuild_installs_labkit() -> None:
    post_build = ROOT / "binder" / "postBuild"
    assert post_build.stat().st_mode & stat.S_IXUSR, "binder/postBuild must be executable"
    text = post_build.read_text()
    assert text.startswith("#!")
    assert re.search(r"pip install\b.*\s-e \.\s*$", text, re.MULTILINE)


def test_binder_start_script_execs_its_arguments() -> None:
    start = ROOT / "binder" / "start"
    if start.exists():  # optional for repo2docker; when present it must hand over
        assert start.read_text().rstrip().endswith('exec "$@"')
    assert not (ROOT / ".binder").exists(), "use binder/ only: repo2docker prefers one"


# ------------------------------------------------------------------ CI files
def _check_jsonschema(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", *map(str, args)],
        capture_output=True, text=True, check=False, timeout=120,
    )


def test_github_workflow_matches_its_schema() -> None:
    run = _check_jsonschema("--builtin-schema", "vendor.github-workflows",
                            ROOT / ".github" / "workflows" / "ci.yml")
    assert run.returncode == 0, run.stdout + run.stderr


def test_gitlab_ci_matches_its_schema() -> None:
    run = _check_jsonschema("--builtin-schema", "vendor.gitlab-ci",
                            "--data-transform", "gitlab-ci", ROOT / ".gitlab-ci.yml")
    assert run.returncode == 0, run.stdout + run.stderr


def test_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    workflow["jobs"]["test"]["runs-on"] = {"not": "a runner"}
    workflow["jobs"]["test"]["steps"][0] = {"uses": 42}
    broken = tmp_path / "ci.yml"
    broken.write_text(yaml.safe_dump(workflow))
    run = _check_jsonschema("--builtin-schema", "vendor.github-workflows", broken)
    assert run.returncode == 1, run.stdout + run.stderr


def _github_job() -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())["jobs"]["test"]


def test_github_workflow_runs_make_test_against_tls_dind() -> None:
    job = _github_job()
    service = job["services"]["dind"]
    assert service["image"] == "docker:dind"
    assert "--privileged" in service["options"].split()
    assert service["env"]["DOCKER_TLS_CERTDIR"] == "/certs"
    host_dir = next(v.split(":")[0] for v in service["volumes"] if v.endswith(":/certs"))
    make_test = next(step for step in job["steps"]
                     if step.get("run", "").split()[-2:] == ["make", "test"])
    assert make_test["env"]["DOCKER_CERT_PATH"] == f"{host_dir}/client"
    assert make_test["env"]["DOCKER_TLS_VERIFY"] == "1"
    script = "\n".join(step.get("run", "") for step in job["steps"])
    assert re.search(r"LABKIT_DIND_HOST=tcp://\$\{ip\}:2376", script)


def test_github_workflow_uploads_artifacts_even_on_failure() -> None:
    upload = next(s for s in _github_job()["steps"]
                  if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()"
    assert upload["with"]["path"].rstrip("/") == "artifacts"


def test_gitlab_ci_runs_make_test_against_tls_dind() -> None:
    ci = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text())
    job = ci["test"]
    services = [s if isinstance(s, str) else s["name"] for s in job["services"]]
    assert "docker:dind" in services
    variables = job["variables"]
    assert variables["DOCKER_HOST"] == "tcp://docker:2376"
    assert variables["DOCKER_TLS_CERTDIR"] == "/certs"
    assert variables["DOCKER_CERT_PATH"] == "/certs/client"
    assert variables["DOCKER_TLS_VERIFY"] == "1"
    assert variables["LABKIT_DIND_HOST"] == variables["DOCKER_HOST"]
    assert "make test" in job["script"]
    assert job["artifacts"]["when"] == "always"
    assert "artifacts/" in job["artifacts"]["paths"]


# ------------------------------------------------------------------ dev container
#: The part of the dev container spec (devContainer.base.schema.json) this file uses.
DEVCONTAINER_SCHEMA = {
    "type": "object",
    "required": ["image", "features", "postCreateCommand"],
    "properties": {
        "name": {"type": "string"},
        "image": {"type": "string", "minLength": 1},
        "features": {
            "type": "object",
            "additionalProperties": {"type": ["object", "string", "boolean"]},
        },
        "hostRequirements": {
            "type": "object",
            "properties": {
                "cpus": {"type": "integer", "minimum": 1},
                "memory": {"type": "string", "pattern": r"^\d+([tgmk]b)?$"},
                "storage": {"type": "string", "pattern": r"^\d+([tgmk]b)?$"},
            },
            "additionalProperties": False,
        },
        "postCreateCommand": {"type": ["string", "array", "object"]},
        "forwardPorts": {"type": "array", "items": {"type": ["integer", "string"]}},
        "portsAttributes": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "onAutoForward": {"enum": ["notify", "openBrowser", "openBrowserOnce",
                                               "openPreview", "silent", "ignore"]},
                },
            },
        },
        "customizations": {
            "type": "object",
            "properties": {
                "codespaces": {
                    "type": "object",
                    "properties": {"openFiles": {"type": "array", "items": {"type": "string"}}},
                },
                "vscode": {
                    "type": "object",
                    "properties": {
                        "extensions": {"type": "array", "items": {"type": "string"}},
                        "settings": {"type": "object"},
                    },
                },
            },
        },
    },
    "additionalProperties": False,
}


def _devcontainer() -> dict:
    # Kept as plain JSON (no comments), so any JSON parser reads it.
    return json.loads((ROOT / ".devcontainer" / "devcontainer.json").read_text())


def test_devcontainer_matches_the_spec_subset() -> None:
    jsonschema.validate(_devcontainer(), DEVCONTAINER_SCHEMA)


def test_devcontainer_has_docker_in_docker_and_opens_the_course() -> None:
    config = _devcontainer()
    assert "ghcr.io/devcontainers/features/docker-in-docker:2" in config["features"]
    assert "-e" in config["postCreateCommand"] and "[test]" in config["postCreateCommand"]
    assert 8888 in config["forwardPorts"]
    open_files = config["customizations"]["codespaces"]["openFiles"]
    assert open_files == ["notebooks/00-setup.ipynb"]


# ------------------------------------------------------------------ no engine (Binder)
def _dead_engine_env() -> dict[str, str]:
    with socket.socket() as sock:  # a port nothing listens on once the socket closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DOCKER_", "BINDER_"))}
    env["DOCKER_HOST"] = f"tcp://127.0.0.1:{port}"
    return env


def test_connect_to_a_dead_engine_raises_one_clear_error() -> None:
    env = _dead_engine_env()
    with pytest.raises(EngineUnavailable) as caught:
        engine.connect(env)
    assert env["DOCKER_HOST"] in caught.value.message
    assert caught.value.hint == engine.NO_ENGINE_HINT
    assert "Binder has no Docker engine" in caught.value.hint


def test_binder_session_without_engine_says_so() -> None:
    env = _dead_engine_env() | {"BINDER_LAUNCH_HOST": "https://binder.example/"}
    check = binder.check_engine(env)
    assert not check.available
    assert check.binder
    assert check.message == binder.BINDER_MESSAGE
    assert check.hint == engine.NO_ENGINE_HINT
    assert isinstance(check.error, EngineUnavailable)


def test_engine_check_passes_when_the_engine_answers() -> None:
    check = binder.check_engine({"DOCKER_HOST": "tcp://engine.example:2376"},
                                connect=lambda env: object())
    assert check.available
    assert check.error is None
    assert not check.binder


def test_labkit_doctor_without_engine_exits_1_with_the_hint_and_no_traceback() -> None:
    script = Path(sysconfig.get_path("scripts")) / "labkit"
    assert script.exists(), f"the `labkit` console command is not installed at {script}"
    run = subprocess.run([str(script), "doctor"], env=_dead_engine_env(), capture_output=True,
                         text=True, check=False, timeout=120)
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert engine.NO_ENGINE_HINT in " ".join(output.split()), output
    assert "Traceback" not in output, output
