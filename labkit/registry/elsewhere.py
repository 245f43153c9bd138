"""Elsewhere: the pushed image pulled into a second, empty engine, run there and asked for
its page. The proof that the registry makes an image available anywhere, not only on the
engine that built it.

The second engine is a ``docker:dind`` container of the learner's own engine, named and
labelled as the learner's (the clean-up removes it, and nobody else's). It starts on the
registry container's network and reaches the registry by that container's name: a
user-defined network resolves it, and on Docker's default ``bridge``, which resolves no
names, ``--link`` writes it into the second engine's ``/etc/hosts``. (Connecting the
registry to a network of its own instead would be tidier, but ``docker network connect``
may move a published port that the engine chose itself, moby#44137: the learner's
``localhost:PORT`` would stop answering.) It trusts the registry's CA
(``/etc/docker/certs.d/NAME:5000/ca.crt``, no engine restart needed) and logs in with the
password on stdin. Everything inside it is done by its
own docker CLI (``docker exec``): the commands shown are the ones a learner types.

What happened to each layer is read from the facts, not from printed text: the second
engine's image store before the pull (empty), the image it holds after it, and the
registry's own access log (which blobs it sent to that engine, and how many bytes).

The second engine and its volume are removed at the end, also on failure.
"""

from __future__ import annotations

import calendar
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import docker
from docker.errors import APIError, NotFound
from docker.utils import parse_repository_tag

from labkit import engine
from labkit.engine import (
    DIND_IMAGE,
    DockerCommand,
    ImageMissing,
    NestedEngineRefused,
    RegistryError,
    StepObserver,
    boundary,
    html_of,
    settings,
    step_observers,
)
from labkit.engine import docker as docker_cmd
from labkit.registry.api import manifest as registry_manifest
from labkit.registry.api import repository_path
from labkit.registry.model import Registry
from labkit.registry.pull import FINAL_STATUS
from labkit.registry.server import credentials, resolve_registry
from labkit.registry.server_config import CONFIG_DIR, config_tar, read_config_file
from labkit.registry.tls import CA_FILE

if TYPE_CHECKING:
    import pandas as pd

#: Docker's default network, which resolves no container names.
DEFAULT_BRIDGE = "bridge"
#: The role label of the second engine.
ROLE = "second-engine"
#: The port the registry serves on inside its container (what the second engine dials).
REGISTRY_PORT = 5000
#: How long the second engine may take to answer, and the app inside it.
START_TIMEOUT = 90.0
APP_TIMEOUT = 30.0
#: The app's container inside the second engine (a machine of its own: no namespace needed).
APP_NAME = "hello"
APP_URL = "http://127.0.0.1:5000"
#: What asks the app for its page, inside its own container (the image has Python).
FETCH = f'import urllib.request; print(urllib.request.urlopen("{APP_URL}").read().decode())'
#: The same, retried while the app starts (what labkit runs; FETCH is what is shown).
FETCH_RETRYING = (
    "import time, urllib.request\n"
    f"for _ in range({int(APP_TIMEOUT * 10)}):\n"
    "    try:\n"
    f"        print(urllib.request.urlopen('{APP_URL}', timeout=2).read().decode(), end='')\n"
    "        break\n"
    "    except OSError:\n"
    "        time.sleep(0.1)\n"
    "else:\n"
    "    raise SystemExit('the app never answered')\n"
)
#: How the second engine is started: privileged (what docker:dind asks for), else with
#: every capability the engine can grant (an engine that lacks CAP_SYS_RESOURCE, e.g. one
#: that itself runs in a container, refuses --privileged: "unable to apply caps").
PRIVILEGED: dict[str, Any] = {"privileged": True}
CAPABILITIES: dict[str, Any] = {
    "cap_add": ["ALL"], "cap_drop": ["SYS_RESOURCE"],
    "security_opt": ["seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"],
    "binds": ["/sys/fs/cgroup:/sys/fs/cgroup:rw"],
}
#: What the docker CLI makes of ``--security-opt systempaths=unconfined`` (Docker 28+ inside
#: a container writes /proc/sys to start its containers): no masked or read-only path.
UNCONFINED_PATHS = "systempaths=unconfined"
CANNOT_HINT = (
    "Run this step on an engine that allows privileged containers (Docker Desktop, Docker "
    "Engine run as root, the course's own lab engine), or type the commands above on a second "
    "machine: a rootless engine or a locked-down classroom engine cannot run an engine inside.")
