"""The second engine's facts read right: the registry's access log, docker pull's lines, the
layer table, the run flags and the plain commands (no engine needed)."""

from __future__ import annotations

import pandas as pd
import pytest

from labkit.engine import NestedEngineRefused
from labkit.registry import elsewhere
from labkit.render.elsewhere import elsewhere_html

A, B, C = ("sha256:" + x * 64 for x in "abc")
UA = '"" "docker/20.10.24 go/go1.19.8 os/linux arch/amd64"'
LOG = "\n".join([
    f'172.19.0.3 - - [05/Dec/2026:23:33:56 +0000] "GET /v2/ HTTP/1.1" 401 87 {UA}',
    f'172.19.0.3 - - [05/Dec/2026:23:33:56 +0000] "HEAD /v2/u/app/blobs/{A} HTTP/1.1" 200 0 {UA}',
    f'172.19.0.3 - - [05/Dec/2026:23:33:56 +0000] "GET /v2/u/app/blobs/{A} HTTP/1.1" 200 4096 {UA}',
    f'172.19.0.3 - - [05/Dec/2026:23:33:57 +0000] "GET /v2/u/app/blobs/{B} HTTP/1.1" 206 100 {UA}',
    f'172.19.0.3 - - [05/Dec/2026:23:33:57 +0000] "GET /v2/u/app/blobs/{B} HTTP/1.1" 206 20 {UA}',
    f'172.19.0.9 - - [05/Dec/2026:23:33:57 +0000] "GET /v2/u/app/blobs/{C} HTTP/1.1" 200 9 {UA}',
    f'172.19.0.3 - - [05/Dec/2026:23:33:57 +0000] "GET /v2/u/app/blobs/{C} HTTP/1.1" 404 19 {UA}',
    'time="2026-12-05T23:33:56Z" level=warning msg="error authorizing context"',
])


def test_blobs_sent_counts_the_second_engines_gets_only() -> None:
    assert elsewhere.blobs_sent(LOG, "172.19.0.3") == {A: 4096, B: 120}
    assert elsewhere.blobs_sent(LOG, "172.19.0.9") == {C: 9}
    assert elsewhere.blobs_sent(LOG, "10.0.0.1") == {}


def test_pull_statuses_keep_each_layers_last_word() -> None:
    text = ("latest: Pulling from u/app\n"
            "aaaaaaaaaaaa: Pulling fs layer\naaaaaaaaaaaa: Download complete\n"
            "aaaaaaaaaaaa: Pull complete\nbbbbbbbbbbbb: Already exists\n"
            "Digest: sha256:" + "d" * 64 + "\nStatus: Downloaded newer image for x\n")
    assert elsewhere.pull_statuses(text) == {"aaaaaaaaaaaa": "downloaded",
                                             "bbbbbbbbbbbb": "already here"}


def _rows(before: set[str], sent: dict[str, int]) -> pd.DataFrame:
    diff_ids = ["sha256:" + "1" * 64, "sha256:" + "2" * 64]
    layers = [{"digest": A, "size": 4096}, {"digest": B, "size": 120}]
    return elsewhere.layer_rows(diff_ids, layers, before, sent, {"a" * 12: "downloaded"})


def test_layer_rows_pair_diff_ids_with_the_manifests_blobs() -> None:
    rows = _rows(set(), {A: 4096, B: 120})
    assert list(rows["layer"]) == ["1" * 12, "2" * 12]
    assert list(rows["blob"]) == ["a" * 12, "b" * 12]
    assert list(rows["size"]) == [4096, 120]
    assert list(rows["pull_said"]) == ["downloaded", ""]


def _result(rows: pd.DataFrame, images_before: int = 0,
            answer: str = "hello") -> elsewhere.ElsewhereResult:
    return elsewhere.ElsewhereResult(
        reference="u-registry:5000/u/app:latest", engine_version="20.10.24",
        image_store="overlay2 store", platform="linux/amd64", images_before=images_before,
        layers=rows, repo_digest="sha256:" + "d" * 64, answer=answer,
        seconds={"start": 1.0, "pull": 2.0}, commands=(), flags="--privileged")


