"""CI definitions that are thin and tested: the two pipelines, `make ci` and the scripts under it.

No engine needed. The pipelines are validated offline against the schemas check-jsonschema
ships (and by gitlab-ci-local where it is installed), then read for what they promise:
one entry point, pinned dind, no job-wide DOCKER_* variable, a job on the oldest engine,
artifacts per attempt, a pip cache. The scripts run in the environment each service
really gives, with stand-in commands (docker, sudo, id, apt-get, dpkg-query, ...) that
record what they were asked to do: GitHub's runner (a non-root user with password-less
sudo, docker-ce running) and GitLab's job container (root, a dind service named `docker`).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / ".github" / "workflows" / "ci.yml"
GITLAB = ROOT / ".gitlab-ci.yml"

#: The official dind image both pipelines use: pinned to Docker Engine's major version.
DIND_IMAGE = "docker:29-dind"
#: Engine 29 refuses clients below this API version.
ENGINE_29_MIN_API = (1, 44)
#: Variables that point a whole job's docker clients at an engine: never set job- or step-wide.
ENGINE_VARIABLES = {"DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS"}


# ------------------------------------------------------------------ schemas
def _check_jsonschema(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", *map(str, args)],
        capture_output=True, text=True, check=False, timeout=120,
    )


def test_github_workflow_matches_its_schema() -> None:
    run = _check_jsonschema("--builtin-schema", "vendor.github-workflows", GITHUB)
    assert run.returncode == 0, run.stdout + run.stderr


def test_gitlab_ci_matches_its_schema() -> None:
    run = _check_jsonschema("--builtin-schema", "vendor.gitlab-ci",
                            "--data-transform", "gitlab-ci", GITLAB)
    assert run.returncode == 0, run.stdout + run.stderr


def test_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    workflow = yaml.safe_load(GITHUB.read_text())
    workflow["jobs"]["test"]["runs-on"] = {"not": "a runner"}
    workflow["jobs"]["test"]["steps"][0] = {"uses": 42}
    broken = tmp_path / "ci.yml"
    broken.write_text(yaml.safe_dump(workflow))
    run = _check_jsonschema("--builtin-schema", "vendor.github-workflows", broken)
    assert run.returncode == 1, run.stdout + run.stderr


def _gitlab_ci_local(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """gitlab-ci-local on a copy of the pipeline (its state directory stays out of the repo)."""
    exe = shutil.which("gitlab-ci-local")
    if exe is None:
        pytest.skip("gitlab-ci-local is not installed (npm install -g gitlab-ci-local)")
    for name in (".gitlab-ci.yml", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return subprocess.run([exe, *args], cwd=tmp_path, capture_output=True, text=True,
                          check=False, timeout=120)


def test_gitlab_ci_local_accepts_the_pipeline(tmp_path: Path) -> None:
    listed = _gitlab_ci_local(tmp_path, "--list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert re.search(r"^test\s+test\s+on_success\b", listed.stdout, re.MULTILINE), listed.stdout
    preview = _gitlab_ci_local(tmp_path, "--preview")
    assert preview.returncode == 0, preview.stdout + preview.stderr
    expanded = yaml.safe_load(preview.stdout[preview.stdout.index("---"):])
    assert expanded["test"]["script"] == ["make ci"]
    assert expanded["test"]["services"][0]["name"] == DIND_IMAGE


# ------------------------------------------------------------------ GitHub Actions
def _workflow() -> dict:
    return yaml.safe_load(GITHUB.read_text())


def _steps(job: dict) -> list[dict]:
    return job["steps"]


def _make_runs(job: dict) -> list[str]:
    return [s["run"].strip() for s in _steps(job) if "make" in s.get("run", "").split()]


def test_every_github_job_runs_make_ci_and_nothing_else() -> None:
    for name, job in _workflow()["jobs"].items():
        runs = _make_runs(job)
        assert len(runs) == 1, (name, runs)
        assert re.fullmatch(r"make ci( ENGINE=\S+)?", runs[0]), (name, runs)
        scripts = "\n".join(s.get("run", "") for s in _steps(job))
        assert "sudo" not in scripts, f"{name}: ci.sh decides about sudo, not the workflow"


def _env_blocks(workflow: dict) -> list[tuple[str, dict]]:
    blocks = [("workflow", workflow.get("env") or {})]
    for name, job in workflow["jobs"].items():
        blocks.append((name, job.get("env") or {}))
        blocks += [(f"{name}: {step.get('name', step.get('uses'))}", step.get("env") or {})
                   for step in _steps(job)]
    return blocks


def test_github_sets_no_engine_variable_for_a_job_or_a_step() -> None:
    workflow = _workflow()
    for where, env in _env_blocks(workflow):
        assert not ENGINE_VARIABLES & set(env), f"{where} sets {ENGINE_VARIABLES & set(env)}"
    for name, job in workflow["jobs"].items():
        for step in _steps(job):  # nor through $GITHUB_ENV
            for var in ENGINE_VARIABLES:
                assert not re.search(rf"\b{var}=", step.get("run", "")), (name, step)


def test_github_dind_service_is_pinned_privileged_and_named_by_labkit_variables() -> None:
    job = _workflow()["jobs"]["test"]
    service = job["services"]["dind"]
    assert service["image"] == DIND_IMAGE
    assert "--privileged" in service["options"].split()
    assert service["env"] == {"DOCKER_TLS_CERTDIR": "/certs"}
    host_dir = next(v.split(":")[0] for v in service["volumes"] if v.endswith(":/certs"))
    assert job["env"]["LABKIT_DIND_CERT_PATH"] == f"{host_dir}/client"
    script = "\n".join(step.get("run", "") for step in _steps(job))
    assert "job.services.dind.id" in script
    assert re.search(r'echo "LABKIT_DIND_HOST=tcp://\$\{ip\}:2376" >> "\$GITHUB_ENV"', script)


def _oldest_engine() -> str:
    listed = subprocess.run([sys.executable, "-m", "testbed.engines", "list"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    return listed.split()[0]


def test_github_runs_a_job_on_the_oldest_supported_engine() -> None:
    oldest = _oldest_engine()
    assert oldest == "20.10"
    assert "Docker 20.10" in (ROOT / "docs" / "ENGINES.md").read_text()
    jobs = [name for name, job in _workflow()["jobs"].items()
            if _make_runs(job) == [f"make ci ENGINE={oldest}"]]
    assert len(jobs) == 1, jobs
    job = _workflow()["jobs"][jobs[0]]
    assert "services" not in job, "the engine is built, not a service"
    assert "--privileged" in job["env"]["LABKIT_DIND_FLAGS"].split()


def test_github_artifacts_survive_a_rerun_and_never_collide() -> None:
    for name, job in _workflow()["jobs"].items():
        uploads = [s for s in _steps(job)
                   if s.get("uses", "").startswith("actions/upload-artifact@")]
        assert len(uploads) == 1, name
        upload = uploads[0]
        assert upload["if"] == "always()"
        assert upload["with"]["path"].rstrip("/") == "artifacts"
        artifact = upload["with"]["name"]
        for part in ("github.job", "github.run_id", "github.run_attempt"):
            assert part in artifact, f"{name}: artifact name {artifact!r} lacks {part}"


def test_github_caches_pip_by_pyproject() -> None:
    for name, job in _workflow()["jobs"].items():
        setup = next(s for s in _steps(job)
                     if s.get("uses", "").startswith("actions/setup-python@"))
        assert setup["with"]["python-version"] == "3.11", name
        assert setup["with"]["cache"] == "pip", name
        assert setup["with"]["cache-dependency-path"] == "pyproject.toml", name


# ------------------------------------------------------------------ GitLab CI
def _gitlab() -> dict:
    return yaml.safe_load(GITLAB.read_text())


def test_gitlab_job_runs_make_ci_against_pinned_dind_named_by_labkit_variables() -> None:
    job = _gitlab()["test"]
    assert job["script"] == ["make ci"]
    assert "before_script" not in job, "ci.sh installs what the job needs"
    (service,) = job["services"]
    assert service["name"] == DIND_IMAGE
    assert service["variables"] == {"DOCKER_TLS_CERTDIR": "/certs"}
    variables = job["variables"]
    assert variables["LABKIT_DIND_HOST"] == f"tcp://{service['alias']}:2376"
    assert variables["LABKIT_DIND_CERT_PATH"] == "/certs/client"


def test_gitlab_sets_no_engine_variable_for_the_job() -> None:
    ci = _gitlab()
    for where, variables in (("global", ci.get("variables") or {}),
                             ("test", ci["test"]["variables"])):
        assert not ENGINE_VARIABLES & set(variables), where
        assert "DOCKER_TLS_CERTDIR" not in variables, f"{where}: it is the service's setting"


def test_gitlab_image_has_a_docker_cli_that_engine_29_accepts() -> None:
    # Debian bookworm's docker CLI is 20.10 (API 1.41), refused by Engine 29; trixie's
    # docker-cli is 26.1 (API 1.45), which ci.sh installs.
    image = _gitlab()["test"]["image"]
    name, _, tag = image.partition(":")
    assert name == "python" and tag.startswith("3.11-")
    assert tag.removeprefix("3.11-").removeprefix("slim-") in {"trixie", "forky"}, image
    docker_cli_api = {"bookworm": (1, 41), "trixie": (1, 45), "forky": (1, 51)}
    assert docker_cli_api[tag.rsplit("-", 1)[-1]] >= ENGINE_29_MIN_API


def test_gitlab_artifacts_and_pip_cache() -> None:
    job = _gitlab()["test"]
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["paths"] == ["artifacts/"]
    assert "$CI_JOB_ID" in job["artifacts"]["name"]
    assert job["variables"]["PIP_CACHE_DIR"] == "$CI_PROJECT_DIR/.cache/pip"
    assert job["cache"]["key"]["files"] == ["pyproject.toml"]
    assert job["cache"]["paths"] == [".cache/pip"]


def test_chromium_is_launched_with_flags_fit_for_containers() -> None:
    tree = ast.parse((ROOT / "tests" / "browser" / "conftest.py").read_text())
    args = next(ast.literal_eval(node.value) for node in tree.body
                if isinstance(node, ast.Assign)
                and any(getattr(t, "id", None) == "CHROMIUM_ARGS" for t in node.targets))
    assert "--disable-dev-shm-usage" in args  # a container's /dev/shm is 64 MB
    assert "--no-sandbox" in args  # CI containers run as root


# ------------------------------------------------------------------ the scripts, with stand-ins
#: Commands the tests replace: a stand-in answers for them, or they are absent.
HIDDEN = {"docker", "dockerd", "containerd", "sudo", "apt-get", "apt-cache", "apt", "dpkg-query",
          "dpkg", "id", "mmdebstrap", "debootstrap", "systemctl", "chown", "service"}

STUBS = {
    # id: -u/-g/-un from STUB_UID / STUB_GID (root unless told)
    "id": """
