"""Layer analysis on synthetic image archives built here with tarfile (no engine)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from labkit import layers
from labkit.images.archive import chain_ids, instruction_of
from labkit.images.archive_stream import ImageArchiveError
from labkit.layers import cow, sharing
from labkit.layers.analysis import analyze_archive
from labkit.render import layer_plots, widgets

from .conftest import FakeClient

# ---------------------------------------------------------------- synthetic archives

# (path, size) adds a file; (path, None) a directory; ("hardlink", path, target) a hard link
L0 = [("etc", None), ("etc/a", 100), ("dir", None), ("dir/x", 10), ("dir/y", 20),
      ("big", 1000)]
L1 = [("etc/a", 150), (".wh.big", 0), ("new", 5)]
L2 = [("dir", None), ("dir/.wh..wh..opq", 0), ("dir/z", 7), ("etc/a", 200)]
L3 = [("big", 50), ("hardlink", "lnk", "etc/a")]
HISTORY = [
    {"created_by": "/bin/sh -c #(nop) ADD file:abc in / ", "created": "t0"},
    {"created_by": "/bin/sh -c #(nop)  ENV X=1", "empty_layer": True},
    {"created_by": "/bin/sh -c echo one", "created": "t1"},
    {"created_by": "/bin/sh -c #(nop) COPY file:def in /etc/a ", "created": "t2"},
    {"created_by": "RUN /bin/sh -c echo three # buildkit", "created": "t3"},
    {"created_by": "/bin/sh -c #(nop)  CMD [\"python\"]", "empty_layer": True},
]


def layer_tar(entries: list, gz: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            if e[0] == "hardlink":
                info = tarfile.TarInfo(e[1])
                info.type, info.linkname = tarfile.LNKTYPE, e[2]
                tar.addfile(info)
                continue
            path, size = e
            info = tarfile.TarInfo(path)
            if size is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = size
                tar.addfile(info, io.BytesIO(b"x" * size))
    data = buf.getvalue()
    return gzip.compress(data) if gz else data


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def legacy_archive(stack: list[list], history: list[dict] = HISTORY,
                   duplicate_symlink: bool = False) -> bytes:
    """A `docker save` (Docker <= 24) archive: dirs in name order, manifest.json LAST."""
    tars = [layer_tar(e) for e in stack]
    ids = [hashlib.sha256(f"v1-{i}".encode()).hexdigest() for i in range(len(tars))]
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [sha(t) for t in tars]},
                         "history": history}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add(tar, config_name, config)
        for lid, data in sorted(zip(ids, tars, strict=True)):  # name order, not rootfs order
            if duplicate_symlink and data == tars[0] and lid != ids[0]:
                info = tarfile.TarInfo(f"{lid}/layer.tar")
                info.type, info.linkname = tarfile.SYMTYPE, f"../{ids[0]}/layer.tar"
                tar.addfile(info)
                continue
            _add(tar, f"{lid}/VERSION", b"1.0")
            _add(tar, f"{lid}/json", b'{"id": "%s"}' % lid.encode())
            _add(tar, f"{lid}/layer.tar", data)
        manifest = [{"Config": config_name, "RepoTags": ["h5/synthetic:latest"],
                     "Layers": [f"{lid}/layer.tar" for lid in ids]}]
        _add(tar, "manifest.json", json.dumps(manifest).encode())
        _add(tar, "repositories", b'{"h5/synthetic": {"latest": "x"}}')
    return buf.getvalue()


def oci_archive(stack: list[list], history: list[dict] = HISTORY, gz: bool = False) -> bytes:
    """An OCI image layout archive (index.json -> manifest -> config/layers), no manifest.json."""
    raw = [layer_tar(e) for e in stack]
    blobs = [layer_tar(e, gz=gz) for e in stack]
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [sha(t) for t in raw]},
                         "history": history}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "config": {"digest": sha(config), "size": len(config)},
        "layers": [{"digest": sha(b), "size": len(b)} for b in blobs]}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"digest": sha(manifest), "size": len(manifest)}]}).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for data in [*blobs, config, manifest]:
            _add(tar, "blobs/sha256/" + sha(data).split(":")[1], data)
        _add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        _add(tar, "index.json", index)
    return buf.getvalue()


def chunks(data: bytes, size: int = 777) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


STACK = [L0, L1, L2, L3]


# ---------------------------------------------------------------- layers and waste


@pytest.fixture(scope="module")
def result() -> layers.ImageLayers:
    return analyze_archive(chunks(legacy_archive(STACK)), image="h5/synthetic:latest")


def test_layers_come_in_rootfs_order_even_when_manifest_is_last(result):
    raw = [layer_tar(e) for e in STACK]
    assert [x.diff_id for x in result.layers] == [sha(t) for t in raw]


def test_instructions_skip_empty_layers(result):
    assert [x.instruction for x in result.layers] == [
        "ADD file:abc in /", "RUN echo one", "COPY file:def in /etc/a", "RUN echo three"]


def test_total_visible_and_wasted_bytes_are_exact(result):
    assert result.total_bytes == 100 + 10 + 20 + 1000 + 150 + 5 + 7 + 200 + 50
    assert result.visible_bytes == 200 + 5 + 7 + 50
    assert result.wasted_bytes == (100 + 150) + 1000 + 10 + 20


def test_efficiency_is_visible_over_total(result):
    assert result.efficiency == pytest.approx(262 / 1542)


def test_per_layer_wasted_bytes_sum_to_the_image_waste(result):
    assert [x.wasted_bytes for x in result.layers] == [1130, 150, 0, 0]


def test_modified_file_names_the_lower_layer(result):
    rows = result.files[(result.files["path"] == "/etc/a") & (result.files["layer"] == 1)]
    row = rows.iloc[0]
    assert (row["change"], row["lower_layer"], row["lower_bytes"]) == ("modified", 0, 100)


def test_whiteout_counts_the_bytes_it_hides(result):
    row = result.files[result.files["change"] == "deleted"].iloc[0]
    assert (row["layer"], row["path"], row["lower_bytes"]) == (1, "/big", 1000)


def test_opaque_dir_hides_lower_contents(result):
    row = result.files[result.files["change"] == "opaque"].iloc[0]
    assert (row["layer"], row["path"], row["lower_bytes"]) == (2, "/dir", 30)


def test_file_recreated_after_deletion_is_added(result):
    row = result.files[(result.files["path"] == "/big") & (result.files["layer"] == 3)].iloc[0]
    assert row["change"] == "added"


def test_layer_counts(result):
    layer1 = result.layers[1]
    assert (layer1.added, layer1.modified, layer1.deleted) == (1, 1, 1)
    assert (layer1.added_bytes, layer1.modified_bytes, layer1.deleted_bytes) == (5, 150, 1000)


def test_hardlink_counts_no_bytes(result):
    row = result.files[result.files["path"] == "/lnk"].iloc[0]
    assert (row["kind"], row["size_bytes"]) == ("hardlink", 0)


def test_waste_table_lists_each_path_once(result):
    waste = result.waste_table().set_index("path")["wasted_bytes"].to_dict()
    assert waste == {"/big": 1000, "/etc/a": 250, "/dir/y": 20, "/dir/x": 10}


def test_owner_is_the_visible_copy(result):
    assert result.owner("/etc/a") == (2, 200)
    assert result.owner("dir/x") is None


def test_layers_table_columns(result):
    table = result.layers_table()
    assert list(table.columns) == layers.LAYER_COLUMNS
    assert table["size_bytes"].tolist() == [1130, 155, 207, 50]


def test_image_id_from_config_name(result):
    assert result.image_id.startswith("sha256:") and len(result.image_id) == 71


def test_oci_layout_gives_the_same_files():
    legacy = analyze_archive(io.BytesIO(legacy_archive(STACK)))
    oci = analyze_archive(chunks(oci_archive(STACK)))
    assert oci.layout == "oci"
    assert oci.files.equals(legacy.files)


def test_gzip_oci_blobs_are_decompressed():
    oci = analyze_archive(chunks(oci_archive(STACK, gz=True)))
    assert oci.wasted_bytes == 1280


def test_symlinked_duplicate_layer_is_followed():
    stack = [L0, L1, L0]
    result = analyze_archive(io.BytesIO(legacy_archive(stack, duplicate_symlink=True)))
    assert [x.files for x in result.layers] == [4, 3, 4]


def test_history_shorter_than_layers_leaves_instructions_blank():
    result = analyze_archive(io.BytesIO(legacy_archive(STACK, history=[])))
    assert [x.instruction for x in result.layers] == ["", "", "", ""]


def test_archive_without_manifest_raises():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add(tar, "abc/layer.tar", layer_tar(L0))
    with pytest.raises(ImageArchiveError):
        analyze_archive(io.BytesIO(buf.getvalue()))


def test_instruction_of():
    assert instruction_of("/bin/sh -c pip install flask") == "RUN pip install flask"
    assert instruction_of("", "Imported from -") == "(Imported from -)"


def test_chain_ids_name_a_layer_with_everything_below_it():
    a, b, c = ("sha256:" + ch * 64 for ch in "abc")
    stack, prefix, other = chain_ids([a, b, c]), chain_ids([a, b]), chain_ids([c, b, c])
    assert stack[0] == a  # the bottom layer: named by its content alone
    assert stack[:2] == prefix  # the same layers below: the same names
    assert stack[1] != other[1] and stack[2] != other[2]  # same content, other base
    assert len(set(stack + other)) == 6  # no name repeats across positions
    assert all(x.startswith("sha256:") and len(x) == 71 for x in stack + other)


# ---------------------------------------------------------------- streaming, flat memory


def big_archive(file_bytes: int, files: int = 4) -> Iterator[bytes]:
    """A legacy archive streamed lazily: one layer of ``files`` files of ``file_bytes``."""
    zero = bytes(1 << 20)

    def pad(n: int) -> bytes:
        return bytes(-n % 512)

    headers = []
    for i in range(files):
        info = tarfile.TarInfo(f"data/f{i}")
        info.size = file_bytes
        headers.append(info.tobuf(format=tarfile.GNU_FORMAT))
    inner_size = sum(len(h) + file_bytes + len(pad(file_bytes)) for h in headers) + 1024
    config = json.dumps({"rootfs": {"diff_ids": ["sha256:" + "0" * 64]},
                         "history": [{"created_by": "/bin/sh -c make big"}]}).encode()

    def member(name: str, size: int) -> bytes:
        info = tarfile.TarInfo(name)
        info.size = size
        return info.tobuf(format=tarfile.GNU_FORMAT)

    yield member("c.json", len(config)) + config + pad(len(config))
    yield member("l/layer.tar", inner_size)
    for h in headers:
        yield h
        left = file_bytes
        while left:
            n = min(left, len(zero))
            yield zero[:n]
            left -= n
        yield pad(file_bytes)
    yield bytes(1024) + pad(inner_size)
    manifest = json.dumps([{"Config": "c.json", "Layers": ["l/layer.tar"]}]).encode()
    yield member("manifest.json", len(manifest)) + manifest + pad(len(manifest))
    yield bytes(1024)


def _peak(file_bytes: int) -> tuple[int, int]:
    tracemalloc.start()
    try:
        result = analyze_archive(big_archive(file_bytes))
        return tracemalloc.get_traced_memory()[1], result.total_bytes
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_image_size():
    small_peak, small_total = _peak(8 << 20)
    big_peak, big_total = _peak(64 << 20)
    assert (small_total, big_total) == (4 * (8 << 20), 4 * (64 << 20))
    assert big_peak < 16 << 20
    assert big_peak < small_peak + (2 << 20)


# ---------------------------------------------------------------- fake engine


class FakeImage:
    id = "sha256:" + "f" * 64
    attrs: dict = {}


class FakeImages:
    def get(self, name):
        if name != "h5/synthetic:latest":
            import docker

            raise docker.errors.ImageNotFound("no")
        return FakeImage()


class FakeAPI:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.asked: list[str] = []

    def get_image(self, name, chunk_size=None):
        self.asked.append(name)
        return chunks(self.data, 4096)


def client_saving(data: bytes) -> FakeClient:
    """A client whose ``docker image save`` streams ``data``."""
    return FakeClient(FakeAPI(data), images=FakeImages())


def test_analyze_streams_from_the_engine():
    client = client_saving(legacy_archive(STACK))
    result = layers.analyze("h5/synthetic:latest", client=client)
    assert client.api.asked == ["h5/synthetic:latest"]
    assert result.image_id == FakeImage.id
    assert str(result.command) == "docker image save h5/synthetic:latest"


def test_analyze_missing_image_raises_image_missing():
    from labkit.engine.errors import ImageMissing

    with pytest.raises(ImageMissing):
        layers.analyze("nope", client=client_saving(b""))


# ---------------------------------------------------------------- lifecycle join


def test_lifecycle_joins_build_history_push_and_manifest():
    build = pd.DataFrame({"step": [1, 2, 3, 4], "instruction": [
        "FROM base", "RUN pip install flask", "CMD [\"python\",\"app.py\"]", "COPY app.py /"],
        "cached": [True, True, False, False], "seconds": [0.0, 0.01, 0.05, 0.1],
        "image_id": ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc", "dddddddddddd"]})
    history = pd.DataFrame({  # newest first, as `docker history` prints it
        "image": ["dddddddddddd", "cccccccccccc", "bbbbbbbbbbbb", "<missing>"],
        "instruction": ["COPY app.py /", "CMD", "RUN pip install flask", "ADD rootfs"],
        "size_bytes": [120, 0, 9_000_000, 180_000_000], "created": ["t"] * 4,
        "empty": [False, True, False, False]})
    manifest = {"layers": [{"digest": "sha256:" + "1" * 64, "size": 60_000_000},
                           {"digest": "sha256:" + "2" * 64, "size": 3_000_000},
                           {"digest": "sha256:" + "3" * 64, "size": 210}]}
    push = pd.DataFrame({"layer": ["1" * 12, "2" * 12, "3" * 12],
                         "status": ["mounted", "exists", "pushed"], "bytes": [0, 0, 210]})
    out = layers.lifecycle(build, history, push, manifest)
    assert out["instruction"].tolist() == ["ADD rootfs", "RUN pip install flask", "COPY app.py /"]
    assert out["push_status"].tolist() == ["mounted", "exists", "pushed"]
    assert out["cached"].tolist()[1:] == [True, False]
    assert out["blob_bytes"].tolist() == [60_000_000, 3_000_000, 210]
    assert "ratio" not in out  # blob size over disk size is no compression ratio
    assert out["compressed"].isna().all()  # no diff IDs given: nothing to compare


def _recorded_push(name: str) -> tuple[pd.DataFrame, dict, list[str]]:
    data = json.loads((Path(__file__).parent / "data" / name).read_text())
    # recorded when history's IMAGE column was called "layer" (06 names it "image" now)
    history = pd.DataFrame(data["history"]).rename(columns={"layer": "image"}).assign(
        created="t")
    return history, {"layers": data["manifest_layers"]}, data["diff_ids"]


def test_lifecycle_on_containerd_shows_plain_tar_blobs_as_uncompressed():
    """Recorded on Docker 28.5 (containerd store, BuildKit): the stand-in base's layers went
    up as the plain tar blobs its content store holds (digest == diff ID), BuildKit's own
    layers as gzip. A registry stores whatever blob the client pushed."""
    history, manifest, diff_ids = _recorded_push("push_containerd_layers.json")
    out = layers.lifecycle(None, history, None, manifest, diff_ids)
    said = [layers.media_type_compression(m) for m in out["media_type"]]
    assert said == ["none"] * 6 + ["gzip"] * 2
    assert out["compressed"].tolist() == [False] * 6 + [True] * 2
    assert out["compressed"].tolist() == [s != "none" for s in said]
    plain = out[~out["compressed"].astype(bool)]
    assert (plain["digest"] == plain["diff_id"]).all()
    assert (plain["blob_bytes"] % 512 == 0).all()  # tar's 512-byte blocks, no compression
    # the top layer, app.py: 8 kB of disk blocks in history, a 222-byte gzip blob
    assert (out["size_bytes"].iloc[-1], out["blob_bytes"].iloc[-1]) == (8192, 222)


def test_lifecycle_on_the_classic_store_shows_every_blob_gzip_compressed():
    """Recorded on Docker 20.10 (overlay2, classic builder): Docker compresses each layer
    with gzip as it pushes, so no blob's digest is its layer's diff ID; and `docker history`
    counts the files' bytes there (app.py: 171 B), not disk blocks."""
    history, manifest, diff_ids = _recorded_push("push_classic_layers.json")
    out = layers.lifecycle(None, history, None, manifest, diff_ids)
    assert {layers.media_type_compression(m) for m in out["media_type"]} == {"gzip"}
    assert out["compressed"].all() and not (out["digest"] == out["diff_id"]).any()
    assert out["size_bytes"].iloc[-1] == 171


