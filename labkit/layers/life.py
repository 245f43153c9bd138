"""Each layer's life: built or cached, its size, its push, and the blob the registry holds."""

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
    ``cached``, ``build_seconds``, ``size_bytes`` (what ``docker history`` says: the
    unpacked layer, counted in disk blocks on the containerd store), ``push_status``,
    ``push_bytes``, then the blob the registry holds: ``blob_bytes``, ``media_type``,
    ``compressed`` (its digest differs from the layer's diff ID: a plain tar blob *is* the
    layer, so its digest is the diff ID), ``digest`` and ``diff_id``.
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
    out["blob_bytes"] = pd.Series([x.get("size") for x in layers] if layers
                                  else [pd.NA] * len(out), dtype="Int64")
    out["media_type"] = [x.get("media_type") for x in layers] if layers else None
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
    out["diff_id"] = diffs
    out["compressed"] = pd.Series([d != x if d and x else pd.NA
                                   for d, x in zip(digests, diffs, strict=True)],
                                  dtype="boolean")
    return out[["position", "instruction", "step", "cached", "build_seconds", "size_bytes",
                "push_status", "push_bytes", "blob_bytes", "media_type", "compressed",
                "digest", "diff_id"]]


def media_type_compression(media_type: str | None) -> str | None:
    """What a layer's media type says of its blob: ``"gzip"``, ``"zstd"``, ``"none"`` (a
    plain tar), or None when it is not a layer media type this knows.

    Docker's own (``application/vnd.docker.image.rootfs.diff.tar.gzip``) and OCI's
    (``application/vnd.oci.image.layer.v1.tar``, ``+gzip``, ``+zstd``) are read.
    """
    text = (media_type or "").lower()
    if text.endswith(("+gzip", ".tar.gzip")):
        return "gzip"
    if text.endswith(("+zstd", ".tar.zstd")):
        return "zstd"
    if text.endswith((".layer.v1.tar", ".rootfs.diff.tar")):
        return "none"
    return None
