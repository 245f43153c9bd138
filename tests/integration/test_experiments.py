"""The cache experiment against the real engine: three rounds of each Dockerfile.

Three, so that a replaced round is removed before the next one builds: its removal must
not take the cached steps with it (the containerd image store prunes untagged parents).
"""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from labkit import images
from labkit.engine import config
from labkit.experiments import cache_order as experiments
from labkit.experiments.cache_order import COPY_FIRST, LAB_ORDER

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def results(client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
            ) -> experiments.CacheExperiment:
    return experiments.run(3, tmp_path_factory.mktemp("cache-lab"), client=client)


def test_lab_order_rebuilds_only_copy(results: experiments.CacheExperiment):
    assert results.rebuilt_per_round(LAB_ORDER) == [("COPY",)] * 3


def test_copy_first_rebuilds_copy_and_what_follows(results: experiments.CacheExperiment):
    assert results.builder is not None
    # BuildKit makes no step of CMD (it only writes the configuration)
    after_copy = ("COPY", "RUN") if results.builder.buildkit else ("COPY", "RUN", "CMD")
    assert results.rebuilt_per_round(COPY_FIRST) == [after_copy] * 3


def test_each_round_built_a_new_image(results: experiments.CacheExperiment,
                                      client: docker.DockerClient):
    tagged = {name: client.images.get(tag).id for name, tag in results.tags.items()}
    assert tagged == {r.dockerfile: r.image_id for r in results.rounds}


def test_images_are_recorded_as_this_learners(results: experiments.CacheExperiment,
                                              settings: config.Settings):
    recorded = images.owned.recorded_ids(settings)
    assert {r.image_id.removeprefix("sha256:") for r in results.rounds} <= recorded


def test_replaced_round_images_are_gone(results: experiments.CacheExperiment,
                                        client: docker.DockerClient,
                                        settings: config.Settings):
    # Every round's image but the last of each Dockerfile is gone; the warm-ups (the next
    # run's cache) stay. Images carry the namespace label only, so ask by id.
    keep = set(results.tags.values()) | set(results.warm_ups.values())
    final = {client.images.get(tag).id for tag in results.tags.values()}
    replaced = {r.image_id for r in results.rounds} - final - keep
    present = {image.id for image in client.images.list(
        all=True, filters={"label": settings.label_filters()})}
    assert replaced
    assert not replaced & present


def test_a_second_run_warms_up_from_the_cache(results: experiments.CacheExperiment,
                                              client: docker.DockerClient):
    # every step of the second run's warm-up builds comes from the cache (the builder's own
    # record: on the containerd store a BuildKit image's ID differs at every build)
    again = experiments.run(1, results.folder, client=client)
    assert again.warm_up_rebuilt == {name: () for name in results.dockerfiles}


def test_the_app_folder_holds_the_last_round(results: experiments.CacheExperiment):
    app = Path(results.folder) / LAB_ORDER / "app.py"
    assert "hello world " in app.read_text()