def test_media_type_compression_reads_docker_and_oci_types():
    assert layers.media_type_compression(
        "application/vnd.docker.image.rootfs.diff.tar.gzip") == "gzip"
    assert layers.media_type_compression("application/vnd.oci.image.layer.v1.tar+zstd") == "zstd"
    assert layers.media_type_compression("application/vnd.oci.image.layer.v1.tar") == "none"
    assert layers.media_type_compression("application/vnd.oci.image.config.v1+json") is None
    assert layers.media_type_compression(None) is None


def test_lifecycle_without_push_or_build():
    history = pd.DataFrame({"image": ["<missing>"], "instruction": ["ADD rootfs"],
                            "size_bytes": [10], "created": ["t"], "empty": [False]})
    out = layers.lifecycle(None, history, None, None)
    assert out["push_status"].tolist() == [None]


def test_lifecycle_refuses_mismatched_manifest():
    history = pd.DataFrame({"image": ["<missing>"], "instruction": ["ADD rootfs"],
                            "size_bytes": [10], "created": ["t"], "empty": [False]})
    with pytest.raises(ImageArchiveError):
        layers.lifecycle(None, history, None, {"layers": []})


# ---------------------------------------------------------------- sharing


def test_sharing_counts_chain_shared_layers_only():
    d = ["sha256:" + c * 64 for c in "abcd"]
    a = sharing.ImageStack("one", [d[0], d[1]], [100, 10], ["base", "RUN x"])
    b = sharing.ImageStack("two", [d[0], d[2], d[1]], [100, 5, 10], ["base", "RUN y", "RUN x"])
    s = sharing.compare(a, b)
    assert (s.shared_layers, s.shared_bytes) == (1, 100)
    same_content_not_shared = s.table[(s.table["image"] == "two") & (s.table["position"] == 2)]
    assert same_content_not_shared[["shared", "same_content"]].values.tolist() == [[False, True]]
    assert s.summary()["size_bytes"].tolist() == [110, 115, 225, 125]


