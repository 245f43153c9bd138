# ruff: noqa: E501  (sources.list lines are long)
"""labkit.offline.course_images without an engine: mirrors, the root file system rewrite, the decisions
(present / pull / stand-in, never a pull offline) and the build stream, with a fake client."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import docker
import pytest

from labkit.engine import config
from labkit.engine.errors import ImageMissing, PrepareError
from labkit.offline import base_image as layered
from labkit.offline import course_images as prepare
from labkit.offline import debian_rootfs as rootfs

DEB822 = """Types: deb
URIs: http://mirror.example.org/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.example.org/debian-security
Suites: bookworm-security
Components: main
"""


class FakeImage:
    def __init__(self, name: str, labels: dict[str, str] | None = None) -> None:
        self.id = "sha256:" + "ab" * 32
        self.short_id = "sha256:" + "ab" * 6
        self.labels = labels or {}
        self.attrs = {"Size": 1000, "Config": {}}
        self.name = name


class FakeClient:
    """Holds some images; records pulls and builds; pulls succeed unless told otherwise."""

    def __init__(self, present: dict[str, FakeImage], pull_error: str | None = None,
                 build_chunks: list[dict[str, Any]] | None = None) -> None:
        self.present = present
        self.pulled: list[str] = []
        self.built: list[dict[str, Any]] = []
        outer = self

        class Images:
            def get(self, name: str) -> FakeImage:
                if name not in outer.present:
                    raise docker.errors.ImageNotFound(name)
                return outer.present[name]

        class Api:
            def pull(self, repository: str, tag: str, stream: bool, decode: bool):
                outer.pulled.append(f"{repository}:{tag}")
                if pull_error:
                    yield {"error": pull_error}
                    return
                outer.present[f"{repository}:{tag}"] = FakeImage(f"{repository}:{tag}")
                yield {"status": "Downloaded newer image"}

            def build(self, **kwargs: Any):
                outer.built.append(kwargs)
                outer.present[kwargs["tag"]] = FakeImage(kwargs["tag"], kwargs["labels"])
                return iter(build_chunks or [{"stream": "Step 1/1 : FROM base\n"},
                                             {"aux": {"ID": "sha256:" + "cd" * 32}}])

        self.images = Images()
        self.api = Api()


def standin(role: str) -> FakeImage:
    return FakeImage(role, layered.standin_labels(role))


def quiet(image: str, stage: str) -> None:
    pass


@pytest.fixture
def fake_standins(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace the real stand-in builder; returns the names it was asked to build."""
    built: list[str] = []

    def build(spec, *, trust_host_ca, client, progress, cache_dir):
        built.append(spec.name)
        image = standin(spec.role)
        client.present[spec.name] = image
        return image, None

    monkeypatch.setattr(prepare, "build_standin", build)
    return built


# --- mirrors ----------------------------------------------------------------------------


def test_mirror_from_deb822_sources_skips_security() -> None:
    assert rootfs.parse_mirror(DEB822) == "http://mirror.example.org/debian"


def test_mirror_from_one_line_sources_with_options() -> None:
    text = "# comment\ndeb [signed-by=/usr/share/keyrings/k.gpg] https://m.example.org/debian/ bookworm main\n"
    assert rootfs.parse_mirror(text) == "https://m.example.org/debian"


def test_mirror_none_when_only_security() -> None:
    assert rootfs.parse_mirror("deb http://m.example.org/debian-security bookworm-security main") is None


def test_mirror_environment_wins_and_default_otherwise(tmp_path: Path) -> None:
    env = {"LABKIT_DEBIAN_MIRROR": "http://own.example.org/debian"}
    assert rootfs.debian_mirror([tmp_path / "none"], env) == "http://own.example.org/debian"
    assert rootfs.debian_mirror([tmp_path / "none"], {}) == rootfs.DEFAULT_MIRROR


UBUNTU = """Types: deb
URIs: http://archive.ubuntu.com/ubuntu/
Suites: noble noble-updates
Components: main universe

Types: deb
URIs: http://security.ubuntu.com/ubuntu/
Suites: noble-security
Components: main
"""


def test_an_ubuntu_machine_names_no_debian_mirror(tmp_path: Path) -> None:
    assert rootfs.parse_mirror(UBUNTU) is None
    assert rootfs.parse_mirror("deb http://archive.ubuntu.com/ubuntu noble main") is None
    sources = tmp_path / "ubuntu.sources"
    sources.write_text(UBUNTU)
    assert rootfs.debian_mirror([sources], {}) == rootfs.DEFAULT_MIRROR


def test_a_debian_mirror_behind_a_proxy_path_is_kept() -> None:
    text = "deb http://proxy.example.org/deb/debian bookworm main\n"
    assert rootfs.parse_mirror(text) == "http://proxy.example.org/deb/debian"