case "${1:-}" in
  -u) echo "${STUB_UID:-0}" ;;
  -g) echo "${STUB_GID:-0}" ;;
  -un) [[ "${STUB_UID:-0}" == 0 ]] && echo root || echo runner ;;
  *) echo "uid=${STUB_UID:-0}" ;;
esac
""",
    # sudo: `sudo -n true` answers STUB_SUDO_RC; otherwise run the command as uid 0
    "sudo": """
echo "sudo $*" >>"$STUB_LOG"
if [[ "$1" == -n && "$2" == true ]]; then exit "${STUB_SUDO_RC:-0}"; fi
while [[ "$1" == -* ]]; do shift; done
export STUB_UID=0 STUB_GID=0 HOME="$STUB_ROOT_HOME"
exec "$@"
""",
    # docker: info/version answer STUB_DOCKER_RC, with STUB_DOCKER_ERR on stderr and
    # STUB_DOCKER_OUT on stdout (where the 20.10 CLI prints a server's refusal)
    "docker": """
echo "docker $* | DOCKER_HOST=${DOCKER_HOST-} DOCKER_TLS_VERIFY=${DOCKER_TLS_VERIFY-} \
DOCKER_CERT_PATH=${DOCKER_CERT_PATH-}" >>"$STUB_LOG"
case "$1" in
  info|version) [[ -n "${STUB_DOCKER_OUT:-}" ]] && echo "$STUB_DOCKER_OUT"
                [[ -n "${STUB_DOCKER_ERR:-}" ]] && echo "$STUB_DOCKER_ERR" >&2
                exit "${STUB_DOCKER_RC:-0}" ;;