def test_sharing_from_analyses():
    one = analyze_archive(io.BytesIO(legacy_archive(STACK)), image="one")
    two = analyze_archive(io.BytesIO(legacy_archive(STACK[:2], history=HISTORY[:3])),
                          image="two")
    s = sharing.compare(one, two)
    assert (s.shared_layers, s.shared_bytes) == (2, 1130 + 155)


# ---------------------------------------------------------------- cow with a fake engine


class FakeDiffAPI:
    def diff(self, cid):
        return [{"Path": "/etc", "Kind": 0}, {"Path": "/etc/a", "Kind": 0},
                {"Path": "/big", "Kind": 2}, {"Path": "/tmp/new", "Kind": 1}]

    def containers(self, all=False, size=False, filters=None):
        return [{"Names": ["/h5-x"], "SizeRw": 4096, "SizeRootFs": 200_000}]


class FakeContainer(cow.Container):
    def __init__(self) -> None:
        self.attrs = {"Id": "c" * 64, "Image": "sha256:" + "f" * 64}




def test_cow_diff_names_lower_layers(result, monkeypatch):
    sizes = {"/etc": {"mode": 1 << 31, "size": 4096}, "/etc/a": {"mode": 0o644, "size": 201},
             "/tmp/new": {"mode": 0o644, "size": 3}}
    monkeypatch.setattr(cow, "path_stat", lambda c, p, client=None: sizes.get(p))
    df = cow.diff(FakeContainer(), analysis=result, client=FakeClient(FakeDiffAPI()))
    by_path = df.set_index("path")
    assert by_path.loc["/etc/a", ["change", "size_bytes", "lower_layer", "lower_bytes"]
                       ].tolist() == ["changed", 201, 2, 200]
    assert by_path.loc["/etc/a", "lower_instruction"] == "COPY file:def in /etc/a"
    assert by_path.loc["/big", ["change", "lower_layer"]].tolist() == ["deleted", 3]
    assert pd.isna(by_path.loc["/tmp/new", "lower_layer"])
    assert pd.isna(by_path.loc["/etc", "size_bytes"])


