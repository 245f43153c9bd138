# ruff: noqa: E501  (the recorded engine chunks at the bottom are long JSON lines)
"""Registry without an engine: the push-stream parser on chunks recorded from a real engine,
login/push error handling with a fake client, names for the local and a configured registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from docker.auth import INDEX_NAME, INDEX_URL
from docker.errors import APIError, ImageNotFound, NotFound

from labkit import registry
from labkit.engine.errors import ImageMissing, RegistryError
from labkit.registry import password as state

from .conftest import FakeClient

PASSWORD = "s3cret-for-unit-tests"


def chunks(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.strip().splitlines()]


@pytest.fixture()
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, course_settings):
    course_settings(user="h3", state_dir=tmp_path)
    monkeypatch.setenv(state.PASSWORD_ENV, PASSWORD)
    yield registry.Registry(name="h3-registry", address="localhost:32768",
                            api_url="http://localhost:32768", username="h3")


@pytest.fixture()
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, course_settings):
    course_settings(user="h3", state_dir=tmp_path, registry=INDEX_NAME)
    monkeypatch.delenv(state.PASSWORD_ENV, raising=False)
    yield


class FakeAPI:
    def __init__(self, stream: list[dict[str, Any]]) -> None:
        self.stream = stream
        self.calls: list[dict[str, Any]] = []

    def push(self, repository: str, **kwargs: Any):
        self.calls.append({"repository": repository, **kwargs})
        return iter(self.stream)


def registry_client(stream: list[dict[str, Any]] | None = None,
                    login_error: APIError | None = None) -> FakeClient:
    """A client whose push streams ``stream`` and whose login fails with ``login_error``."""
    return FakeClient(FakeAPI(stream or []), login_error=login_error)


def refused() -> APIError:
    class Resp:
        status_code = 500
        reason = "Internal Server Error"
        url = "http+docker://localhost/v1.41/auth"

    return APIError("500 Server Error", response=Resp(),  # type: ignore[arg-type]
                    explanation='login attempt to http://localhost:32768/v2/ failed with '
                                'status: 401 Unauthorized')


# ---------------------------------------------------------------- parser on recorded streams


def test_first_push_pushes_every_layer() -> None:
    frame = registry.PushStream().feed_all(chunks(FIRST)).layers_frame()
    assert list(frame["status"]) == ["pushed", "pushed", "pushed"]


def test_first_push_reads_digest_and_size_from_aux() -> None:
    parsed = registry.PushStream().feed_all(chunks(FIRST))
    assert (parsed.digest, parsed.size, parsed.tag) == (
        "sha256:14af8ee74985f717a8dc85af1bbe1119b5aae1143a58c7d1f4a3f27a77c16114", 947, "latest")


def test_first_push_names_the_repository() -> None:
    parsed = registry.PushStream().feed_all(chunks(FIRST))
    assert parsed.repository == "localhost:32768/h3/python-hello-world"


def test_first_push_keeps_the_byte_counts_of_the_big_layer() -> None:
    frame = registry.PushStream().feed_all(chunks(FIRST)).layers_frame().set_index("layer")
    assert frame.loc["456046bfaa51", "bytes_total"] == 187679512


def test_second_push_pushes_one_layer_and_finds_the_rest() -> None:
    frame = registry.PushStream().feed_all(chunks(SECOND)).layers_frame()
    assert frame["status"].value_counts().to_dict() == {"exists": 2, "pushed": 1}


def test_push_to_a_second_repository_mounts_layers() -> None:
    parsed = registry.PushStream().feed_all(chunks(MOUNTED))
    assert {x.mounted_from for x in parsed.layers.values()} == {"h3/python-hello-world"}


def test_progress_is_seen_while_pushing() -> None:
    parser = registry.PushStream()
    phases = {layer.phase for c in chunks(FIRST) if (layer := parser.feed(c))}
    assert {"preparing", "pushing", "pushed"} <= phases


@pytest.mark.parametrize(("stream", "message"), [
    ("WRONGAUTH", "unauthorized: authentication required"),
    ("DOWN", "connection refused"),
    ("NOTAG", "An image does not exist locally"),
])
def test_errors_inside_the_stream_are_kept(stream: str, message: str) -> None:
    parsed = registry.PushStream().feed_all(chunks(globals()[stream]))
    assert message in (parsed.error or "")


# ---------------------------------------------------------------- push/login with a fake client


def test_push_passes_auth_config_every_time(local: registry.Registry) -> None:
    fake = registry_client(chunks(SECOND))
    registry.push(local.repository("python-hello-world"), registry=local, client=fake,
                  show=False)
    assert fake.api.calls[0]["auth_config"] == {"username": "h3", "password": PASSWORD}


def test_push_result_counts(local: registry.Registry) -> None:
    result = registry.push("localhost:32768/h3/python-hello-world:latest", registry=local,
                           client=registry_client(chunks(SECOND)), show=False)
    assert result.counts == {"pushed": 1, "exists": 2, "mounted": 0}


def test_push_splits_an_embedded_tag(local: registry.Registry) -> None:
    fake = registry_client(chunks(SECOND))
    registry.push("localhost:32768/h3/python-hello-world:v2", registry=local, client=fake,
                  show=False)
    assert (fake.api.calls[0]["repository"], fake.api.calls[0]["tag"]) == (
        "localhost:32768/h3/python-hello-world", "v2")


def test_push_raises_on_an_error_inside_the_stream(local: registry.Registry) -> None:
    with pytest.raises(RegistryError, match="unauthorized"):
        registry.push("localhost:32768/h3/python-hello-world", registry=local,
                      client=registry_client(chunks(WRONGAUTH)), show=False)


def test_push_error_hint_says_start_the_registry_when_down(local: registry.Registry) -> None:
    with pytest.raises(RegistryError) as info:
        registry.push("localhost:32768/h3/python-hello-world", registry=local,
                      client=registry_client(chunks(DOWN)), show=False)
    assert "registry start" in (info.value.hint or "")


def test_push_command_and_repr_hold_no_password(local: registry.Registry) -> None:
    result = registry.push("localhost:32768/h3/python-hello-world", registry=local,
                           client=registry_client(chunks(FIRST)), show=False)
    assert PASSWORD not in repr(result) + str(result.command) + result.layers.to_csv()


def test_login_asks_the_engine_again(local: registry.Registry) -> None:
    fake = registry_client()
    registry.login(local, client=fake)
    assert fake.logins[0]["reauth"] is True


def test_login_result_holds_no_password(local: registry.Registry) -> None:
    result = registry.login(local, client=registry_client())
    assert PASSWORD not in repr(result) + str(result.command)


def test_login_command_reads_the_password_from_stdin(local: registry.Registry) -> None:
    result = registry.login(local, client=registry_client())
    assert str(result.command) == (
        "labkit registry password | docker login localhost:32768 -u h3 --password-stdin")


def test_registry_run_command_names_its_auth(local: registry.Registry) -> None:
    line = str(registry.run_command("127.0.0.1"))
    for part in ("REGISTRY_AUTH=htpasswd", "REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd",
                 "./auth:/auth:ro", "-p 127.0.0.1::5000"):
        assert part in line


def test_login_refused_is_a_registry_error(local: registry.Registry) -> None:
    with pytest.raises(RegistryError, match="wrong user name or password"):
        registry.login(local, client=registry_client(login_error=refused()))


# ---------------------------------------------------------------- names and configuration


def test_local_repository_follows_registry_user_name(local: registry.Registry) -> None:
    assert local.repository("python-hello-world") == "localhost:32768/h3/python-hello-world"


def test_configured_hub_repository_has_no_host(hub: None) -> None:
    assert registry.current_registry(client=registry_client()).repository("app") == "h3/app"


def test_configured_hub_logs_in_at_the_index(hub: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(state.PASSWORD_ENV, "token")
    fake = registry_client()
    registry.login(client=fake)
    assert fake.logins[0]["registry"] == INDEX_URL


def test_configured_other_registry_keeps_its_host(tmp_path: Path, course_settings) -> None:
    course_settings(user="h3", state_dir=tmp_path, registry="registry.test:5000")
    reg = registry.current_registry(client=registry_client())
    assert reg.repository("app") == "registry.test:5000/h3/app"


def test_configured_registry_needs_a_password_from_the_environment(hub: None) -> None:
    with pytest.raises(RegistryError, match="No password"):
        registry.login(client=registry_client())


def test_configured_registry_has_no_catalog(hub: None) -> None:
    with pytest.raises(RegistryError, match="cannot list"):
        registry.catalog(client=registry_client())


def test_configured_registry_status_starts_nothing(hub: None) -> None:
    assert registry.registry_status(client=registry_client())["local"] is False


def test_missing_registry_image_offline_says_prepare(tmp_path: Path, course_settings) -> None:
    class Missing:
        def get(self, name: str) -> None:
            raise (ImageNotFound if "registry" in name else NotFound)(name)

    class Bare:
        containers = images = Missing()

    course_settings(user="h3", state_dir=tmp_path, offline=True)
    with pytest.raises(ImageMissing, match="registry:2") as info:
        registry.start_registry(client=Bare())
    assert "labkit prepare" in (info.value.hint or "")


# ---------------------------------------------------------------- files copied into the registry


def test_htpasswd_line_is_bcrypt() -> None:
    user, hashed = registry.htpasswd_line("h3", PASSWORD).strip().split(":", 1)
    assert user == "h3" and bcrypt.checkpw(PASSWORD.encode(), hashed.encode())


def test_htpasswd_mismatch_is_detected() -> None:
    line = registry.htpasswd_line("h3", PASSWORD)
    assert not registry.htpasswd_matches(line, "h3", "other")


def test_config_turns_htpasswd_auth_on() -> None:
    text = registry.config_yaml()
    assert "htpasswd:" in text and f"path: {registry.CONFIG_DIR}/htpasswd" in text


def test_parse_manifest_counts_layers() -> None:
    body = {"mediaType": registry.MANIFEST_V2, "config": {"digest": "sha256:c"},
            "layers": [{"digest": "sha256:a", "size": 3}, {"digest": "sha256:b", "size": 4}]}
    got = registry.parse_manifest(body, "sha256:m")
    assert (len(got["layers"]), got["total_size"], got["config_digest"]) == (2, 7, "sha256:c")


# ---------------------------------------------------------------- streams recorded from dockerd 20.10 + registry 2.8

FIRST = r"""
{"status":"The push refers to repository [localhost:32768/h3/python-hello-world]"}
{"status":"Preparing","progressDetail":{},"id":"d0fde0d93f33"}
{"status":"Preparing","progressDetail":{},"id":"dc0a9fba9dcc"}
{"status":"Preparing","progressDetail":{},"id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":512,"total":168},"progress":"[==================================================>]     512B","id":"d0fde0d93f33"}
{"status":"Pushing","progressDetail":{"current":2048,"total":168},"progress":"[==================================================>]  2.048kB","id":"d0fde0d93f33"}
{"status":"Pushing","progressDetail":{"current":59068,"total":4987613},"progress":"[>                                                  ]  59.07kB/4.988MB","id":"dc0a9fba9dcc"}
{"status":"Pushing","progressDetail":{"current":542208,"total":187679512},"progress":"[>                                                  ]  542.2kB/187.7MB","id":"456046bfaa51"}
{"status":"Pushed","progressDetail":{},"id":"d0fde0d93f33"}
{"status":"Pushing","progressDetail":{"current":1956351,"total":4987613},"progress":"[===================>                               ]  1.956MB/4.988MB","id":"dc0a9fba9dcc"}
{"status":"Pushing","progressDetail":{"current":3216896,"total":187679512},"progress":"[>                                                  ]  3.217MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":4307277,"total":4987613},"progress":"[===========================================>       ]  4.307MB/4.988MB","id":"dc0a9fba9dcc"}
{"status":"Pushing","progressDetail":{"current":6457344,"total":187679512},"progress":"[=>                                                 ]  6.457MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":5260288,"total":4987613},"progress":"[==================================================>]   5.26MB","id":"dc0a9fba9dcc"}
{"status":"Pushed","progressDetail":{},"id":"dc0a9fba9dcc"}
{"status":"Pushing","progressDetail":{"current":9147458,"total":187679512},"progress":"[==>                                                ]  9.147MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":11782144,"total":187679512},"progress":"[===>                                               ]  11.78MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":14422341,"total":187679512},"progress":"[===>                                               ]  14.42MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":17046016,"total":187679512},"progress":"[====>                                              ]  17.05MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":19208704,"total":187679512},"progress":"[=====>                                             ]  19.21MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":21357568,"total":187679512},"progress":"[=====>                                             ]  21.36MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":22963076,"total":187679512},"progress":"[======>                                            ]  22.96MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":24558080,"total":187679512},"progress":"[======>                                            ]  24.56MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":26751488,"total":187679512},"progress":"[=======>                                           ]  26.75MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":28901795,"total":187679512},"progress":"[=======>                                           ]   28.9MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":30500864,"total":187679512},"progress":"[========>                                          ]   30.5MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":32094208,"total":187679512},"progress":"[========>                                          ]  32.09MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":34242048,"total":187679512},"progress":"[=========>                                         ]  34.24MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":35878912,"total":187679512},"progress":"[=========>                                         ]  35.88MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":37512404,"total":187679512},"progress":"[=========>                                         ]  37.51MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":39138816,"total":187679512},"progress":"[==========>                                        ]  39.14MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":40740610,"total":187679512},"progress":"[==========>                                        ]  40.74MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":42336653,"total":187679512},"progress":"[===========>                                       ]  42.34MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":43937792,"total":187679512},"progress":"[===========>                                       ]  43.94MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":45530518,"total":187679512},"progress":"[============>                                      ]  45.53MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":47151616,"total":187679512},"progress":"[============>                                      ]  47.15MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":48761344,"total":187679512},"progress":"[============>                                      ]  48.76MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":50358784,"total":187679512},"progress":"[=============>                                     ]  50.36MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":52496384,"total":187679512},"progress":"[=============>                                     ]   52.5MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":54632960,"total":187679512},"progress":"[==============>                                    ]  54.63MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":56842240,"total":187679512},"progress":"[===============>                                   ]  56.84MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":58498048,"total":187679512},"progress":"[===============>                                   ]   58.5MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":60089344,"total":187679512},"progress":"[================>                                  ]  60.09MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":61695660,"total":187679512},"progress":"[================>                                  ]   61.7MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":63821512,"total":187679512},"progress":"[=================>                                 ]  63.82MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":65959113,"total":187679512},"progress":"[=================>                                 ]  65.96MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":68088905,"total":187679512},"progress":"[==================>                                ]  68.09MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":70243328,"total":187679512},"progress":"[==================>                                ]  70.24MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":72371918,"total":187679512},"progress":"[===================>                               ]  72.37MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":74480926,"total":187679512},"progress":"[===================>                               ]  74.48MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":76636672,"total":187679512},"progress":"[====================>                              ]  76.64MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":79335717,"total":187679512},"progress":"[=====================>                             ]  79.34MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":81503744,"total":187679512},"progress":"[=====================>                             ]   81.5MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":83688960,"total":187679512},"progress":"[======================>                            ]  83.69MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":85335552,"total":187679512},"progress":"[======================>                            ]  85.34MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":86988800,"total":187679512},"progress":"[=======================>                           ]  86.99MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":88654336,"total":187679512},"progress":"[=======================>                           ]  88.65MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":90861056,"total":187679512},"progress":"[========================>                          ]  90.86MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":92455216,"total":187679512},"progress":"[========================>                          ]  92.46MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":94578688,"total":187679512},"progress":"[=========================>                         ]  94.58MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":96711168,"total":187679512},"progress":"[=========================>                         ]  96.71MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":98876928,"total":187679512},"progress":"[==========================>                        ]  98.88MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":100498944,"total":187679512},"progress":"[==========================>                        ]  100.5MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":102107936,"total":187679512},"progress":"[===========================>                       ]  102.1MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":103737344,"total":187679512},"progress":"[===========================>                       ]  103.7MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":105402368,"total":187679512},"progress":"[============================>                      ]  105.4MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":107073536,"total":187679512},"progress":"[============================>                      ]  107.1MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":108726784,"total":187679512},"progress":"[============================>                      ]  108.7MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":109840896,"total":187679512},"progress":"[=============================>                     ]  109.8MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":111488000,"total":187679512},"progress":"[=============================>                     ]  111.5MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":113707008,"total":187679512},"progress":"[==============================>                    ]  113.7MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":115378176,"total":187679512},"progress":"[==============================>                    ]  115.4MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":117049344,"total":187679512},"progress":"[===============================>                   ]    117MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":118692864,"total":187679512},"progress":"[===============================>                   ]  118.7MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":120309248,"total":187679512},"progress":"[================================>                  ]  120.3MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":122992128,"total":187679512},"progress":"[================================>                  ]    123MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":125692416,"total":187679512},"progress":"[=================================>                 ]  125.7MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":128390144,"total":187679512},"progress":"[==================================>                ]  128.4MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":130034688,"total":187679512},"progress":"[==================================>                ]    130MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":132225024,"total":187679512},"progress":"[===================================>               ]  132.2MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":134355968,"total":187679512},"progress":"[===================================>               ]  134.4MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":135966720,"total":187679512},"progress":"[====================================>              ]    136MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":138104832,"total":187679512},"progress":"[====================================>              ]  138.1MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":139706368,"total":187679512},"progress":"[=====================================>             ]  139.7MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":141306687,"total":187679512},"progress":"[=====================================>             ]  141.3MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":142904817,"total":187679512},"progress":"[======================================>            ]  142.9MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":144537467,"total":187679512},"progress":"[======================================>            ]  144.5MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":146150912,"total":187679512},"progress":"[======================================>            ]  146.2MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":147790520,"total":187679512},"progress":"[=======================================>           ]  147.8MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":149957120,"total":187679512},"progress":"[=======================================>           ]    150MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":151571293,"total":187679512},"progress":"[========================================>          ]  151.6MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":153710847,"total":187679512},"progress":"[========================================>          ]  153.7MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":155341824,"total":187679512},"progress":"[=========================================>         ]  155.3MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":156937728,"total":187679512},"progress":"[=========================================>         ]  156.9MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":158535010,"total":187679512},"progress":"[==========================================>        ]  158.5MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":160674905,"total":187679512},"progress":"[==========================================>        ]  160.7MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":162316800,"total":187679512},"progress":"[===========================================>       ]  162.3MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":163906560,"total":187679512},"progress":"[===========================================>       ]  163.9MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":165577728,"total":187679512},"progress":"[============================================>      ]  165.6MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":167782656,"total":187679512},"progress":"[============================================>      ]  167.8MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":169422096,"total":187679512},"progress":"[=============================================>     ]  169.4MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":171048448,"total":187679512},"progress":"[=============================================>     ]    171MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":173194048,"total":187679512},"progress":"[==============================================>    ]  173.2MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":174805504,"total":187679512},"progress":"[==============================================>    ]  174.8MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":176450048,"total":187679512},"progress":"[===============================================>   ]  176.5MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":178069504,"total":187679512},"progress":"[===============================================>   ]  178.1MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":179692032,"total":187679512},"progress":"[===============================================>   ]  179.7MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":181331968,"total":187679512},"progress":"[================================================>  ]  181.3MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":183003136,"total":187679512},"progress":"[================================================>  ]    183MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":184674304,"total":187679512},"progress":"[=================================================> ]  184.7MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":186902528,"total":187679512},"progress":"[=================================================> ]  186.9MB/187.7MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":189081847,"total":187679512},"progress":"[==================================================>]  189.1MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":191208448,"total":187679512},"progress":"[==================================================>]  191.2MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":193853368,"total":187679512},"progress":"[==================================================>]  193.9MB","id":"456046bfaa51"}
{"status":"Pushing","progressDetail":{"current":195809280,"total":187679512},"progress":"[==================================================>]  195.8MB","id":"456046bfaa51"}
{"status":"Pushed","progressDetail":{},"id":"456046bfaa51"}
{"status":"latest: digest: sha256:14af8ee74985f717a8dc85af1bbe1119b5aae1143a58c7d1f4a3f27a77c16114 size: 947"}
{"progressDetail":{},"aux":{"Tag":"latest","Digest":"sha256:14af8ee74985f717a8dc85af1bbe1119b5aae1143a58c7d1f4a3f27a77c16114","Size":947}}
"""

SECOND = r"""
{"status":"The push refers to repository [localhost:32768/h3/python-hello-world]"}
{"status":"Preparing","progressDetail":{},"id":"7fe57aa9898b"}
{"status":"Preparing","progressDetail":{},"id":"dc0a9fba9dcc"}
{"status":"Preparing","progressDetail":{},"id":"456046bfaa51"}
{"status":"Layer already exists","progressDetail":{},"id":"dc0a9fba9dcc"}
{"status":"Pushing","progressDetail":{"current":512,"total":185},"progress":"[==================================================>]     512B","id":"7fe57aa9898b"}
{"status":"Pushing","progressDetail":{"current":2048,"total":185},"progress":"[==================================================>]  2.048kB","id":"7fe57aa9898b"}
{"status":"Layer already exists","progressDetail":{},"id":"456046bfaa51"}
{"status":"Pushed","progressDetail":{},"id":"7fe57aa9898b"}
{"status":"latest: digest: sha256:f95793d52abb335338216757b1fb9611621aed718cb1458176295b11d9553840 size: 947"}
{"progressDetail":{},"aux":{"Tag":"latest","Digest":"sha256:f95793d52abb335338216757b1fb9611621aed718cb1458176295b11d9553840","Size":947}}
"""

MOUNTED = r"""
{"status":"The push refers to repository [localhost:32768/h3/other]"}
{"status":"Preparing","progressDetail":{},"id":"7fe57aa9898b"}
{"status":"Preparing","progressDetail":{},"id":"dc0a9fba9dcc"}
{"status":"Preparing","progressDetail":{},"id":"456046bfaa51"}
{"status":"Mounted from h3/python-hello-world","progressDetail":{},"id":"dc0a9fba9dcc"}
{"status":"Mounted from h3/python-hello-world","progressDetail":{},"id":"7fe57aa9898b"}
{"status":"Mounted from h3/python-hello-world","progressDetail":{},"id":"456046bfaa51"}
{"status":"latest: digest: sha256:f95793d52abb335338216757b1fb9611621aed718cb1458176295b11d9553840 size: 947"}
{"progressDetail":{},"aux":{"Tag":"latest","Digest":"sha256:f95793d52abb335338216757b1fb9611621aed718cb1458176295b11d9553840","Size":947}}
"""

WRONGAUTH = r"""
{"status":"The push refers to repository [localhost:32768/h3/python-hello-world]"}
{"status":"Preparing","progressDetail":{},"id":"7fe57aa9898b"}
{"status":"Preparing","progressDetail":{},"id":"dc0a9fba9dcc"}
{"status":"Preparing","progressDetail":{},"id":"456046bfaa51"}
{"errorDetail":{"message":"unauthorized: authentication required"},"error":"unauthorized: authentication required"}
"""

DOWN = r"""
{"status":"The push refers to repository [localhost:32768/h3/python-hello-world]"}
{"errorDetail":{"message":"Get \"http://localhost:32768/v2/\": dial tcp 127.0.0.1:32768: connect: connection refused"},"error":"Get \"http://localhost:32768/v2/\": dial tcp 127.0.0.1:32768: connect: connection refused"}
"""

NOTAG = r"""
{"status":"The push refers to repository [localhost:32768/h3/missing]"}
{"errorDetail":{"message":"An image does not exist locally with the tag: localhost:32768/h3/missing"},"error":"An image does not exist locally with the tag: localhost:32768/h3/missing"}
"""


def test_push_tells_its_observer_every_chunk_then_closes(local: registry.Registry) -> None:
    seen: list[int] = []
    closed: list[bool] = []

    class Observer:
        def update(self, stream: registry.PushStream,
                   layer: registry.LayerProgress | None = None) -> None:
            seen.append(len(stream.layers))

        def close(self) -> None:
            closed.append(True)

    result = registry.push("localhost:32768/h3/python-hello-world:latest", registry=local,
                           client=registry_client(chunks(SECOND)), show=False, observer=Observer())
    assert len(seen) == len(chunks(SECOND)) and closed == [True]
    assert seen[-1] == len(result.layers) == 3


# ---------------------------------------------------------------- curl lines for the HTTP API


def test_curl_lines_ask_labkit_for_password_and_ca_and_hold_no_secret(
        local: registry.Registry) -> None:
    lines = registry.curl(local, "/v2/_catalog", "/v2/h3/app/tags/list")
    assert [str(x).split()[-1] for x in lines] == [
        "http://localhost:32768/v2/_catalog", "http://localhost:32768/v2/h3/app/tags/list"]
    for line in map(str, lines):
        assert line.startswith("labkit registry password --curl | curl -fsS -K- ")
        assert '--cacert "$(labkit registry ca)"' in line
        assert PASSWORD not in line
    assert repr(lines).splitlines()[0].startswith("$ labkit registry password --curl | curl")


def test_curl_line_carries_method_accept_header_and_output(local: registry.Registry) -> None:
    [manifest] = registry.curl(local, "/v2/h3/app/manifests/latest",
                               accept=registry.MANIFEST_ACCEPT)
    assert f"-H 'Accept: {registry.MANIFEST_ACCEPT}'" in str(manifest)
    [delete] = registry.curl(local, "/v2/h3/app/blobs/sha256:ab", method="DELETE")
    assert " -X DELETE " in str(delete)
    both = registry.curl(local, "/v2/h3/app/blobs/sha256:ab", output="layer") + \
        registry.CommandLines(["sha256sum layer"])
    assert isinstance(both, registry.CommandLines)
    assert repr(both).splitlines() == [f"$ {both[0]}", "$ sha256sum layer"]
    assert " -o layer http://" in str(both[0])


def test_curl_refuses_a_registry_labkit_does_not_query() -> None:
    hub = registry.Registry(name="hub", address="docker.io", api_url=None, username="h3",
                            local=False)
    with pytest.raises(RegistryError):
        registry.curl(hub, "/v2/_catalog")


def test_curl_user_option_quotes_as_curl_config_wants() -> None:
    assert registry.curl_user_option("h3", 'a"b\\c') == 'user = "h3:a\\"b\\\\c"\n'


def test_fresh_start_lists_each_action_with_its_commands() -> None:
    from labkit import course
    from labkit.engine import docker as docker_cmd

    done = course.FreshStart(None, [  # type: ignore[arg-type]
        ("nothing to remove", registry.CommandLines()),
        ("pushed the original", registry.CommandLines([docker_cmd("push", "r/u/app:latest")]))])
    assert repr(done).splitlines() == ["# nothing to remove", "# pushed the original",
                                       "$ docker push r/u/app:latest"]
    assert done._repr_markdown_().startswith("```bash\n# nothing to remove")