esac
exit 0
""",
    # dpkg-query -W -f=... PKG: installed when PKG is in STUB_INSTALLED
    "dpkg-query": """
pkg="${!#}"
[[ " ${STUB_INSTALLED:-} " == *" $pkg "* ]] || exit 1
echo "install ok installed"
""",
    "apt-get": """
echo "apt-get $*" >>"$STUB_LOG"
if [[ "$1" == install ]]; then
  for pkg in "$@"; do
    [[ "$pkg" == docker-cli ]] && cp "$(dirname "$0")/.docker" "$(dirname "$0")/docker"
  done
fi
exit 0
""",
    # apt-cache show PKG: known when PKG is in STUB_APT_KNOWS
    "apt-cache": """
[[ " ${STUB_APT_KNOWS:-} " == *" ${!#} "* ]]
""",
    "chown": """
echo "chown $*" >>"$STUB_LOG"
""",
    # what ci.sh runs at the end: who it runs as, and the engine variables it sees
    "record": """
{
  echo "uid=$(id -u)"
  for var in PATH HOME DOCKER_HOST DOCKER_TLS_VERIFY DOCKER_CERT_PATH LABKIT_DIND_HOST \
             LABKIT_DIND_CERT_PATH PIP_CACHE_DIR LABKIT_ENGINE LABKIT_BIND_IP; do
    [[ -v $var ]] && echo "$var=${!var}"
  done
  echo "args=$*"
} >"$STUB_OUT"
""",
    # dockerd that exits at once (a stand-in for Debian's, or for another engine's)
    "dockerd": """
