"""The learner pod KubeSpawner makes from classroom/kubernetes/values.yaml, rendered offline.

values.yaml is the one source: classroom/kubernetes/z2jh.py turns it into KubeSpawner's
configuration as the Zero to JupyterHub chart's hub does, and KubeSpawner's own
``get_pod_manifest`` renders the pod (no cluster: a kubeconfig naming an address nothing
listens on, which rendering never contacts). The checks read that pod: the engine sidecar,
the volumes and who mounts them, the notebook's environment, the limits, the security
settings; and every field must be one of the Kubernetes API's (kubernetes_asyncio's models).
The hub's side is checked too: the workshop authenticator it ships (the instructor made
before the hub opens), the progress service and its role, and the JupyterHub versions of
the chart and of the learner image.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import runpy
import sys
from pathlib import Path
from unittest.mock import Mock

import jupyterhub
import kubernetes_asyncio.client.models as k8s_models
import kubernetes_asyncio.config.kube_config as kube_config
import pytest
from jupyterhub.app import JupyterHub
from jupyterhub.auth import Authenticator
from jupyterhub.objects import Hub, Server
from jupyterhub_idle_culler import IdleCuller
from kubernetes_asyncio.client import ApiClient
from kubespawner import KubeSpawner
from tornado import web
from traitlets.config import Config
from traitlets.utils.importstring import import_item

from labkit.engine import config as labkit_config
from labkit.engine import connection as labkit_engine

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "classroom" / "kubernetes"
#: where the rootless engine (classroom/engine) keeps its data: its user's home
ROOTLESS_DATA = "/home/rootless/.local/share/docker"


def _load_z2jh():
    spec = importlib.util.spec_from_file_location("classroom_z2jh", KUBE / "z2jh.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


z2jh = _load_z2jh()

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


class MockUser(Mock):
    """The hub's user object, as KubeSpawner's own tests fake it."""

    name = "ada"
    server = Server()

    @property
    def escaped_name(self) -> str:
        return self.name

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def values() -> dict:
    return z2jh.load()


@pytest.fixture(scope="module")
def pod(values: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    kubeconfig = tmp_path_factory.mktemp("kube") / "config"
    kubeconfig.write_text(KUBECONFIG)
    with pytest.MonkeyPatch.context() as mp:
        # kubernetes_asyncio reads $KUBECONFIG once, on import: name the file directly.
        mp.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
        mp.delenv("KUBERNETES_SERVICE_HOST", raising=False)

        async def render() -> dict:
            spawner = KubeSpawner(config=z2jh.spawner_config(values), user=MockUser(),
                                  hub=Hub(), _mock=True)
            manifest = await spawner.get_pod_manifest()
            async with ApiClient() as api:
                return api.sanitize_for_serialization(manifest)

        return asyncio.run(render())


def one(items: list[dict], name: str) -> dict:
    found = [item for item in items if item["name"] == name]
    assert len(found) == 1, f"expected one {name!r}, found {[i['name'] for i in items]}"
    return found[0]


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


@pytest.fixture(scope="module")
def engine(pod: dict) -> dict:
    return one(pod["spec"].get("initContainers", []), "engine")


@pytest.fixture(scope="module")
def notebook(pod: dict) -> dict:
    return one(pod["spec"]["containers"], "notebook")


def unknown_fields(data: object, kind: str, path: str) -> list[str]:
    """Fields of ``data`` that the Kubernetes API type ``kind`` does not have, recursively."""
    if kind.startswith("list["):
        return [bad for i, item in enumerate(data or [])
                for bad in unknown_fields(item, kind[5:-1], f"{path}[{i}]")]
    if kind.startswith("dict("):
        inner = kind[5:-1].split(", ", 1)[1]
        return [bad for key, item in (data or {}).items()
                for bad in unknown_fields(item, inner, f"{path}.{key}")]
    model = getattr(k8s_models, kind, None)
    if model is None or not isinstance(data, dict):
        return []
    by_field = {field: attr for attr, field in model.attribute_map.items()}
    bad = [f"{path}.{key}" for key in data if key not in by_field]
    return bad + [b for key, item in data.items() if key in by_field
                  for b in unknown_fields(item, model.openapi_types[by_field[key]],
                                          f"{path}.{key}")]


def test_every_pod_field_is_a_kubernetes_api_field(pod: dict) -> None:
    assert unknown_fields(pod, "V1Pod", "pod") == []


def test_the_field_check_finds_a_misspelt_field(pod: dict) -> None:
    spec = {**pod["spec"], "initContainers": [{"name": "engine", "image": "x",
                                               "securityContxt": {"privileged": True}}]}
    assert unknown_fields({**pod, "spec": spec}, "V1Pod", "pod") == [
        "pod.spec.initContainers[0].securityContxt"]


def test_engine_is_a_native_sidecar_started_before_the_notebook(engine: dict,
                                                                values: dict) -> None:
    assert engine["restartPolicy"] == "Always"
    assert engine["image"] == values["singleuser"]["initContainers"][0]["image"]
    probe = engine["startupProbe"]["exec"]["command"]
    assert probe == ["/usr/local/bin/load-course-images.sh", "--check"]
    assert engine["lifecycle"]["postStart"]["exec"]["command"] == probe[:1]


def test_engine_image_ships_the_probe_and_the_bundle() -> None:
    dockerfile = (KUBE / "engine" / "Dockerfile").read_text()
    assert "COPY load-course-images.sh /usr/local/bin/load-course-images.sh" in dockerfile
    assert "course-images.tar.sha256" in dockerfile
    script = (KUBE / "engine" / "load-course-images.sh").read_text()
    assert "bundle=/opt/labkit/course-images.tar" in script


def test_engine_serves_tls_into_the_pods_own_cert_volume(engine: dict) -> None:
    assert env_of(engine)["DOCKER_TLS_CERTDIR"] == "/certs"
    mounts = {m["name"]: m for m in engine["volumeMounts"]}
    assert mounts["docker-certs"]["mountPath"] == "/certs"
    assert "subPath" not in mounts["docker-certs"]
    assert mounts["docker-data"]["mountPath"] == ROOTLESS_DATA


def test_no_container_is_privileged_and_the_engine_is_rootless(pod: dict, engine: dict) -> None:
    containers = pod["spec"]["containers"] + pod["spec"].get("initContainers", [])
    assert {c["name"] for c in containers} == {"engine", "notebook"}
    for container in containers:
        context = container.get("securityContext") or {}
        assert context.get("privileged") is not True, container["name"]
    context = engine["securityContext"]
    assert context["privileged"] is False
    # it starts as the pod's root, which is an unprivileged uid on the node (the pod's own
    # user namespace), and its entrypoint becomes uid 1000 (classroom/engine)
    assert context["runAsUser"] == 0 and pod["spec"]["hostUsers"] is False
    # every capability dropped but the two newuidmap/newgidmap (setuid) use to map the
    # rootless engine's user IDs; setuid needs privilege escalation allowed
    assert context["capabilities"] == {"drop": ["ALL"], "add": ["SETUID", "SETGID"]}
    assert context["allowPrivilegeEscalation"] is True
    # what the engine's own containers need: no seccomp/AppArmor filter, an unmasked /proc,
    # which Kubernetes accepts only in a pod with a user namespace of its own
    assert context["seccompProfile"] == {"type": "Unconfined"}
    assert context["appArmorProfile"] == {"type": "Unconfined"}
    assert context["procMount"] == "Unmasked"
    assert pod["spec"]["hostUsers"] is False
    assert "runtimeClassName" not in pod["spec"]  # Sysbox is the documented alternative


def test_the_rootless_engine_keeps_its_data_in_the_pods_volume(engine: dict) -> None:
    mounts = {m["name"]: m["mountPath"] for m in engine["volumeMounts"]}
    assert mounts["docker-data"] == ROOTLESS_DATA
    assert ROOTLESS_DATA in (ROOT / "classroom/engine/Dockerfile").read_text()


def test_engine_limits_cpu_memory_and_disk(engine: dict) -> None:
    limits = engine["resources"]["limits"]
    assert set(limits) == {"cpu", "memory", "ephemeral-storage"}
    assert set(engine["resources"]["requests"]) == {"cpu", "memory", "ephemeral-storage"}


def test_volumes_live_and_die_with_the_pod(pod: dict) -> None:
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert set(volumes) == {"docker-certs", "docker-data"}
    for volume in volumes.values():
        assert set(volume) == {"name", "emptyDir"}, volume  # no hostPath, PVC or Secret
    assert volumes["docker-data"]["emptyDir"]["sizeLimit"] == "10Gi"


def test_notebook_mounts_only_the_client_certificates_read_only(notebook: dict) -> None:
    assert notebook["volumeMounts"] == [{"name": "docker-certs", "subPath": "client",
                                         "mountPath": "/certs/client", "readOnly": True}]


def test_notebook_talks_tls_to_its_own_engine(notebook: dict) -> None:
    env = env_of(notebook)
    assert env["DOCKER_HOST"] == "tcp://localhost:2376"
    assert env["DOCKER_TLS_VERIFY"] == "1"
    assert env["DOCKER_CERT_PATH"] == notebook["volumeMounts"][0]["mountPath"]
    assert env["LABKIT_USER"] == "ada"
    assert env["LABKIT_OFFLINE"] == "1"


def test_labkit_publishes_on_the_pods_loopback(notebook: dict) -> None:
    env = env_of(notebook)
    assert "LABKIT_BIND_IP" not in env
    assert labkit_config.from_env(env).bind_ip is None
    assert labkit_engine.is_local(env), "labkit would publish on 0.0.0.0 in this pod"


def test_notebook_is_unprivileged(pod: dict, notebook: dict) -> None:
    context = notebook["securityContext"]
    assert context["runAsUser"] == 1000
    assert context["runAsNonRoot"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["securityContext"] == {"fsGroup": 100}


def test_notebook_limits_cpu_memory_and_disk(notebook: dict) -> None:
    limits = notebook["resources"]["limits"]
    assert limits["cpu"] == 1.0
    assert limits["memory"] == 1024**3  # "1G": KubeSpawner counts in powers of 1024
    assert limits["ephemeral-storage"] == "1Gi"


def test_learner_pods_go_to_user_nodes_only(pod: dict) -> None:
    terms = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "hub.jupyter.org/node-purpose",
                                            "operator": "In", "values": ["user"]}]}]


def test_values_use_only_chart_paths(values: dict) -> None:
    assert z2jh.unknown_paths(values) == []


def test_a_misspelt_chart_path_is_refused(values: dict) -> None:
    typo = z2jh.merge(values, {"singleuser": {"extraContainer": [{"name": "x"}]}})
    with pytest.raises(z2jh.UnknownValue, match="singleuser.extraContainer"):
        z2jh.spawner_config(typo)


def _load_workshop_auth():
    spec = importlib.util.spec_from_file_location(
        "workshop_auth", ROOT / z2jh.EXTRA_FILES["workshop-auth"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


workshop_auth = _load_workshop_auth()
HUB_CLASSES = {"JupyterHub": JupyterHub, "Authenticator": Authenticator,
               "WorkshopAuthenticator": workshop_auth.WorkshopAuthenticator,
               "KubeSpawner": KubeSpawner}
CHART_CONFIG_DIR = "/usr/local/etc/jupyterhub"  # on the chart's hub's Python path


def test_hub_config_sets_real_traits(values: dict) -> None:
    for app, traits in values["hub"]["config"].items():
        known = set(HUB_CLASSES[app].class_trait_names(config=True))
        assert set(traits) <= known, f"{app}: {sorted(set(traits) - known)}"


def test_the_hub_ships_the_repositorys_files(values: dict) -> None:
    files = values["hub"]["extraFiles"]
    assert set(files) == set(z2jh.EXTRA_FILES)
    for key, source in z2jh.EXTRA_FILES.items():
        assert (ROOT / source).is_file(), source
        assert Path(files[key]["mountPath"]).name == Path(source).name
    filled = z2jh.set_files(values)
    assert filled["hub"]["extraFiles"]["workshop-auth"]["stringData"] == (
        ROOT / "classroom" / "workshop_auth.py").read_text()
    readme = (KUBE / "README.md").read_text()
    for flag in z2jh.set_file_flags():  # every helm command in the README gives them all
        assert readme.count(flag) == len(re.findall(
            r"helm (?:upgrade --install|template) workshop ", readme)) == 2, flag
    # the authenticator is importable where the hub looks; its login page where it renders
    mount = files["workshop-auth"]["mountPath"]
    assert str(Path(mount).parent) == CHART_CONFIG_DIR
    name = values["hub"]["config"]["JupyterHub"]["authenticator_class"]
    assert name == f"{Path(mount).stem}.WorkshopAuthenticator"
    templates = values["hub"]["config"]["JupyterHub"]["template_paths"]
    assert files["login-template"]["mountPath"] == f"{templates[0]}/login.html"


def hub_env_from_secret(values: dict) -> dict[str, tuple[str, str]]:
    return {name: (ref["valueFrom"]["secretKeyRef"]["name"],
                   ref["valueFrom"]["secretKeyRef"]["key"])
            for name, ref in values["hub"]["extraEnv"].items()}


def test_the_instructor_exists_before_the_hub_opens_and_nobody_signs_up_as_it(
        values: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = z2jh.spawner_config(values)
    assert import_item(config.JupyterHub.authenticator_class).__name__ == "WorkshopAuthenticator"
    assert "NativeAuthenticator" not in config and "signup" not in str(values).lower()
    assert config.Authenticator.admin_users == ["instructor"]
    assert config.WorkshopAuthenticator.instructor == "instructor"
    assert config.WorkshopAuthenticator.claims_dir.startswith("/srv/jupyterhub/")  # hub's PVC
    secret = hub_env_from_secret(values)
    assert secret == {"CLASSROOM_WORKSHOP_CODE": ("workshop-secrets", "workshop-code"),
                      "CLASSROOM_INSTRUCTOR_PASSWORD": ("workshop-secrets",
                                                        "instructor-password")}
    readme = (KUBE / "README.md").read_text()
    assert re.search(r"kubectl .*create secret generic workshop-secrets", readme)
    assert "--from-literal=workshop-code=" in readme
    assert "--from-literal=instructor-password=" in readme
    # the hub's authenticator, configured from the values, with the Secret's values
    monkeypatch.setenv("CLASSROOM_WORKSHOP_CODE", "the-code")
    monkeypatch.setenv("CLASSROOM_INSTRUCTOR_PASSWORD", "the-instructors-password")
    local = Config(config)
    local.WorkshopAuthenticator.claims_dir = str(tmp_path / "claims")
    auth = workshop_auth.WorkshopAuthenticator(config=local)

    def login(name: str, password: str, code: str = "the-code") -> str | None:
        try:
            return asyncio.run(auth.authenticate(None, {"username": name, "code": code,
                                                        "password": password}))
        except web.HTTPError:
            return None

    assert login("instructor", "first-come-first-admin") is None
    assert login("instructor", "the-instructors-password", code="") == "instructor"
    assert login("ada", "adas-password") == "ada"
    assert login("ada", "not-adas-password") is None


def one_machine_roles() -> dict[str, dict]:
    """The roles classroom/jupyterhub_config.py gives (loaded as the hub loads it)."""
    c = Config()
    env = {"CLASSROOM_NAME": "k", "CLASSROOM_STATE": "/nonexistent",
           "CLASSROOM_HUB_IP": "172.17.0.1"}
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("CLASSROOM_")]:
            mp.delenv(key)
        for key, value in env.items():
            mp.setenv(key, value)
        runpy.run_path(str(ROOT / "classroom" / "jupyterhub_config.py"),
                       init_globals={"get_config": lambda: c})
    return {role["name"]: role for role in c.JupyterHub.load_roles}


def test_the_progress_service_runs_in_the_hub_with_its_role(values: dict) -> None:
    services = {s["name"]: s for s in z2jh.hub_services(values)}
    progress = services["progress"]
    files = values["hub"]["extraFiles"]
    script = files["progress-service"]["mountPath"]
    assert progress["command"] == ["python3", script]
    # progress_service.py reads labkit's learners/records.py from ../labkit beside it
    assert files["learner-progress"]["mountPath"] == str(
        Path(script).parent.parent / "labkit" / "learners" / "records.py")
    port = int(progress["url"].rsplit(":", 1)[1])
    assert progress["url"] == f"http://hub:{port}"  # the hub's Service: the proxy's way in
    assert progress["environment"]["CLASSROOM_PROGRESS_BIND"] == "0.0.0.0"
    assert progress["environment"]["CLASSROOM_PROGRESS_DIR"]
    assert progress["oauth_no_confirm"] is True
    assert [p["port"] for p in values["hub"]["service"]["extraPorts"]] == [port]
    assert values["hub"]["networkPolicy"]["ingress"][0]["ports"] == [{"port": port}]
    # the same roles as the one-machine classroom's hub
    roles = {r["name"]: r for r in z2jh.hub_roles(values)}
    here = one_machine_roles()
    for name in ("progress", "instructor"):
        assert sorted(roles[name]["scopes"]) == sorted(here[name]["scopes"]), name
    assert roles["progress"]["services"] == ["progress"]
    assert roles["instructor"]["users"] == values["hub"]["config"]["Authenticator"][
        "admin_users"]


def _pin(text: str, package: str) -> str:
    found = re.findall(rf"^{package}==(\S+)$", text, re.M)
    assert len(found) == 1, (package, found)
    return found[0]


def test_jupyterhub_versions_are_in_step(values: dict) -> None:
    hub = _pin((ROOT / "classroom" / "requirements-hub.txt").read_text(), "jupyterhub")
    # the learner image takes the hub's pin unless given the chart's
    script = (ROOT / "scripts" / "classroom.sh").read_text()
    assert "grep -E '^jupyterhub==' \"$ROOT/classroom/requirements-hub.txt\"" in script
    dockerfile = (ROOT / "classroom" / "Dockerfile.learner").read_text()
    assert re.search(r"^ARG JUPYTERHUB_VERSION=$", dockerfile, re.M)
    assert 'jupyterhub==$JUPYTERHUB_VERSION/" /opt/course/requirements-learner.txt' in dockerfile
    # Kubernetes: one chart release everywhere, and the learner image built with its hub's
    readme = (KUBE / "README.md").read_text()
    versions = set(re.findall(r"jupyterhub/jupyterhub --version (\S+)", readme))
    assert versions == {z2jh.CHART_VERSION}
    assert f"--build-arg JUPYTERHUB_VERSION={z2jh.CHART_JUPYTERHUB}" in readme
    header = (KUBE / "values.yaml").read_text().splitlines()[0]
    assert z2jh.CHART_VERSION in header and f"JupyterHub {z2jh.CHART_JUPYTERHUB}" in header
    # no chart ships the one-machine hub's major version yet: hence the build argument
    assert hub.split(".")[0] != z2jh.CHART_JUPYTERHUB.split(".")[0]
    assert hub.split(".")[0] == jupyterhub.__version__.split(".")[0]  # what this test ran


def test_idle_culler_command_is_one_the_culler_accepts(values: dict) -> None:
    cmd = z2jh.culler_command(values)
    assert cmd[:3] == ["python3", "-m", "jupyterhub_idle_culler"]
    flags = {arg[2:].split("=", 1)[0] for arg in cmd[3:]}
    assert flags <= set(IdleCuller.aliases) | set(IdleCuller.flags), flags
    culler = IdleCuller()
    culler.parse_command_line(cmd[3:])
    assert culler.timeout == values["cull"]["timeout"] == 3600
    assert culler.cull_every == values["cull"]["every"]
    assert culler.cull_admin_users is False