def test_cache_root_follows_environment(tmp_path: Path) -> None:
    assert rootfs.cache_root({"LABKIT_CACHE_DIR": str(tmp_path)}) == tmp_path
    assert rootfs.cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "labkit"


# --- the layers of the base -----------------------------------------------------------------


def write_tar(path: Path, files: dict[str, bytes], mtime: int = 1, links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), mtime if name.endswith("status") else 1
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mtime = tarfile.LNKTYPE, target, 1
            tar.addfile(info)
    return path


def tar_members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return {m.name: m for m in tar.getmembers()}


STATUS = b"Package: python3.11\nStatus: install ok installed\nVersion: 3.11.2-6+deb12u6\n\n"


def test_layer_diff_keeps_only_new_and_changed_entries(tmp_path: Path) -> None:
    lower = write_tar(tmp_path / "lower.tar", {"./etc/debian_version": b"12\n",
                                               "./var/lib/dpkg/status": b"old\n",
                                               "./etc/gone": b"x"})
    upper = write_tar(tmp_path / "upper.tar", {"./etc/debian_version": b"12\n",
                                               "./var/lib/dpkg/status": STATUS,
                                               "./usr/bin/python3.11": b"\x7fELF"}, mtime=2)
    diff = rootfs.layer_diff(lower, upper, tmp_path / "layer.tar")
    assert set(tar_members(tmp_path / "layer.tar")) == {"./var/lib/dpkg/status",
                                                         "./usr/bin/python3.11"}
    assert (diff.added, diff.changed, diff.removed) == (1, 1, ("./etc/gone",))


def test_layer_diff_turns_a_hard_link_to_an_older_file_into_a_file(tmp_path: Path) -> None:
    lower = write_tar(tmp_path / "lower.tar", {"./usr/bin/perl": b"perl"})
    upper = write_tar(tmp_path / "upper.tar", {"./usr/bin/perl": b"perl"},
                      links={"./usr/bin/perl5.36": "./usr/bin/perl"})
    rootfs.layer_diff(lower, upper, tmp_path / "layer.tar")
    got = tar_members(tmp_path / "layer.tar")["./usr/bin/perl5.36"]
    assert got.isreg() and got.size == 4


def test_python_version_is_read_from_the_layer_dpkg_status(tmp_path: Path) -> None:
    layer = write_tar(tmp_path / "python.tar", {"./var/lib/dpkg/status": STATUS})
    assert rootfs.python_version(layer) == "3.11.2"
    with pytest.raises(PrepareError):
        rootfs.python_version(write_tar(tmp_path / "none.tar", {"./etc/x": b""}))


def layers(tmp_path: Path, removed: tuple[str, ...] = ()) -> rootfs.BaseLayers:
    return rootfs.BaseLayers(tmp_path, ("debian", "python", "pip"), "3.11.2", removed)


def test_base_dockerfile_reads_like_the_official_image(tmp_path: Path) -> None:
    text = layered.base_dockerfile(layers(tmp_path), layered.standin_labels("base"))
    steps = [line.split()[0] for line in text.splitlines() if line and not line.startswith("#")]
    assert steps == ["FROM", "ADD", "CMD", "ENV", "ENV", "ENV", "ADD", "ADD", "RUN", "CMD", "LABEL"]
    assert "FROM scratch" in text and "ENV PYTHON_VERSION=3.11.2" in text
    assert "rm -fv /usr/lib/python3*/EXTERNALLY-MANAGED" in text
    assert "ln -svT python3 /usr/bin/python" in text
    assert layered.HOST_CA_FILE not in text
    assert "LABEL org.labkit.standin=true" in text


def test_base_dockerfile_trusts_the_host_ca_in_steps_of_its_own(tmp_path: Path) -> None:
    text = layered.base_dockerfile(layers(tmp_path, ("./etc/old",)), {}, host_ca=True)
    assert f"COPY {layered.HOST_CA_FILE} /{rootfs.HOST_CA_IN_IMAGE}" in text
    assert f"RUN cp /{rootfs.HOST_CA_IN_IMAGE} /etc/ssl/certs/ca-certificates.crt" in text
    assert "rm -rf /etc/old" in text  # what a later stage deleted
    assert text.rstrip().splitlines()[-2] == 'CMD ["python3"]'


def test_the_context_holds_the_bundle_only_when_asked(tmp_path: Path) -> None:
    base = layers(tmp_path)
    layered.write_context(base, "FROM scratch\n", b"host bundle\n")
    assert (tmp_path / layered.HOST_CA_FILE).read_bytes() == b"host bundle\n"
    layered.write_context(base, "FROM scratch\n")
    assert not (tmp_path / layered.HOST_CA_FILE).exists()
    assert (tmp_path / "Dockerfile").read_text() == "FROM scratch\n"


