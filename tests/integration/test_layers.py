"""Layer analysis against a real engine, checked against an independent reading of the tar.

The independent reading saves the image with the docker CLI to a file, unpacks it with
the ``tar`` command, and lists every layer tar with random-access ``tarfile`` (not the
streaming code path labkit uses).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import re
import subprocess
import tarfile
from pathlib import Path

import docker
import pytest

from labkit.engine.config import BASE_IMAGE, settings
from labkit.layers import analysis as layers
from labkit.layers import cow, sharing
from labkit.layers import memo as layer_cache

pytestmark = pytest.mark.integration

APP = 'from flask import Flask\napp = Flask(__name__)\n\n@app.route("/")\ndef hello():\n    ' \
      'return "Hello, World!"\n\nif __name__ == "__main__":\n    app.run(host="0.0.0.0")\n'
DOCKERFILE = (f"FROM {BASE_IMAGE}\nRUN pip install flask\nCMD [\"python\",\"app.py\"]\n"
              "COPY app.py /app.py\n")
OTHER = f"FROM {BASE_IMAGE}\nCOPY note.txt /note.txt\n"


def _build(client: docker.DockerClient, folder: Path, tag: str) -> str:
    image, _ = client.images.build(path=str(folder), tag=tag, labels=settings().labels("app"),
                                   pull=False, rm=True, forcerm=True)
    return image.id


@pytest.fixture(scope="module")
def images(client, tmp_path_factory):
    s = settings()
    app_dir = tmp_path_factory.mktemp("app")
    (app_dir / "app.py").write_text(APP)
    (app_dir / "Dockerfile").write_text(DOCKERFILE)
    other_dir = tmp_path_factory.mktemp("other")
    (other_dir / "note.txt").write_text("another image on the same base\n")
    (other_dir / "Dockerfile").write_text(OTHER)
    tags = {"app": s.image_name("layers-it-app"), "other": s.image_name("layers-it-other")}
    try:
        _build(client, app_dir, tags["app"])
        _build(client, other_dir, tags["other"])
        yield tags
    finally:
        for tag in tags.values():
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def analysis(images, client) -> layers.ImageLayers:
    return layers.analyze(images["app"], client=client)


@pytest.fixture(scope="module")
def independent(images, tmp_path_factory) -> list[dict]:
    """Per layer in manifest order: diff_id, regular files {path: size}, whiteout names."""
    out_dir = tmp_path_factory.mktemp("saved")
    archive = out_dir / "image.tar"
    subprocess.run(["docker", "image", "save", "-o", str(archive), images["app"]], check=True)
    unpacked = out_dir / "x"
    unpacked.mkdir()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(unpacked)], check=True)
    manifest = json.loads((unpacked / "manifest.json").read_text())[0]
    result = []
    for rel in manifest["Layers"]:
        path = unpacked / rel
        # The containerd image store saves the blobs it keeps: gzip-compressed layers. A
        # diff ID is the digest of the uncompressed tar.
        with open(path, "rb") as f:
            compressed = f.read(2) == b"\x1f\x8b"
        digest = hashlib.sha256()
        with (gzip.open if compressed else open)(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        files, whiteouts = {}, set()
        with tarfile.open(path, "r:gz" if compressed else "r:") as tar:
            for m in tar.getmembers():
                name = "/" + m.name.removeprefix("./").strip("/")
                if "/.wh." in name:
                    whiteouts.add(name)
                elif m.isreg():
                    files[name] = m.size
        result.append({"diff_id": "sha256:" + digest.hexdigest(), "files": files,
                       "whiteouts": whiteouts})
    return result


def test_layer_order_matches_the_diff_ids(analysis, independent):
    assert [x.diff_id for x in analysis.layers] == [x["diff_id"] for x in independent]


def test_each_layer_has_the_same_files_and_sizes(analysis, independent):
    for layer, ref in zip(analysis.layers, independent, strict=True):
        df = analysis.files[(analysis.files["layer"] == layer.index)
                            & (analysis.files["kind"] == "file")]
        assert dict(zip(df["path"], df["size_bytes"], strict=True)) == ref["files"]


def test_each_layer_has_the_same_whiteouts(analysis, independent):
    for layer, ref in zip(analysis.layers, independent, strict=True):
        df = analysis.files[(analysis.files["layer"] == layer.index)
                            & analysis.files["change"].isin(["deleted", "opaque"])]
        assert len(df) == len(ref["whiteouts"])


def test_layer_sizes_are_the_sum_of_their_files(analysis, independent):
    assert [x.size_bytes for x in analysis.layers] == [sum(r["files"].values())
                                                       for r in independent]


def test_copy_layer_holds_exactly_app_py(analysis):
    copy = analysis.layers[-1]
    assert copy.instruction.startswith("COPY")
    files = analysis.files_in(copy.index)
    assert files[["path", "size_bytes"]].values.tolist() == [["/app.py", len(APP.encode())]]


def test_pip_layer_adds_flask(analysis):
    pip = next(x for x in analysis.layers if x.instruction == "RUN pip install flask")
    files = analysis.files_in(pip.index)
    flask = files[files["path"].str.contains(r"/(?:site|dist)-packages/flask/__init__\.py$")]
    assert flask["change"].tolist() == ["added"]


def test_history_instructions_match_the_dockerfile(analysis):
    assert [x.instruction.split()[0] for x in analysis.layers[-2:]] == ["RUN", "COPY"]


def test_second_image_shares_every_base_layer(images, client):
    base = client.images.get(BASE_IMAGE).attrs["RootFS"]["Layers"]
    s = sharing.compare(images["app"], images["other"], client=client)
    shared = s.table[(s.table["image"] == images["app"]) & s.table["shared"]]
    assert shared["diff_id"].tolist() == base


def test_sharing_saves_the_base_layers_bytes(images, client, analysis):
    base = len(client.images.get(BASE_IMAGE).attrs["RootFS"]["Layers"])  # built in layers
    s = sharing.compare(analysis, images["other"], client=client)
    assert s.shared_bytes == sum(x.size_bytes for x in analysis.layers[:base])


def test_cow_diff_names_the_written_file_and_its_lower_layer(images, client, analysis):
    s = settings()
    ctr = client.containers.run(images["app"], ["sleep", "300"], detach=True,
                                name=s.container_name("layers-it-cow"),
                                labels=s.labels("app"))
    try:
        code, _ = ctr.exec_run(["sh", "-c", "echo '# edited' >> /app.py && echo hi > /tmp/h5"])
        assert code == 0
        df = cow.diff(ctr, analysis=analysis, client=client).set_index("path")
        app = df.loc["/app.py"]
        assert (app["change"], app["lower_layer"]) == ("changed", len(analysis.layers) - 1)
        assert app["size_bytes"] == len(APP.encode()) + len("# edited\n")
        assert df.loc["/tmp/h5", "change"] == "added"
        assert cow.writable_layer(ctr, client=client).size_rw >= app["size_bytes"]
    finally:
        ctr.remove(force=True)


def test_cow_demo_adds_only_writable_layers_and_cleans_up(images, client):
    df = cow.demo(images["app"], counts=(1, 2), client=client, engine_storage=True)
    assert df["containers"].tolist() == [1, 2]
    assert (df["size_rw_bytes"] >= df["containers"] * 4096).all()
    assert (df["size_rw_bytes"] >= df["written_bytes"]).all()  # measured without a look inside
    assert df["layers_bytes_before"].notna().all() and df["layers_bytes_after"].notna().all()
    quick = cow.demo(images["app"], counts=(1,), client=client)  # no docker system df
    assert quick["layers_added_bytes"].isna().all()
    assert int(quick["size_rw_per_container"].iloc[0]) >= cow.DEMO_NOTE_BYTES
    assert (df["size_rw_bytes"] < df["image_bytes"] / 100).all()
    left = client.containers.list(all=True, filters={"label": settings().label_filters(
        "cow-demo")})
    assert left == []


def test_instructions_are_dockerfile_lines_not_shell_lines(analysis):
    assert all(not re.match(r"/bin/sh -c", x.instruction) for x in analysis.layers)


def test_a_relabelled_image_is_analysed_from_the_records_without_saving(
        images, client, tmp_path, monkeypatch):
    """Same layers, new image ID (a LABEL on top): the records answer, exactly as a read."""
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(tmp_path / "cache"))
    layer_cache.forget()
    layers.analyze(images["app"], client=client)  # read once, recorded
    folder = tmp_path / "relabel"
    folder.mkdir()
    (folder / "Dockerfile").write_text(f"FROM {images['app']}\nLABEL org.labkit.test=relabel\n")
    tag = settings().image_name("layers-it-relabel")
    new_id = _build(client, folder, tag)
    try:
        assert new_id != client.images.get(images["app"]).id
        layer_cache.forget()
        saves: list[str] = []
        real = client.api.get_image
        monkeypatch.setattr(client.api, "get_image",
                            lambda name, **kw: saves.append(name) or real(name, **kw))
        cached = layers.analyze(tag, client=client)
        assert saves == []
        read = layers.analyze(tag, client=client, cache=False)
        assert saves == [layers.one_image(tag)]  # the tag it names: REPO means REPO:latest
        assert cached.layers == read.layers
        assert cached.files.equals(read.files)
        assert (cached.image_id, cached.layout) == (read.image_id, read.layout)
    finally:
        layer_cache.forget()
        client.images.remove(tag, force=True)


def test_a_bare_repository_name_reads_its_latest_tag_among_several(client, tmp_path) -> None:
    # Found in notebook 05 → 06: with tags scratch-1 and latest in one repository,
    # `docker save REPO` saves both, in an order of the engine's choosing.
    repo = settings().image_name("layers-it-tags")
    sizes = {}
    try:
        for tag, text in (("other", "a longer file, another image\n"), ("latest", "short\n")):
            folder = tmp_path / tag
            folder.mkdir()
            (folder / "note.txt").write_text(text)
            (folder / "Dockerfile").write_text(OTHER)
            _build(client, folder, f"{repo}:{tag}")
            sizes[tag] = len(text)
        for _ in range(3):
            top = layers.analyze(repo, client=client, cache=False).layers[-1]
            assert top.size_bytes == sizes["latest"]
    finally:
        for tag in ("other", "latest"):
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(f"{repo}:{tag}", force=True)
