"""A throwaway Docker-in-Docker engine for the tests: start | stop | status.

    python -m testbed.dind start|stop|status        (make dind, make dind-stop)
    with Dind.from_environ() as engine: ...          (from Python: stopped on exit)

start  Run a container from docker:dind on the current engine (TLS on :2376, client
       certificates bind-mounted from .cache/dind/<name>/certs), wait until it answers,
       load the course images into it, and write .cache/dind/env:
           DOCKER_HOST=tcp://<container IP>:2376
           DOCKER_TLS_VERIFY=1
           DOCKER_CERT_PATH=<repo>/.cache/dind/<name>/certs/client
           LABKIT_BIND_IP=0.0.0.0
           PATH=<repo>/.cache/dind/client/bin:<PATH>
           DOCKER_CONFIG=<repo>/.cache/dind/client/config
       (KEY=VALUE lines: `set -a; . .cache/dind/env; set +a`).
       The engine comes with its own docker CLI: the image's /usr/bin/docker and its CLI
       plugins (/usr/libexec/docker/cli-plugins/*: forky's docker-buildx) are copied out of
       the image into client/, first on PATH, with a fresh DOCKER_CONFIG (logins stay per
       engine). So 20.10 is driven by bookworm's 20.10 CLI without buildx (the classic
       builder, as a Debian 12 user has), 28.5 by forky's 28.5 CLI with buildx (BuildKit,
       as Docker CE, Docker Desktop and docker:dind users have).
       The container's own IP is used, not a published port: ports that containers
       publish inside DinD open on that address, and labkit builds URLs from DOCKER_HOST.
       LABKIT_BIND_IP=0.0.0.0 is the explicit opt-in labkit needs for that: without it a
       remote engine's ports listen on its 127.0.0.1 only, out of reach from here (the
       DinD engine is a remote one; its network is this machine's engine's bridge).
       Given LABKIT_DIND_HOST, e.g. a CI service, that engine is used: nothing is started,
       the images are still loaded, and this machine's own docker CLI drives it.
       LABKIT_DIND_CERT_PATH names its client certificates (ca.pem cert.pem key.pem); the
       env file then says DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH: TLS is always verified.
       Without them only a loopback address (tcp://127.0.0.1:2375) is accepted: plain TCP
       over a network is refused (registry passwords go to the engine with `docker login`).
       They are the DinD engine's own variables, so that the job's DOCKER_* ones stay
       those of the engine the job itself uses (TLS settings never reach the whole job).
stop   Remove the container we started (and its volumes), and any other container that
       carries this state directory's label (one an interrupted start left), and the
       engine's CLI copied into client/; nothing else.
status The env file, and whether the engine answers.

LABKIT_DIND_STATE=DIR keeps one engine per state directory (default .cache/dind).
LABKIT_ENGINE=SPEC (e.g. 28.5+containerd+api1.44, see testbed.engines) starts that
engine stand-in instead of docker:dind (LABKIT_DIND_IMAGE), building it first when
missing; start then checks that the engine is the one asked for (version, image store,
minimum API). LABKIT_DIND_FLAGS replaces the default run flags (e.g. --privileged where
the host allows every capability; the default works where CAP_SYS_RESOURCE is not
grantable).
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from urllib.parse import urlsplit

from testbed import engines
from testbed.engines import EngineSpec

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE = ROOT / ".cache" / "dind"
COURSE_IMAGES = ("python:3.11-slim-bookworm", "registry:2", "docker:dind")
#: systempaths=unconfined: Docker 28+ inside a container must write /proc/sys to start its
#: containers ("failed to disable IPv6 on container's interface" otherwise).
DEFAULT_FLAGS = ("--cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined "
                 "--security-opt apparmor=unconfined --security-opt systempaths=unconfined "
                 "-v /sys/fs/cgroup:/sys/fs/cgroup:rw")
ROLE = "dind-engine"
#: The role of the container created only to copy an engine image's docker CLI out of it.
CLIENT_ROLE = "dind-client-copy"
#: The label that names the state directory of the session that started a container.
STATE_LABEL = "org.labkit.dind-state"
#: The client's engine variables: replaced by the env file's when commanding the DinD engine.
CLIENT_VARIABLES = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS",
                    "DOCKER_CONTEXT")
#: Where an engine image keeps its docker CLI, and its CLI plugins (Debian's, then the
#: official docker:dind image's layout).
IMAGE_CLI_PATHS = ("/usr/bin/docker", "/usr/local/bin/docker")
IMAGE_PLUGIN_DIRS = ("/usr/libexec/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins")


#: A learner's own settings: dropped where a run must see the course's defaults.
LEARNER_VARIABLES = ("LABKIT_REGISTRY", "LABKIT_REGISTRY_PASSWORD", "LABKIT_BIND_IP",
                     "LABKIT_PUBLISH_HOST")


class DindError(RuntimeError):
    """The DinD engine could not be started, reached or checked (the message says why)."""


def say(message: str) -> None:
    """One line of progress, named after this tool."""
    print(f"dind: {message}", flush=True)


def read_env(path: Path) -> dict[str, str]:
    """The KEY=VALUE lines of an env file (blank lines and comments skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            if not sep:
                raise DindError(f"{path}: '{line}' is not KEY=VALUE.")
            values[key.strip()] = value
    return values


def write_env(path: Path, values: Mapping[str, str]) -> None:
    """Write ``values`` as KEY=VALUE lines, in order."""
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))