def test_host_ca_bundle_missing_is_a_prepare_error(tmp_path: Path) -> None:
    with pytest.raises(PrepareError) as err:
        rootfs.host_ca_bundle(tmp_path / "missing.crt")
    assert err.value.hint


def test_base_layers_are_made_once_and_reused_from_the_cache(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake_mmdebstrap(out: Path, mirror: str, mode: str, say, label: str) -> None:
        calls.append(mirror)
        write_tar(out / "debian.tar", {"./etc/debian_version": b"12\n"})
        write_tar(out / "python.tar", {"./etc/debian_version": b"12\n",
                                       "./var/lib/dpkg/status": STATUS}, mtime=2)
        write_tar(out / "pip.tar", {"./etc/debian_version": b"12\n",
                                    "./var/lib/dpkg/status": STATUS,
                                    "./usr/bin/pip3": b"#!"}, mtime=2)

    monkeypatch.setattr(rootfs, "ensure_mmdebstrap", lambda say, label: None)
    monkeypatch.setattr(rootfs, "mmdebstrap_mode", lambda: "root")
    monkeypatch.setattr(rootfs, "_run_mmdebstrap", fake_mmdebstrap)
    first = rootfs.base_layers(mirror="http://m.example.org/debian", cache_dir=tmp_path,
                               progress=quiet)
    second = rootfs.base_layers(mirror="http://m.example.org/debian", cache_dir=tmp_path,
                                progress=quiet)
    assert first == second
    assert calls == ["http://m.example.org/debian"]
    assert first.python_version == "3.11.2"
    assert list(tar_members(first.path("pip"))) == ["./usr/bin/pip3"]
    assert list(tar_members(first.path("python"))) == ["./var/lib/dpkg/status"]
    assert [p.name for p in tmp_path.iterdir()] == [first.directory.name]  # no work directory


def test_without_mmdebstrap_the_fix_is_one_command() -> None:
    with pytest.raises(PrepareError, match="mmdebstrap") as err:
        rootfs.mmdebstrap_mode(which=lambda name: None, euid=lambda: 0)
    assert "apt-get install mmdebstrap" in (err.value.hint or "")


def test_root_uses_root_mode_and_others_unshare() -> None:
    have = {"mmdebstrap": "/usr/bin/mmdebstrap", "newuidmap": "/usr/bin/newuidmap"}
    assert rootfs.mmdebstrap_mode(which=have.get, euid=lambda: 0) == "root"
    assert rootfs.mmdebstrap_mode(which=have.get, euid=lambda: 1000) == "unshare"


def test_without_root_or_newuidmap_it_says_what_to_run_once_as_root() -> None:
    have = {"mmdebstrap": "/usr/bin/mmdebstrap"}
    with pytest.raises(PrepareError, match="newuidmap") as err:
        rootfs.mmdebstrap_mode(which=have.get, euid=lambda: 1000)
    assert "sudo labkit prepare --offline" in (err.value.hint or "")


def test_mmdebstrap_command_snapshots_each_stage(tmp_path: Path) -> None:
    cmd = rootfs.mmdebstrap_command(tmp_path, "http://m.example.org/debian", "unshare")
    assert cmd[:3] == ["mmdebstrap", "--mode=unshare", "--variant=minbase"]
    assert '--aptopt=Acquire::Check-Valid-Until "false"' in cmd
    assert cmd[-3:] == [rootfs.SUITE, "/dev/null", "http://m.example.org/debian"]
    hooks = [c.removeprefix("--customize-hook=") for c in cmd if c.startswith("--customize-hook=")]
    order = [("snap " + h.split()[-2].rsplit("/", 1)[-1]) if h.startswith("tar ") else h.split()[-1]
             for h in hooks[1:]]
    assert order == ["snap debian.tar", "python3", "snap python.tar", "python3-pip", "snap pip.tar"]
    assert all("--exclude='./var/lib/apt/lists/*'" in h for h in hooks if h.startswith("tar "))


# --- decisions --------------------------------------------------------------------------------


def test_standin_labels_have_no_namespace() -> None:
    labels = layered.standin_labels("base")
    assert labels[config.LABEL_STANDIN] == "true"
    assert config.LABEL_NAMESPACE not in labels


def test_present_images_are_left_alone(fake_standins: list[str]) -> None:
    client = FakeClient({s.name: standin(s.role) for s in prepare.COURSE_IMAGES})
    result = prepare.prepare(offline=False, client=client, progress=quiet)
    assert list(result["status"]) == ["present"] * 3
    assert client.pulled == []
    assert fake_standins == []


def test_offline_never_pulls_and_builds_stand_ins(fake_standins: list[str]) -> None:
    client = FakeClient({})
    result = prepare.prepare(offline=True, client=client, progress=quiet)
    assert client.pulled == []
    assert fake_standins == [s.name for s in prepare.COURSE_IMAGES]
    assert list(result["status"]) == ["built stand-in"] * 3
    assert result["standin"].all()


def test_online_pulls_what_is_missing(fake_standins: list[str]) -> None:
    client = FakeClient({config.BASE_IMAGE: standin("base")})
    result = prepare.prepare(offline=False, client=client, progress=quiet)
    assert client.pulled == [config.REGISTRY_IMAGE, config.DIND_IMAGE]
    assert list(result["status"]) == ["present", "pulled", "pulled"]
    assert result.loc[1, "command"] == f"docker pull {config.REGISTRY_IMAGE}"


def test_failed_pull_falls_back_to_a_stand_in_and_says_so(fake_standins: list[str]) -> None:
    client = FakeClient({}, pull_error="no route to registry")
    stages: list[str] = []
    result = prepare.prepare(offline=False, client=client, images=[config.BASE_IMAGE],
                             progress=lambda image, stage: stages.append(stage))
    assert list(result["status"]) == ["built stand-in"]
    assert any("pull failed (" in s and "no route to registry" in s for s in stages)


def test_pull_refuses_offline_without_asking_the_engine() -> None:
    client = FakeClient({})
    with pytest.raises(ImageMissing) as err:
        prepare.pull(config.BASE_IMAGE, client=client, offline=True)
    assert "labkit prepare" in (err.value.hint or "")
    assert client.pulled == []


def test_recipe_build_refuses_when_the_base_is_missing() -> None:
    client = FakeClient({})
    with pytest.raises(ImageMissing, match="base|python"):
        prepare.build_recipe(prepare.COURSE_IMAGES[1], client=client, progress=quiet)
    assert client.built == []


def test_recipe_build_never_pulls_and_labels_the_stand_in() -> None:
    client = FakeClient({config.BASE_IMAGE: standin("base")})
    image, command = prepare.build_recipe(prepare.COURSE_IMAGES[2], client=client,
                                          progress=quiet)
    (kwargs,) = client.built
    assert kwargs["pull"] is False
    assert kwargs["labels"] == layered.standin_labels("dind-image")
    assert kwargs["buildargs"] == {"BASE": config.BASE_IMAGE}
    assert image.labels[config.LABEL_ROLE] == "dind-image"
    assert str(command).startswith("docker build")


def test_every_recipe_has_a_dockerfile_taking_the_base_as_argument() -> None:
    for spec in prepare.COURSE_IMAGES[1:]:
        text = (prepare.recipe_dir(spec) / "Dockerfile").read_text()
        assert "ARG BASE=" + config.BASE_IMAGE in text
        assert "FROM ${BASE}" in text


def test_image_status_marks_present_and_stand_in() -> None:
    client = FakeClient({config.BASE_IMAGE: standin("base"),
                         config.REGISTRY_IMAGE: FakeImage(config.REGISTRY_IMAGE)})
    status = prepare.image_status(client=client)
    assert list(status["present"]) == [True, True, False]
    assert list(status["standin"]) == [True, False, False]


# --- the build stream -------------------------------------------------------------------------


def test_follow_build_reports_steps_and_returns_the_id() -> None:
    stages: list[str] = []
    chunks = [{"stream": "Step 1/2 : FROM python:3.11-slim-bookworm\n"},
              {"stream": " ---> 49a33be61832\n"},
              {"stream": "Step 2/2 : RUN apt-get update\n"},
              {"stream": "Successfully built 0123456789ab\n"}]
    got = layered.follow_build(chunks, "registry:2", lambda image, stage: stages.append(stage))
    assert got == "0123456789ab"
    assert stages == ["step 1/2: FROM python:3.11-slim-bookworm", "step 2/2: RUN apt-get update"]


def test_follow_build_raises_with_the_failing_step() -> None:
    chunks = [{"stream": "Step 3/9 : RUN apt-get install -y docker-registry\n"},
              {"stream": "E: Unable to locate package docker-registry\n"},
              {"error": "The command returned a non-zero code: 100",
               "errorDetail": {"message": "The command returned a non-zero code: 100"}}]
    with pytest.raises(PrepareError) as err:
        layered.follow_build(chunks, "registry:2", quiet)
    assert "Step 3/9" in err.value.message
    assert "Unable to locate package" in err.value.message


def test_progress_printer_writes_elapsed_image_and_stage() -> None:
    out = io.StringIO()
    prepare.ProgressPrinter(out)("registry:2", "step 1/9")
    assert out.getvalue().rstrip().endswith("registry:2: step 1/9")
    assert out.getvalue().startswith("[")


def test_course_images_cover_the_three_settings() -> None:
    names = {s.name for s in prepare.COURSE_IMAGES}
    assert names == {config.BASE_IMAGE, config.REGISTRY_IMAGE, config.DIND_IMAGE}
