"""Opening the course on Binder and in Codespaces: the README's launch badges, and the dev
container's scripts (the wait for the engine, JupyterLab on the course, one install).

No engine and no network: the scripts run against a fake `docker` (and a fake `make`) on a
PATH that holds nothing else, so the host's Docker Engine is never asked.
The environment files themselves are checked in test_launch_config.py.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from traitlets.config import Config

ROOT = Path(__file__).resolve().parents[2]


def _load_badges():
    spec = importlib.util.spec_from_file_location("labkit_badges", ROOT / "scripts" / "badges.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


badges = _load_badges()

README_WITHOUT_REPO = f"# Course\n\n{badges.START}\n{badges.NO_REPO}\n{badges.END}\n\nrest\n"


# ------------------------------------------------------------------ badges
@pytest.mark.parametrize(("url", "repo"), [
    ("https://github.com/octo-org/labkit-course.git", "octo-org/labkit-course"),
    ("https://github.com/octo-org/labkit-course", "octo-org/labkit-course"),
    ("https://github.com/octo-org/labkit.course/", "octo-org/labkit.course"),
    ("https://x-access-token@github.com/octo-org/labkit-course.git\n", "octo-org/labkit-course"),
    ("git@github.com:octo-org/labkit-course.git", "octo-org/labkit-course"),
    ("ssh://git@github.com/octo-org/labkit-course.git", "octo-org/labkit-course"),
    ("https://gitlab.com/octo-org/labkit-course.git", None),
    ("https://github.com.evil.example/octo-org/labkit-course", None),
    ("https://github.com/octo-org", None),
    ("/srv/git/labkit-course.git", None),
    ("", None),
])
def test_github_path_from_the_origin_url(url: str, repo: str | None) -> None:
    assert badges.repo_from_url(url) == repo


def test_the_repository_readme_has_no_placeholder_badges() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "OWNER/REPO" not in readme
    assert badges.current(readme) in {badges.NO_REPO, *_badge_blocks(readme)}


def _badge_blocks(readme: str) -> list[str]:
    named = re.findall(r"codespaces\.new/([^?)\s]+)", readme)
    return [badges.block(repo) for repo in named if badges.REPO.match(repo)]


def test_the_repository_readme_passes_the_badge_check_for_its_origin() -> None:
    # The check in CI: in a clone whose origin is on GitHub, the README must carry working
    # badges (`make badges`, then commit); elsewhere the sentence saying how is enough.
    ok, message = badges.check((ROOT / "README.md").read_text(), badges.origin_repo(ROOT))
    assert ok, message


def test_badges_open_codespaces_and_the_first_notebook_on_binder() -> None:
    text = badges.block("octo-org/labkit-course")
    assert "(https://codespaces.new/octo-org/labkit-course?quickstart=1)" in text
    assert ("(https://mybinder.org/v2/gh/octo-org/labkit-course/HEAD"
            "?urlpath=lab/tree/notebooks/00-setup.ipynb)") in text
    assert (ROOT / badges.FIRST_NOTEBOOK).exists()


def test_render_rewrites_only_the_block_and_is_stable() -> None:
    once = badges.render(README_WITHOUT_REPO, "octo-org/labkit-course")
    assert once.startswith("# Course\n\n" + badges.START + "\n[![Open in GitHub Codespaces]")
    assert once.endswith(badges.END + "\n\nrest\n")
    assert badges.badge_repo(once) == "octo-org/labkit-course"
    assert badges.render(once, "octo-org/labkit-course") == once
    assert badges.render(once, None) == README_WITHOUT_REPO


@pytest.mark.parametrize("readme", [
    "# no markers at all\n",
    f"{badges.END}\nx\n{badges.START}\n",
    f"{badges.START}\n{badges.START}\n{badges.END}\n",
])
def test_render_refuses_a_readme_without_one_pair_of_markers(readme: str) -> None:
    with pytest.raises(badges.BadgeError):
        badges.render(readme, "octo-org/labkit-course")


@pytest.mark.parametrize("repo", ["OWNER", "a/b/c", "-x/y", "x/y z", ""])
def test_a_repository_path_must_be_owner_slash_name(repo: str) -> None:
    with pytest.raises(badges.BadgeError):
        badges.block(repo)


def _with_block(text: str) -> str:
    return f"{badges.START}\n{text}\n{badges.END}\n"


@pytest.mark.parametrize(("readme", "origin", "ok", "says"), [
    (README_WITHOUT_REPO, None, True, "no badges yet"),
    (README_WITHOUT_REPO, "octo-org/labkit-course", True, "run `make badges`"),
    (_with_block(badges.block("octo-org/labkit-course")), "octo-org/labkit-course", True,
     "open github.com/octo-org/labkit-course"),
    (_with_block(badges.block("upstream/labkit-course")), "fork/labkit-course", True, "fork?"),
    (_with_block(badges.block("octo-org/labkit-course")), None, True, "octo-org/labkit-course"),
    (_with_block(badges.block("OWNER/REPO")), None, False, "placeholder"),
    (_with_block(badges.block("octo-org/a").replace("/v2/gh/octo-org/a/", "/v2/gh/x/b/")),
     None, False, "not what `make badges` writes"),
    (_with_block("[![badge](https://example.org/b.svg)](https://example.org)"), None, False,
     "not what `make badges` writes"),
])
def test_check_fails_on_placeholders_and_notes_missing_or_upstream_badges(
        readme: str, origin: str | None, ok: bool, says: str) -> None:
    result, message = badges.check(readme, origin)
    assert result is ok, message
    assert says in message


def test_make_badges_writes_the_readme_and_check_then_passes(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README_WITHOUT_REPO)
    script = ROOT / "scripts" / "badges.py"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(script), "--readme", str(readme), *args],
                              capture_output=True, text=True, check=False, timeout=60)

    no_origin = run()  # tmp_path is no git clone: no origin to read the path from
    assert no_origin.returncode == 1
    assert "REPO=owner/name" in no_origin.stderr
    assert readme.read_text() == README_WITHOUT_REPO

    written = run("--repo", "octo-org/labkit-course")
    assert written.returncode == 0, written.stderr
    assert "now opens github.com/octo-org/labkit-course" in written.stdout
    assert badges.badge_repo(readme.read_text()) == "octo-org/labkit-course"
    checked = run("--check", "--repo", "octo-org/labkit-course")
    assert checked.returncode == 0, checked.stderr

    readme.write_text(readme.read_text().replace("octo-org/labkit-course", "OWNER/REPO"))
    refused = run("--check")
    assert refused.returncode == 1
    assert "OWNER/REPO" in refused.stderr


def test_make_badges_reads_the_origin_of_a_github_clone(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, timeout=60)
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin",
                    "git@github.com:octo-org/labkit-course.git"], check=True, timeout=60)
    assert badges.origin_repo(tmp_path) == "octo-org/labkit-course"
    readme = tmp_path / "README.md"
    readme.write_text(README_WITHOUT_REPO)
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "badges.py"), "--check",
                            "--readme", str(readme)],
                           capture_output=True, text=True, check=False, timeout=60)
    assert check.returncode == 0, check.stderr  # a GitHub clone whose README has no badges yet
    assert "no launch badges yet though origin is github.com/octo-org/labkit-course" in check.stdout


@pytest.mark.parametrize("upstream_block", [badges.NO_REPO, badges.block("upstream/course")])
def test_the_first_ci_run_of_a_fresh_github_fork_passes_the_badge_check(
        tmp_path: Path, upstream_block: str) -> None:
    # A fork is cloned as GitHub's checkout does it: origin is the fork, the README is
    # upstream's (no badges yet, or badges for upstream). Neither is the fork's to fix first.
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    (upstream / "README.md").write_text(f"# Course\n\n{_with_block(upstream_block)}\nrest\n")
    git = ["git", "-c", "user.name=u", "-c", "user.email=u@example.org"]
    subprocess.run([*git, "init", "-q", str(upstream)], check=True, timeout=60)
    subprocess.run([*git, "-C", str(upstream), "add", "README.md"], check=True, timeout=60)
    subprocess.run([*git, "-C", str(upstream), "commit", "-qm", "c"], check=True, timeout=60)
    fork = tmp_path / "fork"
    subprocess.run(["git", "clone", "-q", str(upstream), str(fork)], check=True, timeout=60)
    subprocess.run(["git", "-C", str(fork), "remote", "set-url", "origin",
                    "https://github.com/forker/course"], check=True, timeout=60)
    assert badges.origin_repo(fork) == "forker/course"
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "badges.py"), "--check",
                            "--readme", str(fork / "README.md")],
                           capture_output=True, text=True, check=False, timeout=60)
    assert check.returncode == 0, check.stderr
    assert "github.com/forker/course" in check.stdout


def test_make_badges_passes_repo_to_the_script() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dry = subprocess.run(["make", "-s", "-n", "-C", str(ROOT), "badges", "PYTHON=python3",
                          "REPO=octo-org/labkit-course"],
                         capture_output=True, text=True, check=False, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.split() == ["python3", "scripts/badges.py", "--repo",
                                  "octo-org/labkit-course"]


# ------------------------------------------------------------------ dev container scripts
def _bin(tmp_path: Path, *, docker_answers_after: int | None) -> dict[str, str]:
    """A PATH with only the tools the scripts use, and a fake `docker` (None: no docker)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("bash", "sleep", "tail", "dirname", "cat", "mkdir", "flock"):
        found = shutil.which(tool)
        if found:  # flock is optional: without it lab.sh skips its lock
            (bindir / tool).symlink_to(found)
    if docker_answers_after is not None:
        docker = bindir / "docker"
        docker.write_text(f"""#!{shutil.which("bash")}
calls=$(( $(cat "{tmp_path}/docker-calls" 2>/dev/null || echo 0) + 1 ))
echo "$calls" > "{tmp_path}/docker-calls"
case "$1" in
    info) (( calls > {docker_answers_after} )) ;;
    version) echo 29.1.2 ;;
    *) exit 2 ;;
esac
""")
        docker.chmod(0o755)
    make = bindir / "make"  # records how lab.sh hands over to `make lab`
    make.write_text(f"""#!{shutil.which("bash")}
lock=free
if command -v flock >/dev/null && ! flock -n "$LABKIT_LAB_LOCK" true; then lock=held; fi
echo "make $* LAB_PORT=$LAB_PORT lock=$lock JUPYTER_CONFIG_PATH=$JUPYTER_CONFIG_PATH" \\
    > "{tmp_path}/make-called"
""")
    make.chmod(0o755)
    return {"PATH": str(bindir), "HOME": str(tmp_path), "LABKIT_ENGINE_POLL": "0.1",
            "LABKIT_DOCKERD_LOG": str(tmp_path / "dockerd.log"),
            "LABKIT_LAB_LOCK": str(tmp_path / "lab.lock")}


