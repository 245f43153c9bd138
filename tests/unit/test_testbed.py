"""testbed: the engine spec, the DinD env file and its checks, the concurrency summary."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from labkit.offline import COURSE_IMAGES
from testbed import bench, concurrency, dind, engines


# ------------------------------------------------------------------ the engine spec
def test_a_full_spec_asks_for_version_store_and_api_floor() -> None:
    spec = engines.parse("28.5+containerd+api1.44")
    assert (spec.version, spec.containerd, spec.min_api) == ("28.5", True, "1.44")
    assert spec.suite == "forky"
    assert spec.image == "labkit-engine:28.5"
    assert spec.run_flags() == ["-e", "DOCKERD_CONTAINERD_SNAPSHOTTER=1",
                                "-e", "DOCKER_MIN_API_VERSION=1.44"]


def test_a_bare_version_is_the_classic_store_with_no_api_floor() -> None:
    spec = engines.parse("20.10")
    assert (spec.containerd, spec.min_api, spec.suite) == (False, None, "bookworm")
    assert spec.run_flags() == []


def test_options_may_come_in_any_order() -> None:
    assert engines.parse("28.5+api1.44+containerd").environment == \
        engines.parse("28.5+containerd+api1.44").environment


@pytest.mark.parametrize(("text", "says"), [
    ("29.0", "Unknown engine version '29.0'"),
    ("28.5+overlay", "Unknown engine option '+overlay' in '28.5+overlay'"),
    ("", "Unknown engine version ''"),
])
def test_an_unknown_spec_says_what_is_known(text: str, says: str) -> None:
    with pytest.raises(engines.SpecError, match="use") as caught:
        engines.parse(text)
    assert str(caught.value).startswith(says)


def test_the_default_and_the_bench_engines_are_specs() -> None:
    assert engines.parse(engines.DEFAULT_SPEC).containerd
    assert [engines.parse(s).version for s in engines.BENCH_SPECS] == ["20.10", "28.5"]


def test_the_cli_lists_versions_and_refuses_a_bad_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert engines.main(["list"]) == 0
    assert capsys.readouterr().out.split()[:3] == ["20.10", "26.1", "28.5"]
    assert engines.main(["image", "26.1+containerd"]) == 0
    assert capsys.readouterr().out.strip() == "labkit-engine:26.1"
    assert engines.main(["flags", "28.5+nope"]) == 2


# ------------------------------------------------------------------ the env file
def test_the_env_file_round_trips_in_order(tmp_path: Path) -> None:
    path = tmp_path / "env"
    values = dind.started_engine_env("172.17.0.2", tmp_path / "c", engines.parse("20.10"))
    dind.write_env(path, values)
    assert path.read_text().splitlines() == [
        "DOCKER_HOST=tcp://172.17.0.2:2376", "DOCKER_TLS_VERIFY=1",
        f"DOCKER_CERT_PATH={tmp_path}/c/client", "LABKIT_BIND_IP=0.0.0.0",
        "LABKIT_ENGINE=20.10"]
    assert dind.read_env(path) == values


def test_reading_an_env_file_skips_blanks_and_comments_and_refuses_other_lines(
        tmp_path: Path) -> None:
    path = tmp_path / "env"
    path.write_text("# written by hand\n\nDOCKER_HOST=tcp://x:2376\nA=b=c\n")
    assert dind.read_env(path) == {"DOCKER_HOST": "tcp://x:2376", "A": "b=c"}
    path.write_text("export DOCKER_HOST\n")
    with pytest.raises(dind.DindError, match="not KEY=VALUE"):
        dind.read_env(path)


def test_the_env_file_puts_the_engines_own_cli_first_with_a_config_of_its_own(
        tmp_path: Path) -> None:
    values = dind.started_engine_env("172.17.0.2", tmp_path / "c", engines.parse("28.5"),
                                     tmp_path / "client", "/usr/local/bin:/usr/bin")
    assert values["PATH"] == f"{tmp_path}/client/bin:/usr/local/bin:/usr/bin"
    assert values["DOCKER_CONFIG"] == f"{tmp_path}/client/config"
    session = dind.Dind(state=tmp_path)
    dind.write_env(session.env_file, values)
    env = session.environ({"PATH": "/bin", "DOCKER_CONFIG": "/home/u/.docker", "HOME": "/h"})
    assert (env["PATH"], env["DOCKER_CONFIG"]) == (values["PATH"], values["DOCKER_CONFIG"])


def test_a_session_without_an_engine_names_no_engine_in_the_env_file(tmp_path: Path) -> None:
    assert "LABKIT_ENGINE" not in dind.started_engine_env("10.0.0.2", tmp_path, None)


@pytest.mark.parametrize(("url", "loopback"), [
    ("tcp://127.0.0.1:2375", True), ("tcp://localhost:2375", True), ("tcp://[::1]:2375", True),
    ("unix:///var/run/docker.sock", True), ("tcp://docker:2376", False),
    ("tcp://172.17.0.2:2376", False), ("tcp://128.0.0.1:2375", False),
])
def test_loopback_addresses(url: str, loopback: bool) -> None:
    assert dind.is_loopback(url) is loopback


def test_a_given_engine_over_the_network_needs_certificates() -> None:
    with pytest.raises(dind.DindError, match="without TLS"):
        dind.given_engine_env("tcp://docker:2375", None)
    assert dind.given_engine_env("tcp://docker:2376", "/certs/client") == {
        "DOCKER_HOST": "tcp://docker:2376", "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": "/certs/client", "LABKIT_BIND_IP": "0.0.0.0"}
    assert dind.given_engine_env("tcp://127.0.0.1:2375", None) == {
        "DOCKER_HOST": "tcp://127.0.0.1:2375"}


def test_the_environment_for_the_engine_replaces_the_clients_settings(tmp_path: Path) -> None:
    session = dind.Dind(state=tmp_path)
    dind.write_env(session.env_file, {"DOCKER_HOST": "tcp://127.0.0.1:2375"})
    env = session.environ({"DOCKER_HOST": "unix:///x", "DOCKER_TLS_VERIFY": "1",
                           "DOCKER_CONTEXT": "other", "HOME": "/h"})
    assert env == {"HOME": "/h", "DOCKER_HOST": "tcp://127.0.0.1:2375"}


def test_the_session_follows_the_environment(tmp_path: Path) -> None:
    session = dind.Dind.from_environ({"LABKIT_DIND_STATE": str(tmp_path),
                                      "LABKIT_ENGINE": "20.10",
                                      "LABKIT_DIND_FLAGS": "--privileged"})
    assert (session.state, session.image, session.flags) == (
        tmp_path, "labkit-engine:20.10", ["--privileged"])
    plain = dind.Dind.from_environ({"LABKIT_DIND_IMAGE": "my:dind"})
    assert (plain.spec, plain.image, plain.state) == (None, "my:dind", dind.DEFAULT_STATE)
    assert "--cap-drop" in plain.flags


def test_the_cli_refuses_an_unknown_command_and_an_unknown_engine(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert dind.main(["restart"]) == 2
    monkeypatch.setenv("LABKIT_DIND_STATE", str(tmp_path))
    monkeypatch.setenv("LABKIT_ENGINE", "27.0")
    assert dind.main(["start"]) == 2
    assert "Unknown engine version '27.0'" in capsys.readouterr().err
    monkeypatch.delenv("LABKIT_ENGINE")
    assert dind.main(["status"]) == 1
    assert capsys.readouterr().out == "dind: not started.\n"


# ------------------------------------------------------------------ is it the engine asked for
STORE_CLASSIC = "extfs true true false"
STORE_CONTAINERD = "io.containerd.snapshotter.v1"


def test_the_engine_asked_for_passes_the_check() -> None:
    spec = engines.parse("28.5+containerd+api1.44")
    assert dind.engine_mismatch(spec, "28.5.2+dfsg4", "1.44", STORE_CONTAINERD) is None
    assert dind.engine_mismatch(engines.parse("20.10"), "20.10.24+dfsg1", "1.12",
                                STORE_CLASSIC) is None


@pytest.mark.parametrize(("spec", "version", "min_api", "store", "says"), [
    ("28.5", "20.10.24", "1.12", STORE_CLASSIC, "Asked for Docker 28.5, the stand-in runs"),
    ("28.5", "28.50.1", "1.24", STORE_CLASSIC, "Asked for Docker 28.5"),
    ("28.5+containerd", "28.5.2", "1.24", STORE_CLASSIC, "image store is not the one"),
    ("28.5", "28.5.2", "1.24", STORE_CONTAINERD, "image store is not the one"),
    ("28.5+api1.44", "28.5.2", "1.24", STORE_CLASSIC, "minimum API is 1.24, not 1.44"),
])
def test_another_engine_fails_the_check(spec: str, version: str, min_api: str, store: str,
                                        says: str) -> None:
    problem = dind.engine_mismatch(engines.parse(spec), version, min_api, store)
    assert problem is not None and says in problem


# ------------------------------------------------------------------ concurrency
def test_notebooks_are_chosen_by_prefix_in_order() -> None:
    paths = [Path(f"{n}-x.ipynb") for n in ("00", "01", "02", "10")]
    assert concurrency.choose(paths, []) == paths
    assert concurrency.choose(paths, ["01", "1"]) == [paths[1], paths[3]]
    assert concurrency.choose(paths, ["9"]) == []


def _junit(path: Path, cases: dict[str, float]) -> None:
    suite = ET.Element("testsuite")
    for name, seconds in cases.items():
        ET.SubElement(suite, "testcase", classname=name, time=str(seconds))
    ET.ElementTree(suite).write(path)


def test_the_summary_gives_result_wall_time_and_slowest_notebook(tmp_path: Path) -> None:
    _junit(tmp_path / "learner-1.xml", {"00-setup.ipynb": 2, "02-build-image.ipynb": 30.4})
    _junit(tmp_path / "learner-2.xml", {"00-setup.ipynb": 5})
    (tmp_path / "learner-2.log").write_text("ok\nFAILED 00-setup.ipynb::Cell 3\n")
    lines = concurrency.summary([concurrency.Outcome(2, 1, 40),
                                 concurrency.Outcome(1, 0, 35)], tmp_path)
    assert lines[1].split() == ["learner-1", "pass", "35", "s", "02-build-image", "30", "s"]
    assert lines[2].split()[:2] == ["learner-2", "FAIL"]
    assert lines[3].strip() == "FAILED 00-setup.ipynb::Cell 3"
    assert lines[-1] == "wall time per learner: min 35 s, median 40 s, max 40 s"


def test_a_learner_without_a_report_has_no_slowest_notebook(tmp_path: Path) -> None:
    assert concurrency.slowest_notebook(tmp_path / "none.xml") == ("?", 0.0)


def test_a_session_loads_every_image_the_course_prepares() -> None:
    assert set(dind.COURSE_IMAGES) == {image.name for image in COURSE_IMAGES}


# ------------------------------------------------------------------ bench
def test_each_bench_engine_has_a_state_directory_of_its_own() -> None:
    dirs = {bench.state_dir(engines.parse(s)) for s in (*engines.BENCH_SPECS, "28.5")}
    assert len(dirs) == 3
    assert bench.state_dir(engines.parse(engines.DEFAULT_SPEC)).name == \
        "dind-bench-28.5-containerd-api1.44"


def test_rounds_go_to_the_lab_and_layer_benchmarks_not_to_the_notebooks() -> None:
    rounds = ["--rounds", "3"]
    assert bench.command("run", rounds)[-3:] == [str(bench.ROOT / "bench" / "run.py"), *rounds]
    assert bench.command("layers", rounds)[-2:] == rounds
    assert bench.command("notebooks", rounds)[1:] == ["-m", "testbed.notebooks", "time"]


def test_each_learner_gets_a_docker_config_of_their_own_with_the_engines_plugins(
        tmp_path: Path) -> None:
    engine_config = tmp_path / "client" / "config"
    (engine_config / "cli-plugins").mkdir(parents=True)
    (engine_config / "cli-plugins" / "docker-buildx").write_text("plugin")
    first = concurrency.docker_config({"DOCKER_CONFIG": str(engine_config)}, tmp_path / "d-1")
    second = concurrency.docker_config({"DOCKER_CONFIG": str(engine_config)}, tmp_path / "d-2")
    assert first != second
    for folder in (first, second):
        assert (folder / "cli-plugins" / "docker-buildx").read_text() == "plugin"
        assert not (folder / "config.json").exists()