def is_loopback(url: str) -> bool:
    """True for tcp://localhost, 127.x.x.x or [::1], and for anything not tcp:// (sockets)."""
    if not url.startswith("tcp://"):
        return True
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def given_engine_env(host: str, cert_path: str | None) -> dict[str, str]:
    """The env file for an engine someone else started (LABKIT_DIND_HOST): TLS when its
    certificates are given, plain TCP on loopback only."""
    if not cert_path and not is_loopback(host):
        raise DindError(
            f"LABKIT_DIND_HOST={host} is reached over the network without TLS: give its client "
            "certificates as LABKIT_DIND_CERT_PATH and use its TLS port (docker:dind with "
            "DOCKER_TLS_CERTDIR=/certs: tcp://HOST:2376, certificates in /certs/client).")
    env = {"DOCKER_HOST": host}
    if cert_path:
        env |= {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": cert_path}
    if not is_loopback(host):
        env["LABKIT_BIND_IP"] = "0.0.0.0"
    return env


def started_engine_env(ip: str, certs: Path, spec: EngineSpec | None,
                       client: Path | None = None, path: str = "") -> dict[str, str]:
    """The env file for a DinD container this session started at ``ip``; with ``client``
    (the engine's own CLI, see :func:`copy_client`) its bin/ first on ``path`` and its
    config/ as DOCKER_CONFIG."""
    env = {"DOCKER_HOST": f"tcp://{ip}:2376", "DOCKER_TLS_VERIFY": "1",
           "DOCKER_CERT_PATH": f"{certs}/client",
           "LABKIT_BIND_IP": "0.0.0.0"}  # the opt-in: its ports must be reached from here
    if spec:
        env["LABKIT_ENGINE"] = spec.text
    if client:
        env["PATH"] = os.pathsep.join(p for p in (str(client / "bin"), path) if p)
        env["DOCKER_CONFIG"] = str(client / "config")
    return env


def engine_mismatch(spec: EngineSpec, version: str, min_api: str, driver_status: str) -> str | None:
    """Why the engine that answers is not the one ``spec`` asks for, or None when it is."""
    if not version.startswith(spec.version + "."):
        return f"Asked for Docker {spec.version}, the stand-in runs {version}."
    if spec.containerd != (engines.CONTAINERD_SNAPSHOTTER in driver_status):
        return f"The engine's image store is not the one asked for ({spec.text})."
    if spec.min_api and min_api != spec.min_api:
        return f"The engine's minimum API is {min_api}, not {spec.min_api}."
    return None


def _host_docker(*args: str) -> subprocess.CompletedProcess[str]:
    """The docker CLI against this machine's engine (the one the DinD container runs on)."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


def copy_client(image: str, client: Path, state: Path) -> str:
    """Copy ``image``'s own docker CLI to ``client``/bin/docker and its CLI plugins (if any)
    to ``client``/config/cli-plugins/, from a container created for it and removed after,
    also on failure; the CLI's version. DindError when the image has no docker CLI."""
    shutil.rmtree(client, ignore_errors=True)
    (client / "bin").mkdir(parents=True)
    (client / "config" / "cli-plugins").mkdir(parents=True)
    created = _host_docker("create", "--label", "org.labkit.managed=true", "--label",
                           f"org.labkit.role={CLIENT_ROLE}", "--label", f"{STATE_LABEL}={state}",
                           image)
    if created.returncode:
        raise DindError(f"docker create {image} failed: {created.stderr.strip()}")
    container = created.stdout.strip()
    try:
        for cli in IMAGE_CLI_PATHS:
            if _host_docker("cp", "-L", f"{container}:{cli}",
                            str(client / "bin" / "docker")).returncode == 0:
                break
        else:
            raise DindError(f"{image} has no docker CLI (looked for "
                            f"{', '.join(IMAGE_CLI_PATHS)}).")
        for plugins in IMAGE_PLUGIN_DIRS:  # absent on bookworm: no plugin at all
            if _host_docker("cp", "-L", f"{container}:{plugins}/.",
                            str(client / "config" / "cli-plugins")).returncode == 0:
                break
    finally:
        _host_docker("rm", "-f", "-v", container)  # -v: the image's VOLUME made one
    version = subprocess.run([str(client / "bin" / "docker"), "version", "--format",
                              "{{.Client.Version}}"], capture_output=True, text=True, check=False,
                             env=os.environ | {"DOCKER_HOST": "unix:///nonexistent"})
    return version.stdout.strip() or "?"


@dataclass
class Dind:
    """One DinD engine per state directory: started, checked, loaded, stopped."""

    state: Path = DEFAULT_STATE
    spec: EngineSpec | None = None
    image: str = "docker:dind"
    flags: list[str] = field(default_factory=lambda: shlex.split(DEFAULT_FLAGS))
    given_host: str | None = None
    given_certs: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Dind:
        """The session the LABKIT_DIND_* and LABKIT_ENGINE variables describe."""
        env = os.environ if environ is None else environ
        spec = engines.parse(env["LABKIT_ENGINE"]) if env.get("LABKIT_ENGINE") else None
        return cls(state=Path(env.get("LABKIT_DIND_STATE") or DEFAULT_STATE),
                   spec=spec,
                   image=spec.image if spec else env.get("LABKIT_DIND_IMAGE") or "docker:dind",
                   flags=shlex.split(env.get("LABKIT_DIND_FLAGS") or DEFAULT_FLAGS),
                   given_host=env.get("LABKIT_DIND_HOST") or None,
                   given_certs=env.get("LABKIT_DIND_CERT_PATH") or None)

    @property
    def env_file(self) -> Path:
        """Where the engine's client settings are written."""
        return self.state / "env"

    @property
    def client_dir(self) -> Path:
        """Where the engine's own docker CLI is copied (bin/docker, config/cli-plugins/)."""
        return self.state / "client"

    @property
    def name_file(self) -> Path:
        """Where the name of the container this session started is written."""
        return self.state / "container"

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) pointed at the DinD engine."""
        env = {k: v for k, v in (os.environ if base is None else base).items()
               if k not in CLIENT_VARIABLES}
        return env | read_env(self.env_file)

    def docker(self, *args: str, capture: bool = True,
               stdin: int | None = None) -> subprocess.CompletedProcess[str]:
        """The docker CLI of the env file (the engine's own, first on its PATH) against the
        DinD engine it names."""
        return subprocess.run(["docker", *args], env=self.environ(), capture_output=capture,
                              text=True, check=False, stdin=stdin)

    def __enter__(self) -> Dind:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------ start
    def start(self) -> None:
        """Start (or adopt, with LABKIT_DIND_HOST) the engine, check it, load the images."""
        self.state.mkdir(parents=True, exist_ok=True)
        previous = self._started_name()
        if previous and _host_docker("inspect", previous).returncode == 0:
            say(f"a DinD container we started ({previous}) exists; stopping it first.")
            self.stop()
            self.state.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        if self.given_host:
            write_env(self.env_file, given_engine_env(self.given_host, self.given_certs))
            tls = f" (TLS, certificates in {self.given_certs})" if self.given_certs else ""
            say(f"using the given DinD engine {self.given_host}{tls}")
            self._wait_answers(None)
            self.load_images()
            return
        if self.spec:
            engines.build(self.spec)
        elif not engines.image_present(self.image):
            raise DindError(f"{self.image} is not on the engine: run 'make images' "
                            "(labkit prepare) first.")
        cli = copy_client(self.image, self.client_dir, self.state)
        plugins = sorted(p.name for p in (self.client_dir / "config" / "cli-plugins").iterdir())
        say(f"the engine's own docker CLI {cli} (plugins: {', '.join(plugins) or 'none'}) "
            f"in {self.client_dir}")
        name = f"labkit-dind-{secrets.token_hex(4)}"
        certs = self.state / name / "certs"
        certs.mkdir(parents=True)
        run = _host_docker(
            "run", "-d", "--name", name, "--label", "org.labkit.managed=true",
            "--label", f"org.labkit.role={ROLE}", "--label", f"{STATE_LABEL}={self.state}",
            *self.flags, *(self.spec.run_flags() if self.spec else []),
            "-e", "DOCKER_TLS_CERTDIR=/certs", "-v", f"{certs}:/certs", self.image)
        if run.returncode:
            raise DindError(run.stderr.strip() or f"docker run {self.image} failed.")
        self.name_file.write_text(name + "\n")
        ip = self._address(name)
        write_env(self.env_file, started_engine_env(ip, certs, self.spec, self.client_dir,
                                                    os.environ.get("PATH", "")))
        for _ in range(120):  # the certificates appear before dockerd listens
            if (certs / "client" / "key.pem").is_file() and \
                    (certs / "client" / "key.pem").stat().st_size:
                break
            time.sleep(0.25)
        self._wait_answers(name)
        say(f"started {name} at tcp://{ip}:2376 (TLS) in {time.monotonic() - started:.0f} s; "
            f"env: {self.env_file}")
        if self.spec:
            self.check_engine(self.spec)
        self.load_images()

    def _address(self, name: str) -> str:
        for _ in range(20):
            found = _host_docker("inspect", "-f",
                                 "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                                 name).stdout.split()
            if found:
                return found[0]
            time.sleep(0.25)
        raise DindError(f"The DinD container {name} got no IP address on the engine's network.")

    def _logs(self, name: str) -> None:
        logs = _host_docker("logs", "--tail", "30", name)
        sys.stderr.write(logs.stdout + logs.stderr)

    def _wait_answers(self, name: str | None) -> None:
        for _ in range(120):
            if self.docker("version").returncode == 0:
                return
            if name and _host_docker("inspect", "-f", "{{.State.Running}}",
                                     name).stdout.strip() != "true":
                self._logs(name)
                raise DindError(f"The DinD container {name} stopped at start; its log is above.")
            time.sleep(0.5)
        if name:
            self._logs(name)
        raise DindError("The DinD engine did not answer within 60 s.")

    def check_engine(self, spec: EngineSpec) -> None:
        """Raise DindError unless the engine that answers is the one ``spec`` asks for."""
        got = self.docker("version", "--format",
                          "{{.Server.Version}} {{.Server.MinAPIVersion}}").stdout.split()
        version, min_api = (got + ["", ""])[:2]
        store = self.docker("info", "--format",
                            "{{range .DriverStatus}}{{index . 1}} {{end}}").stdout.strip()
        say(f"engine {spec.text}: Docker {version}, minimum API {min_api}, "
            f"driver status: {store}")
        problem = engine_mismatch(spec, version, min_api, store)
        if problem:
            raise DindError(problem)

    def load_images(self, images: tuple[str, ...] = COURSE_IMAGES) -> None:
        """Copy the course images the DinD engine lacks from this machine's engine."""
        started = time.monotonic()
        missing = [i for i in images if self.docker("image", "inspect", i).returncode]
        if not missing:
            say("course images already present")
            return
        for image in missing:
            if not engines.image_present(image):
                raise DindError(f"{image} is not on the host engine: run 'make images' "
                                "(labkit prepare) first.")
        save = subprocess.Popen(["docker", "save", *missing], stdout=subprocess.PIPE)
        assert save.stdout is not None
        loaded = self.docker("load", "-q", stdin=save.stdout.fileno())
        save.stdout.close()
        if save.wait() or loaded.returncode:
            raise DindError(f"Loading {' '.join(missing)} into the DinD engine failed: "
                            f"{loaded.stderr.strip()}")
        say(f"loaded {' '.join(missing)} in {time.monotonic() - started:.0f} s")

    # ------------------------------------------------------------------ stop, status
    def _started_name(self) -> str:
        try:
            return self.name_file.read_text().strip()
        except OSError:
            return ""

    def leftovers(self) -> list[str]:
        """Containers that carry this state directory's label (made by a session here)."""
        listed = _host_docker("ps", "-aq", "--filter", f"label={STATE_LABEL}={self.state}")
        return listed.stdout.split() if listed.returncode == 0 else []

    def stop(self) -> None:
        """Remove the container this session started, and whatever else carries its label."""
        name = self._started_name()
        if not name:
            say("no DinD container started by us; nothing to stop.")
        elif _host_docker("inspect", name).returncode == 0:
            _host_docker("rm", "-f", "-v", name)
            say(f"removed {name}")
        for leftover in self.leftovers():  # an interrupted start, before its name was written
            if _host_docker("rm", "-f", "-v", leftover).returncode == 0:
                say(f"removed {leftover} (left by an interrupted start)")
        if self.state.is_dir():
            for certs in self.state.glob("labkit-dind-*"):
                shutil.rmtree(certs, ignore_errors=True)
        shutil.rmtree(self.client_dir, ignore_errors=True)
        self.name_file.unlink(missing_ok=True)
        self.env_file.unlink(missing_ok=True)

    def status(self) -> int:
        """Print the env file and whether the engine answers; 1 when not started."""
        if not self.env_file.is_file() or not self.env_file.stat().st_size:
            say("not started.")
            return 1
        print(self.env_file.read_text(), end="", flush=True)
        answer = self.docker("version", "--format",
                             "dind: answers: {{.Server.Version}} (API {{.Server.APIVersion}})",
                             capture=False)
        return answer.returncode


def own_engine(spec: EngineSpec, state: Path) -> Dind:
    """A DinD engine of a run's own (never a given one): ``spec`` with state in ``state``."""
    return Dind(state=state, spec=spec, image=spec.image,
                flags=shlex.split(os.environ.get("LABKIT_DIND_FLAGS") or DEFAULT_FLAGS))


def run_on(session: Dind, tool: str, body: Callable[[Dind], int]) -> int:
    """Start ``session``, run ``body`` on it and stop it, also on failure, Ctrl-C or SIGTERM:
    body's exit status, 1 when the engine could not start, 130 or 143 when interrupted."""
    started, rc = time.monotonic(), 1
    try:
        session.start()
        rc = body(session)
    except DindError as exc:
        print(exc, file=sys.stderr)
    except KeyboardInterrupt:
        rc = 130
    except SystemExit as exc:  # SIGTERM, by exit_on_sigterm
        rc = exc.code if isinstance(exc.code, int) else 1
    finally:
        print(f"{tool}: stopping the DinD engine of this run", flush=True)
        session.stop()
        print(f"{tool}: {time.monotonic() - started:.0f} s in all (exit {rc})")
    return rc


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit(143), so that ``with`` blocks stop what they started."""
    def leave(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)


def main(argv: list[str] | None = None) -> int:
    """``start | stop | status`` of the DinD engine the environment describes."""
    args = sys.argv[1:] if argv is None else argv
    if args in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    if len(args) != 1 or args[0] not in ("start", "stop", "status"):
        print("usage: python -m testbed.dind start|stop|status", file=sys.stderr)
        return 2
    try:
        session = Dind.from_environ()
        if args[0] == "start":
            session.start()
        elif args[0] == "stop":
            session.stop()
        else:
            return session.status()
    except engines.SpecError as exc:
        print(exc, file=sys.stderr)
        return 2
    except DindError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