LAYER_COLUMNS = ["layer", "blob", "size", "here_before", "sent_by_registry", "pull_said"]
#: One access-log line of the registry (the combined log format): client, request, status,
#: bytes sent.
ACCESS_LINE = re.compile(r'^(?P<client>\S+) \S+ \S+ \[[^\]]*\] "(?P<method>[A-Z]+) '
                         r'/v2/(?P<repo>\S+?)/blobs/(?P<digest>sha256:[0-9a-f]{64}) [^"]*" '
                         r'(?P<status>\d{3}) (?P<bytes>\d+|-)')
PULL_LINE = re.compile(r"^(?P<layer>[0-9a-f]{12}): (?P<status>.+?)\s*$")
#: How the second engine's runtime says it may not set up a container's cgroups: its own
#: engine is rootless or locked down (the classroom's), which keeps them read-only to it.
CONFINED = re.compile(r"(apply|create|set|join) cgroup|cgroup configuration|/sys/fs/cgroup\S*: "
                      r"(read-only file system|permission denied|operation not permitted)",
                      re.IGNORECASE)


@dataclass
class ElsewhereResult:
    """A pull into a second, empty engine: per-layer facts, the app's answer, the commands.

    ``layers`` has one row per layer of the image, in order: its diff ID (``layer``), its
    blob in the registry and that blob's size, whether the second engine had it before the
    pull, the bytes the registry's access log says it sent to the second engine for it, and
    what ``docker pull`` printed for it. ``repo_digest`` is the digest the second engine
    holds the image by; ``registry_digest`` the one the registry's tag points to.
    ``not_run`` says why the second engine could not run the image (its own engine keeps
    cgroups read-only: rootless, or a classroom's); empty when the app ran and answered.
    """

    reference: str
    engine_version: str
    image_store: str
    platform: str
    images_before: int
    layers: pd.DataFrame
    repo_digest: str
    answer: str
    seconds: dict[str, float]
    commands: tuple[DockerCommand, ...]
    flags: str
    registry_digest: str = ""
    not_run: str = ""
    removed: bool = False
    steps: list[str] = field(default_factory=list)

    @property
    def downloaded(self) -> int:
        """Layers the second engine did not have and the registry sent in full."""
        got = self.layers
        return int(((~got["here_before"]) & (got["sent_by_registry"] >= got["size"])).sum())

    @property
    def every_layer_downloaded(self) -> bool:
        """True when the engine started empty and every layer came from the registry."""
        return self.images_before == 0 and len(self.layers) > 0 and \
            self.downloaded == len(self.layers)

    def __repr__(self) -> str:
        lines = [f"$ {c}" for c in self.commands]
        lines.append(f"{self.reference} on a second engine (Docker {self.engine_version}, "
                     f"{self.image_store}): {self.downloaded} of {len(self.layers)} layers "
                     f"downloaded; " + (self.not_run or f"the app answered {self.answer!r}"))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return html_of(self)


# --------------------------------------------------------------------------- commands


def engine_name() -> str:
    """The second engine's container: ``<learner>-elsewhere``."""
    return settings().container_name("elsewhere")


def certs_dir(registry_host: str) -> str:
    """Where an engine looks for the CA of ``registry_host`` (``NAME:PORT``)."""
    return f"/etc/docker/certs.d/{registry_host}"


def run_flags(options: dict[str, Any]) -> list[str]:
    """The ``docker run`` flags of one way to start the second engine."""
    if options.get("privileged"):
        return ["--privileged"]
    flags = [f"--cap-add={c}" for c in options.get("cap_add", [])]
    flags += [f"--cap-drop={c}" for c in options.get("cap_drop", [])]
    flags += [x for opt in options.get("security_opt", []) for x in ("--security-opt", opt)]
    flags += [x for bind in options.get("binds", []) for x in ("-v", bind)]
    return flags


