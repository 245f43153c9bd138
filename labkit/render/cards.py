"""Cards: the HTML of the small results a notebook shows (a running app, the registry, a login,
a tagged name, a pull, the two Pythons), registered by type in :mod:`labkit.engine.presentation`.
"""

from __future__ import annotations

from labkit.containers import RunningApp, python_runtime
from labkit.engine import register_html
from labkit.registry import LoginResult, Registry, TaggedName, pull
from labkit.render.builds import card_html


def app_card(app: RunningApp) -> str:
    """A running app: its image, id, command and link."""
    return card_html(f"container {app.name}", {"image": app.image, "id": app.id[:12]},
                     app.command, links={"app": app.url})


def registry_card(reg: Registry) -> str:
    """The registry: its address for the engine, its user, container and HTTP API."""
    facts = {"address (for the engine)": reg.address, "user": reg.username}
    if reg.container_id:
        facts["container"] = f"{reg.name} ({reg.container_id[:12]})"
    links = {"HTTP API": f"{reg.api_url}/v2/"} if reg.api_url else None
    return card_html(f"registry {reg.name}", facts, reg.command, links=links)


def login_card(result: LoginResult) -> str:
    """What the engine said to a login."""
    return card_html(result.status, {"registry": result.registry, "user": result.username},
                     result.command)


def tagged_card(name: TaggedName) -> str:
    """A tagged name, with the ``docker tag`` command that made it."""
    return card_html(str(name), {"repository": name.repository, "tag": name.tag}, name.command)


def pull_card(result: pull.PullResult) -> str:
    """A pull: the image, its layers downloaded or already here, and the time."""
    facts = {"image": result.image_id[:19],
             "layers downloaded": str(result.counts["downloaded"]),
             "layers already here": str(result.counts["already here"]),
             "seconds": f"{result.seconds:.2f}"}
    return card_html(f"pulled {result.reference}", facts, result.command) + (
        result.layers.to_html(index=False) if len(result.layers) else "")


def runtime_html(comparison: python_runtime.RuntimeComparison) -> str:
    """The two Pythons side by side, under the command that asked the container."""
    return f"<pre>$ {comparison.command}</pre>" + str(comparison.table().to_html(index=False))


register_html(RunningApp, app_card)
register_html(Registry, registry_card)
register_html(LoginResult, login_card)
register_html(TaggedName, tagged_card)
register_html(pull.PullResult, pull_card)
register_html(python_runtime.RuntimeComparison, runtime_html)
