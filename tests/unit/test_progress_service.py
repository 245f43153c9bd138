"""The instructor's progress page (classroom/progress_view.py), served for real on localhost.

The records are real files on disk, written as a learner would (or as a hostile learner
would); only the hub's list of users is a stand-in (an async function): the hub's OAuth and
REST API are not what is under test here (tests/classroom/ drives the real hub).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib.util
import json
import os
import pwd
import re
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
XSS = "<img src=x onerror=alert(1)>"
T0 = "2030-01-02T03:04:05Z"


def _load_view() -> ModuleType:
    sys.path.insert(0, str(ROOT / "classroom"))  # where the service finds tied.py beside it
    spec = importlib.util.spec_from_file_location(
        "classroom_progress_view", ROOT / "classroom" / "progress_view.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


view = _load_view()
progress = view.progress


def line(exercise: str, passed: bool | None, stamp: str = T0, **more: Any) -> str:
    return json.dumps({"time": stamp, "user": "whoever", "exercise": exercise,
                       "passed": passed, "failed": [], **more}) + "\n"


def learner_file(folder: Path, user: str, text: str | bytes) -> Path:
    (folder / user).mkdir(exist_ok=True)
    path = folder / user / progress.FILE_NAME
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A classroom's progress folder with two well-behaved learners, ann and ben."""
    top = tmp_path / "progress"
    top.mkdir()
    learner_file(top, "ann", line("2", True) + line("3", False, failed=["not running"])
                 + line("3", True, "2030-01-02T03:05:00Z"))
    learner_file(top, "ben", line("2", True) + line("4", False, failed=["no tag 1.0"]))
    return top


HUB_USERS: dict[str, dict[str, Any]] = {
    "instructor": {"name": "instructor", "admin": True},
    "ann": {"name": "ann", "servers": {"": {"ready": True}}},
    "ben": {"name": "ben", "servers": {}},
}


class Served:
    """The progress pages served by a real tornado server on a free localhost port."""

    def __init__(self, folder: Path | int, users: dict[str, dict[str, Any]]) -> None:
        from tornado import httpserver, netutil, web

        async def hub_users() -> dict[str, dict[str, Any]]:
            return users

        pages = {"folder": folder if isinstance(folder, int) else str(folder),
                 "users": hub_users}
        app = web.Application([("/", view.TablePage, pages), ("/api", view.ApiPage, pages)])
        sockets = netutil.bind_sockets(0, "127.0.0.1")
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            server = httpserver.HTTPServer(app)
            server.add_sockets(sockets)
            self.loop.call_soon(started.set)
            self.loop.run_forever()
            server.stop()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        started.wait(10)

    def get(self, path: str = "/") -> tuple[int, dict[str, str], str]:
        """Status, headers, body; fails (not hangs) if the server does not answer in 5 s."""
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            return response.status, dict(response.headers), response.read().decode()

    def api(self) -> dict[str, dict[str, Any]]:
        status, _, body = self.get("/api")
        assert status == 200
        return {row["user"]: row for row in json.loads(body)["learners"]}

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[Served] = []

    def start(folder: Path | int, users: dict[str, dict[str, Any]] = HUB_USERS) -> Served:
        servers.append(Served(folder, users))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def assert_others_fine(rows: dict[str, dict[str, Any]]) -> None:
    assert rows["ann"]["passed"] == ["2", "3"] and rows["ann"]["stuck_on"] is None
    assert rows["ann"]["server"] == "running" and rows["ann"]["skipped_lines"] == 0
    assert rows["ben"]["passed"] == ["2"] and rows["ben"]["stuck_on"] == "4"
    assert rows["ben"]["last_failed"] == ["no tag 1.0"] and rows["ben"]["skipped_lines"] == 0
    assert "instructor" not in rows  # the admin has no row


def html_row(body: str, user: str) -> str:
    found = re.search(rf"<tr><td>{user}</td>.*?</tr>", body, re.S)
    assert found, body
    return found.group(0)