def test_writable_layer_reads_size_rw():
    w = cow.writable_layer("h5-x", client=FakeClient(FakeDiffAPI()))
    assert (w.container, w.size_rw, w.size_root_fs) == ("h5-x", 4096, 200_000)


# ---------------------------------------------------------------- plots and widgets


def test_plots_leave_global_settings_alone(result):
    before = dict(matplotlib.rcParams)
    ax = layer_plots.plot_layer_sizes(result.layers_table())
    assert len(ax.patches) == 8  # 4 size bars + 4 wasted overlays
    d = ["sha256:" + c * 64 for c in "ab"]
    s = sharing.compare(sharing.ImageStack("one", d[:1], [100], ["base"]),
                        sharing.ImageStack("two", d, [100, 5], ["base", "RUN"]))
    ax2 = layer_plots.plot_sharing(s.table)
    assert len(ax2.patches) == 3
    demo = pd.DataFrame({"containers": [1, 5], "start_seconds": [0.2, 1.0],
                         "size_rw_bytes": [4096, 20480],
                         "full_copies_bytes": [187_000_000, 935_000_000]})
    ax3 = layer_plots.plot_cow_demo(demo)
    assert len(ax3.patches) == 4
    assert dict(matplotlib.rcParams) == before
    import matplotlib.pyplot as plt

    plt.close("all")


