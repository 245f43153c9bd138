"""Offline: every course image present (pulled, or a stand-in built here), the stand-in
base image and its Debian root file systems, and image bundles for classrooms.
"""

from .base_image import (
    follow_build,
    standin_labels,
)
from .bundle import (
    checksum_path,
    export_bundle,
    load_bundle,
)
from .course_images import (
    COURSE_IMAGES,
    RECIPES,
    Built,
    CourseImage,
    Progress,
    ProgressPrinter,
    build_base,
    build_recipe,
    build_standin,
    context_tar,
    image_status,
    prepare,
    pull,
    recipe_dir,
)
from .debian_rootfs import (
    cache_root,
    debian_mirror,
)

__all__ = [
    "Built",
    "COURSE_IMAGES",
    "CourseImage",
    "Progress",
    "ProgressPrinter",
    "RECIPES",
    "build_base",
    "build_recipe",
    "build_standin",
    "cache_root",
    "checksum_path",
    "context_tar",
    "debian_mirror",
    "export_bundle",
    "follow_build",
    "image_status",
    "load_bundle",
    "prepare",
    "pull",
    "recipe_dir",
    "standin_labels",
]
