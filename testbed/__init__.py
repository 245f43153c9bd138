"""Maintainers' runs against real engines (not shipped to learners).

- ``testbed.engines``: the engine spec (``28.5+containerd+api1.44``) and its stand-in image;
- ``testbed.dind``: one Docker-in-Docker engine session (start, check, load, env file, stop);
- ``testbed.notebooks``: the one notebook runner (stored outputs, the course's cell times);
- ``testbed.concurrency``: many learners at once on one engine;
- ``testbed.bench``: the benchmarks on the oldest and the newest engine;
- ``testbed.test_run``: `make test` and `make test-quick`, over ``testbed.stages`` (stages in
  a row or side by side, each timed, one summary).
"""
