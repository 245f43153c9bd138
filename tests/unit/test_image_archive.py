"""The archive reader on real ``docker image save`` output (tests/unit/data/saved_*.tar,
made by record_saved_image.py there): the layers and files of both layouts, and a
truncated or damaged archive refused with ImageArchiveError, never read in part."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import tarfile
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from labkit.images.archive_stream import ImageArchiveError
from labkit.layers.analysis import analyze_archive

DATA = Path(__file__).parent / "data"
TAG = "labkit-recorded/tiny:latest"
RECORDED = {"saved_legacy_20.10.tar": "docker", "saved_oci_28.5.tar": "oci"}
# What record_saved_image.py put in each layer: path -> size (directories left out)
LAYER_FILES = [{"/hello.txt": 6, "/dir/a.txt": 101}, {"/hello.txt": 13, "/dir/b.txt": 301}]


def chunks(data: bytes, size: int = 777) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def members(data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    """The archive read by Python's own tarfile: the oracle for the streaming reader."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar]


def uncompressed(blob: bytes) -> bytes:
    return gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob


def is_layer(m: tarfile.TarInfo, blob: bytes) -> bool:
    name = m.name.removeprefix("./")
    return m.isfile() and (name.endswith("layer.tar") or (
        name.startswith("blobs/") and not blob.startswith(b"{")))


