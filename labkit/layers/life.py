"""Each layer's life: built or cached, its size, its push and its size in the registry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from labkit.images import ImageArchiveError

if TYPE_CHECKING:
    import pandas as pd

# ---------------------------------------------------------------- the lifecycle join


_EMPTY_KEYWORDS = {"ENV", "CMD", "LABEL", "EXPOSE", "ENTRYPOINT", "USER", "VOLUME", "ARG",
                   "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "MAINTAINER"}


def _short(digest: str) -> str:
    return str(digest).split(":")[-1][:12]


def lifecycle(build_table: pd.DataFrame | None, history_df: pd.DataFrame,
              push_layers_df: pd.DataFrame | None, manifest: dict[str, Any] | None,
              diff_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """What happened to each layer: built or cached, its size, its push and registry size.

    Inputs (plain data, so any producer fits):

    - ``build_table``: one row per Dockerfile step, columns ``step`` (1-based),
      ``instruction``, ``cached`` (bool), ``seconds`` (float), ``image_id`` (the image the
      step produced, full or short). ``None`` when there was no build.
    - ``history_df``: ``docker history`` of the image, *newest first* as the CLI prints it,
      columns ``layer`` (image id or ``<missing>``), ``instruction``, ``size_bytes``,
      ``created``, ``empty`` (True for steps that made no layer, e.g. ENV or CMD).
    - ``push_layers_df``: one row per layer of a push, columns ``layer`` (the 12 hex digits
      the CLI shows), ``status`` (pushed / exists / mounted) and ``bytes`` (or
      ``bytes_pushed``). ``None`` when not pushed. The classic image store names a layer
      by its uncompressed diff ID there, the containerd store by its compressed digest:
      both are matched.
    - ``diff_ids``: the image's ``RootFS.Layers`` (bottom first), to match the classic
      store's push rows. ``None`` matches by compressed digest only.
    - ``manifest``: the registry manifest, ``{"layers": [{"digest", "size"}, ...]}`` in
      rootfs order (bottom first). ``None`` when not pushed.

    Returns one row per layer, bottom first: ``position``, ``instruction``, ``step``,
    ``cached``, ``build_seconds``, ``size_bytes`` (uncompressed, from history),
    ``digest`` and ``compressed_bytes`` (registry), ``push_status``, ``push_bytes`` and
    ``ratio`` (compressed / uncompressed).
    """
    import pandas as pd
    hist = history_df.iloc[::-1].reset_index(drop=True)  # bottom first
    layers = list((manifest or {}).get("layers", []))
    made = ~hist["empty"].astype(bool)
    if manifest is not None and int(made.sum()) != len(layers):
        # "empty" from a 0-byte size misses layers that changed no bytes: use the keyword
        keyword = hist["instruction"].astype(str).str.split().str[0].str.upper()
        made = ~keyword.isin(_EMPTY_KEYWORDS)
    hist = hist[made].reset_index(drop=True)
    out = pd.DataFrame({
        "position": range(len(hist)),
        "instruction": hist["instruction"].astype(str),
        "size_bytes": hist["size_bytes"].astype("Int64"),
        "history_id": hist["image"].astype(str),
    })
    out["step"] = pd.Series([pd.NA] * len(out), dtype="Int64")
    out["cached"] = pd.Series([pd.NA] * len(out), dtype="boolean")
    out["build_seconds"] = pd.Series([float("nan")] * len(out), dtype="float64")
    if build_table is not None and len(build_table):
        # a classic step names its step image (a history row's id); a BuildKit step its
        # layer's diff ID (its history row says <missing>)
        by_id = {_short(r.image_id): r for r in build_table.itertuples()
                 if isinstance(r.image_id, str) and r.image_id}
        layer_ids = list(diff_ids or []) if diff_ids is not None and \
            len(diff_ids) == len(out) else [""] * len(out)
        for i, hid in enumerate(out["history_id"]):
            r = by_id.get(_short(hid)) or by_id.get(_short(layer_ids[i]) if layer_ids[i] else "")
            if r is not None:
                out.loc[i, ["step", "cached", "build_seconds"]] = [r.step, bool(r.cached),
                                                                   float(r.seconds)]
    if manifest is not None and len(layers) != len(out):
        raise ImageArchiveError(
            f"The manifest lists {len(layers)} layers but the history has {len(out)}.",
            "Pass the history and the manifest of the same image (same tag, same push).")
    out["digest"] = [x.get("digest") for x in layers] if layers else None
    out["compressed_bytes"] = pd.Series([x.get("size") for x in layers] if layers
                                        else [pd.NA] * len(out), dtype="Int64")
    push: dict[str, tuple[str, Any]] = {}
    if push_layers_df is not None:
        col = "bytes" if "bytes" in push_layers_df else "bytes_pushed"
        push = {_short(layer): (status, size) for layer, status, size in zip(
            push_layers_df["layer"], push_layers_df["status"], push_layers_df[col],
            strict=True)}
    digests = list(out["digest"]) if layers else [None] * len(out)
    diffs = list(diff_ids or []) if diff_ids is not None and len(diff_ids) == len(out) \
        else [None] * len(out)
    rows = [push.get(_short(d) if d else "") or push.get(_short(x) if x else "")
            for d, x in zip(digests, diffs, strict=True)]
    out["push_status"] = [r[0] if r else None for r in rows]
    out["push_bytes"] = pd.Series([r[1] if r else pd.NA for r in rows], dtype="Int64")
    ratio = out["compressed_bytes"].astype("Float64") / out["size_bytes"].astype("Float64")
    out["ratio"] = ratio.where(out["size_bytes"].fillna(0) > 0)
    return out.drop(columns=["history_id"])
