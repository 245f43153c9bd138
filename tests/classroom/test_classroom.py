"""A classroom of three learners, driven through the hub's REST API (`make test-classroom`).

A classroom of its own is started with scripts/classroom.sh on the machine's engine (short
idle-culling times), and stopped at the end. The tests run in order, as a workshop does:
log in with the workshop code, start three servers, run every notebook of the course in the
first one and the first four in the others at the same time,
check that each learner sees only their own engine, solve exercises and read the
instructor's table, let one learner go idle until the culler stops their server and
engine, then stop everything and find nothing left. Measurements (no assertion on them)
are written to artifacts/classroom-measurements.json.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
import sys  # noqa: E402

sys.path.insert(0, str(ROOT / "classroom"))
from hubclient import Hub, KeepAlive, first_cell_notebook  # noqa: E402

LEARNERS = ("ann", "ben", "cat")
PASSWORDS = {name: secrets.token_urlsafe(12) for name in LEARNERS}  # each chosen at login
# every notebook of the course, in order, 00 first: as each learner goes through it
STEPS = tuple(sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]*-*.ipynb")))
NAME = f"labkit-classroom-{secrets.token_hex(3)}"
CULL_TIMEOUT = 45
# the rootless engine's user and data folder (classroom/engine/Dockerfile)
ENGINE_USER = "rootless"
ENGINE_DATA = "/home/rootless/.local/share/docker"
VOLUMES_BEFORE: set[str] = set()  # the engine's unused volumes before the classroom started
MEASURED: dict = {"learners": len(LEARNERS)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def classroom(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "scripts/classroom.sh"), command], env=env,
                          capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    out = dict(os.environ)
    out.update({
        "CLASSROOM_NAME": NAME, "LEARNERS": str(len(LEARNERS)),
        "CLASSROOM_PORT": str(free_port()), "CLASSROOM_HUB_PORT": str(free_port()),
        "CLASSROOM_PROXY_API_PORT": str(free_port()),
        "CLASSROOM_SERVICE_PORT": str(free_port()),
        "CLASSROOM_CULL_TIMEOUT": str(CULL_TIMEOUT), "CLASSROOM_CULL_EVERY": "10",
        "CLASSROOM_ACTIVITY_INTERVAL": "10", "CLASSROOM_DISK": "6g",
    })
    return out


@pytest.fixture(scope="module")
def hub(env: dict[str, str]) -> Hub:
    VOLUMES_BEFORE.update(unused_volumes())
    t0 = time.monotonic()
    try:
        started = classroom("start", env)
        assert started.returncode == 0, started.stdout + started.stderr
        MEASURED["classroom_start_s"] = round(time.monotonic() - t0, 1)
        state = ROOT / ".cache/classroom" / NAME
        secret = dict(line.split("=", 1) for line in
                      (state / "secrets.env").read_text().split())
        yield Hub(f"http://127.0.0.1:{env['CLASSROOM_PORT']}", secret["CLASSROOM_ADMIN_TOKEN"],
                  NAME)
    finally:  # also when the start failed half-way: nothing of it is left running
        classroom("stop", env | {"CLEAN": "1"})
    out = ROOT / "artifacts"
    out.mkdir(exist_ok=True)
    (out / "classroom-measurements.json").write_text(json.dumps(MEASURED, indent=2) + "\n")


@pytest.fixture(scope="module")
def secrets_env(env: dict[str, str], hub: Hub) -> dict[str, str]:
    text = (ROOT / ".cache/classroom" / NAME / "secrets.env").read_text()
    return dict(line.split("=", 1) for line in text.split())


@pytest.fixture(scope="module")
def keepalive(hub: Hub):
    with KeepAlive(hub) as alive:
        yield alive


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def labelled(kind: str, label: str) -> list[str]:
    return docker(kind, "ls", "-q", *(["-a"] if kind == "container" else []),
                  "--filter", f"label={label}").split()


def test_workshop_code_logs_in_and_a_wrong_one_does_not(hub: Hub, secrets_env: dict) -> None:
    """Each learner logs in through the login form: their name, the workshop code, and a
    password of their own, which makes the name theirs; nobody else gets in with it."""
    code = secrets_env["CLASSROOM_WORKSHOP_CODE"]
    form = hub.session.get(f"{hub.url}/hub/login", timeout=30).text
    assert 'name="code"' in form and 'name="password"' in form
    wrong = hub.login("mallory", "mallorys-password", code="not-the-code")
    assert wrong.status_code == 403
    assert hub.api("GET", "/users/mallory").status_code == 404
    for name in LEARNERS:
        right = hub.login(name, PASSWORDS[name], code=code)
        assert right.status_code == 302, right.text[:300]
        assert hub.user(name)["name"] == name
    # someone else with a learner's name and the room's code, another password: refused
    taken = hub.login(LEARNERS[0], "someone-elses-password", code=code)
    assert taken.status_code == 403 and "is taken" in taken.text, taken.text[:300]
    assert hub.login(LEARNERS[0], PASSWORDS[LEARNERS[0]], code=code).status_code == 302
    # the instructor: their own password, made before the hub opened; nobody claims the name
    assert hub.login("instructor", "a-claim-on-the-name", code=code).status_code == 403
    assert hub.login("instructor", code, code=code).status_code == 403
    assert hub.login("instructor", secrets_env["CLASSROOM_INSTRUCTOR_PASSWORD"]).status_code == 302
    assert hub.user("instructor")["admin"] is True
    assert all(not hub.user(name)["admin"] for name in LEARNERS)


def test_three_servers_start_each_with_its_own_engine(hub: Hub, keepalive: KeepAlive,
                                                      tmp_path_factory) -> None:
    first = first_cell_notebook(tmp_path_factory.mktemp("nb"))

    def start(name: str) -> dict:
        hub.create_user(name)
        t0 = time.monotonic()
        hub.start_server(name)
        ready = hub.wait_ready(name)
        keepalive.add(name, hub.token_for(name, [f"access:servers!user={name}"]))
        # into the home disk: the server's own layer is read-only, and docker cp reaches no tmpfs
        docker("cp", str(first), f"{hub.server_container(name)}:/home/learner/first-cell.ipynb")
        done = hub.exec(name, "jupyter", "execute", "/home/learner/first-cell.ipynb")
        assert done.returncode == 0, done.stderr[-2000:]
        return {"ready_s": round(ready, 1), "first_cell_s": round(time.monotonic() - t0, 1)}

    with ThreadPoolExecutor(len(LEARNERS)) as pool:
        MEASURED["start"] = dict(zip(LEARNERS, pool.map(start, LEARNERS), strict=True))
    for name in LEARNERS:
        server = json.loads(docker("inspect", hub.server_container(name)))[0]
        engine = json.loads(docker("inspect", hub.engine_container(name)))[0]
        assert server["State"]["Running"] and engine["State"]["Running"]
        env = dict(e.split("=", 1) for e in server["Config"]["Env"])
        # the server lives in its engine's network namespace: the engine is on localhost,
        # and what the learner publishes stays on 127.0.0.1 (labkit's default)
        assert env["DOCKER_HOST"] == "tcp://localhost:2376"
        assert env["LABKIT_USER"] == name and "LABKIT_BIND_IP" not in env
        assert server["HostConfig"]["NetworkMode"].startswith("container:")
        assert list(engine["NetworkSettings"]["Networks"]) == [f"{NAME}-{name}-net"]
        # limits: the server's and the engine's (which holds what the learner runs)
        assert server["HostConfig"]["Memory"] > 0 and server["HostConfig"]["CpuQuota"] > 0
        assert engine["HostConfig"]["Memory"] > 0 and engine["HostConfig"]["NanoCpus"] > 0
        # the engine's certificates are mounted into this server only, read-only
        certs = f"{NAME}-{name}-certs"
        mounts = {m.get("Name"): m for m in server["Mounts"]}
        assert mounts[certs]["RW"] is False
        users = [c for c in labelled("container", f"org.labkit.classroom={NAME}")
                 if certs in docker("inspect", "-f", "{{range .Mounts}}{{.Name}} {{end}}", c)]
        assert sorted(users) == sorted([server["Id"][:12], engine["Id"][:12]])
        # the engine's disk is a file system of its own, of the size asked for
        df = hub.exec(name, "docker", "run", "--rm", "python:3.11-slim-bookworm", "true")
        assert df.returncode == 0, df.stderr
        size = subprocess.run(["docker", "exec", hub.engine_container(name), "df", "-B1",
                               "--output=size", ENGINE_DATA],
                              capture_output=True, text=True, check=True).stdout.split()[-1]
        assert 5 * 2**30 < int(size) <= 6 * 2**30


def test_each_learner_runs_every_notebook(hub: Hub) -> None:
    """The first learner runs every notebook, in order; the others, at the same time, the
    first four (set-up, app, build, run: what every learner's own engine must do at once).
    Every notebook is proven in a classroom server, and every learner's engine builds and
    runs, without three full courses on a 2-core machine beside the rest of `make test`."""
    assert STEPS[0].startswith("00-") and len(STEPS) >= 10, STEPS
    plan = {name: STEPS if name == LEARNERS[0] else STEPS[:4] for name in LEARNERS}

    def run(name: str) -> dict:
        times = {}
        for step in plan[name]:
            seconds, done = hub.execute(name, step)
            assert done.returncode == 0, f"{name} {step}:\n{done.stderr[-3000:]}"
            times[step[:2]] = round(seconds, 1)
        return times

    with ThreadPoolExecutor(len(LEARNERS)) as pool:
        MEASURED["notebooks_at_once"] = dict(zip(LEARNERS, pool.map(run, LEARNERS), strict=True))


def test_an_engine_inside_a_learners_engine_pulls_but_starts_no_container(hub: Hub) -> None:
    """05b's second engine, in a classroom: the learner's rootless engine runs it and it pulls
    every layer (05b's checks passed above), but cgroups stay read-only to it, so it starts no
    container of its own; the notebook says so instead of claiming an answer."""
    done = hub.exec(LEARNERS[0], "cat", "05b-pull-and-repeat.ipynb")
    assert done.returncode == 0, done.stderr
    said = json.dumps(json.loads(done.stdout)["cells"])
    assert "every layer was downloaded from the registry" in said
    assert "could not run it" in said and "read-only" in said


def test_each_learner_sees_only_their_own_engine(hub: Hub) -> None:
    # the course's clean-up (07) removed what the steps made: each learner makes one of each
    for name in LEARNERS:
        made = hub.exec(name, "sh", "-ec",
                        f"docker tag python:3.11-slim-bookworm {name}/probe:latest; "
                        f"docker create --name {name}-probe {name}/probe:latest true")
        assert made.returncode == 0, made.stderr
    for name in LEARNERS:
        names = hub.exec(name, "docker", "ps", "-a", "--format", "{{.Names}}").stdout.split()
        assert names and all(n.startswith(f"{name}-") for n in names), names
        namespaces = hub.exec(name, "docker", "image", "ls", "--format",
                              '{{.Repository}}').stdout.split()
        own = [r for r in namespaces if "/" in r]
        assert own and all(r.split("/")[-2] == name for r in own), namespaces
        others = [o for o in LEARNERS if o != name]
        assert not any(o in " ".join(names + namespaces) for o in others)
        # another learner's engine is not even a name on this learner's network (that
        # nothing of it is reachable: test_learners_cannot_reach_each_other)
        other = hub.engine_container(others[0])
        refused = hub.exec(name, "docker", "version", env={"DOCKER_HOST": f"tcp://{other}:2376"})
        assert refused.returncode != 0
        assert re.search(r"no such host|lookup", refused.stderr, re.I), refused.stderr
        listing = hub.exec(name, "ls", "/certs").stdout.split()
        assert listing == ["ca", "client", "server"]  # one engine's certificates, no other
    for name in LEARNERS:
        removed = hub.exec(name, "sh", "-ec", f"docker rm {name}-probe; docker rmi {name}/probe")
        assert removed.returncode == 0, removed.stderr


# --- isolation: learner engines hold nothing over this machine, learners apart ---------------
# Every write attempt below writes back the value it just read: harmless were it allowed.

ESCAPE_FLAGS = ("--cap-add", "ALL", "--security-opt", "seccomp=unconfined",
                "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
                "-v", "/sys:/hostsys", "-v", "/proc:/hostproc", "-v", "/dev:/hostdev",
                "-v", "/:/host")

ESCAPE_PROBE = r"""
import ctypes, errno, json, os, stat, sys
libc = ctypes.CDLL(None, use_errno=True)
MS_RDONLY = 1

def rewrite(path):
    try:
        with open(path) as f:
            value = f.read()
    except OSError as e:
        return "read " + errno.errorcode[e.errno]
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        return errno.errorcode[e.errno]
    return "WRITTEN"

def walk(*roots):
    for root in roots:
        for folder, dirs, files in os.walk(root):
            yield folder, dirs, files

others, major, minor = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])
out = {"started": True,
       "uid_map": open("/proc/self/uid_map").read().split(),
       "cap_eff": next(l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")),
       "core_pattern": [rewrite(p) for p in ("/proc/sys/kernel/core_pattern",
                                             "/hostproc/sys/kernel/core_pattern")],
       "host_root_is_engine": os.path.exists("/host/usr/local/bin/classroom-engine.sh")}
libc.syscall(175, None, 0, b"")  # init_module(NULL, 0, ""): checks the capability first
out["init_module"] = errno.errorcode[ctypes.get_errno()]
cgroups = ("/sys/fs/cgroup", "/hostsys/fs/cgroup")
out["release_agents"] = {os.path.join(d, "release_agent"): rewrite(os.path.join(d, "release_agent"))
                         for d, _, files in walk(*cgroups) if "release_agent" in files}
os.makedirs("/tmp/cg", exist_ok=True)
mounted = libc.mount(b"cgroup", b"/tmp/cg", b"cgroup", 0, b"memory") == 0
out["cgroup_mount"] = "MOUNTED" if mounted else errno.errorcode[ctypes.get_errno()]
if mounted:
    out["release_agents"]["/tmp/cg/release_agent"] = rewrite("/tmp/cg/release_agent")
out["cgroup_dirs"] = sorted({x for _, dirs, _ in walk(*cgroups) for x in dirs})
out["others_limits"] = [rewrite(f"{root}/{ctl}/docker/{cid}/{name}") for root in cgroups
                        for cid in others for ctl, name in (("memory", "memory.limit_in_bytes"),
                                                            ("pids", "pids.max"))]
out["own_limits"] = {name: [open(f"/sys/fs/cgroup/{ctl}/{name}").read().strip(),
                            rewrite(f"/sys/fs/cgroup/{ctl}/{name}")]
                     for ctl, name in (("memory", "memory.limit_in_bytes"), ("pids", "pids.max"))}
out["block_devices"] = [n for folder in ("/dev", "/hostdev") for n in os.listdir(folder)
                        if stat.S_ISBLK(os.lstat(os.path.join(folder, n)).st_mode)]
try:
    os.mknod("/tmp/disk", stat.S_IFBLK | 0o600, os.makedev(major, minor))
    out["mknod"] = "MADE"
except OSError as e:
    out["mknod"] = errno.errorcode[e.errno]
os.makedirs("/tmp/disk-mnt", exist_ok=True)
out["disk_mount"] = {}
for source in ("/tmp/disk", "/hostdev/vda", "/dev/vda"):  # read-only, unmounted at once
    if libc.mount(source.encode(), b"/tmp/disk-mnt", b"ext4", MS_RDONLY, None) == 0:
        out["disk_mount"][source] = "MOUNTED"
        libc.umount2(b"/tmp/disk-mnt", 0)
    else:
        out["disk_mount"][source] = errno.errorcode[ctypes.get_errno()]
print(json.dumps(out))
"""

REACH_PROBE = r"""
import json, socket, sys
out = {}
for port in sys.argv[2:]:
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((sys.argv[1], int(port)))
        out[port] = "CONNECTED"
    except OSError as e:
        out[port] = f"{type(e).__name__}: {e}"
    finally:
        s.close()
print(json.dumps(out))
"""


def container_id(name: str) -> str:
    return docker("inspect", "-f", "{{.Id}}", name).strip()


def test_engines_hold_no_power_over_the_machine(hub: Hub) -> None:
    """Whatever ann starts in her engine, with every option a learner can give, gets no
    capability over this machine: it cannot write kernel settings or cgroups, load a
    module, mount this machine's disk, or see or change any container's limits."""
    name, other = LEARNERS[0], LEARNERS[1]
    engine = json.loads(docker("inspect", hub.engine_container(name)))[0]
    host = engine["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and sorted(host["CapAdd"]) == ["SETGID", "SETUID"]
    assert host["Privileged"] is False and host["PidsLimit"] > 0 and host["Memory"] > 0
    assert not [m for m in engine["Mounts"] if m["Source"].startswith(("/sys", "/proc", "/dev"))]
    others = [container_id(c) for c in (hub.engine_container(other), hub.server_container(other),
                                        hub.server_container(name))]
    root = os.stat("/").st_dev
    probe = hub.exec(name, "docker", "run", "--rm", *ESCAPE_FLAGS, "python:3.11-slim-bookworm",
                     "python", "-c", ESCAPE_PROBE, ",".join(others),
                     str(os.major(root)), str(os.minor(root)))
    assert probe.returncode == 0, probe.stderr
    out = json.loads(probe.stdout)
    assert out["started"] and out["host_root_is_engine"], out
    # every capability in its own user namespace, whose root is an ordinary uid here
    assert int(out["cap_eff"], 16) & (1 << 21), out["cap_eff"]  # CAP_SYS_ADMIN
    assert out["uid_map"] != ["0", "0", "4294967295"] and out["uid_map"][1] != "0", out
    assert out["core_pattern"] == ["EACCES", "EACCES"], out["core_pattern"]
    assert out["init_module"] in ("EPERM", "ENOSYS"), out["init_module"]  # ENOSYS: no modules
    assert out["cgroup_mount"] == "EPERM", out["cgroup_mount"]
    assert "WRITTEN" not in out["release_agents"].values(), out
    assert not set(out["cgroup_dirs"]) & {*others, *(c[:12] for c in others)}, out["cgroup_dirs"]
    assert out["others_limits"] and all(r == "read ENOENT" for r in out["others_limits"]), out
    # the limits it sees are its engine's own, read-only: the learner cannot lift them
    memory, pids = out["own_limits"]["memory.limit_in_bytes"], out["own_limits"]["pids.max"]
    assert memory == [str(host["Memory"]), "EROFS"], memory
    assert pids == [str(host["PidsLimit"]), "EROFS"], pids
    assert out["block_devices"] == [] and out["mknod"] == "EPERM", out
    assert "MOUNTED" not in out["disk_mount"].values(), out["disk_mount"]
    # --privileged asks for a writable /sys, which the engine's user namespace cannot mount
    privileged = hub.exec(name, "docker", "run", "--rm", "--privileged",
                          "python:3.11-slim-bookworm", "true")
    assert privileged.returncode != 0
    assert re.search(r"sysfs.*operation not permitted", privileged.stderr), privileged.stderr
    # the learner's server has no way to the machine's engine, nor a capability
    server = hub.exec(name, "sh", "-c", "grep CapEff /proc/self/status; ls /var/run/docker.sock")
    assert "CapEff:\t0000000000000000" in server.stdout and server.returncode != 0, server


def test_learners_cannot_reach_each_other(hub: Hub) -> None:
    """Nothing of ben's (engine API, published app, Jupyter server) answers ann's server or
    the containers ann runs; ben's own server and the hub reach them."""
    name, other = LEARNERS[0], LEARNERS[1]
    web = f"{other}-probe-web"
    started = hub.exec(other, "docker", "run", "-d", "--name", web, "-p", "127.0.0.1::8000",
                       "python:3.11-slim-bookworm", "python", "-m", "http.server", "8000")
    assert started.returncode == 0, started.stderr
    try:
        app = hub.exec(other, "docker", "port", web, "8000").stdout.split(":")[-1].strip()
        ip = docker("inspect", "-f",
                    f'{{{{(index .NetworkSettings.Networks "{NAME}-{other}-net").IPAddress}}}}',
                    hub.engine_container(other)).strip()
        ports = ["2376", app, "8888"]
        deadline = time.monotonic() + 30
        while True:  # ben's own server reaches all three on its loopback (the app may be slow)
            own = json.loads(hub.exec(other, "python", "-c", REACH_PROBE, "127.0.0.1",
                                      *ports).stdout)
            if set(own.values()) == {"CONNECTED"} or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert set(own.values()) == {"CONNECTED"}, own
        with socket.create_connection((ip, 8888), timeout=3):  # the hub's way to ben's server
            pass
        from_server = hub.exec(name, "python", "-c", REACH_PROBE, ip, *ports)
        from_container = hub.exec(name, "docker", "run", "--rm", "python:3.11-slim-bookworm",
                                  "python", "-c", REACH_PROBE, ip, *ports)
        for attempt in (from_server, from_container):
            assert attempt.returncode == 0, attempt.stderr
            outcome = json.loads(attempt.stdout)
            assert set(outcome) == set(ports), outcome
            assert all(re.match(r"(TimeoutError|ConnectionRefusedError|OSError)", v)
                       for v in outcome.values()), outcome
    finally:
        hub.exec(other, "docker", "rm", "-f", web)


# --- end of the isolation block ---------------------------------------------------------------


SOLVE = {
    "2": '''
from pathlib import Path
d = Path("workspace/ex02"); d.mkdir(parents=True, exist_ok=True)
(d / "app.py").write_text(Path("workspace/app.py").read_text())
(d / "Dockerfile").write_text("FROM python:3.11-slim-bookworm\\nRUN pip install flask\\n"
                              "WORKDIR /srv\\nCOPY app.py .\\nCMD [\\"python\\", \\"app.py\\"]\\n")
from labkit.course import exercises
print(exercises.ex02_workdir())
''',
    "3": '''
from labkit import containers, course
from labkit.course import exercises
containers.run(course.image_name(), name="hello-2", port=5000)
print(exercises.ex03_second_container())
''',
    "4": '''
from labkit import course, registry
from labkit.course import exercises
reg = registry.start_registry()
for tag in ("latest", "1.0"):  # the current image under both tags
    ref = registry.tag_for_registry(course.image_name(), "python-hello-world", tag=tag,
                                    registry=reg)
    registry.push(ref, registry=reg, show=False)
print(exercises.ex04_version_tag())
''',
    "5": '''
from pathlib import Path
d = Path("workspace/ex05"); d.mkdir(parents=True, exist_ok=True)
(d / "Dockerfile").write_text("FROM python:3.11-slim-bookworm\\nCOPY app.py /app.py\\n"
                              "RUN pip install flask\\nCMD [\\"python\\", \\"/app.py\\"]\\n")
from labkit.course import exercises
print(exercises.ex05_wrong_order(PREDICTION))
''',
}
# ann solves 2-5; ben 2-4; cat solves 2, then gets 5 wrong: stuck on step 5.
PLAN = {"ann": [("2", None), ("3", None), ("4", None), ("5", 3)],
        "ben": [("2", None), ("3", None), ("4", None)],
        "cat": [("2", None), ("5", 1)]}


def test_the_instructor_sees_who_is_where(hub: Hub, secrets_env: dict) -> None:
    def solve(name: str) -> list[str]:
        out = []
        for exercise, prediction in PLAN[name]:
            code = SOLVE[exercise].replace("PREDICTION", str(prediction))
            done = hub.exec(name, "python", "-c", code)
            assert done.returncode == 0, done.stderr[-2000:]
            out.append(done.stdout)
        return out

    with ThreadPoolExecutor(len(LEARNERS)) as pool:
        printed = dict(zip(LEARNERS, pool.map(solve, LEARNERS), strict=True))
    assert "✓ well done" in printed["ann"][-1] and "✗ not yet" in printed["cat"][-1]

    # the instructor's token (from logging in) reads the table; a learner's does not
    instructor = hub.token_for("instructor", ["access:services!service=progress"])
    response = hub.progress(instructor)
    assert response.status_code == 200, response.text[:300]
    rows = {row["user"]: row for row in response.json()["learners"]}
    assert set(rows) == set(LEARNERS)
    assert rows["ann"]["passed"] == ["2", "3", "4", "5"] and rows["ann"]["stuck_on"] is None
    assert rows["ben"]["passed"] == ["2", "3", "4"] and rows["ben"]["at_exercise"] == "4"
    assert rows["cat"]["passed"] == ["2"] and rows["cat"]["stuck_on"] == "5"
    assert any("prediction" in text for text in rows["cat"]["last_failed"])
    assert all(row["server"] == "running" for row in rows.values())
    table = hub.session.get(f"{hub.url}/services/progress/",
                            headers={"Authorization": f"token {instructor}"}, timeout=30)
    assert table.status_code == 200 and "cat" in table.text and "step 5" in table.text
    learner = hub.token_for("ben", ["access:servers!user=ben"])
    assert hub.progress(learner).status_code in (302, 403)
    # each learner's own record, in their own folder: nobody else's
    record = hub.exec("cat", "cat", "/srv/progress/progress.jsonl").stdout
    assert {json.loads(line)["user"] for line in record.splitlines()} == {"cat"}
    assert hub.exec("cat", "ls", "/srv/progress").stdout.split() == ["progress.jsonl"]


def test_culling_stops_an_idle_server_and_its_engine(hub: Hub, keepalive: KeepAlive) -> None:
    idle, busy = LEARNERS[-1], LEARNERS[:-1]
    keepalive.drop(idle)  # cat closes the tab
    t0 = time.monotonic()
    while hub.server(idle) and time.monotonic() - t0 < CULL_TIMEOUT + 240:
        time.sleep(5)
    MEASURED["culled_after_s"] = round(time.monotonic() - t0, 1)
    assert not hub.server(idle), f"{idle}'s server was not culled"
    left = docker("ps", "-a", "--format", "{{.Names}}", "--filter",
                  f"label=org.labkit.classroom={NAME}",
                  "--filter", f"label=org.labkit.classroom.user={idle}").split()
    assert left == [], f"culling left {left}"
    assert not os.path.ismount(ROOT / ".cache/classroom" / NAME / "disks" / idle)
    for name in busy:  # the learners who kept working were not culled
        assert hub.server(name).get("ready"), name


def test_memory_per_learner(hub: Hub) -> None:
    """Measured after the steps: the server's and the engine's memory (engine includes what
    the learner runs in it); recorded, not asserted."""
    sizes = {}
    for name in LEARNERS[:-1]:
        # what the learner runs is inside their engine's cgroup, so its limits hold for it
        engine = hub.engine_container(name)
        engine_id = docker("inspect", "-f", "{{.Id}}", engine).strip()
        inner = docker("exec", "-u", ENGINE_USER, engine, "sh", "-c",
                       "cat /proc/$(docker inspect -f '{{.State.Pid}}' "
                       f"{name}-hello-2)/cgroup")
        memory_cgroup = next(line for line in inner.splitlines() if ":memory:" in line)
        # the rootless engine makes no cgroups of its own: its containers stay in its own
        assert re.search(rf"/{engine_id}(/|$)", memory_cgroup), memory_cgroup
        stats = docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}",
                       hub.server_container(name), hub.engine_container(name))
        sizes[name] = stats.strip().splitlines()
        assert len(sizes[name]) == 2
    MEASURED["memory_after_steps"] = sizes