def _run(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / ".devcontainer" / script)], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=False, timeout=60)


def test_wait_for_engine_returns_once_the_engine_answers(tmp_path: Path) -> None:
    run = _run("wait-for-engine.sh", _bin(tmp_path, docker_answers_after=3))
    assert run.returncode == 0, run.stderr
    assert "waiting for the Docker Engine" in run.stdout
    assert "the Docker Engine 29.1.2 answers" in run.stdout


def test_wait_for_engine_says_nothing_when_the_engine_already_answers(tmp_path: Path) -> None:
    run = _run("wait-for-engine.sh", _bin(tmp_path, docker_answers_after=0))
    assert run.returncode == 0, run.stderr
    assert "waiting" not in run.stdout


def test_wait_for_engine_gives_up_with_the_log_and_what_to_do(tmp_path: Path) -> None:
    env = _bin(tmp_path, docker_answers_after=10_000) | {"LABKIT_ENGINE_WAIT": "1"}
    (tmp_path / "dockerd.log").write_text("failed to start daemon: iptables failed\n")
    run = _run("wait-for-engine.sh", env)
    assert run.returncode == 1
    assert "no Docker Engine answered within 1 s" in run.stderr
    assert "iptables failed" in run.stderr
    assert "/usr/local/share/docker-init.sh" in run.stderr
    assert "Rebuild Container" in run.stderr