echo "dockerd $*" >>"$STUB_LOG"
echo "a stand-in dockerd: exits at once"
exit 1
""",
}


@pytest.fixture(scope="session")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every command on this machine's PATH except HIDDEN: the tests' base PATH."""
    out = tmp_path_factory.mktemp("tools")
    for directory in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/sbin", "/sbin"]:
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            if entry.name in HIDDEN or (out / entry.name).exists():
                continue
            if entry.is_file() and os.access(entry.path, os.X_OK):
                (out / entry.name).symlink_to(entry.path)
    return out


@dataclass
class Sandbox:
    """A machine of stand-ins: stub commands, a log of what they were asked, a home."""

    base: Path
    stubs: Path
    tools: Path
    log: Path
    out: Path

    def add(self, *names: str) -> None:
        for name in names:
            path = self.stubs / name
            path.write_text("#!/usr/bin/env bash\n" + STUBS[name].lstrip("\n"))
            path.chmod(0o755)

    def calls(self, prefix: str = "") -> list[str]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [line for line in lines if line.startswith(prefix)]

    def recorded(self) -> dict[str, str]:
        assert self.out.exists(), "the command after ci.sh did not run"
        return dict(line.split("=", 1) for line in self.out.read_text().splitlines())

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": f"{self.stubs}{os.pathsep}{self.tools}",
            "HOME": str(self.base / "home"),
            "LANG": "C.UTF-8",
            "STUB_LOG": str(self.log),
            "STUB_OUT": str(self.out),
            "STUB_ROOT_HOME": str(self.base / "root"),
        }
        env.update(extra)
        return env

    def run(self, script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(ROOT / "scripts" / script), *args],
                              env=self.env(**env), capture_output=True, text=True,
                              check=False, timeout=60)


@pytest.fixture
def sandbox(tmp_path: Path, tools: Path) -> Sandbox:
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    (tmp_path / "home").mkdir()
    (tmp_path / "root").mkdir()
    box = Sandbox(tmp_path, stubs, tools, tmp_path / "calls.log", tmp_path / "recorded")
    box.add("id", "sudo", "docker", "dpkg-query", "apt-get", "apt-cache", "chown", "record")
    return box