# --------------------------------------------------------------------------- escaping
def test_markup_in_a_learners_record_is_shown_as_text(folder: Path, serve: Any) -> None:
    learner_file(folder, "eve", line("5", False, failed=[XSS])  # shown: escaped
                 + json.dumps({"exercise": XSS, "passed": False, "time": T0}) + "\n")
    users = {**HUB_USERS, "<b>mallory</b>": {"name": "<b>mallory</b>"}}
    status, _, body = serve(folder, users).get()
    assert status == 200
    assert "<img" not in body and "<b>mallory" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body  # the finding, as text
    assert "&lt;b&gt;mallory&lt;/b&gt;" in body
    eve = html_row(body, "eve")
    assert "step 5" in eve and "1 bad line skipped" in eve  # the unknown exercise


def test_every_value_of_a_row_is_escaped() -> None:
    """The template escapes whatever a row holds: no field can be forgotten."""
    row = {key: XSS for key in ("user", "server", "at_exercise", "last_check", "stuck_on",
                                "stuck_for", "not_read")}
    row.update(passed=[XSS, XSS], last_failed=[XSS])
    body = view.render([row]).decode()
    assert "<img" not in body and body.count("&lt;img") == 10
    assert "{% raw" not in view.PAGE.code and "autoescape" not in view.PAGE.code
    assert view.PAGE.autoescape == "xhtml_escape"


def test_the_pages_run_no_script_and_cannot_be_framed(folder: Path, serve: Any) -> None:
    server = serve(folder)
    for path in ("/", "/api"):
        status, headers, body = server.get(path)
        assert status == 200
        policy = {part.split()[0]: part.split()[1:]
                  for part in headers["Content-Security-Policy"].split(";")}
        assert policy["default-src"] == ["'none'"] and "script-src" not in policy
        assert policy["frame-ancestors"] == ["'none'"]
        assert headers["X-Content-Type-Options"] == "nosniff"
    style = re.search(r"<style>(.*?)</style>", server.get("/")[2], re.S)
    assert style
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert policy["style-src"] == [f"'sha256-{digest}'"]  # the page's own style applies


# --------------------------------------------------------------------------- bad records
def test_bad_lines_are_skipped_and_counted_not_fatal(folder: Path, serve: Any) -> None:
    learner_file(folder, "eve", "".join([
        line("2", True, stamp="yesterday"),
        line("2", True, stamp="2030-13-45T99:99:99Z"),
        json.dumps({"exercise": "2", "passed": True}) + "\n",  # no time
        line("2", True, stamp=5),
        line("2", "yes"),
        line("2", True, failed="wrong"),
        line("99", True),
        line("4", False, stamp="yesterday"),  # would be "stuck since yesterday": no age
        "not json\n", "[1, 2]\n",
    ]).encode() + b"\xff\xfe\n" + line("3", False, failed=["no container"]).encode())
    status, _, body = serve(folder).get()
    assert status == 200
    assert "11 bad lines skipped" in html_row(body, "eve")
    rows = serve(folder).api()
    assert_others_fine(rows)
    eve = rows["eve"]
    assert eve["skipped_lines"] == 11 and eve["passed"] == [] and eve["stuck_on"] == "3"
    assert eve["server"] == "stopped"  # a folder without a hub user still has a row