def links(network: str, registry_name: str) -> dict[str, str]:
    """How the second engine finds the registry by name on ``network``: a ``--link`` on
    Docker's default bridge (it resolves no container names), nothing on a network that
    does."""
    return {registry_name: registry_name} if network == DEFAULT_BRIDGE else {}


def plan(reference: str, registry_name: str, username: str, network: str,
         options: dict[str, Any] = PRIVILEGED) -> list[DockerCommand]:
    """The plain docker commands of the whole experiment, in order (``reference`` as the
    second engine names it: ``REGISTRY_CONTAINER:5000/USER/NAME:TAG``; ``network``: the
    registry container's)."""
    name = engine_name()
    host = f"{registry_name}:{REGISTRY_PORT}"
    link = [x for other in links(network, registry_name) for x in ("--link", other)]
    return [
        docker_cmd("run", "-d", *run_flags(options), "--name", name, "--network", network,
                   *link, DIND_IMAGE),
        docker_cmd("exec", name, "docker", "version"),
        docker_cmd("exec", name, "mkdir", "-p", certs_dir(host)),
        docker_cmd("cp", f"{registry_name}:{CONFIG_DIR}/{CA_FILE}", CA_FILE),
        docker_cmd("cp", CA_FILE, f"{name}:{certs_dir(host)}/{CA_FILE}"),
        docker_cmd("exec", "-i", name, "docker", "login", host, "-u", username,
                   "--password-stdin", stdin="labkit registry password"),
        docker_cmd("exec", name, "docker", "image", "ls", "--all"),
        docker_cmd("exec", name, "docker", "pull", reference),
        docker_cmd("exec", name, "docker", "run", "-d", "--name", APP_NAME, reference),
        docker_cmd("exec", name, "docker", "exec", APP_NAME, "python", "-c", FETCH),
        docker_cmd("rm", "-f", "-v", name),
    ]


# --------------------------------------------------------------------------- parsing


def blobs_sent(log: str, client_ip: str) -> dict[str, int]:
    """Bytes the registry sent to ``client_ip`` per blob digest (GETs answered 200 or 206),
    read from its access log."""
    sent: dict[str, int] = {}
    for line in log.splitlines():
        m = ACCESS_LINE.match(line.strip())
        if not m or m["client"] != client_ip or m["method"] != "GET" \
                or m["status"] not in ("200", "206") or m["bytes"] == "-":
            continue
        sent[m["digest"]] = sent.get(m["digest"], 0) + int(m["bytes"])
    return sent


def confined(run_output: str) -> str:
    """Why the second engine could not start a container, when its own engine confines it
    (cgroups it may not write); empty for any other failure."""
    if not CONFINED.search(run_output):
        return ""
    reason = next((line.strip() for line in run_output.splitlines() if CONFINED.search(line)),
                  run_output.strip())
    return ("the second engine pulled the image but could not run it: this engine keeps "
            "cgroups read-only to the containers it runs (a rootless engine, such as a "
            f"classroom's, does), so an engine inside cannot start containers ({reason}). "
            "Run the image on a machine of your own to see it answer.")


def pull_statuses(text: str) -> dict[str, str]:
    """What ``docker pull`` printed last for each layer (short ID → downloaded / already
    here), from its plain output."""
    final: dict[str, str] = {}
    for line in text.splitlines():
        m = PULL_LINE.match(line.strip())
        if m and m["status"] in FINAL_STATUS and final.get(m["layer"]) != "downloaded":
            final[m["layer"]] = FINAL_STATUS[m["status"]]
    return final


def layer_rows(diff_ids: list[str], manifest_layers: list[dict[str, Any]],
               before: set[str], sent: dict[str, int],
               said: dict[str, str]) -> pd.DataFrame:
    """One row per layer: diff ID, blob and size (the manifest's, in the same order), whether
    the second engine had it before, bytes the registry sent for it, what the pull said."""
    import pandas as pd

    rows = []
    for diff_id, blob in zip(diff_ids, manifest_layers, strict=False):
        digest = str(blob["digest"])
        short = digest.split(":")[-1][:12]
        rows.append({"layer": diff_id.split(":")[-1][:12], "blob": short,
                     "size": int(blob["size"]), "here_before": diff_id in before,
                     "sent_by_registry": sent.get(digest, 0), "pull_said": said.get(short, "")})
    return pd.DataFrame(rows, columns=LAYER_COLUMNS)


