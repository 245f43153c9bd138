"""Exercise checks: each reads the engine's real state and says what is right or wrong.

A check never raises for a wrong or missing answer: it returns a :class:`Check` that says
what to fix (an unattempted exercise must not stop "Run All").
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker

from labkit import engine, learners
from labkit.engine import BASE_IMAGE, settings

if TYPE_CHECKING:
    import pandas as pd

from labkit.course.workspace import APP_NAME, WORKSPACE, app_source, image_name


@dataclass
class Check:
    """The verdict of an exercise check; ``passed`` is None when not attempted yet."""

    exercise: str
    passed: bool | None
    findings: list[tuple[bool, str]] = field(default_factory=list)
    hint: str = ""

    def __str__(self) -> str:
        head = {True: "✓ well done", False: "✗ not yet", None: "… not attempted yet"}[self.passed]
        lines = [f"Exercise {self.exercise}: {head}"]
        lines += [f"  {'✓' if ok else '✗'} {text}" for ok, text in self.findings]
        if self.hint and not self.passed:
            lines.append(f"  → {self.hint}")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return "```text\n" + str(self) + "\n```"

    def add(self, ok: bool, text: str) -> bool:
        """Record one finding; returns ``ok``."""
        self.findings.append((bool(ok), text))
        return bool(ok)

    def close(self) -> Check:
        """Set ``passed`` from the findings."""
        if self.passed is None and self.findings:
            self.passed = all(ok for ok, _ in self.findings)
        return self


def _http_get(url: str, patience: float = 10.0) -> str:
    """GET a URL without this machine's proxy settings, giving a container that has just
    started ``patience`` seconds to answer; '' when it does not."""
    import requests

    from labkit.containers import http_session
    from labkit.engine import wait_until

    with http_session() as session:
        def answer() -> str | None:
            try:
                return session.get(url, timeout=5).text or " "
            except requests.RequestException:
                return None

        try:
            return (wait_until(answer, patience, 0.2, f"{url} to answer") or "").strip()
        except TimeoutError:
            return ""


def _recorded(check: Callable[..., Check]) -> Callable[..., Check]:
    """Record each verdict for a classroom's instructor (only when LABKIT_PROGRESS_FILE is
    set: see :mod:`labkit.learners.records`)."""
    @functools.wraps(check)
    def run(*args: Any, **kwargs: Any) -> Check:
        verdict = check(*args, **kwargs)
        learners.record(verdict)
        return verdict
    return run


def _not_attempted(exercise: str, hint: str) -> Check:
    return Check(exercise, None, hint=hint)


# --------------------------------------------------------------------------- 2
@_recorded
def ex02_workdir(folder: Path | str = WORKSPACE / "ex02",
                 client: docker.DockerClient | None = None) -> Check:
    """Exercise 2: a Dockerfile that runs the app from /srv."""
    from labkit import containers, images

    folder = Path(folder)
    hint = (f"Write {folder}/Dockerfile and put app.py next to it. One instruction sets the "
            "folder that later instructions and the started app work in; a relative COPY "
            "destination is taken from it.")
    if not (folder / "Dockerfile").exists():
        return _not_attempted("2", hint)
    check = Check("2", None, hint=hint)
    if not (folder / "app.py").exists():
        check.add(False, f"{folder}/app.py is missing: the build context must contain it")
        return check.close()
    cli = client or engine.client()
    result = images.build(folder, "ex02", show=False, client=cli)
    attrs = cli.api.inspect_image(result.image_id)
    check.add(attrs["Config"].get("WorkingDir") == "/srv",
              f"working directory is /srv (it is {attrs['Config'].get('WorkingDir') or '/'!r})")
    base_layers = cli.api.inspect_image(BASE_IMAGE)["RootFS"]["Layers"]
    check.add(attrs["RootFS"]["Layers"][: len(base_layers)] == base_layers,
              f"built on {BASE_IMAGE}")
    app = containers.run(result.tag, name="ex02", client=cli, timeout=20)
    try:
        _, listing = app.container.exec_run(["ls", "/srv"])
        check.add("app.py" in listing.decode("utf-8", "replace").split(), "app.py is in /srv")
        check.add(bool(app.get()), "the container answers on port 5000")
    finally:
        app.remove()
    return check.close()


# --------------------------------------------------------------------------- 3
@_recorded
def ex03_second_container(client: docker.DockerClient | None = None) -> Check:
    """Exercise 3: a second container, ``hello-2``, from the same image."""
    import docker.errors

    name = settings().container_name("hello-2")
    hint = ("Start one more container from the image you built, named as the exercise asks "
            "(the run step above shows how, in Python and in the terminal).")
    cli = client or engine.client()
    try:
        c = cli.containers.get(name)
    except docker.errors.NotFound:
        return _not_attempted("3", hint)
    check = Check("3", None, hint=hint)
    check.add(c.status == "running", f"{name} is running (status: {c.status})")
    check.add(c.image.id == cli.images.get(image_name()).id, f"it runs {image_name()}")
    bindings = (c.attrs["HostConfig"].get("PortBindings") or {}).get("5000/tcp") or []
    check.add(bool(bindings) and all(b.get("HostIp") == engine.bind_ip() for b in bindings),
              f"port 5000 is published on {engine.bind_ip()} only")
    ports = (c.attrs["NetworkSettings"].get("Ports") or {}).get("5000/tcp") or []
    if ports:
        engine.require_reachable(f"port 5000 of {name}")
        url = f"http://{engine.publish_host()}:{ports[0]['HostPort']}/"
        check.add(bool(_http_get(url)), f"it answers at {url}")
    return check.close()


#: Seconds of grace the signals check gives (`docker container stop -t 2`): a container
#: that ignores SIGTERM costs 2 s to find out, not the 10 s of a plain `docker stop`.
STOP_GRACE = 2


def _first_process(cli: docker.DockerClient, container: Any) -> str | None:
    """The command of a running container's PID 1, as `docker container top` lists it (the
    process whose engine-side PID is the container's ``State.Pid``)."""
    top = cli.api.top(container.id)
    titles = [t.upper() for t in top.get("Titles") or []]
    if "PID" not in titles or "CMD" not in titles:
        return None
    pid = str((container.attrs.get("State") or {}).get("Pid"))
    found = [row[titles.index("CMD")] for row in top.get("Processes") or []
             if row[titles.index("PID")] == pid]
    return str(found[0]) if found else None