def test_a_huge_file_is_read_only_up_to_its_cap(folder: Path, serve: Any) -> None:
    one = line("2", False, failed=["x" * 100])
    learner_file(folder, "eve", one * (5 * (1 << 20) // len(one) + 1) + line("2", True))
    assert (folder / "eve" / progress.FILE_NAME).stat().st_size > 5 << 20
    t0 = time.monotonic()
    rows = serve(folder).api()
    assert time.monotonic() - t0 < 5
    assert_others_fine(rows)
    eve = rows["eve"]
    assert eve["truncated"] and eve["passed"] == []  # the pass after 5 MiB is not read
    assert eve["attempts"]["2"] <= progress.MAX_BYTES // len(one)
    assert eve["skipped_lines"] == 0  # no half line at the cut
    assert "file too long: only its first 1 MiB" in html_row(serve(folder).get()[2], "eve")


def test_a_file_of_many_short_lines_is_read_only_up_to_its_cap(folder: Path, serve: Any) -> None:
    """Half a million one-byte lines are within 1 MiB, but each costs a JSON parse."""
    learner_file(folder, "eve", "1\n" * ((1 << 20) // 2 - 1) + line("2", True))
    t0 = time.monotonic()
    rows = serve(folder).api()
    assert time.monotonic() - t0 < 1
    assert_others_fine(rows)
    assert rows["eve"]["truncated"] and rows["eve"]["skipped_lines"] == progress.MAX_LINES
    assert rows["eve"]["passed"] == []


def test_a_fifo_is_not_read_and_does_not_block(folder: Path, serve: Any) -> None:
    (folder / "eve").mkdir()
    os.mkfifo(folder / "eve" / progress.FILE_NAME)
    t0 = time.monotonic()
    rows = serve(folder).api()  # urlopen gives up after 5 s: a blocked server fails this
    assert time.monotonic() - t0 < 5
    assert_others_fine(rows)
    assert "not a regular file" in rows["eve"]["problem"] and rows["eve"]["passed"] == []


def test_links_out_of_the_learners_folder_are_not_followed(folder: Path, serve: Any,
                                                           tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    (secret / progress.FILE_NAME).write_text(line("7", True))
    (folder / "eve").mkdir()
    (folder / "eve" / progress.FILE_NAME).symlink_to(secret / progress.FILE_NAME)
    (folder / "sam").symlink_to(secret)  # the learner's folder itself a link
    server = serve(folder)
    rows = server.api()
    assert_others_fine(rows)
    assert rows["eve"]["passed"] == [] and "not a regular file" in rows["eve"]["problem"]
    assert rows["sam"]["passed"] == [] and "not read" in rows["sam"]["problem"]
    assert server.get()[0] == 200


def test_folders_that_are_not_learners_names_are_ignored(folder: Path, serve: Any) -> None:
    for name in ("Eve", ".hidden", "a" * 31, "-x", "with space"):
        learner_file(folder, name, line("2", True))
    rows = serve(folder).api()
    assert set(rows) == {"ann", "ben"}
    assert_others_fine(rows)


def test_a_bad_time_from_anywhere_gives_no_age_rather_than_an_error() -> None:
    assert view.age("yesterday") == "" and view.age(None) == ""
    assert view.age("2999-01-01T00:00:00Z") == ""  # the future: no negative age
    assert view.age("2030-01-02T03:04:05Z", now=view.datetime(2030, 1, 2, 4, 4, 5,
                                                               tzinfo=view.UTC)) == "60 min"


# --------------------------------------------------------------------------- privileges
LEARNER_UID = 1000  # the learner image's user (classroom/learner_engine.py chowns to it)


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_the_service_reads_as_nobody_through_the_folder_it_opened(tmp_path: Path) -> None:
    """As the hub starts it: root, progress folder below folders closed to others, the
    learners' folders and files made by uid 1000 with umask 022. After the drop it is
    nobody, cannot become root again, keeps its tie to the hub, and still reads the rows."""
    closed = tmp_path / "state"
    closed.mkdir(mode=0o700)
    top = closed / "progress"
    top.mkdir(mode=0o711)  # listed through the folder opened as root; entered as nobody
    old = os.umask(0o022)
    try:
        learner_file(top, "ann", line("2", True))
        (top / "cat").mkdir()
        private = learner_file(top, "cat", line("2", True))
    finally:
        os.umask(old)
    for path in (top / "ann", top / "ann" / progress.FILE_NAME, top / "cat", private):
        os.chown(path, LEARNER_UID, LEARNER_UID)
    private.chmod(0o600)  # a learner may close their own file: it hides only their row
    script = textwrap.dedent(f"""
        import ctypes, json, os, signal, sys
        sys.path.insert(0, {str(ROOT / "classroom")!r})
        import progress_view as view
        import tied
        tied.set_death_signal(signal.SIGTERM, os.getppid())  # as tied.py's wrapper does
        fd = view.open_folder({str(top)!r})
        assert view.drop_privileges("nobody")
        try:
            os.setuid(0)
            again = True
        except PermissionError:
            again = False
        try:
            os.listdir({str(top)!r})
            by_path = True
        except PermissionError:
            by_path = False
        rows = {{who.user: who for who in view.progress.learners(fd)}}
        print(json.dumps({{"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
                          "groups": os.getgroups(), "root_again": again,
                          "by_path": by_path, "death_signal": tied.death_signal(),
                          "ann": list(rows["ann"].passed), "cat": rows["cat"].problem}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    nobody = pwd.getpwnam("nobody")
    assert (seen["uid"], seen["euid"], seen["gid"]) == (nobody.pw_uid, nobody.pw_uid,
                                                          nobody.pw_gid)
    assert seen["groups"] == [] and not seen["root_again"] and not seen["by_path"]
    assert seen["death_signal"] == 15  # SIGTERM when the hub dies, as before the drop
    assert seen["ann"] == ["2"]
    assert "Permission denied" in seen["cat"]


def test_not_root_keeps_its_user() -> None:
    if os.geteuid() == 0:
        pytest.skip("run as root: the drop itself is tested above")
    assert view.drop_privileges("nobody") is False


# --------------------------------------------------------------------------- the service
class StandInHub:
    """The hub's REST API as the service uses it: who a token is, and the users."""

    def __init__(self, users: list[dict[str, Any]], tokens: dict[str, dict[str, Any]]) -> None:
        from tornado import httpserver, netutil, web

        class User(web.RequestHandler):
            def get(self) -> None:
                token = self.request.headers.get("Authorization", "").removeprefix("token ")
                if token not in tokens:
                    raise web.HTTPError(403)
                self.finish(tokens[token])

        class Users(web.RequestHandler):
            def get(self) -> None:
                if self.request.headers.get("Authorization") != "token service-token":
                    raise web.HTTPError(403)
                self.set_header("Content-Type", "application/json")
                self.finish(json.dumps(users))

        class Token(web.RequestHandler):  # the last step of the OAuth login
            def post(self) -> None:
                if self.get_body_argument("code") != "the-code":
                    raise web.HTTPError(400)
                self.finish({"access_token": "instructor-token", "token_type": "Bearer"})

        app = web.Application([("/hub/api/user", User), ("/hub/api/users", Users),
                               ("/hub/api/oauth2/token", Token)])
        sockets = netutil.bind_sockets(0, "127.0.0.1")
        self.api_url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/hub/api"
        self.loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            httpserver.HTTPServer(app).add_sockets(sockets)
            self.loop.run_forever()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def browser_login(port: int, prefix: str) -> int:
    """A browser's visit: sent to the hub's login, back with a code, then the page."""
    import http.client
    import urllib.parse

    cookies: dict[str, str] = {}

    def visit(path: str) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", path, headers={
            "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
        response = connection.getresponse()
        response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, value = header.split(";")[0].partition("=")
            cookies[name.strip()] = value.strip()
        assert "Content-Security-Policy" in response.headers
        return response

    first = visit(prefix)
    assert first.status == 302, first.status
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(first.headers["Location"]).query)
    state = query["state"][0]
    back = visit(f"{prefix}oauth_callback?code=the-code&state={urllib.parse.quote(state)}")
    assert back.status == 302, back.status
    return visit(prefix).status


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_ids(pid: int) -> tuple[int, int]:
    """The real uid and gid of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    uid = re.search(r"^Uid:\s+(\d+)", status, re.M)
    gid = re.search(r"^Gid:\s+(\d+)", status, re.M)
    assert uid and gid
    return int(uid.group(1)), int(gid.group(1))


@pytest.mark.skipif(os.geteuid() != 0, reason="the service drops root: it needs root to start")
@pytest.mark.skipif(importlib.util.find_spec("jupyterhub") is None,
                    reason="jupyterhub is not installed (the venv's `classroom` extra brings it)")
def test_the_service_started_as_root_serves_the_table_as_nobody(folder: Path,
                                                                 tmp_path: Path) -> None:
    """progress_service.py itself, as the hub starts it (root, its environment), with a
    stand-in for the hub's API: it answers as nobody, with the rows, escaped, and the
    headers; the learners' folders are theirs (uid 1000, umask 022)."""
    learner_file(folder, "eve", line("5", False, failed=[XSS]) + "not json\n")
    for path in folder.rglob("*"):
        os.chown(path, LEARNER_UID, LEARNER_UID)
    tmp_path.chmod(0o700)  # the folders above the progress folder: closed to nobody
    folder.chmod(0o711)  # the progress folder: listed through the open folder, entered
    hub = StandInHub(
        [{"name": "instructor", "admin": True}, {"name": "ann", "servers": {}},
         {"name": "ben", "servers": {}}, {"name": "eve", "servers": {}}],
        {"instructor-token": {"kind": "user", "name": "instructor",
                              "scopes": ["access:services!service=progress"]},
         "ben-token": {"kind": "user", "name": "ben", "scopes": []}})
    port = free_port()
    prefix = "/services/progress/"
    env = {**os.environ, "CLASSROOM_PROGRESS_DIR": str(folder),
           "JUPYTERHUB_API_URL": hub.api_url, "JUPYTERHUB_API_TOKEN": "service-token",
           "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}",
           "JUPYTERHUB_SERVICE_PREFIX": prefix, "JUPYTERHUB_SERVICE_NAME": "progress",
           "JUPYTERHUB_CLIENT_ID": "service-progress",
           "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps(["access:services!service=progress"]),
           "JUPYTERHUB_OAUTH_CALLBACK_URL": prefix + "oauth_callback"}
    service = subprocess.Popen([sys.executable, str(ROOT / "classroom" / "progress_service.py")],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}{prefix}"

    def get(path: str, token: str) -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(base + path,
                                         headers={"Authorization": f"token {token}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read().decode()

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, headers, body = get("", "instructor-token")
                break
            except OSError:
                assert service.poll() is None and time.monotonic() < deadline, (
                    service.stdout.read().decode() if service.stdout else "")
                time.sleep(0.2)
        nobody = pwd.getpwnam("nobody")
        assert process_ids(service.pid) == (nobody.pw_uid, nobody.pw_gid)
        assert status == 200, body
        assert "<img" not in body and "&lt;img src=x" in body
        assert "1 bad line skipped" in html_row(body, "eve")
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        status, headers, body = get("api", "instructor-token")
        assert status == 200 and headers["X-Content-Type-Options"] == "nosniff"
        rows = {row["user"]: row for row in json.loads(body)["learners"]}
        assert rows["ann"]["passed"] == ["2", "3"] and rows["ben"]["stuck_on"] == "4"
        assert rows["eve"]["skipped_lines"] == 1 and rows["eve"]["stuck_on"] == "5"
        assert get("api", "ben-token")[0] == 403  # a learner's token: not theirs to read
        assert browser_login(port, prefix) == 200  # the OAuth path a browser takes
        assert service.poll() is None
    finally:
        service.terminate()
        output = service.communicate(timeout=10)[0].decode()
        hub.stop()
    assert "Traceback" not in output, output