def test_explorer_bundle_has_static_html_and_widget(result):
    ex = widgets.LayerExplorer(analyses={"h5/synthetic:latest": result})
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "COPY file:def in /etc/a" in bundle["text/html"]
    assert "/etc/a" in bundle["text/html"]


def test_explorer_without_ipywidgets_is_static(result, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_widgets(name, *args, **kwargs):
        if name == "ipywidgets":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_widgets)
    bundle = widgets.LayerExplorer(analyses={"x": result})._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}


def test_lifecycle_keeps_zero_byte_layers_that_the_manifest_lists():
    history = pd.DataFrame({  # `empty` from a 0-byte size also flags the RUN that wrote nothing
        "image": ["b" * 12, "c" * 12, "<missing>"],
        "instruction": ["CMD [\"python\"]", "RUN true", "ADD rootfs"],
        "size_bytes": [0, 0, 10], "created": ["t"] * 3, "empty": [True, True, False]})
    manifest = {"layers": [{"digest": "sha256:" + "1" * 64, "size": 5},
                           {"digest": "sha256:" + "2" * 64, "size": 32}]}
    push = pd.DataFrame({"layer": ["2" * 12, "1" * 12], "status": ["pushed", "exists"],
                         "bytes_pushed": [32, 0], "bytes_total": [32, 5]})
    out = layers.lifecycle(None, history, push, manifest)
    assert out["instruction"].tolist() == ["ADD rootfs", "RUN true"]
    assert out["push_status"].tolist() == ["exists", "pushed"]
    assert out["push_bytes"].tolist() == [0, 32]


