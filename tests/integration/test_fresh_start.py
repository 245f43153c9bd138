"""Step 5's fresh start against the real engine and registry: each run of the step pushes
the changed layer again (one upload, the rest exists), and the registry is kept."""

from __future__ import annotations

import uuid

import docker
import pytest

from labkit import course, registry
from labkit.images import builder as images

#: Both apps are new to the engine's cache. BuildKit keeps every result of a step that ran
#: (earlier tests ran `RUN pip install flask` with --no-cache), and a build it has not seen
#: takes the newest one, while a build it has seen keeps its own: with two new apps, the
#: original and the change sit on the same RUN layer, as in a first run of step 5.
TOKEN = uuid.uuid4().hex[:8]
ORIGINAL = f"hello world {TOKEN}!"
CHANGED = f"hello beautiful world {TOKEN}!"


def change_and_push() -> dict[str, int]:
    """The push's counts for the image's own layers (an attestation blob aside); the digest
    of its top layer's blob goes to ``TOPS``."""
    course.write_app(CHANGED)
    images.build(course.WORKSPACE, course.APP_NAME, show=False)
    reg = registry.start_registry()
    ref = registry.tag_for_registry(course.image_name(), course.APP_NAME, registry=reg)
    counts = course.image_layer_pushes(registry.push(ref, registry=reg, show=False), reg)
    TOPS.append(registry.manifest(ref.repository, "latest", reg)["layers"][-1]["digest"])
    return counts


#: The changed app's top-layer blob, per run.
TOPS: list[str] = []


@pytest.fixture(scope="module")
def step5(tmp_path_factory: pytest.TempPathFactory):
    """The step run twice, each time after a fresh start, in a workspace of its own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path_factory.mktemp("course"))
        before = course.ensure(5, message=ORIGINAL, show=False).build
        assert before is not None  # a message asks for a build of that app
        registry_id = registry.find_registry().container_id
        runs, starts = [], []
        for _ in range(2):
            starts.append(course.fresh_start_for_change(before))
            runs.append(change_and_push())
        yield before, runs, registry_id, starts


def test_every_run_uploads_the_changed_layer_once(step5):
    _, runs, _, _ = step5
    assert [r["pushed"] for r in runs] == [1, 1]


def test_every_other_layer_already_exists(step5):
    _, runs, _, _ = step5
    for r in runs:
        assert r["exists"] + r["mounted"] == r["layers"] - 1


def test_the_registry_is_kept(step5, client: docker.DockerClient):
    _, _, registry_id, _ = step5
    assert registry.find_registry(client=client).container_id == registry_id


def test_every_fresh_start_shows_what_it_did_with_its_commands(step5):
    """Nothing silent: each action is listed; the second start unlinks the first run's
    changed layer from the registry, with the curl line that does the same."""
    _, _, _, starts = step5
    for done in starts:
        said = dict(done.actions)
        pushed = said["pushed the original app again"]
        assert [str(c).split()[1] for c in pushed][-2:] == ["tag", "push"]
    unlinked = [lines for what, lines in starts[1].actions if what.startswith("unlinked")]
    assert unlinked, starts[1]
    lines = [str(x) for x in unlinked[0]]
    assert all(" -X DELETE " in x and "/blobs/sha256:" in x for x in lines)
    assert any(x.endswith(f"/blobs/{TOPS[0]}") for x in lines)
