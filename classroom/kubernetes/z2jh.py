"""What the Zero to JupyterHub chart (4.4.0) makes of values.yaml, for the keys it uses here.

The chart's hub reads its Helm values and sets KubeSpawner's traits from them (the chart's
``jupyterhub_config.py``). ``spawner_config`` does the same for the keys
``classroom/kubernetes/values.yaml`` uses, so a test can render the very pod KubeSpawner
would create from that file, with no cluster. A ``singleuser`` key it does not know is an
error (``UnknownValue``), never silently dropped, and ``KNOWN_PATHS`` lists every values
path the classroom may use, each one checked against the chart's 4.4.0 values.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from traitlets.config import Config

VALUES = Path(__file__).with_name("values.yaml")
ROOT = Path(__file__).resolve().parents[2]

#: The chart release README.md installs, and the JupyterHub its hub image carries (the
#: chart's images/hub/requirements.txt at that tag). The learner image for Kubernetes is
#: built with that jupyterhub (Dockerfile.learner's JUPYTERHUB_VERSION): no chart release
#: ships JupyterHub 6 yet, while the one-machine classroom runs requirements-hub.txt's 6.x.
CHART_VERSION = "4.4.0"
CHART_JUPYTERHUB = "5.5.0"

#: hub.extraFiles.<key> -> the repository file helm is given for it
#: (``--set-file hub.extraFiles.<key>.stringData=<file>``).
EXTRA_FILES: dict[str, str] = {
    "workshop-auth": "classroom/workshop_auth.py",
    "login-template": "classroom/templates/login.html",
    "progress-service": "classroom/progress_service.py",
    "learner-progress": "labkit/learners/records.py",
}

#: singleuser.<path> -> the KubeSpawner trait the chart sets from it, value unchanged.
SINGLEUSER_TRAITS: dict[str, str] = {
    "uid": "uid",
    "fsGid": "fs_gid",
    "startTimeout": "start_timeout",
    "image.pullPolicy": "image_pull_policy",
    "extraLabels": "extra_labels",
    "extraAnnotations": "extra_annotations",
    "lifecycleHooks": "lifecycle_hooks",
    "initContainers": "init_containers",
    "extraContainers": "extra_containers",
    "memory.limit": "mem_limit",
    "memory.guarantee": "mem_guarantee",
    "cpu.limit": "cpu_limit",
    "cpu.guarantee": "cpu_guarantee",
    "extraResource.limits": "extra_resource_limits",
    "extraResource.guarantees": "extra_resource_guarantees",
    "extraEnv": "environment",
    "nodeSelector": "node_selector",
    "extraPodConfig": "extra_pod_config",
}

#: singleuser paths the chart turns into something else (handled in ``spawner_config``),
#: or renders as objects of their own (the NetworkPolicy), not into the pod.
SINGLEUSER_SPECIAL = (
    "image.name", "image.tag", "allowPrivilegeEscalation", "cmd", "defaultUrl",
    "storage.type", "storage.extraVolumes", "storage.extraVolumeMounts",
    "cloudMetadata", "networkPolicy",
)

#: Every values path the classroom may set (a path and everything under it), from the
#: chart's 4.4.0 values.yaml; hub.config.<Class> takes any trait of that class.
KNOWN_PATHS = (
    "hub.config",
    "hub.extraFiles",
    "hub.extraEnv",
    "hub.services",
    "hub.loadRoles",
    "hub.service.extraPorts",
    "hub.networkPolicy.ingress",
    *(f"singleuser.{key}" for key in (*SINGLEUSER_TRAITS, *SINGLEUSER_SPECIAL)),
    "scheduling.userScheduler.enabled",
    "scheduling.podPriority.enabled",
    "scheduling.userPlaceholder.enabled",
    "scheduling.userPlaceholder.replicas",
    "scheduling.userPods.nodeAffinity.matchNodePurpose",
    "scheduling.userPods.tolerations",
    "prePuller.hook.enabled",
    "prePuller.continuous.enabled",
    "prePuller.extraImages",
    "proxy.service.loadBalancerSourceRanges",
    *(f"cull.{key}" for key in ("enabled", "timeout", "every", "concurrency", "users",
                                 "adminUsers", "removeNamedServers", "maxAge")),
)

#: The chart's own defaults (4.1.0) that reach a user pod when values.yaml says nothing.
CHART_DEFAULTS: dict[str, Any] = {
    "singleuser": {
        "uid": 1000,
        "fsGid": 100,
        "allowPrivilegeEscalation": False,
        "cmd": "jupyterhub-singleuser",
        "extraLabels": {"hub.jupyter.org/network-access-hub": "true"},
        "cloudMetadata": {"blockWithIptables": True, "ip": "169.254.169.254"},
        "storage": {"type": "dynamic", "extraVolumes": [], "extraVolumeMounts": []},
    },
    "scheduling": {"userPods": {
        "nodeAffinity": {"matchNodePurpose": "prefer"},
        "tolerations": [{"key": key, "operator": "Equal", "value": "user", "effect": "NoSchedule"}
                        for key in ("hub.jupyter.org/dedicated", "hub.jupyter.org_dedicated")],
    }},
    "cull": {"enabled": True, "users": False, "adminUsers": True, "removeNamedServers": False,
             "timeout": 3600, "every": 600, "concurrency": 10, "maxAge": 0},
}


class UnknownValue(ValueError):
    """values.yaml sets a path this classroom's chart mapping does not know."""


