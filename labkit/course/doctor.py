"""`labkit doctor`: everything the course needs, checked against the engine, one line each
(what was checked, whether it is fine, not done yet, or a problem with its fix)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import docker

from labkit import engine


@dataclass(frozen=True)
class DoctorCheck:
    """One line of ``labkit doctor``: what was checked, whether it is fine, and the fix."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    pending: bool = False  # not done yet, and not a problem (a registry no step started yet)

    @property
    def mark(self) -> str:
        """✓ fine, ✗ a problem (its fix says what to do), – not done yet."""
        return "–" if self.pending else "✓" if self.ok else "✗"


def doctor_checks(client: docker.DockerClient | None = None) -> list[DoctorCheck]:
    """Everything the course needs, checked against the engine (raises EngineUnavailable)."""
    from labkit.images import which_builder
    from labkit.offline import image_status

    cli = client or engine.connect()
    info = engine.info(cli)
    s = engine.settings()
    reachable = engine.ports_reachable()
    ports = (f"bound to {info.bind_ip}, reachable at http://{info.publish_host}:PORT"
             if reachable else
             f"bound to {info.bind_ip} on the remote engine: out of reach from here")
    ports_fix = "" if reachable else (f"Set {engine.BIND_OPT_IN} before starting Jupyter "
                                      "(ports then listen on the engine's network).")
    out = [
        DoctorCheck("engine", True, f"{info.host}: Docker {info.version} "
                    f"({info.os}/{info.arch}, cgroup v{info.cgroup_version})"),
        DoctorCheck("connection", True, info.transport.summary),
        DoctorCheck("API version", True, f"labkit speaks {info.client_api_version}; the "
                    f"engine accepts {info.min_api_version} to {info.api_version}"),
        DoctorCheck("image store", True, info.store_label),
        DoctorCheck("builder", True, which_builder(cli).sentence),
        DoctorCheck("published ports", reachable, ports, ports_fix),
        DoctorCheck("pulling", True,
                    "disabled (offline): stand-ins are built" if s.offline else "allowed"),
        DoctorCheck("course user", True, f"{s.user}: your images are "
                    f"{s.image_name('NAME')}; labkit's containers carry the label "
                    f"{engine.LABEL_NAMESPACE}={s.namespace}"),
    ]
    for row in image_status(client=cli).itertuples():
        kind = "stand-in" if row.standin else "official"
        out.append(DoctorCheck(
            f"image {row.image}", bool(row.present),
            f"present ({kind}, {row.size / 1e6:.0f} MB)" if row.present else "missing",
            "" if row.present else "Run `labkit prepare` (`make images`)."))
    out.append(_registry_check(cli))
    return out


def _registry_check(cli: docker.DockerClient) -> DoctorCheck:
    from labkit.registry import registry_status

    return registry_verdict(registry_status(client=cli))


def registry_verdict(status: Mapping[str, Any]) -> DoctorCheck:
    """The registry's line from its status (:func:`labkit.registry.registry_status`): one
    that was never started is not a problem yet, one that is there but stopped is."""
    name = status.get("registry")
    if not status.get("local", True):
        return DoctorCheck("registry", True,
                           f"{status.get('address')} (configured, not local)")
    if status.get("running"):
        auth = {True: "auth on", False: "auth OFF", None: "auth unknown"}[status.get("auth")]
        return DoctorCheck("registry", True, f"{name} at {status.get('address')} ({auth})")
    if status.get("status", "absent") == "absent":
        return DoctorCheck("registry", True, f"{name}: not started yet (step 0 starts it, "
                           "or `labkit registry start`)", pending=True)
    return DoctorCheck("registry", False, f"{name}: {status.get('status')}",
                       "Run `labkit registry start` (`make registry`): it starts it again.")


def render_checks(checks: Sequence[DoctorCheck]) -> str:
    """Checks as text lines, each fix under the failing line."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        head = "-- " if c.pending else "ok " if c.ok else "NO "
        lines.append(f"{head} {c.name:<{width}}  {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"    {'':<{width}}  → {c.fix}")
    return "\n".join(lines)
