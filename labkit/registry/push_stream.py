"""What a push did, read from the engine's push stream: a pure parser, fed chunk by chunk,
and the finished push's result (digest, one row per layer).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labkit.engine import DockerCommand, html_of

if TYPE_CHECKING:
    import pandas as pd

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
        return html_of(self)


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
        import pandas as pd
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
