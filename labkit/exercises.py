"""Exercise checks: each reads the engine's real state and says what is right or wrong.

A check never raises for a wrong or missing answer: it returns a :class:`Check` that says
what to fix (an unattempted exercise must not stop "Run All").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from . import engine
from .config import BASE_IMAGE, settings
from .course import APP_NAME, WORKSPACE, app_source, image_name


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


def _http_get(url: str) -> str:
    """GET a URL without this machine's proxy settings; '' when it does not answer."""
    import requests

    from .containers import http_session

    with http_session() as session:
        try:
            return session.get(url, timeout=5).text
        except requests.RequestException:
            return ""


def _not_attempted(exercise: str, hint: str) -> Check:
    return Check(exercise, None, hint=hint)


# --------------------------------------------------------------------------- 2
def ex02_workdir(folder: Path | str = WORKSPACE / "ex02", client=None) -> Check:  # noqa: ANN001
    """Exercise 2: a Dockerfile that runs the app from /srv."""
    from . import containers, images

    folder = Path(folder)
    hint = (f"Write {folder}/Dockerfile (FROM {BASE_IMAGE}, RUN pip install flask, WORKDIR /srv, "
            "COPY app.py ., CMD [\"python\", \"app.py\"]) and copy app.py next to it.")
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
def ex03_second_container(client=None) -> Check:  # noqa: ANN001
    """Exercise 3: a second container, ``hello-2``, from the same image."""
    import docker.errors

    name = settings().container_name("hello-2")
    hint = 'Run: containers.run(course.image_name(), name="hello-2")'
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
        url = f"http://{engine.publish_host()}:{ports[0]['HostPort']}/"
        check.add(bool(_http_get(url)), f"it answers at {url}")
    return check.close()


# --------------------------------------------------------------------------- 4
def ex04_version_tag(client=None) -> Check:  # noqa: ANN001
    """Exercise 4: the image pushed under the tag 1.0 as well."""
    from . import registry

    reg = registry.start_registry(client=client)
    repo = f"{reg.username}/{APP_NAME}"
    hint = (f'ref = registry.tag_for_registry(course.image_name(), "{APP_NAME}", tag="1.0", '
            'registry=reg); registry.push(ref, registry=reg)')
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


def ex05_wrong_order(prediction: int | None, folder: Path | str = WORKSPACE / "ex05",
                     client=None) -> Check:  # noqa: ANN001
    """Exercise 5: COPY before RUN, and a prediction of how many steps rebuild."""
    from . import images

    folder = Path(folder)
    hint = (f"Write {folder}/Dockerfile with the lines FROM, COPY app.py /app.py, RUN pip install "
            "flask, CMD, and set predicted_rebuilt_steps to a number.")
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
    for version in ("one", "two"):
        (folder / "app.py").write_text(app_source(f"hello {version} {token}!"))
        result = images.build(folder, "ex05", show=False, client=cli)
        rebuilt = [s for s in result.steps if not s.cached and not s.added_by_labkit
                   and not s.instruction.startswith("FROM")]
    measured = len(rebuilt)
    names = ", ".join(s.instruction.split()[0] for s in rebuilt)
    check.add(prediction == measured,
              f"your prediction {prediction} vs the engine: {measured} steps rebuilt ({names})")
    return check.close()


# --------------------------------------------------------------------------- 6
def ex06_heaviest_layer(answer: str | None, client=None) -> Check:  # noqa: ANN001
    """Exercise 6: which instruction of the Dockerfile made the largest layer."""
    from . import images

    hint = "Look at size_bytes in the history table, among the rows your Dockerfile made."
    if not answer:
        return _not_attempted("6", hint)
    history = images.history(image_name(), client=client)
    ours = history[~history["instruction"].str.startswith("LABEL")].head(3)
    top = ours.sort_values("size_bytes", ascending=False).iloc[0]["instruction"]
    check = Check("6", None, hint=hint)
    norm = " ".join(answer.split()).lower()
    check.add(norm in " ".join(top.split()).lower(), f"the largest layer of your Dockerfile: {top}")
    return check.close()


# --------------------------------------------------------------------------- 7
def ex07_prune_preview(answer: int | None, client=None) -> Check:  # noqa: ANN001
    """Exercise 7: how many items of the prune preview the course did not make."""
    from . import cleanup

    hint = "Count the rows of the preview whose `course` column is False."
    if answer is None:
        return _not_attempted("7", hint)
    preview = cleanup.preview_system_prune(client=client)
    foreign = int((~preview["course"].astype(bool)).sum()) if len(preview) else 0
    check = Check("7", None, hint=hint)
    check.add(answer == foreign, f"your answer {answer}; the engine: {foreign} not from the course")
    return check.close()