def tagged_processes(state: Path) -> list[str]:
    """Processes that carry the hub's tag (the hub, its proxy, its services: all it started)."""
    tag = f"CLASSROOM_HUB_TAG={state}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if tag in environ.read_bytes().split(b"\0"):
                args = (environ.parent / "cmdline").read_bytes().replace(b"\0", b" ")
                found.append(args.decode())
        except OSError:  # ended meanwhile
            continue
    return found


def test_a_learner_fills_only_their_own_disks(hub: Hub) -> None:
    """What a learner's server writes lands on file systems of their own: the progress
    folder (CLASSROOM_PROGRESS_DISK), the home (CLASSROOM_HOME_DISK), a bounded /tmp; the
    server's own layer is read-only; it has a pids limit."""
    name = LEARNERS[1]
    for path, most in (("/home/learner", 2 * 2**30), ("/tmp", 256 * 2**20)):
        df = hub.exec(name, "df", "-B1", "--output=size,target", path)
        size, target = df.stdout.split()[-2:]
        assert target == path and int(size) <= most, df.stdout
    assert hub.exec(name, "test", "-d", "/home/learner/course").returncode == 0
    refused = hub.exec(name, "touch", "/opt/x")
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr, refused.stderr
    filled = hub.exec(name, "sh", "-c", "dd if=/dev/zero of=/srv/progress/fill bs=1M count=64; "
                      "s=$?; rm -f /srv/progress/fill; exit $s")
    assert filled.returncode != 0
    assert "No space left on device" in filled.stderr, filled.stderr
    server = json.loads(docker("inspect", hub.server_container(name)))[0]
    assert server["HostConfig"]["PidsLimit"] == 512
    assert server["HostConfig"]["ReadonlyRootfs"] is True


