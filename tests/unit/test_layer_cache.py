"""The layer cache: an image is saved once; records are reused only when they match."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.images.archive import chain_ids
from labkit.layers import analysis as layers
from labkit.layers import memo as layer_cache

from .test_layers import STACK, chunks, layer_tar, legacy_archive, sha

HISTORY = [  # created times as a real config writes them (RFC 3339, nanoseconds)
    {"created_by": "/bin/sh -c #(nop) ADD file:abc in / ", "created": "2026-12-01T10:00:00.5Z"},
    {"created_by": "/bin/sh -c #(nop)  ENV X=1", "created": "2026-12-01T10:00:01Z",
     "empty_layer": True},
    {"created_by": "/bin/sh -c echo one", "created": "2026-12-01T10:00:02.123456789Z"},
    {"created_by": "/bin/sh -c #(nop) COPY file:def in /etc/a ",
     "created": "2026-12-01T10:00:03Z"},
    {"created_by": "/bin/sh -c echo three", "created": "2026-12-01T11:00:04.1+01:00"},
]
NAME = "h5/synthetic:latest"


def _seconds(h: dict) -> int:
    return layer_cache._seconds(h["created"])  # type: ignore[return-value]


class Image:
    def __init__(self, ident: str, diff_ids: list[str]) -> None:
        self.id = ident
        self.attrs = {"RootFS": {"Layers": diff_ids}}


class API:
    base_url = "http+docker://fake"

    def __init__(self, data: bytes, history: list[dict]) -> None:
        self.data = data
        self.rows = [{"CreatedBy": h["created_by"], "Created": _seconds(h), "Size": 0}
                     for h in reversed(history)]  # newest first, as the engine answers
        self.saves = 0

    def get_image(self, name, chunk_size=None):
        self.saves += 1
        return chunks(self.data, 4096)

    def history(self, image_id):
        return self.rows


class Images:
    def __init__(self, image: Image) -> None:
        self.image = image

    def get(self, name):
        return self.image


class Client:
    def __init__(self, image_id: str = "sha256:" + "a" * 64, history: list[dict] = HISTORY,
                 engine: str = "ENGINE:ONE") -> None:
        data = legacy_archive(STACK, history=history)
        diff_ids = [sha(layer_tar(e)) for e in STACK]
        self.api = API(data, history)
        self.images = Images(Image(image_id, diff_ids))
        self.engine = engine

    def info(self):
        return {"ID": self.engine}


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(tmp_path))
    layer_cache.forget()
    yield tmp_path / "layers"
    layer_cache.forget()


def test_second_analysis_in_the_process_is_the_same_object():
    client = Client()
    first = layers.analyze(NAME, client=client)
    assert layers.analyze(NAME, client=client) is first
    assert client.api.saves == 1


def test_other_name_for_the_same_image_is_renamed_not_read():
    client = Client()
    layers.analyze(NAME, client=client)
    other = layers.analyze("alias:1", client=client)
    assert (other.image, str(other.command), client.api.saves) == (
        "alias:1", "docker image save alias:1", 1)


def test_new_process_reads_the_records_and_gets_the_same_analysis(cache):
    client = Client()
    first = layers.analyze(NAME, client=client)
    assert len(list((cache / "ENGINE_ONE").glob("*.json"))) == len(STACK)
    layer_cache.forget()
    again = layers.analyze(NAME, client=client)
    assert client.api.saves == 1
    assert again.layers == first.layers
    assert again.files.equals(first.files)
    assert (again.layout, again.total_bytes, again.visible_bytes) == (
        first.layout, first.total_bytes, first.visible_bytes)


def test_rebuilt_image_with_the_same_layers_is_not_read_again():
    layers.analyze(NAME, client=Client())
    layer_cache.forget()
    rebuilt = Client(image_id="sha256:" + "b" * 64)  # new ID (e.g. a LABEL step), same layers
    result = layers.analyze(NAME, client=rebuilt)
    assert rebuilt.api.saves == 0
    assert result.image_id == "sha256:" + "b" * 64


def test_other_history_for_the_same_layers_reads_the_image():
    layers.analyze(NAME, client=Client())
    layer_cache.forget()
    history = [dict(h) for h in HISTORY]
    history[2]["created_by"] = "/bin/sh -c echo ONE"
    other = Client(image_id="sha256:" + "c" * 64, history=history)
    result = layers.analyze(NAME, client=other)
    assert other.api.saves == 1
    assert result.layers[1].created_by == "/bin/sh -c echo ONE"


def test_other_engine_reads_the_image():
    layers.analyze(NAME, client=Client())
    layer_cache.forget()
    other = Client(engine="ENGINE:TWO")
    layers.analyze(NAME, client=other)
    assert other.api.saves == 1


def test_cache_false_always_reads():
    client = Client()
    layers.analyze(NAME, client=client, cache=False)
    layers.analyze(NAME, client=client, cache=False)
    assert client.api.saves == 2


def test_a_damaged_record_reads_the_image(cache):
    client = Client()
    layers.analyze(NAME, client=client)
    layer_cache.forget()
    diff_ids = client.images.image.attrs["RootFS"]["Layers"]
    top = cache / "ENGINE_ONE" / (chain_ids(diff_ids)[-1].split(":")[1] + ".json")
    top.write_text("{not json")
    layers.analyze(NAME, client=client)
    assert client.api.saves == 2
    assert json.loads(top.read_text())["v"] == layer_cache.VERSION  # written again


def test_padded_history_is_not_recorded(cache):
    client = Client(history=HISTORY[:2])  # fewer history lines than layers
    layers.analyze(NAME, client=client)
    assert not (cache / "ENGINE_ONE").exists()


def test_seconds_of_rfc3339_times():
    assert layer_cache._seconds("1970-01-01T00:00:01.999999999Z") == 1
    assert layer_cache._seconds("1970-01-01T01:00:02+01:00") == 2
    assert layer_cache._seconds("t0") is None
