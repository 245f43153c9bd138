"""Clean-up by label, a preview of what a plain prune would take, and what on a shared engine
belongs to other learners.
"""

from . import shared_engine
from .labelled import (
    DEFAULT_NETWORKS,
    ITEM_COLUMNS,
    KINDS,
    PREPARED_IMAGES,
    PREVIEW_COLUMNS,
    CleanupReport,
    DockerSubstCommand,
    Rows,
    clean,
    cleanup_commands,
    preview_system_prune,
)

__all__ = [
    "CleanupReport",
    "DEFAULT_NETWORKS",
    "DockerSubstCommand",
    "ITEM_COLUMNS",
    "KINDS",
    "PREPARED_IMAGES",
    "PREVIEW_COLUMNS",
    "Rows",
    "clean",
    "cleanup_commands",
    "preview_system_prune",
    "shared_engine",
]
