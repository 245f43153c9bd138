"""The cache experiment against the real engine: three rounds of each Dockerfile.

Three, so that a replaced round is removed before the next one builds: its removal must
not take the cached steps with it (the containerd image store prunes untagged parents).
"""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from labkit.engine import config
from labkit.experiments import cache_order as experiments
from labkit.experiments.cache_order import COPY_FIRST, LAB_ORDER
from labkit.images import owned

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def results(client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
            ) -> experiments.CacheExperiment:
    return experiments.run(3, tmp_path_factory.mktemp("cache-lab"), client=client)


def test_lab_order_rebuilds_only_copy(results: experiments.CacheExperiment):
    assert results.rebuilt_per_round(LAB_ORDER) == [("COPY",)] * 3


def test_copy_first_rebuilds_copy_run_and_cmd(results: experiments.CacheExperiment):
    assert results.rebuilt_per_round(COPY_FIRST) == [("COPY", "RUN", "CMD")] * 3


def test_each_round_built_a_new_image(results: experiments.CacheExperiment,
                                      client: docker.DockerClient):
    tagged = {name: client.images.get(tag).id for name, tag in results.tags.items()}
    assert tagged == {r.dockerfile: r.image_id for r in results.rounds}


def test_images_are_this_learners_by_name(results: experiments.CacheExperiment,
                                         client: docker.DockerClient,
                                         settings: config.Settings):
    image = client.images.get(results.tags[COPY_FIRST])
    assert owned.is_own_image(image.attrs, s=settings)
    assert config.LABEL_NAMESPACE not in (image.labels or {})  # no label of ours


def test_replaced_round_images_are_gone(results: experiments.CacheExperiment,
                                        client: docker.DockerClient,
                                        settings: config.Settings):
    # Every round's image but the last of each Dockerfile is gone; the warm-ups (the next
    # run's cache) stay. Asked by id, over every image of the engine.
    keep = set(results.tags.values()) | set(results.warm_ups.values())
    final = {client.images.get(tag).id for tag in results.tags.values()}
    replaced = {r.image_id for r in results.rounds} - final - keep
    present = {image.id for image in client.images.list(all=True)}
    assert replaced
    assert not replaced & present


def test_a_second_run_warms_up_from_the_cache(results: experiments.CacheExperiment,
                                              client: docker.DockerClient):
    again = experiments.run(1, results.folder, client=client)
    assert again.warm_ups == results.warm_ups


def test_the_app_folder_holds_the_last_round(results: experiments.CacheExperiment):
    app = Path(results.folder) / LAB_ORDER / "app.py"
    assert "hello world " in app.read_text()
