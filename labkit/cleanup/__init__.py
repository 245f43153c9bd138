"""Clean-up of what is this learner's (:mod:`labkit.images.owned` decides), the build cache
(pruned only when asked: it names no owner), the bytes a removal
really frees (module ``freed``: each layer once), a preview of what a plain prune would
take, and what on a shared engine belongs to other learners.
"""

from . import build_cache, freed, shared_engine
from .prune_preview import (
    DEFAULT_NETWORKS,
    PREVIEW_COLUMNS,
    preview_system_prune,
)
from .removal import (
    ITEM_COLUMNS,
    KINDS,
    PREPARED_IMAGES,
    CleanupReport,
    Plan,
    Rows,
    clean,
    cleanup_commands,
    plan,
)

__all__ = [
    "CleanupReport",
    "DEFAULT_NETWORKS",
    "ITEM_COLUMNS",
    "KINDS",
    "PREPARED_IMAGES",
    "PREVIEW_COLUMNS",
    "Plan",
    "Rows",
    "build_cache",
    "clean",
    "freed",
    "cleanup_commands",
    "plan",
    "preview_system_prune",
    "shared_engine",
]