@_recorded
def ex03_prompt_stop(client: docker.DockerClient | None = None) -> Check:
    """Exercise 3b: a container of the app, ``quick-stop``, that `docker stop` ends at once.

    A running one is stopped with ``STOP_GRACE`` seconds of grace; then the engine's record
    decides: exit code 137 (128 + SIGKILL) means the grace period ran out and it was
    killed; 143 (128 + SIGTERM) or 0 means SIGTERM ended it. `docker container top` names
    its PID 1. No timing is measured.
    """
    from labkit import containers
    from labkit.images import owned

    name = settings().container_name("quick-stop")
    hint = ("Start a container of your image named as the exercise asks, so that SIGTERM "
            "reaches a process that acts on it. Which process is PID 1, and does it "
            "handle SIGTERM? A container of that name that is still there must go first.")
    cli = client or engine.client()
    try:
        container = cli.containers.get(name)
    except docker.errors.NotFound:
        return _not_attempted("3b", hint)
    check = Check("3b", None, hint=hint)
    attrs = container.attrs
    command = " ".join([attrs.get("Path") or "", *(attrs.get("Args") or [])]).strip()
    mine = owned.is_own_container(attrs, owned.own_image_ids(engine.images(cli)))
    if not check.add(mine and "app.py" in command,
                     f"{name} runs the app from one of your images (command: {command})"):
        return check.close()
    first, stopped = None, f"it had stopped already (status: {container.status})"
    if container.status == "running":
        first = _first_process(cli, container)
        stopped = f"`{containers.stop(name, timeout=STOP_GRACE, client=cli)}` stopped it"
        container.reload()
    state = container.attrs.get("State") or {}
    if not check.add(container.status == "exited" and not state.get("OOMKilled"), stopped):
        return check.close()
    code = state.get("ExitCode")
    pid1 = f"; its PID 1 was `{first}`" if first else ""
    if code == 137:
        check.add(False, f"it was killed when its {STOP_GRACE} s of grace ran out (exit code "
                  f"137 = 128 + 9, SIGKILL): SIGTERM changed nothing{pid1}")
    elif code in (0, 143):
        how = "it handled SIGTERM and exited" if code == 0 else "SIGTERM ended it"
        check.add(True, f"{how} before its grace period ran out (exit code {code}"
                  f"{' = 128 + 15, SIGTERM' if code == 143 else ''}){pid1}")
    else:
        check.add(False, f"it ended with exit code {code}, not because of SIGTERM: "
                  f"`docker container logs {name}` says why")
    return check.close()