def test_the_hub_tags_everything_it_starts(hub: Hub) -> None:
    """The tag that stop uses to find what is left is on the hub, the proxy and the services."""
    found = " ".join(tagged_processes(ROOT / ".cache/classroom" / NAME))
    for part in ("jupyterhub", "configurable-http-proxy", "jupyterhub_idle_culler",
                 "progress_service.py"):
        assert part in found, found


def unused_volumes() -> set[str]:
    """The engine's volumes that no container uses (dangling)."""
    return set(docker("volume", "ls", "-q", "--filter", "dangling=true").split())


def test_stopping_leaves_nothing(hub: Hub, env: dict[str, str]) -> None:
    stopped = classroom("stop", env)
    assert stopped.returncode == 0, stopped.stderr
    label = f"org.labkit.classroom={NAME}"
    assert labelled("container", label) == []
    assert labelled("volume", label) == []
    # nor any volume without the label (an image's anonymous VOLUME, say): a volume the
    # classroom left is one no container uses (`make test` runs other engines meanwhile,
    # whose volumes are in use, and go with their containers)
    assert unused_volumes() <= VOLUMES_BEFORE
    assert labelled("network", label) == []
    state = ROOT / ".cache/classroom" / NAME
    assert not any(os.path.ismount(p) for p in (state / "disks").glob("*"))
    assert not list((state / "disks").glob("*.ext4"))
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{hub.url}/hub/health", timeout=5)
    assert str(state) not in Path("/proc/mounts").read_text()
    procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(state) not in procs and str(ROOT / "classroom") not in procs
    assert tagged_processes(state) == []
    with socket.socket() as s:  # the proxy's API port is closed too
        assert s.connect_ex(("127.0.0.1", int(env["CLASSROOM_PROXY_API_PORT"]))) != 0
