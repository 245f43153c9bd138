"""Catching up on the steps before a notebook (``course.ensure``): what is missing is made
and said, one line per action with its equivalent command; what the learner made is kept.

A learner who changed the app in step 5 keeps that app and that image in steps 6 and 8:
``ensure`` writes ``workspace/app.py`` only when there is none, and builds only when the
image is missing. Only a notebook that must start from the original app (step 5) asks for
it, in so many words: ``course.ensure(5, message=course.HELLO)``; then the app is rewritten
if it differs and the image is built from it, and ensure says both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import docker.errors

from labkit import engine
from labkit.course.workspace import (
    APP_NAME,
    HELLO,
    WORKSPACE,
    app_source,
    image_name,
    write_app,
    write_dockerfile,
)
from labkit.engine import LabkitError, settings

if TYPE_CHECKING:
    from labkit.images import BuildResult
    from labkit.registry import Registry


@dataclass(frozen=True)
class Action:
    """One thing ``ensure`` did, and the line a learner types for the same."""

    what: str
    command: str

    def __str__(self) -> str:
        return f"{self.what}: {self.command}"


@dataclass
class Ensured:
    """What the earlier steps left, as ``ensure`` found it (or made it, see ``actions``)."""

    step: int
    app: Path
    image: str | None = None  # the learner's image, <user>/python-hello-world (step >= 3)
    image_id: str | None = None
    build: BuildResult | None = None  # the build ensure ran, if it ran one
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def tag(self) -> str | None:
        """The image's name (as :attr:`BuildResult.tag`)."""
        return self.image

    @property
    def short_id(self) -> str:
        """The 12-character image ID ``docker image ls`` shows."""
        return (self.image_id or "").removeprefix("sha256:")[:12]

    def lines(self) -> list[str]:
        """What a notebook prints: each action with its command, then the notes; or, when
        nothing was missing, one line saying what is used."""
        if not self.actions:
            found = (f"your image {self.image} ({self.short_id})" if self.image
                     else f"your {self.app}")
            head = [f"Earlier steps: done. This step uses {found}, as you left it."]
        else:
            head = ["Earlier steps: done now, with the command that does the same:"]
            head += [f"  {a}" for a in self.actions]
        return head + [f"Note: {n}" for n in self.notes]

    def __str__(self) -> str:
        return "\n".join(self.lines())


def ensure(step: int, *, message: str | None = None, show: bool = True) -> Ensured:
    """Make sure what the steps before ``step`` produced exists; make only what is missing.

    - 2: ``workspace/app.py`` exists (step 1's app, answering "hello world!", if there was
      none);
    - 3: and the Dockerfile, and the image ``<user>/python-hello-world`` (built from the
      workspace if the engine has none);
    - 4: and a container of that image, ``<user>-hello``, runs;
    - 5: and the local registry runs and has that very image (logged in and pushed if not).

    The learner's own ``app.py`` and image are kept, whatever the app answers. With
    ``message``, the step must start from that app: ``app.py`` is rewritten when it answers
    something else, and the image is built from it (a cached build when nothing changed).
    Every action is printed (``show``) with its equivalent command, and returned.
    """
    done = Ensured(step=step, app=WORKSPACE / "app.py")
    _ensure_app(done, message)
    if step >= 3:
        _ensure_image(done, force_build=message is not None)
    if step >= 4:
        _ensure_running(done)
    if step >= 5:
        _ensure_pushed(done)
    if show:
        print(done)
    return done


def _ensure_app(done: Ensured, message: str | None) -> None:
    wanted = app_source(message or HELLO)
    if not done.app.exists():
        write_app(message or HELLO)
        done.actions.append(Action(f'wrote {done.app}, step 1\'s app (it answers '
                                   f'"{message or HELLO}")',
                                   f"step 1's %%writefile {done.app} cell"))
    elif message is not None and done.app.read_text() != wanted:
        write_app(message)
        done.actions.append(Action(f'rewrote {done.app}: this step starts from the app that '
                                   f'answers "{message}"', f"%%writefile {done.app}"))