def test_layers_size_waits_for_a_running_disk_usage():
    import docker

    class Busy:
        calls = 0

        def df(self):
            Busy.calls += 1
            if Busy.calls < 3:
                raise docker.errors.APIError("a disk usage operation is already running")
            return {"LayersSize": 123}

    assert cow.layers_size(Busy()) == 123


def test_a_bare_repository_is_saved_as_its_latest_tag_only() -> None:
    # `docker save REPO` saves every tag of REPO; the analysis must read exactly one image.
    from labkit.layers.analysis import one_image

    assert one_image("student/python-hello-world") == "student/python-hello-world:latest"
    assert one_image("localhost:5000/student/app") == "localhost:5000/student/app:latest"
    assert one_image("student/app:scratch-1") == "student/app:scratch-1"
    assert one_image("sha256:" + "a" * 64) == "sha256:" + "a" * 64
    assert one_image("abcdef012345") == "abcdef012345"
    assert one_image("app@sha256:" + "b" * 64) == "app@sha256:" + "b" * 64


def test_an_archive_of_several_images_none_named_is_refused() -> None:
    import io
    import json
    import tarfile

    from labkit.images.archive_stream import ImageArchiveError

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        config = json.dumps({"rootfs": {"diff_ids": []}, "history": []}).encode()
        add("a.json", config)
        add("b.json", config)
        add("manifest.json", json.dumps([
            {"Config": "a.json", "RepoTags": ["r:one"], "Layers": []},
            {"Config": "b.json", "RepoTags": ["r:two"], "Layers": []}]).encode())
    with pytest.raises(ImageArchiveError, match="2 images"):
        layers.analyze_archive(io.BytesIO(buf.getvalue()), image="r")
    assert layers.analyze_archive(io.BytesIO(buf.getvalue()), image="r:two").layers == []