def load(path: Path = VALUES) -> dict:
    """The classroom's values, merged over the chart defaults that matter for the pod."""
    return merge(CHART_DEFAULTS, yaml.safe_load(path.read_text()))


def merge(base: dict, over: dict) -> dict:
    """Helm's way of layering values: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def leaf_paths(values: dict, prefix: str = "") -> list[str]:
    """Every dotted path to a non-mapping value (or an empty mapping)."""
    paths = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            paths += leaf_paths(value, path + ".")
        else:
            paths.append(path)
    return paths


def unknown_paths(values: dict) -> list[str]:
    """The paths of ``values`` that fall under none of ``KNOWN_PATHS``."""
    return [p for p in leaf_paths(values)
            if not any(p == k or p.startswith(k + ".") for k in KNOWN_PATHS)]


def get(values: dict, path: str, default: Any = None) -> Any:
    """``values['a']['b']`` for ``'a.b'``, or ``default`` where the path stops."""
    value: Any = values
    for level in path.split("."):
        if not isinstance(value, dict) or level not in value:
            return default
        value = value[level]
    return value


def spawner_config(values: dict) -> Config:
    """The JupyterHub/KubeSpawner configuration the chart's hub makes from ``values``."""
    unknown = unknown_paths(values)
    if unknown:
        raise UnknownValue("values.yaml sets what the chart mapping does not know: "
                           + ", ".join(unknown))
    c = Config()
    for path, trait in SINGLEUSER_TRAITS.items():
        value = get(values, "singleuser." + path)
        if value is not None:
            setattr(c.KubeSpawner, trait, copy.deepcopy(value))
    image = get(values, "singleuser.image.name")
    if image:
        tag = get(values, "singleuser.image.tag")
        c.KubeSpawner.image = f"{image}:{tag}" if tag else image
    c.KubeSpawner.allow_privilege_escalation = get(values, "singleuser.allowPrivilegeEscalation")
    c.Spawner.cmd = get(values, "singleuser.cmd")
    if get(values, "singleuser.defaultUrl"):
        c.Spawner.default_url = get(values, "singleuser.defaultUrl")
    if get(values, "singleuser.storage.type") != "none":
        raise UnknownValue("only singleuser.storage.type: none is mapped here")
    c.KubeSpawner.volumes = copy.deepcopy(get(values, "singleuser.storage.extraVolumes", []))
    c.KubeSpawner.volume_mounts = copy.deepcopy(
        get(values, "singleuser.storage.extraVolumeMounts", []))
    if get(values, "singleuser.cloudMetadata.blockWithIptables"):
        raise UnknownValue("cloudMetadata.blockWithIptables adds a privileged init "
                           "container of the chart's: not mapped here")
    tolerations = get(values, "scheduling.userPods.tolerations") or []
    if tolerations:
        c.KubeSpawner.tolerations = copy.deepcopy(tolerations)
    purpose = {"matchExpressions": [{"key": "hub.jupyter.org/node-purpose", "operator": "In",
                                     "values": ["user"]}]}
    match = get(values, "scheduling.userPods.nodeAffinity.matchNodePurpose")
    if match == "require":
        c.KubeSpawner.node_affinity_required = [purpose]
    elif match == "prefer":
        c.KubeSpawner.node_affinity_preferred = [{"weight": 100, "preference": purpose}]
    for app, traits in (get(values, "hub.config") or {}).items():
        c[app].update(copy.deepcopy(traits))
    return c


def culler_command(values: dict) -> list[str]:
    """The jupyterhub-idle-culler command line the chart's hub runs from ``cull.*``."""
    cull = values.get("cull") or {}
    if not cull.get("enabled"):
        return []
    cmd = ["python3", "-m", "jupyterhub_idle_culler", "--url=http://localhost:8081/hub/api"]
    for key, flag in (("timeout", "timeout"), ("every", "cull-every"),
                      ("concurrency", "concurrency")):
        if cull.get(key):
            cmd.append(f"--{flag}={cull[key]}")
    if cull.get("users"):
        cmd.append("--cull-users")
    if not cull.get("adminUsers"):
        cmd.append("--cull-admin-users=false")
    if cull.get("removeNamedServers"):
        cmd.append("--remove-named-servers")
    if cull.get("maxAge"):
        cmd.append(f"--max-age={cull['maxAge']}")
    return cmd


def set_files(values: dict, root: Path = ROOT) -> dict:
    """``values`` with each hub.extraFiles entry's content, as helm's --set-file gives it."""
    out = copy.deepcopy(values)
    for key, entry in (get(out, "hub.extraFiles") or {}).items():
        entry["stringData"] = (root / EXTRA_FILES[key]).read_text()
    return out


def set_file_flags() -> list[str]:
    """The --set-file flags README.md's helm commands carry, one per hub.extraFiles entry."""
    return [f"--set-file hub.extraFiles.{key}.stringData={path}"
            for key, path in EXTRA_FILES.items()]


def hub_services(values: dict) -> list[dict]:
    """c.JupyterHub.services as the chart's hub makes it from hub.services (a dict there)."""
    return [{"name": key, **copy.deepcopy(service)}
            for key, service in (get(values, "hub.services") or {}).items()]


def hub_roles(values: dict) -> list[dict]:
    """c.JupyterHub.load_roles as the chart's hub makes it from hub.loadRoles."""
    return [{"name": key, **copy.deepcopy(role)}
            for key, role in (get(values, "hub.loadRoles") or {}).items()]
