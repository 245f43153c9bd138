"""Experiments on the build cache: the same change built with two Dockerfile orders, and
whether a Dockerfile is a repeatable recipe.
"""

from . import reproducible
from .cache_order import (
    COLUMNS,
    COPY_FIRST,
    COPY_FIRST_DOCKERFILE,
    DOCKERFILES,
    FOLDER,
    LAB_ORDER,
    ROLE,
    CacheExperiment,
    Round,
    check_conclusion,
    compare_dockerfiles,
    image_tag,
    measure,
    new_message,
    rounds_frame,
    run,
    summarize,
    write_dockerfiles,
)

__all__ = [
    "COLUMNS",
    "COPY_FIRST",
    "COPY_FIRST_DOCKERFILE",
    "CacheExperiment",
    "DOCKERFILES",
    "FOLDER",
    "LAB_ORDER",
    "ROLE",
    "Round",
    "check_conclusion",
    "compare_dockerfiles",
    "image_tag",
    "measure",
    "new_message",
    "reproducible",
    "rounds_frame",
    "run",
    "summarize",
    "write_dockerfiles",
]