def test_wait_for_engine_without_docker_says_to_rebuild(tmp_path: Path) -> None:
    run = _run("wait-for-engine.sh", _bin(tmp_path, docker_answers_after=None))
    assert run.returncode == 1
    assert "no docker command" in run.stderr
    assert "Rebuild Container" in run.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_lab_waits_for_the_engine_then_hands_over_to_make_lab(tmp_path: Path) -> None:
    port = _free_port()
    env = _bin(tmp_path, docker_answers_after=2) | {"LAB_PORT": str(port)}
    run = _run("lab.sh", env)
    assert run.returncode == 0, run.stderr
    assert "waiting for the Docker Engine" in run.stdout
    called = (tmp_path / "make-called").read_text().split()
    assert called[:2] == ["make", "lab"]
    assert f"LAB_PORT={port}" in called
    if shutil.which("flock"):
        assert "lock=held" in called  # held for as long as `make lab` (JupyterLab) runs
    config_path = next(c for c in called if c.startswith("JUPYTER_CONFIG_PATH="))
    assert config_path.split("=", 1)[1].split(":")[0] == str(ROOT / ".devcontainer" / "jupyter")


def test_lab_starts_nothing_when_jupyterlab_already_listens(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        env = _bin(tmp_path, docker_answers_after=0) | {"LAB_PORT": str(busy.getsockname()[1])}
        run = _run("lab.sh", env)
    assert run.returncode == 0, run.stderr
    assert "already listens on port" in run.stdout
    assert not (tmp_path / "make-called").exists()


def test_lab_starts_nothing_while_an_earlier_attach_runs_make_lab(tmp_path: Path) -> None:
    if shutil.which("flock") is None:
        pytest.skip("flock is not installed")
    env = _bin(tmp_path, docker_answers_after=0) | {"LAB_PORT": str(_free_port())}
    with open(env["LABKIT_LAB_LOCK"], "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what the first `make lab` holds
        run = _run("lab.sh", env)
    assert run.returncode == 0, run.stderr
    assert "already runs" in run.stdout
    assert not (tmp_path / "make-called").exists()


def test_lab_stops_when_no_engine_answers(tmp_path: Path) -> None:
    env = _bin(tmp_path, docker_answers_after=10_000) | {"LABKIT_ENGINE_WAIT": "1",
                                                         "LAB_PORT": str(_free_port())}
    run = _run("lab.sh", env)
    assert run.returncode == 1
    assert not (tmp_path / "make-called").exists()


def _jupyter_config(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Config:
    for name in ("CODESPACE_NAME", "GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN", "LAB_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = Config()
    path = ROOT / ".devcontainer" / "jupyter" / "jupyter_server_config.py"
    exec(compile(path.read_text(), str(path), "exec"), {"get_config": lambda: config})
    return config


def test_jupyterlab_in_a_codespace_accepts_only_that_codespace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = _jupyter_config({"CODESPACE_NAME": "Fuzzy-Guide-9x7",
                              "GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN": "app.github.dev",
                              "LAB_PORT": "8890"}, monkeypatch)
    pattern = config.ServerApp.allow_origin_pat
    assert re.fullmatch(pattern, "https://fuzzy-guide-9x7-8890.app.github.dev")
    assert re.fullmatch(pattern, "https://fuzzy-guide-9x7-5000.app.github.dev")
    for origin in ("https://other-space-8890.app.github.dev", "https://evil.example",
                   "https://fuzzy-guide-9x7-8890.app.github.dev.evil.example",
                   "http://fuzzy-guide-9x7-8890.app.github.dev"):
        assert not re.match(pattern, origin), origin
    assert config.ServerApp.custom_display_url == "https://Fuzzy-Guide-9x7-8890.app.github.dev"
    assert config.LabApp.default_url == "/lab/tree/00-setup.ipynb"
    assert (ROOT / "notebooks" / "00-setup.ipynb").exists()


def test_jupyterlab_outside_a_codespace_keeps_its_defaults(
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = _jupyter_config({}, monkeypatch)
    assert "allow_origin_pat" not in config.ServerApp
    assert "custom_display_url" not in config.ServerApp


def test_make_lab_after_make_venv_installs_nothing_again(tmp_path: Path) -> None:
    # The dev container runs `make venv` (updateContentCommand), then `make lab` each time
    # you connect: the venv that make venv left must count as up to date.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    labkit = venv / "bin" / "labkit"
    labkit.write_text("#!/bin/sh\n")
    labkit.chmod(0o755)
    (venv / ".labkit-installed").touch()
    run = subprocess.run([str(ROOT / "scripts" / "venv.sh")],
                         env=os.environ | {"VENV": str(venv)}, cwd=ROOT,
                         capture_output=True, text=True, check=False, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "is up to date" in run.stdout
