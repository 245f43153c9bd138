"""The pull stream read into per-layer facts; the echoes of logs, stop and exec."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from labkit import containers
from labkit.engine.commands import docker
from labkit.registry import pull


def test_pull_stream_gives_each_layer_its_final_status() -> None:
    chunks = [
        {"status": "Pulling from student/python-hello-world", "id": "latest"},
        {"status": "Already exists", "id": "aaa"},
        {"status": "Pulling fs layer", "id": "bbb"},
        {"status": "Downloading", "id": "bbb", "progressDetail": {"current": 1, "total": 2}},
        {"status": "Download complete", "id": "bbb"},
        {"status": "Extracting", "id": "bbb"},
        {"status": "Pull complete", "id": "bbb"},
        {"status": "Digest: sha256:" + "0" * 64},
        {"status": "Status: Downloaded newer image for localhost:5000/x:latest"},
    ]
    frame, error = pull.layer_statuses(chunks)
    assert error is None
    assert dict(zip(frame["layer"], frame["status"], strict=True)) == {
        "aaa": "already here", "bbb": "downloaded"}


def test_pull_stream_error_is_reported() -> None:
    frame, error = pull.layer_statuses([{"errorDetail": {"message": "manifest unknown"},
                                         "error": "manifest unknown"}])
    assert error == "manifest unknown"
    assert len(frame) == 0


def test_logs_carry_their_command_and_stay_text() -> None:
    logs = containers.ContainerLogs("line one\n", docker("container", "logs", "s-hello"))
    assert '"line one' not in logs and "line one" in logs
    assert logs._repr_markdown_().startswith("```bash\n$ docker container logs s-hello\n```")
    assert "line one" in logs._repr_markdown_()


def test_stop_and_exec_echoes() -> None:
    assert str(containers.stop_command("s-hello", 2)) == "docker container stop -t 2 s-hello"
    assert str(containers.exec_command("s-hello", "ls /")) == \
        "docker container exec s-hello sh -c 'ls /'"


def test_password_command_refuses_a_terminal() -> None:
    # A pseudo-terminal as stdout: the password must not be written there.
    import pty

    leader, follower = pty.openpty()
    try:
        command = [str(Path(sys.executable).with_name("labkit")), "registry", "password"]
        done = subprocess.run(command, stdout=follower, stderr=subprocess.PIPE, timeout=60,
                              check=False)
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 2
    assert b"pipe" in done.stderr


def test_terminal_cells_get_the_course_user_and_the_labkit_command() -> None:
    from labkit.course import terminal_cells as shell

    env = {"PATH": "/usr/bin"}
    changed = shell.prepare(env)
    assert env["LABKIT_USER"] and changed["LABKIT_USER"] == env["LABKIT_USER"]
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    again = dict(env)
    assert shell.prepare(again) == {} and again == env  # safe to repeat
    mine = {"PATH": env["PATH"], "LABKIT_USER": "someone"}
    shell.prepare(mine)
    assert mine["LABKIT_USER"] == "someone"  # the learner's own choice stays


def test_runtime_table_hides_this_machines_folders() -> None:
    from labkit.containers import python_runtime as runtime

    host = runtime.host_facts()
    facts = runtime.RuntimeComparison(host, {"python": "3.11.2", "executable": "/usr/bin/python",
                                             "flask": "3.1.3", "flask_at": "/usr/lib/flask"},
                                      True, False, docker("container", "exec", "x"))
    shown = facts.table().to_string()
    assert sys.prefix not in shown and sys.prefix not in repr(facts)
    assert "/usr/lib/flask" in shown


def test_pull_counts_layers_the_stream_does_not_name_as_already_here() -> None:
    import pandas as pd

    frame, _ = pull.layer_statuses([{"status": "Pull complete", "id": "bbb"}])
    result = pull.PullResult("r:latest", "sha256:x", ["sha256:a", "sha256:b", "sha256:c"],
                             frame, 0.1, docker("pull", "r:latest"))
    assert result.counts == {"downloaded": 1, "already here": 2}
    assert "1 layers downloaded, 2 already here" in repr(result)
    empty = pull.PullResult("r:latest", "sha256:x", ["sha256:a"], pd.DataFrame(
        columns=pull.LAYER_COLUMNS), 0.1, docker("pull", "r:latest"))
    assert empty.counts == {"downloaded": 0, "already here": 1}