def _ensure_image(done: Ensured, force_build: bool) -> None:
    from labkit import images

    dockerfile = WORKSPACE / "Dockerfile"
    if not dockerfile.exists():
        write_dockerfile()
        done.actions.append(Action(f"wrote {dockerfile}, step 2's",
                                   f"step 2's %%writefile {dockerfile} cell"))
    name = image_name()
    done.image = name
    cli = engine.client()
    try:
        existing = cli.images.get(name).id
    except docker.errors.ImageNotFound:
        existing = None
    if existing is not None and not force_build:
        done.image_id = existing
        if _app_in_image(name) != done.app.read_bytes():
            done.notes.append(f"{done.app} has changed since your image was built; this step "
                              f"uses the image. To build it again: docker build -t {name} "
                              f"{WORKSPACE}")
        return
    done.build = images.build(WORKSPACE, APP_NAME, show=False)
    done.image_id = done.build.image_id
    if existing is None:
        what = f"built your image {name} ({done.short_id}), which was missing"
    elif existing == done.image_id:
        what = f"built {name} from it: every step cached, the same image ({done.short_id})"
    else:
        what = f"built {name} from it ({done.short_id})"
    done.actions.append(Action(what, f"$ {done.build.command}"))


def _app_in_image(name: str) -> bytes | None:
    from labkit.images import read_file

    found = read_file(name, "/app.py")
    return found[0] if found else None


def _ensure_running(done: Ensured, name: str = "hello") -> None:
    """Start the step-3 container unless it already runs this very image."""
    from labkit import containers

    assert done.image is not None and done.image_id is not None
    cname = settings().container_name(name)
    try:
        current = engine.client().containers.get(cname)
        if current.status == "running" and current.attrs.get("Image") == done.image_id:
            return
        why = "it ran another image" if current.status == "running" else f"it was {current.status}"
        what = f"replaced the container {cname} ({why}) with one of your image"
    except docker.errors.NotFound:
        what = f"started the container {cname} from your image"
    app = containers.run(done.image, name=name)
    done.actions.append(Action(what, f"$ {app.command}"))


def _ensure_pushed(done: Ensured) -> None:
    """The registry runs and its ``<user>/python-hello-world:latest`` is this very image."""
    from labkit import registry

    assert done.image is not None and done.image_id is not None
    reg = registry.configured_registry()
    if reg is None:
        before = registry.find_registry()
        reg = registry.start_registry()  # checks a running one; re-creates it if it must
        if before is None:
            done.actions.append(Action("started your local registry", _run_line(reg)))
        elif before.container_id != reg.container_id:
            done.actions.append(Action("re-created your local registry (its settings had "
                                       "changed), keeping its data", _run_line(reg)))
        elif _in_registry(reg, done.image_id):
            return
    login = registry.login(reg)
    done.actions.append(Action(f"logged in to {reg.address}", f"$ {login.command}"))
    ref = registry.tag_for_registry(done.image, APP_NAME, registry=reg)
    done.actions.append(Action(f"tagged your image as {ref}", f"$ {ref.command}"))
    pushed = registry.push(ref, registry=reg, show=False)
    done.actions.append(Action("pushed it", f"$ {pushed.command}"))


def _run_line(reg: Registry) -> str:
    return f"$ {reg.command}" if reg.command else "labkit registry start"


def _in_registry(reg: Registry, image_id: str) -> bool:
    """True when the registry's ``<user>/python-hello-world:latest`` is this image: the
    image ID is the config's digest (classic image store) or the pushed manifest's or
    index's (containerd image store)."""
    from labkit.registry import manifest

    try:
        info = manifest(f"{reg.username}/{APP_NAME}", "latest", reg)
    except (LabkitError, OSError):
        return False
    return image_id in {info.get("config_digest"), info.get("digest"),
                        info.get("manifest_digest")}
