"""DockerSpawner for a classroom: each learner's server joins their engine's network namespace.

The server container is made with ``network_mode="container:<engine>"`` (as a Kubernetes
pod's containers share one): it has no network of its own, so

- it must expose no port (the engine's namespace has them; Docker refuses the create
  otherwise), and
- DockerSpawner finds no address for it on a named network: the hub reaches the server at
  the engine's address on the learner's own network (``learner_engine.engine_ip``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import learner_engine
from dockerspawner import DockerSpawner


class LearnerSpawner(DockerSpawner):  # type: ignore[misc]
    """A learner's server, in the network namespace of their engine (learner_engine.py)."""

    @property
    def plan(self) -> learner_engine.Plan:
        return learner_engine.Plan.from_env()

    def _docker(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "create_container":
            kwargs.pop("ports", None)  # no ports of its own: they are the engine's
            kwargs.setdefault("host_config", {})["NetworkMode"] = f"container:{self.engine_name}"
        return super()._docker(method, *args, **kwargs)

    @property
    def engine_name(self) -> str:
        return self.plan.engine_name(self.escaped_name)

    async def get_ip_and_port(self) -> tuple[str, int]:
        ip = await asyncio.to_thread(learner_engine.engine_ip, self.plan, self.escaped_name)
        return ip, self.port