def test_every_layer_downloaded_needs_an_empty_engine_and_every_byte() -> None:
    assert _result(_rows(set(), {A: 4096, B: 120})).every_layer_downloaded
    assert not _result(_rows(set(), {A: 4096, B: 119})).every_layer_downloaded
    assert not _result(_rows({"sha256:" + "1" * 64}, {A: 4096, B: 120})).every_layer_downloaded
    assert not _result(_rows(set(), {A: 4096, B: 120}), images_before=1).every_layer_downloaded
    empty = pd.DataFrame(columns=elsewhere.LAYER_COLUMNS)
    assert not _result(empty).every_layer_downloaded


def test_run_flags_are_what_a_learner_types() -> None:
    assert elsewhere.run_flags(elsewhere.PRIVILEGED) == ["--privileged"]
    flags = elsewhere.run_flags(elsewhere.CAPABILITIES)
    assert "--cap-add=ALL" in flags and "--cap-drop=SYS_RESOURCE" in flags
    assert "systempaths=unconfined" in flags
    assert flags[-2:] == ["-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw"]


def test_the_plan_is_plain_docker_and_never_holds_the_password(course_settings) -> None:
    course_settings(user="ann")
    lines = [str(c) for c in elsewhere.plan("ann-registry:5000/ann/app:latest",
                                            "ann-registry", "ann", "bridge")]
    assert lines[0] == ("docker run -d --privileged --name ann-elsewhere --network bridge "
                        "--link ann-registry docker:dind")
    on_its_own = elsewhere.plan("r:5000/ann/app:latest", "r", "ann", "ann-net")
    assert str(on_its_own[0]) == ("docker run -d --privileged --name ann-elsewhere "
                                  "--network ann-net docker:dind")
    assert ("labkit registry password | docker exec -i ann-elsewhere docker login "
            "ann-registry:5000 -u ann --password-stdin") in lines
    assert "docker exec ann-elsewhere docker pull ann-registry:5000/ann/app:latest" in lines
    assert all(line.startswith(("docker ", "labkit registry password | docker "))
               for line in lines)
    assert not any("--label" in line or "network connect" in line for line in lines)
    assert lines[-1] == "docker rm -f -v ann-elsewhere"


def test_a_refusal_says_so_and_shows_the_plan() -> None:
    error = NestedEngineRefused("This engine cannot run a second engine: no.", "Use another.",
                                plan="$ docker network create x")
    assert "cannot run a second engine" in str(error)
    assert "What it would have done:\n$ docker network create x" in str(error)
    assert error.hint == "Use another."


@pytest.mark.parametrize("answer", ["<script>alert(1)</script>"])
def test_the_card_escapes_what_the_app_answered(answer: str) -> None:
    page = elsewhere_html(_result(_rows(set(), {A: 4096, B: 120}), answer=answer))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "2 of 2" in page


def test_step_progress_prints_each_step_outside_a_notebook(capsys) -> None:
    from labkit.render.elsewhere import StepProgress

    progress = StepProgress("app on a second engine", notebook=False)
    progress.step("pulling")
    progress.close()
    assert capsys.readouterr().out.strip().endswith("s  pulling")
    assert progress._html("done").text == "app on a second engine: done"


def test_a_confined_engine_is_named_as_the_reason_the_app_did_not_run() -> None:
    classroom = ("docker: Error response from daemon: failed to create shim task: OCI runtime "
                 "create failed: runc create failed: unable to start container process: unable "
                 "to apply cgroup configuration: mkdir /sys/fs/cgroup/cpuset/docker: read-only "
                 "file system: unknown.")
    said = elsewhere.confined(classroom)
    assert "could not run it" in said and "rootless" in said
    assert "read-only file system" in said
    assert elsewhere.confined("docker: Error response from daemon: No such image: x.") == ""
    assert elsewhere.confined("") == ""