# --------------------------------------------------------------------------- 4
@_recorded
def ex04_version_tag(client: docker.DockerClient | None = None) -> Check:
    """Exercise 4: the image pushed under the tag 1.0 as well."""
    from labkit import registry

    reg = registry.start_registry(client=client)
    repo = f"{reg.username}/{APP_NAME}"
    hint = ("Give the image a second tag in its registry repository, then push that tag: "
            "tagging alone changes only this engine.")
    tags = registry.tags(repo, reg)
    if "1.0" not in tags:
        return _not_attempted("4", hint)
    check = Check("4", None, hint=hint)
    check.add(True, f"the registry holds {repo}:1.0")
    same = registry.manifest(repo, "1.0", reg)["digest"] == registry.manifest(repo, "latest",
                                                                              reg)["digest"]
    check.add(same, "1.0 and latest name the same manifest"
              + ("" if same else ": push again after tagging the current image"))
    return check.close()


# --------------------------------------------------------------------------- 5
EX05_EXPECTED = "FROM, COPY, RUN, CMD"


@_recorded
def ex05_wrong_order(prediction: int | None, folder: Path | str = WORKSPACE / "ex05",
                     client: docker.DockerClient | None = None) -> Check:
    """Exercise 5: COPY before RUN, and a prediction of how many steps rebuild (with the
    builder labkit uses here: BuildKit makes no step of CMD, the classic builder does)."""
    from labkit import images

    folder = Path(folder)
    hint = (f"Write {folder}/Dockerfile with COPY before RUN, then set predicted_rebuilt_steps. "
            "A change invalidates the first step whose input changed: which steps follow it?")
    dockerfile = folder / "Dockerfile"
    if prediction is None or not dockerfile.exists():
        return _not_attempted("5", hint)
    check = Check("5", None, hint=hint)
    order = [ln.split()[0].upper() for ln in dockerfile.read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    copy_first = "COPY" in order and "RUN" in order and order.index("COPY") < order.index("RUN")
    check.add(copy_first, f"COPY comes before RUN (the order is {', '.join(order)})")
    cli = client or engine.client()
    # Two app versions never built before: the measurement cannot come from an old cache.
    token = uuid.uuid4().hex[:8]
    rebuilt = []
    builder = "the builder"
    for version in ("one", "two"):
        (folder / "app.py").write_text(app_source(f"hello {version} {token}!"))
        result = images.build(folder, "ex05", show=False, client=cli)
        rebuilt = [s for s in result.steps if not s.cached and s.keyword != "FROM"]
        builder = result.builder.label
    measured = len(rebuilt)
    names = ", ".join(s.instruction.split()[0] for s in rebuilt)
    check.add(prediction == measured,
              f"{builder} rebuilt {measured} steps ({names}), as you predicted"
              if prediction == measured else
              f"your prediction {prediction} is not what {builder} did")
    return check.close()


# --------------------------------------------------------------------------- 6
@_recorded
def ex06_heaviest_layer(answer: str | None, client: docker.DockerClient | None = None) -> Check:
    """Exercise 6: which instruction of the Dockerfile made the largest layer."""
    from labkit.images import history as image_history

    hint = "Look at size_bytes in the history table, among the rows your Dockerfile made."
    if not answer:
        return _not_attempted("6", hint)
    history = image_history(image_name(), client=client)
    ours = history[~history["instruction"].str.startswith("LABEL")].head(3)
    top = ours.sort_values("size_bytes", ascending=False).iloc[0]["instruction"]
    check = Check("6", None, hint=hint)
    norm = " ".join(answer.split()).lower()
    right = norm in " ".join(top.split()).lower()
    check.add(right, f"the largest layer of your Dockerfile: {top}" if right else
              f"{answer!r} did not make the largest layer of your Dockerfile")
    return check.close()


# --------------------------------------------------------------------------- 7
#: Exercise 7's five things, by key: what each names on this learner's engine
EX07_ITEMS = {
    "app-container": "your app's container, <user>-hello (stopped above)",
    "app-image": "your image <user>/python-hello-world:latest",
    "registry-volume": "the registry's named volume, <user>-registry-data",
    "bridge-network": "the default network, bridge",
    "base-image": f"the base image, {BASE_IMAGE}",
}


def _short(ident: str) -> str:
    return ident.removeprefix("sha256:")[:12]


def ex07_would_go(preview: pd.DataFrame, client: docker.DockerClient | None = None
                  ) -> set[str]:
    """The keys of :data:`EX07_ITEMS` whose object is among what a plain ``docker system
    prune`` would remove, matched by the engine's IDs (the preview lists what it takes)."""
    from labkit.registry import volume_name

    cli = client or engine.client()
    plain = preview[preview["removed_by"] == "docker system prune"]

    def listed(kind: str, value: str, column: str = "id") -> bool:
        return bool(value) and value in set(plain[plain["kind"] == kind][column])

    def image_id(ref: str) -> str:
        try:
            return _short(str(cli.api.inspect_image(ref)["Id"]))
        except docker.errors.NotFound:
            return ""

    def container_id(name: str) -> str:
        try:
            return _short(str(cli.api.inspect_container(name)["Id"]))
        except docker.errors.NotFound:
            return ""

    goes = {
        "app-container": listed("container", container_id(settings().container_name("hello"))),
        "app-image": listed("image", image_id(f"{image_name()}:latest")),
        "registry-volume": listed("volume", volume_name(), "name"),
        "bridge-network": listed("network", "bridge", "name"),
        "base-image": listed("image", image_id(BASE_IMAGE)),
    }
    return {key for key, yes in goes.items() if yes}


@_recorded
def ex07_prune_preview(would_go: set[str] | None, client: docker.DockerClient | None = None,
                       preview: pd.DataFrame | None = None) -> Check:
    """Exercise 7: which of five things (:data:`EX07_ITEMS`) a plain ``docker system prune``
    would remove now, checked against the engine's objects and what its prune takes.

    ``preview`` is the preview taken before the answer (on an engine others share, a new
    one can differ); without it, a new preview is taken.
    """
    from labkit import cleanup

    hint = ("A plain `docker system prune` takes stopped containers, networks no container "
            "uses, dangling images and unused build cache; volumes only with `--volumes`.")
    if would_go is None:
        return _not_attempted("7", hint)
    answer = {str(k) for k in would_go}
    check = Check("7", None, hint=hint)
    unknown = sorted(answer - set(EX07_ITEMS))
    check.add(not unknown, "every key is one of the five" if not unknown else
              f"not one of the five keys: {', '.join(unknown)}")
    if preview is None:
        preview = cleanup.preview_system_prune(client=client)
    wrong = len((answer & set(EX07_ITEMS)) ^ ex07_would_go(preview, client))
    check.add(wrong == 0, "the engine agrees on all five" if wrong == 0 else
              f"the engine disagrees on {wrong} of the five")
    return check.close()


# --------------------------------------------------------------------------- 8
def _hex(digest: str) -> str:
    return digest.strip().lower().removeprefix("sha256:")


@_recorded
def ex08_app_layer(answer: str | None, client: docker.DockerClient | None = None) -> Check:
    """Exercise 8: the diff ID of the layer of the learner's image that holds ``/app.py``.

    Read from the image's own layers (:func:`labkit.layers.analyze`): the layer whose copy
    of ``/app.py`` the running container sees. At least 12 hex digits of it are enough.
    """
    from labkit import layers

    hint = ("Find the layer whose files include /app.py (the explorer above, or "
            "analysis.owner), then read that layer's diff_id: it names the layer's content, "
            "not the image.")
    if not answer or not answer.strip():
        return _not_attempted("8", hint)
    analysis = layers.analyze(image_name(), client=client)
    check = Check("8", None, hint=hint)
    owner = analysis.owner("/app.py")
    if owner is None:
        check.add(False, f"{image_name()} has no /app.py: build it again (step 2)")
        return check.close()
    given = _hex(answer)
    if len(given) < 12:
        check.add(False, f"{answer!r} is too short: give at least 12 hex digits")
        return check.close()
    layer = analysis.layers[owner[0]]
    if _hex(layer.diff_id).startswith(given):
        check.add(True, f"layer {layer.index} ({layer.instruction}) holds /app.py; its diff ID "
                        f"starts with {given[:12]}")
        return check.close()
    other = next((x for x in analysis.layers if _hex(x.diff_id).startswith(given)), None)
    if other is not None:
        check.add(False, f"that is the diff ID of layer {other.index} ({other.instruction}), "
                         "which does not hold the /app.py the container sees")
    elif _hex(analysis.image_id).startswith(given):
        check.add(False, "that is the image ID: it names the whole image, not one layer")
    elif any(_hex(x.chain_id).startswith(given) for x in analysis.layers):
        check.add(False, "that is a chain ID: it names a layer together with every layer "
                         "below it; the exercise asks for the layer's own diff ID")
    else:
        check.add(False, f"{answer!r} is not the diff ID of any layer of {image_name()}")
    return check.close()