def _certs(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (directory / name).write_text("PEM\n")
    return directory


def _one_sentence(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


# --- scripts/ci.sh on GitHub's runner: runner user 1001, docker group 118, password-less sudo
def _github(box: Sandbox, **extra: str) -> dict[str, str]:
    setup_python = box.base / "hostedtoolcache" / "Python" / "3.11.9" / "x64" / "bin"
    setup_python.mkdir(parents=True)
    return {"CI": "true", "GITHUB_ACTIONS": "true", "STUB_UID": "1001", "STUB_GID": "118",
            "PATH": f"{setup_python}{os.pathsep}{box.env()['PATH']}", **extra}


def test_ci_on_github_goes_on_as_root_through_sudo_with_path_and_pip_cache(
        sandbox: Sandbox) -> None:
    certs = _certs(sandbox.base / "dind-certs" / "client")
    env = _github(sandbox, LABKIT_DIND_HOST="tcp://172.18.0.2:2376",
                  LABKIT_DIND_CERT_PATH=str(certs))
    pip_cache = sandbox.base / "home" / ".cache" / "pip"
    pip_cache.mkdir(parents=True)
    run = sandbox.run("ci.sh", str(sandbox.stubs / "record"), "--x", **env)
    assert run.returncode == 0, run.stdout + run.stderr
    seen = sandbox.recorded()
    assert seen["uid"] == "0"
    assert seen["PATH"] == env["PATH"], "setup-python's Python must stay first on PATH"
    assert seen["PIP_CACHE_DIR"] == str(pip_cache), "pip's cache is the one setup-python saves"
    assert seen["HOME"] == str(sandbox.base / "root")
    assert seen["args"] == "--x"
    # the DinD engine's settings reach the tests as LABKIT_DIND_*, never as DOCKER_*
    assert seen["LABKIT_DIND_HOST"] == "tcp://172.18.0.2:2376"
    assert seen["LABKIT_DIND_CERT_PATH"] == str(certs)
    assert not ENGINE_VARIABLES & set(seen)
    assert sandbox.calls("sudo ")[0] == "sudo -n true"
    assert re.match(r"sudo -E -H env PATH=\S+ \S+/scripts/ci\.sh ", sandbox.calls("sudo ")[1])
    assert f"chown -R 1001:118 {pip_cache}" in sandbox.calls("chown ")


def test_ci_refuses_tls_variables_without_docker_host_as_the_old_workflow_set_them(
        sandbox: Sandbox) -> None:
    env = _github(sandbox, DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH="/tmp/dind-certs/client")
    run = sandbox.run("ci.sh", str(sandbox.stubs / "record"), **env)
    assert run.returncode == 1
    sentence = _one_sentence(run.stderr)
    assert "DOCKER_TLS_VERIFY DOCKER_CERT_PATH" in sentence
    assert "tcp://localhost:2376" in sentence and "LABKIT_DIND_CERT_PATH" in sentence
    assert not sandbox.out.exists()
    assert sandbox.calls("sudo ") == []


def test_ci_on_github_without_sudo_runs_as_the_user(sandbox: Sandbox) -> None:
    run = sandbox.run("ci.sh", str(sandbox.stubs / "record"),
                      **_github(sandbox, STUB_SUDO_RC="1"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert sandbox.recorded()["uid"] == "1001"
    assert "no password-less sudo" in run.stdout


def test_ci_outside_ci_services_changes_nothing(sandbox: Sandbox) -> None:
    run = sandbox.run("ci.sh", str(sandbox.stubs / "record"), STUB_UID="1000")
    assert run.returncode == 0, run.stdout + run.stderr
    seen = sandbox.recorded()
    assert seen["uid"] == "1000"
    assert not ENGINE_VARIABLES & set(seen)
    assert sandbox.calls("sudo ") == []


def test_ci_waits_for_the_certificates_a_starting_service_writes(sandbox: Sandbox) -> None:
    certs = sandbox.base / "certs" / "client"
    timer = threading.Timer(1.5, _certs, args=(certs,))
    timer.start()
    t0 = time.monotonic()
    try:
        run = sandbox.run("ci.sh", str(sandbox.stubs / "record"), CI="true",
                          LABKIT_DIND_HOST="tcp://10.0.0.2:2376",
                          LABKIT_DIND_CERT_PATH=str(certs), LABKIT_CI_CERT_WAIT="20")
    finally:
        timer.cancel()
    assert run.returncode == 0, run.stdout + run.stderr
    assert 1.4 < time.monotonic() - t0 < 15


def test_ci_says_which_certificates_never_appeared(sandbox: Sandbox) -> None:
    certs = sandbox.base / "certs" / "client"
    certs.mkdir(parents=True)
    (certs / "ca.pem").write_text("PEM\n")
    run = sandbox.run("ci.sh", str(sandbox.stubs / "record"), CI="true",
                      LABKIT_DIND_HOST="tcp://10.0.0.2:2376",
                      LABKIT_DIND_CERT_PATH=str(certs), LABKIT_CI_CERT_WAIT="1")
    assert run.returncode == 1
    sentence = _one_sentence(run.stderr)
    assert "cert.pem key.pem" in sentence and str(certs) in sentence
    assert not sandbox.out.exists()


# --- scripts/ci.sh in GitLab's job container: root, the dind service `docker`, no engine
def _gitlab_env(box: Sandbox, **extra: str) -> dict[str, str]:
    certs = _certs(box.base / "certs" / "client")
    return {"CI": "true", "GITLAB_CI": "true", "LABKIT_DIND_HOST": "tcp://docker:2376",
            "LABKIT_DIND_CERT_PATH": str(certs), **extra}


@pytest.mark.parametrize("gitlab_ci", ["true", "false"])  # false: under gitlab-ci-local
def test_ci_on_gitlab_makes_the_dind_service_the_engine(sandbox: Sandbox, gitlab_ci: str) -> None:
    env = _gitlab_env(sandbox, GITLAB_CI=gitlab_ci)
    run = sandbox.run("ci.sh", str(sandbox.stubs / "record"), **env)
    assert run.returncode == 0, run.stdout + run.stderr
    seen = sandbox.recorded()
    assert seen["uid"] == "0"
    assert seen["DOCKER_HOST"] == "tcp://docker:2376"
    assert seen["DOCKER_TLS_VERIFY"] == "1"
    assert seen["DOCKER_CERT_PATH"] == env["LABKIT_DIND_CERT_PATH"]
    assert seen["LABKIT_BIND_IP"] == "0.0.0.0"  # the explicit opt-in, said in the log
    assert "LABKIT_BIND_IP=0.0.0.0" in run.stdout
    assert sandbox.calls("sudo ") == [] and sandbox.calls("apt-get ") == []


def test_ci_on_gitlab_refuses_the_service_without_tls(sandbox: Sandbox) -> None:
    env = _gitlab_env(sandbox, LABKIT_DIND_HOST="tcp://docker:2375")
    del env["LABKIT_DIND_CERT_PATH"]
    run = sandbox.run("ci.sh", str(sandbox.stubs / "record"), **env)
    assert run.returncode == 1
    sentence = _one_sentence(run.stderr)
    assert "LABKIT_DIND_CERT_PATH" in sentence and "in clear" in sentence
    assert not sandbox.out.exists()


def test_ci_on_gitlab_installs_debian_trixies_docker_cli_when_there_is_none(
        sandbox: Sandbox) -> None:
    (sandbox.stubs / "docker").rename(sandbox.stubs / ".docker")
    run = sandbox.run("ci.sh", str(sandbox.stubs / "record"),
                      **_gitlab_env(sandbox, STUB_APT_KNOWS="docker-cli chromium"))
    assert run.returncode == 0, run.stdout + run.stderr
    installs = sandbox.calls("apt-get install")
    assert len(installs) == 1 and installs[0].split()[-1] == "docker-cli", installs
    assert "docker.io" not in installs[0]
    assert sandbox.recorded()["DOCKER_HOST"] == "tcp://docker:2376"


def test_ci_on_gitlab_refuses_bookworms_docker_cli(sandbox: Sandbox) -> None:
    (sandbox.stubs / "docker").unlink()
    run = sandbox.run("ci.sh", str(sandbox.stubs / "record"),
                      **_gitlab_env(sandbox, STUB_APT_KNOWS="docker.io chromium"))
    assert run.returncode == 1
    sentence = _one_sentence(run.stderr)
    assert "bookworm" in sentence and "python:3.11-trixie" in sentence
    assert sandbox.calls("apt-get install") == []
    assert not sandbox.out.exists()


def test_ci_on_gitlab_needs_the_service_named(sandbox: Sandbox) -> None:
    env = _gitlab_env(sandbox)
    del env["LABKIT_DIND_HOST"]
    run = sandbox.run("ci.sh", str(sandbox.stubs / "record"), **env)
    assert run.returncode == 1
    assert "tcp://docker:2376" in _one_sentence(run.stderr)


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    # as from a shell, also when these tests run under `make test` (no sub-make's chatter)
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)


def test_make_ci_runs_the_entry_point_and_passes_the_engine() -> None:
    dry = _make("-n", "ci", "ENGINE=20.10")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.strip().splitlines() == ["scripts/ci.sh"]
    shown = _make("-s", "--eval", "show:\n\t@echo $$LABKIT_ENGINES", "show", "ENGINE=20.10")
    assert shown.stdout.strip() == "20.10", shown.stderr


# --- scripts/engine.sh: an engine that answers is used; docker.io never goes over another
def _engine(box: Sandbox, **env: str) -> subprocess.CompletedProcess[str]:
    env.setdefault("DOCKER_HOST", f"unix://{box.base / 'docker.sock'}")
    env.setdefault("LABKIT_ENGINE_STATE", str(box.base / "engine-state"))
    return box.run("engine.sh", "start", **env)


NO_ENGINE = {"STUB_DOCKER_RC": "1",
             "STUB_DOCKER_ERR": "Cannot connect to the Docker daemon. Is it running?"}


@pytest.mark.parametrize("package", ["docker-ce", "containerd.io", "moby-engine"])
def test_engine_never_installs_docker_io_over_another_engine(sandbox: Sandbox,
                                                             package: str) -> None:
    run = _engine(sandbox, STUB_INSTALLED=f"{package} openssl", **NO_ENGINE)
    assert run.returncode == 1
    sentence = _one_sentence(run.stderr)
    assert f"({package})" in sentence and "docker.io is not installed" in sentence
    assert sandbox.calls("apt-get") == []


def test_engine_never_installs_docker_io_beside_a_dockerd_of_its_own(sandbox: Sandbox) -> None:
    sandbox.add("dockerd")
    run = _engine(sandbox, **NO_ENGINE)
    assert run.returncode == 1
    assert str(sandbox.stubs / "dockerd") in _one_sentence(run.stderr)
    assert sandbox.calls("apt-get") == [] and sandbox.calls("dockerd") == []


def test_engine_that_answers_is_used_as_is(sandbox: Sandbox) -> None:
    run = _engine(sandbox, STUB_INSTALLED="docker-ce docker-ce-cli containerd.io")
    assert run.returncode == 0, run.stderr
    assert "already answers" in run.stdout
    assert sandbox.calls("apt-get") == []


def test_engine_refuses_tls_variables_without_docker_host(sandbox: Sandbox) -> None:
    env = {"DOCKER_HOST": "", "DOCKER_TLS_VERIFY": "1",
           "DOCKER_CERT_PATH": "/tmp/dind-certs/client", "STUB_INSTALLED": "docker-ce"}
    run = _engine(sandbox, **env, **NO_ENGINE)
    assert run.returncode == 1
    assert "tcp://localhost:2376" in _one_sentence(run.stderr)
    assert sandbox.calls("apt-get") == []


@pytest.mark.parametrize("stream", ["STUB_DOCKER_ERR", "STUB_DOCKER_OUT"])
def test_engine_says_when_it_refuses_this_docker_cli(sandbox: Sandbox, stream: str) -> None:
    # Engine 29 (or 28 with DOCKER_MIN_API_VERSION=1.44) to Debian bookworm's docker CLI,
    # which prints it on stdout under "Server:" (newer CLIs on stderr).
    refusal = ("Error response from daemon: client version 1.41 is too old. Minimum supported "
               "API version is 1.44, please upgrade your client to a newer version")
    run = _engine(sandbox, DOCKER_HOST="tcp://docker:2376", STUB_DOCKER_RC="1",
                  **{stream: refusal})
    assert run.returncode == 1
    sentence = _one_sentence(run.stderr)
    assert "tcp://docker:2376" in sentence and "API 1.44 or newer" in sentence
    assert sandbox.calls("apt-get") == []


def test_engine_installs_docker_io_on_a_bare_debian(sandbox: Sandbox) -> None:
    run = _engine(sandbox, STUB_INSTALLED="openssl ca-certificates", **NO_ENGINE)
    installs = sandbox.calls("apt-get install")
    assert len(installs) == 1 and "docker.io" in installs[0].split(), installs
    assert run.returncode == 1  # the stand-in apt-get installed no dockerd to start
    assert "dockerd exited at start" in run.stderr


def test_engine_starts_debians_own_dockerd_when_docker_io_is_installed(sandbox: Sandbox) -> None:
    sandbox.add("dockerd")
    run = _engine(sandbox, STUB_INSTALLED="docker.io debootstrap openssl ca-certificates",
                  **NO_ENGINE)
    assert sandbox.calls("apt-get") == []
    assert sandbox.calls("dockerd "), run.stderr  # started, not refused
    assert "another engine" not in run.stderr
    assert "dockerd exited at start" in run.stderr


# --- python -m testbed.dind: the DinD engine's own settings, written only when given
def _dind(box: Sandbox, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    state = box.base / "dind-state"
    run = subprocess.run([sys.executable, "-m", "testbed.dind", "start"], cwd=ROOT,
                         env=box.env(LABKIT_DIND_STATE=str(state), **env),
                         capture_output=True, text=True, check=False, timeout=60)
    envfile = state / "env"
    return run, envfile.read_text().splitlines() if envfile.exists() else []


def test_dind_writes_verified_tls_and_the_bind_opt_in_for_the_given_certificates(
        sandbox: Sandbox) -> None:
    certs = _certs(sandbox.base / "certs" / "client")
    run, lines = _dind(sandbox, LABKIT_DIND_HOST="tcp://docker:2376",
                       LABKIT_DIND_CERT_PATH=str(certs))
    assert run.returncode == 0, run.stdout + run.stderr
    assert lines == ["DOCKER_HOST=tcp://docker:2376", "DOCKER_TLS_VERIFY=1",
                     f"DOCKER_CERT_PATH={certs}", "LABKIT_BIND_IP=0.0.0.0"]
    inner = [c for c in sandbox.calls("docker version") if "DOCKER_HOST=tcp://docker" in c]
    assert inner and inner[0].endswith(f"DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH={certs}")


def test_dind_refuses_plain_tcp_over_a_network_whatever_the_job_sets(sandbox: Sandbox) -> None:
    run, lines = _dind(sandbox, LABKIT_DIND_HOST="tcp://docker:2375", DOCKER_TLS_VERIFY="1",
                       DOCKER_CERT_PATH="/elsewhere")
    assert run.returncode == 1
    assert "without TLS" in run.stderr and "LABKIT_DIND_CERT_PATH" in run.stderr
    assert lines == []
    assert not [c for c in sandbox.calls("docker ") if "DOCKER_HOST=tcp://docker" in c]


def test_dind_on_loopback_without_certificates_is_plain_tcp_and_binds_loopback(
        sandbox: Sandbox) -> None:
    run, lines = _dind(sandbox, LABKIT_DIND_HOST="tcp://127.0.0.1:2375", DOCKER_TLS_VERIFY="1",
                       DOCKER_CERT_PATH="/elsewhere")
    assert run.returncode == 0, run.stdout + run.stderr
    assert lines == ["DOCKER_HOST=tcp://127.0.0.1:2375"]  # no TLS variable, no bind opt-in
    inner = [c for c in sandbox.calls("docker ") if "DOCKER_HOST=tcp://127.0.0.1:2375" in c]
    assert inner and all(c.endswith("DOCKER_TLS_VERIFY= DOCKER_CERT_PATH=") for c in inner)