def test_layer_sizes_legend_covers_no_label():
    import matplotlib.pyplot as plt

    table = pd.DataFrame({"instruction": ["ADD rootfs", "RUN write /blob", "RUN rm /blob"],
                          "size_bytes": [160_000_000, 20_000_000, 0],
                          "wasted_bytes": [800_000, 20_000_000, 0]})
    ax = layer_plots.plot_layer_sizes(table)
    fig = ax.get_figure()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    texts = [t for t in ax.texts] + list(ax.get_yticklabels()) + [ax.xaxis.label]
    texts += list(ax.get_xticklabels())
    assert texts
    for text in texts:
        assert not legend.overlaps(text.get_window_extent(renderer)), text.get_text()
    plt.close(fig)


def test_archive_ids_follow_index_to_the_image_manifest_and_hash_documents():
    from labkit.images import archive_ids

    config = {"rootfs": {"diff_ids": ["sha256:" + "d" * 64]}}
    cfg, man, att, idx = ("sha256:" + c * 64 for c in "cmai")
    docs = {
        "index.json": {"manifests": [{"digest": idx,
                                      "mediaType": "application/vnd.oci.image.index.v1+json"}]},
        f"blobs/sha256/{'i' * 64}": {"manifests": [
            {"digest": att, "platform": {"os": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
            {"digest": man, "platform": {"os": "linux"}}]},
        f"blobs/sha256/{'m' * 64}": {"config": {"digest": cfg}, "layers": [
            {"digest": "sha256:" + "b" * 64, "size": 10,
             "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}]},
        f"blobs/sha256/{'c' * 64}": config,
    }
    digests = {path: f"sha256:hash-of-{path}" for path in docs}
    ids = archive_ids(docs, digests, config)
    assert ids["config"]["path"] == f"blobs/sha256/{'c' * 64}"
    assert ids["top"]["digest"] == idx
    assert ids["top"]["sha256"] == f"sha256:hash-of-blobs/sha256/{'i' * 64}"
    assert ids["manifest"]["digest"] == man  # the image's, not the attestation's
    assert ids["manifest"]["config_digest"] == cfg
    assert ids["manifest"]["layers"][0]["size"] == 10


def test_archive_ids_of_a_legacy_archive_name_only_the_config():
    from labkit.images import archive_ids

    config = {"rootfs": {"diff_ids": []}}
    ids = archive_ids({"manifest.json": [{}], "abc.json": config}, {"abc.json": "sha256:x"},
                      config)
    assert ids == {"config": {"path": "abc.json", "sha256": "sha256:x"}, "top": None,
                   "manifest": None}


def test_image_ids_diagram_draws_every_layer_on_both_stores():
    import matplotlib.pyplot as plt

    from labkit.render import id_plots

    d = ["sha256:" + c * 64 for c in "12"]
    common = dict(image="h5/app", repo_digests=[], config_digest="sha256:" + "c" * 64,
                  config_sha256="sha256:" + "c" * 64, diff_ids=d, engine_diff_ids=d,
                  chain_ids=d, instructions=["ADD rootfs", "COPY app.py /app.py"])
    classic = layers.ImageIds(image_store="graphdriver", image_id="sha256:" + "c" * 64,
                              top_kind="config", top_sha256="sha256:" + "c" * 64,
                              manifest_digest=None, manifest_sha256=None, blobs=[], **common)
    store = layers.ImageIds(image_store="containerd", image_id="sha256:" + "i" * 64,
                            top_kind="index", top_sha256="sha256:" + "i" * 64,
                            manifest_digest="sha256:" + "m" * 64, manifest_sha256="x",
                            blobs=[layers.Blob(d[0], 100, "application/vnd.oci.image.layer.v1.tar"),
                                   layers.Blob("sha256:" + "9" * 64, 50,
                                               "application/vnd.oci.image.layer.v1.tar+gzip")],
                            **common)
    for ids in (classic, store):
        ax = id_plots.plot_image_ids(ids)
        shown = " ".join(t.get_text() for t in ax.texts)
        assert all(x[7:19] in shown for x in d)
        plt.close(ax.get_figure())
    assert store.table()["compressed"].tolist() == [False, True]
    assert "unzipped, sha256" in " ".join(t.get_text() for t in
                                              id_plots.plot_image_ids(store).texts)
    plt.close("all")
