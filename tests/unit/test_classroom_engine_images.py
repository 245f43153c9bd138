"""A learner's engine in the classroom starts with every image the course's set-up checks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from labkit.offline import course_images as prepare

ROOT = Path(__file__).resolve().parents[2]


def test_a_learner_engine_gets_every_course_image() -> None:
    spec = importlib.util.spec_from_file_location(
        "classroom_learner_engine", ROOT / "classroom" / "learner_engine.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    assert set(module.COURSE_IMAGES) == {image.name for image in prepare.COURSE_IMAGES}
