"""The registry: a local ``registry:2`` container with htpasswd auth, login, tag, push, queries.

The local registry runs on the engine (which may be remote: Docker-in-Docker in CI), so
nothing is bind-mounted from this machine: its config and htpasswd file are copied into the
container before it starts. The engine reaches it as ``localhost:PORT`` (an insecure-allowed
address, plain HTTP); this process queries its HTTP API at ``engine.publish_host()``.
Another registry (e.g. Docker Hub) is used instead when ``LABKIT_REGISTRY`` names it.
"""

from __future__ import annotations

import io
import re
import tarfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import bcrypt
import docker
import pandas as pd
import requests
from docker.auth import INDEX_NAME, INDEX_URL, resolve_index_name
from docker.errors import APIError, ImageNotFound, NotFound
from docker.utils import parse_repository_tag

from . import engine, state
from .commands import DockerCommand
from .commands import docker as docker_cmd
from .config import REGISTRY_IMAGE, settings
from .containers import http_session
from .errors import ImageMissing, RegistryError
from .images import get_image
from .wait import wait_until

REGISTRY_PORT = "5000/tcp"
CONFIG_DIR = "/etc/docker/registry"
DATA_DIR = "/var/lib/registry"
REALM = "labkit-registry"
BCRYPT_ROUNDS = 5  # what `htpasswd -B` uses; the registry checks the hash on every request
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
#: What a tag may point to besides one image: a list of per-platform manifests. The
#: containerd image store (Docker 29, Docker Desktop) can push one.
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, MANIFEST_LIST, OCI_MANIFEST, MANIFEST_V2))
START_TIMEOUT = 30.0

START_HINT = "Start it with `labkit registry start` (or `labkit.registry.start_registry()`)."
PASSWORD_HINT = (
    "Use the password labkit keeps for you (`labkit.registry.login()` reads it), or set "
    "LABKIT_REGISTRY_PASSWORD before starting Jupyter."
)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Registry:
    """Where images are pushed. ``address`` is how the engine names it (``localhost:PORT``);
    ``api_url`` is where this process queries its HTTP API (None: not queryable)."""

    name: str
    address: str
    api_url: str | None
    username: str
    container_id: str | None = None
    command: DockerCommand | None = None
    steps: tuple[DockerCommand, ...] = ()
    local: bool = True

    @property
    def is_docker_hub(self) -> bool:
        """True for Docker Hub, whose repositories are named ``<username>/<name>``."""
        return resolve_index_name(self.address) in (INDEX_NAME, f"registry-1.{INDEX_NAME}")

    @property
    def login_address(self) -> str:
        """The server address given to the engine's login endpoint."""
        return INDEX_URL if self.is_docker_hub else self.address

    def repository(self, name: str) -> str:
        """``<registry>/<username>/<name>`` (``<username>/<name>`` on Docker Hub)."""
        prefix = "" if self.is_docker_hub else f"{self.address}/"
        return f"{prefix}{self.username}/{name}"

    def _repr_html_(self) -> str:
        from .display import card_html

        facts = {"address (for the engine)": self.address, "user": self.username}
        if self.container_id:
            facts["container"] = f"{self.name} ({self.container_id[:12]})"
        links = {"HTTP API": f"{self.api_url}/v2/"} if self.api_url else None
        return card_html(f"registry {self.name}", facts, self.command, links=links)


@dataclass(frozen=True)
class LoginResult:
    """What the engine said to a login. ``command`` pipes the password on stdin."""

    registry: str
    username: str
    status: str
    command: DockerCommand

    def _repr_html_(self) -> str:
        from .display import card_html

        return card_html(self.status, {"registry": self.registry, "user": self.username},
                         self.command)


class TaggedName(str):
    """A ``repository:tag`` string that also carries the ``docker tag`` command that made it."""

    repository: str
    tag: str
    command: DockerCommand

    def __new__(cls, repository: str, tag: str, command: DockerCommand) -> TaggedName:
        obj = super().__new__(cls, f"{repository}:{tag}")
        obj.repository, obj.tag, obj.command = repository, tag, command
        return obj

    def _repr_html_(self) -> str:
        from .display import card_html

        return card_html(str(self), {"repository": self.repository, "tag": self.tag},
                         self.command)


