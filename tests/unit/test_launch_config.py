"""The ways to launch the course stay valid: conda/Binder environments, dev container.

No engine needed: the environments are compared with pyproject.toml, and a dead DOCKER_HOST
proves that "no engine" is one clear sentence, not a traceback. The CI files and the
scripts under them: test_launch_ci.py.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sysconfig
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml
from packaging.specifiers import SpecifierSet

from labkit.engine import availability as binder
from labkit.engine import connection as engine
from labkit.engine.errors import EngineUnavailable

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


def pyproject_requirements(path: Path = ROOT / "pyproject.toml",
                           extras: tuple[str, ...] = ("test", "classroom")) -> dict[str, str]:
    """[project] dependencies plus the given extras and python, by conda-forge name.

    environment.yml (development) is the runtime plus the `test` and `classroom` extras (what
    scripts/venv.sh installs); binder/environment.yml (Binder) is the runtime only:
    ``extras=()``.
    """
    project = tomllib.loads(path.read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
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


def drift(pyproject: dict[str, str], conda: dict[str, str],
          file: str = "environment.yml") -> list[str]:
    """Every difference, one line each, naming the package (and the conda file)."""
    problems = []
    for name in sorted(pyproject.keys() - conda.keys()):
        problems.append(f"{name}: in pyproject.toml, missing from {file}")
    for name in sorted(conda.keys() - pyproject.keys() - (CONDA_ONLY - {"python"})):
        problems.append(f"{name}: in {file}, missing from pyproject.toml")
    for name in sorted(pyproject.keys() & conda.keys()):
        if pyproject[name] != conda[name]:
            problems.append(
                f"{name}: pyproject.toml says {pyproject[name]!r}, "
                f"{file} says {conda[name]!r}"
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


#: How repo2docker reads the Python version of an environment.yml (PYTHON_REGEX of its conda
#: buildpack, applied with re.match): `python=3.11` is read; `python>=3.11` is not, and
#: repo2docker then builds its default Python and upgrades it in place.
REPO2DOCKER_PYTHON = re.compile(r"python\s*=+\s*([\d\.]*)")


def test_binder_environment_is_the_runtime_dependencies_of_pyproject() -> None:
    binder_env = environment(ROOT / "binder" / "environment.yml")
    assert binder_env["channels"] == environment(ROOT / "environment.yml")["channels"]
    conda = conda_requirements(binder_env)
    runtime = pyproject_requirements(extras=())
    del conda["python"], runtime["python"]  # pinned: the next tests
    problems = drift(runtime, conda, file="binder/environment.yml")
    assert problems == [], ("binder/environment.yml drifted from pyproject.toml's [project] "
                            "dependencies:\n" + "\n".join(problems))


def test_binder_environment_has_no_test_tools() -> None:
    test_tools = pyproject_requirements().keys() - pyproject_requirements(extras=()).keys()
    assert {"pytest", "nbval", "ruff", "playwright-python"} <= test_tools
    binder_env = conda_requirements(environment(ROOT / "binder" / "environment.yml"))
    assert sorted(test_tools & binder_env.keys()) == []


def test_binder_pins_python_in_the_form_repo2docker_reads() -> None:
    deps = environment(ROOT / "binder" / "environment.yml")["dependencies"]
    read = [m.group(1) for dep in deps
            if isinstance(dep, str) and (m := REPO2DOCKER_PYTHON.match(dep))]
    assert read == ["3.11"]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(requires).contains(read[0]), (read[0], requires)


def test_repo2docker_reads_an_exact_python_but_not_a_lower_bound() -> None:
    assert REPO2DOCKER_PYTHON.match("python=3.11").group(1) == "3.11"
    assert REPO2DOCKER_PYTHON.match("python>=3.11") is None


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


# ------------------------------------------------------------------ dev container
#: The part of the dev container spec (devContainer.base.schema.json) this file uses.
_LIFECYCLE_COMMAND = {
    "type": ["string", "array", "object"],
    "items": {"type": "string"},
    "additionalProperties": {"type": ["string", "array"], "items": {"type": "string"}},
}

#: The docker-in-docker feature's options (its devcontainer-feature.json).
DOCKER_IN_DOCKER_OPTIONS = {
    "type": "object",
    "properties": {
        "version": {"type": "string"},
        "moby": {"type": "boolean"},
        "mobyBuildxVersion": {"type": "string"},
        "dockerDashComposeVersion": {"type": "string"},
        "azureDnsAutoDetection": {"type": "boolean"},
        "dockerDefaultAddressPool": {"type": "string"},
        "installDockerBuildx": {"type": "boolean"},
        "installDockerComposeSwitch": {"type": "boolean"},
        "disableIp6tables": {"type": "boolean"},
    },
    "additionalProperties": False,
}

DOCKER_IN_DOCKER = "ghcr.io/devcontainers/features/docker-in-docker:2"

DEVCONTAINER_SCHEMA = {
    "type": "object",
    "required": ["image", "features", "updateContentCommand", "postAttachCommand"],
    "properties": {
        "name": {"type": "string"},
        "image": {"type": "string", "minLength": 1},
        "features": {
            "type": "object",
            "properties": {DOCKER_IN_DOCKER: DOCKER_IN_DOCKER_OPTIONS},
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
        **{command: _LIFECYCLE_COMMAND for command in (
            "onCreateCommand", "updateContentCommand", "postCreateCommand",
            "postStartCommand", "postAttachCommand")},
        "waitFor": {"enum": ["initializeCommand", "onCreateCommand", "updateContentCommand",
                             "postCreateCommand", "postStartCommand"]},
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


def test_devcontainer_schema_subset_rejects_an_unknown_feature_option() -> None:
    config = _devcontainer()
    config["features"][DOCKER_IN_DOCKER] = {"dockerVersion": "29"}  # the option is "version"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, DEVCONTAINER_SCHEMA)


def test_devcontainer_pins_docker_engine_29() -> None:
    # Engine 29 is what learners and CI run (labkit negotiates its API floor of 1.44).
    # Docker's own packages (moby: false) carry every 29.x; the feature matches "29" as a
    # version prefix, so patch releases still come in.
    options = _devcontainer()["features"][DOCKER_IN_DOCKER]
    assert options["version"] == "29"
    assert options["moby"] is False


def _commands(config: dict) -> list[str]:
    """Every lifecycle command of the dev container, as text."""
    out = []
    for key in ("onCreateCommand", "updateContentCommand", "postCreateCommand",
                "postStartCommand", "postAttachCommand"):
        value = config.get(key)
        for command in (value.values() if isinstance(value, dict) else [value]):
            if command:
                out.append(command if isinstance(command, str) else " ".join(command))
    return out


def test_devcontainer_installs_the_course_once_into_the_venv() -> None:
    config = _devcontainer()
    assert config["updateContentCommand"] == "make venv"  # also what a prebuild runs
    assert [c for c in _commands(config) if "pip" in c] == []  # nothing into the global Python
    settings = config["customizations"]["vscode"]["settings"]
    assert settings["python.defaultInterpreterPath"].endswith("/.venv/bin/python")


def test_devcontainer_opens_jupyterlab_on_the_course() -> None:
    config = _devcontainer()
    assert list(config["postAttachCommand"].values()) == [".devcontainer/lab.sh"]
    lab = ROOT / ".devcontainer" / "lab.sh"
    assert lab.stat().st_mode & stat.S_IXUSR, ".devcontainer/lab.sh must be executable"
    text = lab.read_text()
    assert text.index(".devcontainer/wait-for-engine.sh") < text.index("exec make lab")
    assert config["forwardPorts"] == [8888]
    assert config["portsAttributes"]["8888"]["onAutoForward"] == "openBrowser"
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