def rewrite(data: bytes, change: Callable[[tarfile.TarInfo, bytes], bytes | None]) -> bytes:
    """The archive with each member's content replaced by ``change`` (None drops it)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as out:
        for m, blob in members(data):
            new = change(m, blob) if m.isfile() else blob
            if new is None:
                continue
            m.size = len(new)
            out.addfile(m, io.BytesIO(new) if m.isfile() else None)
    return buf.getvalue()


def end_of_archive(data: bytes) -> int:
    """Offset just past the first end-of-archive block: every shorter prefix is cut."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        last = tar.getmembers()[-1]
    return last.offset_data + -(-last.size // 512) * 512 + 512


@pytest.fixture(params=sorted(RECORDED))
def recorded(request: pytest.FixtureRequest) -> tuple[str, bytes]:
    return request.param, (DATA / request.param).read_bytes()


# ---------------------------------------------------------------- what a real save holds


def test_both_recorded_layouts_are_here() -> None:
    layouts = {name: ("index.json" in {m.name for m, _ in members((DATA / name).read_bytes())})
               for name in RECORDED}
    assert layouts == {"saved_legacy_20.10.tar": False, "saved_oci_28.5.tar": True}


def test_recorded_save_gives_its_layers_and_files(recorded) -> None:
    name, data = recorded
    result = analyze_archive(chunks(data), image=TAG)
    assert result.layout == RECORDED[name]
    assert [x.instruction.split()[0] for x in result.layers] == ["COPY", "COPY"]
    files = result.files[result.files["kind"] == "file"]
    got = [dict(zip(f["path"], f["size_bytes"], strict=True))
           for _, f in files.groupby("layer")]
    assert got == LAYER_FILES
    hello = files.set_index(["layer", "path"]).loc[(1, "/hello.txt")]
    assert (hello["change"], hello["lower_layer"], hello["lower_bytes"]) == ("modified", 0, 6)
    assert (result.total_bytes, result.visible_bytes, result.wasted_bytes) == (421, 415, 6)


def test_recorded_save_matches_pythons_tarfile(recorded) -> None:
    """Diff IDs, tar sizes and entries agree with tarfile reading the same archive."""
    _, data = recorded
    result = analyze_archive(io.BytesIO(data), image=TAG)
    layer_tars = {m.name: uncompressed(blob) for m, blob in members(data) if is_layer(m, blob)}
    by_digest = {"sha256:" + hashlib.sha256(t).hexdigest(): t for t in layer_tars.values()}
    assert {x.diff_id for x in result.layers} == set(by_digest)
    for layer in result.layers:
        tar = by_digest[layer.diff_id]  # KeyError: a diff ID that is no layer's digest
        with tarfile.open(fileobj=io.BytesIO(tar)) as t:
            expected = sorted("/" + m.name.strip("/") for m in t if not m.isdir())
        got = result.files[(result.files["layer"] == layer.index)
                           & (result.files["kind"] != "dir")]["path"]
        assert sorted(got) == expected


def test_recorded_image_id_is_the_config_digest(recorded) -> None:
    _, data = recorded
    result = analyze_archive(io.BytesIO(data), image=TAG)
    configs = [blob for _, blob in members(data) if b'"rootfs"' in blob[:4096]
               and blob.startswith(b"{")]
    assert result.image_id in {"sha256:" + hashlib.sha256(c).hexdigest() for c in configs}


# ---------------------------------------------------------------- truncated: refused


def test_every_truncation_is_refused(recorded) -> None:
    _, data = recorded
    end = end_of_archive(data)
    cuts = sorted({*range(0, end, 37), *range(511, end, 512), *range(512, end, 512), end - 1})
    for cut in cuts:
        with pytest.raises(ImageArchiveError) as caught:
            analyze_archive(chunks(data[:cut]), image=TAG)
        assert "ends early" in caught.value.message, (cut, caught.value.message)
        assert "docker image save" in (caught.value.hint or "")


def test_the_end_of_archive_block_completes_the_archive(recorded) -> None:
    _, data = recorded
    whole = analyze_archive(io.BytesIO(data), image=TAG)
    cut = analyze_archive(io.BytesIO(data[:end_of_archive(data)]), image=TAG)
    assert cut.files.equals(whole.files)


# ---------------------------------------------------------------- damaged: refused


def test_a_damaged_archive_header_is_refused(recorded) -> None:
    _, data = recorded
    for m, _ in members(data):
        bad = bytearray(data)
        bad[m.offset] ^= 0x20  # the name's first byte: the header's checksum no longer holds
        with pytest.raises(ImageArchiveError, match="damaged: a tar header does not parse"):
            analyze_archive(io.BytesIO(bytes(bad)), image=TAG)


def test_a_damaged_layer_header_names_the_layer() -> None:
    data = (DATA / "saved_legacy_20.10.tar").read_bytes()

    def damage(m: tarfile.TarInfo, blob: bytes) -> bytes:
        return bytes([blob[0] ^ 0x20]) + blob[1:] if is_layer(m, blob) else blob

    with pytest.raises(ImageArchiveError, match=r"layer .*/layer\.tar") as caught:
        analyze_archive(io.BytesIO(rewrite(data, damage)), image=TAG)
    assert "damaged" in caught.value.message


def test_a_layer_cut_inside_its_own_tar_is_refused() -> None:
    """The archive is whole but a layer tar ends inside a file's data."""
    data = (DATA / "saved_legacy_20.10.tar").read_bytes()
    cut = rewrite(data, lambda m, b: b[:512 + 600] if is_layer(m, b) else b)
    with pytest.raises(ImageArchiveError, match="runs past the end of the layer"):
        analyze_archive(io.BytesIO(cut), image=TAG)


def test_damaged_compressed_data_is_refused() -> None:
    data = (DATA / "saved_legacy_20.10.tar").read_bytes()

    def gzip_then_damage(m: tarfile.TarInfo, blob: bytes) -> bytes:
        if not is_layer(m, blob):
            return blob
        packed = bytearray(gzip.compress(blob, mtime=0))
        packed[len(packed) // 2] ^= 0xFF
        return bytes(packed)

    with pytest.raises(ImageArchiveError, match="damaged"):
        analyze_archive(io.BytesIO(rewrite(data, gzip_then_damage)), image=TAG)


def test_a_gzip_layer_cut_short_is_refused() -> None:
    data = (DATA / "saved_legacy_20.10.tar").read_bytes()
    cut = rewrite(data, lambda m, b: gzip.compress(b)[:-12] if is_layer(m, b) else b)
    with pytest.raises(ImageArchiveError, match="gzip data ends early"):
        analyze_archive(io.BytesIO(cut), image=TAG)


def test_a_manifest_that_is_not_json_is_named() -> None:
    data = (DATA / "saved_legacy_20.10.tar").read_bytes()
    bad = rewrite(data, lambda m, b: b[:-20] if m.name == "manifest.json" else b)
    with pytest.raises(ImageArchiveError, match="manifest.json is not valid JSON"):
        analyze_archive(io.BytesIO(bad), image=TAG)


def test_a_manifest_without_its_fields_is_refused() -> None:
    data = (DATA / "saved_legacy_20.10.tar").read_bytes()
    bad = rewrite(data, lambda m, b: b'[{"RepoTags": []}]' if m.name == "manifest.json" else b)
    with pytest.raises(ImageArchiveError, match="lacks a field"):
        analyze_archive(io.BytesIO(bad), image=TAG)


def test_a_missing_layer_is_refused(recorded) -> None:
    _, data = recorded
    first = next(m.name for m, blob in members(data) if is_layer(m, blob))
    with pytest.raises(ImageArchiveError, match="does not contain it"):
        analyze_archive(io.BytesIO(rewrite(data, lambda m, b: None if m.name == first else b)),
                        image=TAG)


# ---------------------------------------------------------------- compressed and extra blobs


@pytest.mark.parametrize("compress", [lambda b: gzip.compress(b, mtime=0), bz2.compress,
                                      lzma.compress], ids=["gzip", "bzip2", "xz"])
def test_compressed_layers_give_the_same_files(compress) -> None:
    data = (DATA / "saved_legacy_20.10.tar").read_bytes()
    packed = rewrite(data, lambda m, b: compress(b) if is_layer(m, b) else b)
    assert analyze_archive(chunks(packed), image=TAG).files.equals(
        analyze_archive(io.BytesIO(data), image=TAG).files)


def test_a_zstd_layer_says_what_to_do() -> None:
    data = (DATA / "saved_legacy_20.10.tar").read_bytes()
    zstd = rewrite(data, lambda m, b: b"\x28\xb5\x2f\xfd" + b if is_layer(m, b) else b)
    with pytest.raises(ImageArchiveError, match="zstd") as caught:
        analyze_archive(io.BytesIO(zstd), image=TAG)
    assert "gzip" in (caught.value.hint or "")


def test_an_unreadable_blob_no_manifest_names_is_ignored() -> None:
    data = (DATA / "saved_oci_28.5.tar").read_bytes()
    buf = io.BytesIO(data[:end_of_archive(data) - 512])  # the archive without its end block
    buf.seek(0, io.SEEK_END)
    junk = b"\x1f\x8b not gzip at all" * 10
    info = tarfile.TarInfo("blobs/sha256/" + hashlib.sha256(junk).hexdigest())
    info.size = len(junk)
    buf.write(info.tobuf(format=tarfile.PAX_FORMAT) + junk + bytes(-len(junk) % 512 + 1024))
    assert analyze_archive(io.BytesIO(buf.getvalue()), image=TAG).files.equals(
        analyze_archive(io.BytesIO(data), image=TAG).files)


def _zeros_layer_archive(size: int) -> bytes:
    """The recorded legacy save with one more gzip layer holding ``size`` zero bytes."""
    data = (DATA / "saved_legacy_20.10.tar").read_bytes()
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as t:
        info = tarfile.TarInfo("zeros")
        info.size = size
        t.addfile(info, io.BytesIO(bytes(size)))
    blob = gzip.compress(tar.getvalue(), compresslevel=1, mtime=0)

    def extend(m: tarfile.TarInfo, b: bytes) -> bytes:
        if m.name != "manifest.json":
            return b
        manifest = json.loads(b)
        manifest[0]["Layers"][-1] = "zeros/layer.tar"
        return json.dumps(manifest).encode()

    out = rewrite(data, extend)
    cut = end_of_archive(out) - 512
    info = tarfile.TarInfo("zeros/layer.tar")
    info.size = len(blob)
    return out[:cut] + info.tobuf() + blob + bytes(-len(blob) % 512 + 1024)


def test_a_gzip_layer_is_read_in_bounded_memory() -> None:
    archive = _zeros_layer_archive(256 << 20)  # 256 MB of zeros, about 1 MB compressed
    tracemalloc.start()
    try:
        result = analyze_archive(chunks(archive, 1 << 16), image=TAG)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.owner("/zeros") == (1, 256 << 20)
    assert peak < 16 << 20