#: bytes_pushed: the last byte count the engine reported sending (None: not reported);
#: bytes_total: the layer size the engine announced for the upload.
LAYER_COLUMNS = ["layer", "status", "bytes_pushed", "bytes_total"]


@dataclass
class PushResult:
    """A finished push: the manifest digest and what happened to each layer."""

    repository: str
    tag: str
    digest: str | None
    size: int | None
    layers: pd.DataFrame
    seconds: float
    command: DockerCommand

    @property
    def counts(self) -> dict[str, int]:
        """How many layers were pushed, already existed, or were mounted from another repo."""
        got = self.layers["status"].value_counts() if len(self.layers) else {}
        return {k: int(got.get(k, 0)) for k in ("pushed", "exists", "mounted")}

    def _repr_html_(self) -> str:
        from .display_registry import push_html

        return push_html(self)


# --------------------------------------------------------------------------- push stream


@dataclass
class LayerProgress:
    """One layer as the push stream reports it."""

    layer: str
    phase: str = "preparing"  # preparing | waiting | pushing | pushed | exists | mounted
    current: int | None = None
    total: int | None = None
    mounted_from: str | None = None


FINAL_PHASES = {"Pushed": "pushed", "Layer already exists": "exists"}
_DIGEST_LINE = re.compile(r"^(\S+): digest: (sha256:[0-9a-f]{64}) size: (\d+)$")


@dataclass
class PushStream:
    """A pure parser of the engine's push stream (``decode=True`` chunks), fed chunk by chunk."""

    layers: dict[str, LayerProgress] = field(default_factory=dict)
    repository: str | None = None
    tag: str | None = None
    digest: str | None = None
    size: int | None = None
    error: str | None = None

    def feed(self, chunk: dict[str, Any]) -> LayerProgress | None:
        """Take one chunk; return the layer it changed, if any. Errors are kept, not raised."""
        if "errorDetail" in chunk or "error" in chunk:
            detail = chunk.get("errorDetail") or {}
            self.error = str(detail.get("message") or chunk.get("error") or "unknown error")
            return None
        aux = chunk.get("aux")
        if isinstance(aux, dict) and "Digest" in aux:
            self.tag, self.digest = aux.get("Tag"), aux.get("Digest")
            self.size = int(aux["Size"]) if aux.get("Size") is not None else None
            return None
        status = str(chunk.get("status") or "")
        layer_id = chunk.get("id")
        if not layer_id:
            if status.startswith("The push refers to repository ["):
                self.repository = status.split("[", 1)[1].rstrip("]")
            elif self.digest is None and (found := _DIGEST_LINE.match(status)):
                # The containerd image store sends no aux record, only this line.
                self.tag, self.digest, self.size = found[1], found[2], int(found[3])
            return None
        layer = self.layers.setdefault(layer_id, LayerProgress(layer_id))
        detail = chunk.get("progressDetail") or {}
        if status in FINAL_PHASES:
            layer.phase = FINAL_PHASES[status]
        elif status.startswith("Mounted from "):
            layer.phase, layer.mounted_from = "mounted", status.removeprefix("Mounted from ")
        elif status == "Pushing":
            layer.phase = "pushing"
            if detail.get("current") is not None:
                layer.current = int(detail["current"])
            if detail.get("total"):
                layer.total = int(detail["total"])
        elif status in ("Preparing", "Waiting"):
            layer.phase = status.lower()
        return layer

    def feed_all(self, chunks: Iterable[dict[str, Any]]) -> PushStream:
        """Feed every chunk (recorded streams in tests)."""
        for chunk in chunks:
            self.feed(chunk)
        return self

    @property
    def done(self) -> int:
        """Layers in a final state."""
        return sum(1 for x in self.layers.values() if x.phase in ("pushed", "exists", "mounted"))

    def layers_frame(self) -> pd.DataFrame:
        """One row per layer, in the order the engine listed them (top layer first)."""
        rows = [
            {
                "layer": x.layer,
                "status": x.phase,
                "bytes_pushed": x.current if x.phase in ("pushed", "pushing") else 0,
                "bytes_total": x.total,
            }
            for x in self.layers.values()
        ]
        frame = pd.DataFrame(rows, columns=LAYER_COLUMNS)
        for col in ("bytes_pushed", "bytes_total"):
            frame[col] = frame[col].astype("Int64")
        return frame