def _epoch(timestamp: str) -> int:
    """Whole seconds since 1970 of an engine timestamp (``2026-01-02T03:04:05.123Z``)."""
    return calendar.timegm(time.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S"))


# --------------------------------------------------------------------------- the engine


def _in(container: Any, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run a command inside the second engine's container: exit code and output."""
    code, out = container.exec_run(list(args), environment=env)
    return int(code or 0), out.decode("utf-8", "replace")


def _remove_container(cli: docker.DockerClient, name: str) -> None:
    with suppress(NotFound):
        cli.containers.get(name).remove(force=True, v=True)


def registry_network(registry_container: Any) -> str:
    """The registry container's network (its first one with an address)."""
    registry_container.reload()
    networks = registry_container.attrs["NetworkSettings"].get("Networks") or {}
    for name, endpoint in sorted(networks.items()):
        if endpoint.get("IPAddress"):
            return str(name)
    raise RegistryError(f"The registry {registry_container.name} has no network address.",
                        "Re-create it: `labkit registry start`.")


def _start(cli: docker.DockerClient, network: str, linked: dict[str, str]
           ) -> tuple[Any, dict[str, Any]]:
    """Start the second engine: privileged, else with every capability the engine grants.
    :class:`NestedEngineRefused` when the engine refuses both."""
    name = engine_name()
    _remove_container(cli, name)  # a leftover of an interrupted run: start empty
    refusals = []
    for options in (PRIVILEGED, CAPABILITIES, {**CAPABILITIES, "cap_drop": []}):
        try:
            return _create(cli, name, options, network, linked), options
        except APIError as exc:
            refusals.append(str(exc.explanation or exc))
            _remove_container(cli, name)
    raise NestedEngineRefused(
        f"This engine cannot run a second engine: it refused a privileged container "
        f"({refusals[0]}) and one with every capability ({refusals[-1]}).", CANNOT_HINT)


def _create(cli: docker.DockerClient, name: str, options: dict[str, Any], network: str,
            linked: dict[str, str]) -> Any:
    """Create and start the second engine's container on ``network``, with ``options`` and
    the ``linked`` containers (``--link``)."""
    kwargs = dict(options)
    security = kwargs.pop("security_opt", [])
    config = cli.api.create_host_config(
        network_mode=network, links=linked or None,
        security_opt=[s for s in security if s != UNCONFINED_PATHS] or None, **kwargs)
    if UNCONFINED_PATHS in security:
        config["MaskedPaths"], config["ReadonlyPaths"] = [], []
    created = cli.api.create_container(DIND_IMAGE, name=name, labels=settings().labels(ROLE),
                                       host_config=config)
    cli.api.start(created["Id"])
    return cli.containers.get(created["Id"])


def _wait_ready(container: Any) -> str:
    """Wait until the engine inside answers; its version. :class:`NestedEngineRefused` when
    its container stops."""
    def ready() -> str:
        code, out = _in(container, "docker", "version", "--format", "{{.Server.Version}}")
        if code == 0 and out.strip():
            return out.strip()
        container.reload()
        if container.status != "running":
            logs = container.logs(tail=15).decode("utf-8", "replace").strip()
            raise NestedEngineRefused(
                f"This engine cannot run a second engine: the engine inside stopped "
                f"(status {container.status}).\n{logs}", CANNOT_HINT)
        return ""
    try:
        return engine.wait_until(ready, START_TIMEOUT, interval=0.2,
                                 message="the second engine to answer")
    except TimeoutError as exc:
        logs = container.logs(tail=15).decode("utf-8", "replace").strip()
        raise NestedEngineRefused(f"{exc}\n{logs}", CANNOT_HINT) from None


def _store(container: Any) -> tuple[list[str], set[str]]:
    """The second engine's images and the diff IDs of every layer it holds."""
    code, out = _in(container, "docker", "image", "ls", "--all", "--quiet", "--no-trunc")
    if code:
        raise RegistryError(f"The second engine did not list its images: {out.strip()}")
    ids = sorted(set(out.split()))
    layers: set[str] = set()
    if ids:
        code, out = _in(container, "docker", "image", "inspect", "--format",
                        "{{json .RootFS.Layers}}", *ids)
        for line in out.splitlines():
            if line.strip():
                layers.update(json.loads(line) or [])
    return ids, layers


def _engine_facts(container: Any) -> tuple[str, str]:
    code, out = _in(container, "docker", "info", "--format",
                    "{{.ServerVersion}}|{{.Driver}}|{{json .DriverStatus}}")
    version, driver, status = (out.strip().split("|", 2) + ["", "", ""])[:3]
    store = "containerd" if "io.containerd.snapshotter" in status else driver
    return version, f"{store} image store" if store == "containerd" else f"{driver} store"


@contextmanager
def _second_engine(cli: docker.DockerClient, registry_container: Any, network: str
                   ) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The second engine, started on the registry's network; removed with its volume,
    whatever happens."""
    try:
        container, options = _start(cli, network, links(network, registry_container.name))
        yield container, options
    finally:
        _remove_container(cli, engine_name())


def leftovers(client: docker.DockerClient | None = None) -> list[str]:
    """What of the second engine is still on the learner's engine (its container): empty
    after :func:`pull_elsewhere`."""
    cli = client or engine.client()
    name = engine_name()
    return [f"container {c.name}" for c in cli.containers.list(all=True, filters={"name": name})
            if c.name == name]


def _registry_container(cli: docker.DockerClient, reg: Registry) -> Any:
    if not reg.local or not reg.container_id:
        raise RegistryError(
            f"The second engine pulls from the course's own registry, not {reg.address}.",
            "Unset LABKIT_REGISTRY to use the local registry (`labkit registry start`).")
    return cli.containers.get(reg.container_id)


@boundary("pull the image into a second engine")
def pull_elsewhere(reference: str, registry: Registry | str | None = None,
                   client: docker.DockerClient | None = None, show: bool = True,
                   observer: StepObserver | None = None) -> ElsewhereResult:
    """Pull ``reference`` (pushed to the local registry) into a second, empty engine, run it
    there and ask the app for its page; the second engine is removed at the end.

    ``show`` reports each step live in a notebook; ``observer`` is told each step too.
    Raises :class:`NestedEngineRefused` (with the commands it would have run) when this
    engine cannot run an engine inside a container, :class:`RegistryError` when the second
    engine cannot log in or pull.
    """
    cli = client or engine.client()
    reg = resolve_registry(registry, client)
    registry_container = _registry_container(cli, reg)
    repo, tag = parse_repository_tag(str(reference))
    tag = tag or "latest"
    path = repository_path(reg, repo)
    host = f"{registry_container.name}:{REGISTRY_PORT}"
    there = f"{host}/{path}:{tag}"
    network = registry_network(registry_container)
    try:
        cli.images.get(DIND_IMAGE)
    except docker.errors.ImageNotFound:
        raise ImageMissing(f"The engine image {DIND_IMAGE} is not on this engine.",
                           "Run `labkit prepare` to make every course image present.") from None
    observers = step_observers(f"{there} on a second engine", show, observer)
    steps: list[str] = []

    def step(text: str) -> None:
        steps.append(text)
        for seen in observers:
            seen.step(text)

    seconds: dict[str, float] = {}
    try:
        step(f"starting a second engine ({DIND_IMAGE}) as the container {engine_name()}")
        started = time.perf_counter()
        try:
            with _second_engine(cli, registry_container, network) as (box, options):
                version = _wait_ready(box)
                seconds["start"] = time.perf_counter() - started
                result = _inside(cli, box, reg, registry_container, host, path, tag, there,
                                 version, step, seconds, network)
                result.flags = " ".join(run_flags(options))
                result.commands = tuple(plan(there, registry_container.name, reg.username,
                                             network, options))
        except NestedEngineRefused as exc:
            raise NestedEngineRefused(exc.message, exc.hint, plan="\n".join(
                f"$ {c}" for c in plan(there, registry_container.name, reg.username,
                                       network))) from None
        step("the second engine and its volume are removed")
        result.removed = not leftovers(cli)
        result.steps = steps
        return result
    finally:
        for seen in observers:
            seen.close()


def _inside(cli: docker.DockerClient, box: Any, reg: Registry, registry_container: Any,
            host: str, path: str, tag: str, there: str, version: str,
            step: Callable[[str], None], seconds: dict[str, float], network: str
            ) -> ElsewhereResult:
    """Trust, log in, pull, run and ask, inside the second engine ``box``."""
    ca = read_config_file(registry_container, f"{CONFIG_DIR}/{CA_FILE}")
    if not ca:
        raise RegistryError(f"The registry {registry_container.name} has no CA file.",
                            "Re-create it: `labkit registry start`.")
    box.put_archive("/", config_tar({f"{certs_dir(host).lstrip('/')}/{CA_FILE}": ca}))
    user, password = credentials(reg)
    step(f"logging in to {host} from the second engine (the password on stdin)")
    code, out = _in(box, "sh", "-c",
                    'printf %s "$REGISTRY_PASSWORD" | docker login "$1" -u "$2" --password-stdin',
                    "sh", host, user, env={"REGISTRY_PASSWORD": password})
    if code:
        raise RegistryError(f"The second engine could not log in to {host}: {out.strip()}",
                            "`labkit doctor` checks the registry; `labkit registry start` "
                            "re-creates it with a certificate for its name.")
    images_before, layers_before = _store(box)
    box.reload()
    ip = box.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
    since = _epoch(box.attrs["State"]["StartedAt"]) - 1
    step(f"pulling {there} into the second engine")
    started = time.perf_counter()
    code, pulled = _in(box, "docker", "pull", there)
    seconds["pull"] = time.perf_counter() - started
    if code:
        raise RegistryError(f"The second engine could not pull {there}: {pulled.strip()}",
                            "Push the image first (step 4), then pull it elsewhere.")
    code, out = _in(box, "docker", "image", "inspect", "--format", "{{json .}}", there)
    image = json.loads(out)
    diff_ids = list(image["RootFS"]["Layers"])
    digests = [d for d in image.get("RepoDigests") or [] if "@" in d]
    log = registry_container.logs(since=since, stdout=True, stderr=True)
    sent = blobs_sent(log.decode("utf-8", "replace"), ip)
    info = registry_manifest(path, tag, reg, cli)
    rows = layer_rows(diff_ids, info["layers"], layers_before, sent, pull_statuses(pulled))
    engine_version, store = _engine_facts(box)
    step(f"running it in the second engine and asking {APP_URL} from inside its container")
    started = time.perf_counter()
    answer, not_run = _run_and_ask(box, there)
    seconds["run and ask"] = time.perf_counter() - started
    return ElsewhereResult(
        reference=there, engine_version=engine_version or version, image_store=store,
        platform=f"{image.get('Os', '?')}/{image.get('Architecture', '?')}",
        images_before=len(images_before), layers=rows,
        repo_digest=digests[0].split("@", 1)[1] if digests else "",
        answer=answer, seconds=seconds, commands=(), flags="",
        registry_digest=str(info.get("digest") or ""), not_run=not_run)


def _run_and_ask(box: Any, there: str) -> tuple[str, str]:
    """Run ``there`` in the second engine and ask the app for its page: ``(answer, "")``, or
    ``("", why)`` when the second engine's own engine lets it start no container."""
    code, out = _in(box, "docker", "run", "-d", "--name", APP_NAME, there)
    if code:
        why = confined(out)
        if why:
            return "", why
        raise RegistryError(f"The second engine could not run {there}: {out.strip()}")
    code, answer = _in(box, "docker", "exec", APP_NAME, "python", "-c", FETCH_RETRYING)
    if code:
        _, logs = _in(box, "docker", "logs", "--tail", "20", APP_NAME)
        raise RegistryError(f"The app did not answer in the second engine: {answer.strip()}\n"
                            f"{logs.strip()}")
    return answer.strip(), ""