# --------------------------------------------------------------------------- helpers


def _client(client: docker.DockerClient | None) -> docker.DockerClient:
    return client or engine.client()


def _session(registry: Registry) -> requests.Session:
    """An HTTP session for the registry API: basic auth, no proxy or CA from the environment."""
    session = http_session()
    session.auth = credentials(registry)
    return session


def htpasswd_line(username: str, password: str, rounds: int = BCRYPT_ROUNDS) -> str:
    """One htpasswd entry with a bcrypt hash, as ``htpasswd -Bbn`` writes it."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()
    return f"{username}:{hashed}\n"


def config_yaml(realm: str = REALM) -> str:
    """The registry's config.yml: filesystem storage, deletes allowed, htpasswd auth."""
    return (
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {DATA_DIR}\n  delete:\n    enabled: true\n"
        "http:\n  addr: :5000\n"
        f"auth:\n  htpasswd:\n    realm: {realm}\n    path: {CONFIG_DIR}/htpasswd\n"
    )


def _tar(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _read_file(container: Any, path: str) -> str | None:
    try:
        stream, _ = container.get_archive(path)
    except NotFound:
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        fh = tar.extractfile(member) if member else None
        return fh.read().decode() if fh else None


def _htpasswd_matches(text: str | None, username: str, password: str) -> bool:
    for line in (text or "").splitlines():
        user, _, hashed = line.partition(":")
        if user == username and hashed:
            try:
                return bcrypt.checkpw(password.encode(), hashed.encode())
            except ValueError:
                return False
    return False


def _host_port(container: Any) -> str | None:
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(REGISTRY_PORT)
    return bindings[0]["HostPort"] if bindings else None


def volume_name() -> str:
    """The named volume holding the local registry's data."""
    return settings().container_name("registry-data")


def run_command(bind: str | None = None) -> DockerCommand:
    """The `docker run` line equivalent to the local registry (auth files copied in after)."""
    s = settings()
    return docker_cmd(
        "run", "-d", "--name", s.container_name("registry"),
        "-p", f"{bind or engine.bind_ip()}::5000",
        "-v", f"{volume_name()}:{DATA_DIR}", REGISTRY_IMAGE,
    )


def _steps(bind: str) -> tuple[DockerCommand, ...]:
    s = settings()
    name = s.container_name("registry")
    labels: list[str] = []
    for key, value in s.labels("registry").items():
        labels += ["--label", f"{key}={value}"]
    return (
        docker_cmd("volume", "create", *labels, volume_name()),
        docker_cmd("create", "--name", name, *labels, "-p", f"{bind}::5000",
                   "-v", f"{volume_name()}:{DATA_DIR}", REGISTRY_IMAGE),
        docker_cmd("cp", "config.yml", f"{name}:{CONFIG_DIR}/config.yml"),
        docker_cmd("cp", "htpasswd", f"{name}:{CONFIG_DIR}/htpasswd"),
        docker_cmd("start", name),
    )


def _describe(container: Any) -> Registry:
    port = _host_port(container)
    if port is None:
        raise RegistryError(
            f"The registry container {container.name} publishes no port (status "
            f"{container.status}).", START_HINT,
        )
    bind = engine.bind_ip()
    return Registry(
        name=container.name,
        address=f"localhost:{port}",
        api_url=f"http://{engine.publish_host()}:{port}",
        username=settings().user,
        container_id=container.id,
        command=run_command(bind),
        steps=_steps(bind),
        local=True,
    )


def _api_status(api_url: str, timeout: float = 2.0) -> int | None:
    try:
        with http_session() as session:
            return session.get(f"{api_url}/v2/", timeout=timeout).status_code
    except requests.RequestException:
        return None


def _ensure_image(cli: docker.DockerClient) -> None:
    try:
        cli.images.get(REGISTRY_IMAGE)
    except ImageNotFound:
        if settings().offline:
            raise ImageMissing(
                f"The registry image {REGISTRY_IMAGE} is not on the engine and pulling is "
                "disabled.", "Run `labkit prepare` to make every course image present.",
            ) from None
        cli.images.pull(REGISTRY_IMAGE)


def _is_ours(container: Any) -> bool:
    labels = container.labels or {}
    return all(labels.get(k) == v for k, v in settings().labels("registry").items())


# --------------------------------------------------------------------------- local registry


def start_registry(client: docker.DockerClient | None = None) -> Registry:
    """Start (or reuse) this namespace's local registry with htpasswd auth; wait for it.

    Idempotent: a running registry whose htpasswd matches the password is reused. A stopped
    one, or one whose password changed, is re-created on the same data volume and, when that
    port is still free, the same host port (a restarted container would get a new port, and
    every ``localhost:PORT/...`` tag would go stale). Returns once ``GET /v2/`` answers 401.
    """
    cli = _client(client)
    s = settings()
    name = s.container_name("registry")
    password = state.registry_password()
    try:
        container = cli.containers.get(name)
    except NotFound:
        container = None
    if container is not None and not _is_ours(container):
        raise RegistryError(
            f"A container named {name} exists but labkit did not create it.",
            f"Remove it (`docker rm -f {name}`) or set LABKIT_USER to another name.",
        )
    if container is not None and not (
        container.status == "running"
        and _htpasswd_matches(_read_file(container, f"{CONFIG_DIR}/htpasswd"), s.user, password)
    ):
        container.remove(force=True)
        container = None
    if container is None:
        container = _create_and_start(cli, password, _remembered_port())
    container.reload()
    registry = _describe(container)
    _remember_port(registry.address.rsplit(":", 1)[1])
    try:
        wait_until(lambda: _api_status(registry.api_url or "") == 401, START_TIMEOUT)
    except TimeoutError:
        container.reload()
        logs = container.logs(tail=20).decode(errors="replace")
        raise RegistryError(
            f"The registry {name} did not answer 401 at {registry.api_url}/v2/ within "
            f"{START_TIMEOUT:.0f} s (status {container.status}).\n{logs}",
            "Check `docker logs " + name + "`; `labkit doctor` shows where ports are reachable.",
        ) from None
    return registry


def _port_key() -> str:
    return f"registry_port@{engine.describe_host()}"


def _remembered_port() -> str | None:
    value = state.load().get(_port_key())
    return str(value) if value else None


def _remember_port(port: str) -> None:
    data = state.load()
    if data.get(_port_key()) != port:
        data[_port_key()] = port
        state.save(data)


def _create_and_start(cli: docker.DockerClient, password: str, port: str | None) -> Any:
    container = _create(cli, password, port)
    try:
        container.start()
    except APIError:
        if port is None:
            raise
        container.remove(force=True)  # the remembered port is taken: let the engine choose
        container = _create(cli, password, None)
        container.start()
    return container


def _create(cli: docker.DockerClient, password: str, port: str | None) -> Any:
    s = settings()
    _ensure_image(cli)
    labels = s.labels("registry")
    cli.volumes.create(name=volume_name(), labels=labels)
    try:
        container = cli.containers.create(
            REGISTRY_IMAGE,
            name=s.container_name("registry"),
            labels=labels,
            ports={REGISTRY_PORT: (engine.bind_ip(), int(port) if port else None)},
            volumes={volume_name(): {"bind": DATA_DIR, "mode": "rw"}},
        )
    except APIError as exc:
        if exc.status_code == 409:  # created meanwhile by another process
            return cli.containers.get(s.container_name("registry"))
        raise
    container.put_archive(CONFIG_DIR, _tar({
        "config.yml": config_yaml(),
        "htpasswd": htpasswd_line(s.user, password),
    }))
    return container


def find_registry(client: docker.DockerClient | None = None) -> Registry | None:
    """This namespace's local registry if it is running, without starting or checking it."""
    cli = _client(client)
    try:
        container = cli.containers.get(settings().container_name("registry"))
    except NotFound:
        return None
    if container.status != "running" or not _is_ours(container):
        return None
    return _describe(container)


def stop_registry(remove: bool = False, client: docker.DockerClient | None = None) -> bool:
    """Stop the local registry (and remove the container, keeping its data volume, if asked).

    Returns True when there was a registry container. Safe to repeat.
    """
    cli = _client(client)
    try:
        container = cli.containers.get(settings().container_name("registry"))
    except NotFound:
        return False
    if not _is_ours(container):
        return False
    try:
        if remove:
            container.remove(force=True)
        else:
            container.stop(timeout=2)
    except NotFound:
        pass
    return True


def configured_registry() -> Registry | None:
    """The registry ``LABKIT_REGISTRY`` names (e.g. Docker Hub), or None for the local one."""
    host = settings().registry
    if not host:
        return None
    host = host.removeprefix("https://").removeprefix("http://").rstrip("/")
    return Registry(name=host, address=resolve_index_name(host), api_url=None,
                    username=settings().user, local=False)


def current_registry(client: docker.DockerClient | None = None) -> Registry:
    """The registry in use: the configured one, else the local one (started if needed)."""
    return configured_registry() or find_registry(client) or start_registry(client)


def _resolve(registry: Registry | str | None, client: docker.DockerClient | None) -> Registry:
    if isinstance(registry, Registry):
        return registry
    if isinstance(registry, str):
        local = find_registry(client) if not settings().registry else None
        if local and registry == local.address:
            return local
        return Registry(name=registry, address=resolve_index_name(registry), api_url=None,
                        username=settings().user, local=False)
    return current_registry(client)


def credentials(registry: Registry) -> tuple[str, str]:
    """(user, password) for a registry: the stored one for the local registry, else
    ``LABKIT_REGISTRY_PASSWORD`` (an access token for Docker Hub)."""
    import os

    if registry.local:
        return registry.username, state.registry_password()
    token = os.environ.get(state.PASSWORD_ENV)
    if not token:
        raise RegistryError(
            f"No password for {registry.address}.",
            f"Set {state.PASSWORD_ENV} (an access token) before starting Jupyter; labkit "
            "never asks for it in a notebook cell.",
        )
    return registry.username, token


def registry_status(client: docker.DockerClient | None = None) -> dict[str, Any]:
    """What `labkit doctor` shows: is the registry running, where, is auth on."""
    configured = configured_registry()
    if configured:
        return {"registry": configured.address, "local": False, "running": None,
                "address": configured.address, "api_url": None, "auth": None,
                "username": configured.username,
                "password": state.password_source() if state.password_source() ==
                "environment" else "missing"}
    cli = _client(client)
    name = settings().container_name("registry")
    out: dict[str, Any] = {"registry": name, "local": True, "running": False, "status": "absent",
                           "address": None, "api_url": None, "auth": None,
                           "username": settings().user, "password": state.password_source()}
    try:
        cli.images.get(REGISTRY_IMAGE)
        out["image_present"] = True
    except ImageNotFound:
        out["image_present"] = False
    try:
        container = cli.containers.get(name)
    except NotFound:
        return out
    out["status"] = container.status
    out["running"] = container.status == "running"
    if out["running"] and _host_port(container):
        reg = _describe(container)
        code = _api_status(reg.api_url or "")
        out.update(address=reg.address, api_url=reg.api_url,
                   auth=code == 401 if code is not None else None)
    return out


# --------------------------------------------------------------------------- login, tag, push


def login(registry: Registry | str | None = None,
          client: docker.DockerClient | None = None) -> LoginResult:
    """Log the engine in to the registry (always asking the engine: ``reauth=True``)."""
    cli = _client(client)
    reg = _resolve(registry, client)
    user, password = credentials(reg)
    command = docker_cmd("login", reg.address, "-u", user, "--password-stdin",
                         stdin="<your password>")
    try:
        answer = cli.login(username=user, password=password, registry=reg.login_address,
                           reauth=True)
    except APIError as exc:
        text = str(exc.explanation or exc)
        if "401" in text or "unauthorized" in text.lower():
            raise RegistryError(
                f"Login to {reg.address} refused: wrong user name or password.", PASSWORD_HINT,
            ) from None
        raise RegistryError(f"Login to {reg.address} failed: {text}", START_HINT) from None
    return LoginResult(registry=reg.address, username=user,
                       status=str(answer.get("Status", "Login Succeeded")), command=command)


def repository_for(name: str = "python-hello-world", registry: Registry | str | None = None,
                   client: docker.DockerClient | None = None) -> str:
    """The repository name ``<registry>/<username>/<name>`` for this registry."""
    return _resolve(registry, client).repository(name)


def tag_for_registry(image: Any, name: str = "python-hello-world", tag: str = "latest",
                     registry: Registry | str | None = None,
                     client: docker.DockerClient | None = None) -> TaggedName:
    """Tag ``image`` (a name, id or docker-py Image) as ``<registry>/<username>/<name>:tag``."""
    cli = _client(client)
    repository = repository_for(name, registry, client)
    source = image if isinstance(image, str) else image.id
    obj = get_image(source, client=cli)
    obj.tag(repository, tag)
    shown = image if isinstance(image, str) else (obj.tags[0] if obj.tags else obj.short_id)
    return TaggedName(repository, tag, docker_cmd("tag", shown, f"{repository}:{tag}"))


def push(repository: str, tag: str = "latest", registry: Registry | str | None = None,
         client: docker.DockerClient | None = None, show: bool = True,
         on_progress: Callable[[PushStream, LayerProgress | None], None] | None = None,
         ) -> PushResult:
    """Push ``repository:tag``; read the whole stream and raise RegistryError on a failure.

    ``show`` draws live progress in a notebook (the returned result renders as the layer
    table); ``on_progress`` is called after every chunk with the parser state.
    """
    cli = _client(client)
    repo, embedded_tag = parse_repository_tag(str(repository))
    tag = embedded_tag or tag
    reg = _resolve(registry, client)
    user, password = credentials(reg)
    command = docker_cmd("push", f"{repo}:{tag}")
    progress = None
    if show:
        from .display_registry import PushProgress

        progress = PushProgress(f"{repo}:{tag}")
    parser = PushStream()
    started = time.perf_counter()
    try:
        for chunk in cli.api.push(repo, tag=tag, stream=True, decode=True,
                                  auth_config={"username": user, "password": password}):
            layer = parser.feed(chunk)
            if progress is not None:
                progress.update(parser, layer)
            if on_progress is not None:
                on_progress(parser, layer)
    except APIError as exc:
        parser.error = str(exc.explanation or exc)
    seconds = time.perf_counter() - started
    if progress is not None:
        progress.close()
    if parser.error:
        raise RegistryError(f"Push of {repo}:{tag} failed: {parser.error}", _push_hint(parser))
    layers = parser.layers_frame()
    layers.attrs["command"] = command
    return PushResult(repository=repo, tag=tag, digest=parser.digest, size=parser.size,
                      layers=layers, seconds=seconds, command=command)


def _push_hint(parser: PushStream) -> str:
    text = (parser.error or "").lower()
    if "no basic auth" in text or "unauthorized" in text or "authentication required" in text:
        return "Log in first (`labkit.registry.login()`); " + PASSWORD_HINT
    if "does not exist" in text or "no such image" in text:
        return "Tag the image for the registry first (`labkit.registry.tag_for_registry(...)`)."
    if "connection refused" in text or "dial tcp" in text:
        return "The registry is not running: " + START_HINT
    return "Read the message above; `labkit doctor` checks the engine and the registry."


# --------------------------------------------------------------------------- HTTP API queries


def _api(registry: Registry | str | None, client: docker.DockerClient | None) -> Registry:
    reg = _resolve(registry, client)
    if not reg.api_url:
        raise RegistryError(
            f"labkit cannot list the contents of {reg.address}: only the local registry's "
            "HTTP API is queried.",
            "Look at the repository on the registry's web site, or unset LABKIT_REGISTRY to "
            "use the local registry.",
        )
    return reg


def _path(reg: Registry, repository: str) -> str:
    repo = parse_repository_tag(repository)[0]
    return repo.removeprefix(f"{reg.address}/")


def _get(reg: Registry, path: str, headers: dict[str, str] | None = None) -> requests.Response:
    with _session(reg) as session:
        try:
            resp = session.get(f"{reg.api_url}{path}", headers=headers or {}, timeout=10)
        except requests.RequestException as exc:
            raise RegistryError(f"The registry at {reg.api_url} does not answer "
                                f"({type(exc).__name__}).", START_HINT) from None
    if resp.status_code == 401:
        raise RegistryError(f"The registry at {reg.address} refused the credentials.",
                            PASSWORD_HINT)
    return resp


def catalog(registry: Registry | str | None = None,
            client: docker.DockerClient | None = None) -> list[str]:
    """The repositories in the registry (``GET /v2/_catalog``)."""
    reg = _api(registry, client)
    resp = _get(reg, "/v2/_catalog?n=1000")
    resp.raise_for_status()
    return sorted(resp.json().get("repositories") or [])


def tags(repository: str, registry: Registry | str | None = None,
         client: docker.DockerClient | None = None) -> list[str]:
    """The tags of one repository (``GET /v2/<name>/tags/list``); [] when it does not exist."""
    reg = _api(registry, client)
    resp = _get(reg, f"/v2/{_path(reg, repository)}/tags/list")
    if resp.status_code == 404:
        return []
    resp.raise_for_status()
    return sorted(resp.json().get("tags") or [])


def manifest(repository: str, tag: str = "latest", registry: Registry | str | None = None,
             client: docker.DockerClient | None = None) -> dict[str, Any]:
    """The image manifest: its digest, config digest, and layers with compressed sizes."""
    reg = _api(registry, client)
    url = f"/v2/{_path(reg, repository)}/manifests/"
    resp = _get(reg, url + tag, headers={"Accept": MANIFEST_ACCEPT})
    if resp.status_code == 404:
        raise RegistryError(f"{repository}:{tag} is not in the registry at {reg.address}.",
                            "Push it first (`labkit.registry.push(...)`).")
    resp.raise_for_status()
    body, digest = resp.json(), resp.headers.get("Docker-Content-Digest")
    entry = platform_manifest(body)
    if entry is None:
        return parse_manifest(body, digest)
    one = _get(reg, url + entry["digest"], headers={"Accept": MANIFEST_ACCEPT})
    one.raise_for_status()
    info = parse_manifest(one.json(), digest)
    info.update(index_media_type=body.get("mediaType"), manifest_digest=entry["digest"])
    return info


def platform_manifest(body: dict[str, Any], os_name: str = "linux") -> dict[str, Any] | None:
    """The image manifest an index or manifest list points to; None for a plain manifest.

    Entries for attestations (platform ``unknown/unknown``) are not images; among the rest
    the first for ``os_name`` is taken (the course builds for the engine's own platform).
    """
    if body.get("mediaType") not in (OCI_INDEX, MANIFEST_LIST) and "manifests" not in body:
        return None
    images = [m for m in body.get("manifests") or []
              if (m.get("platform") or {}).get("os", os_name) == os_name]
    if not images:
        raise RegistryError("The registry's index lists no image for this platform.",
                            "Push the image again from this engine.")
    return images[0]


def parse_manifest(body: dict[str, Any], digest: str | None = None) -> dict[str, Any]:
    """Shape an image manifest: media type, digest, config digest, layers (digest, size).

    ``digest`` is what the tag points to (what ``docker push`` reports); for an index it
    differs from ``manifest_digest``, the image manifest's own.
    """
    layers = [{"digest": x.get("digest"), "size": int(x.get("size", 0)),
               "media_type": x.get("mediaType")} for x in body.get("layers") or []]
    return {
        "media_type": body.get("mediaType"),
        "digest": digest,
        "manifest_digest": digest,
        "index_media_type": None,
        "config_digest": (body.get("config") or {}).get("digest"),
        "layers": layers,
        "total_size": sum(x["size"] for x in layers),
    }


def manifest_frame(info: dict[str, Any]) -> pd.DataFrame:
    """The manifest's layers as a DataFrame (digest, compressed size)."""
    return pd.DataFrame(info["layers"], columns=["digest", "size", "media_type"])
