"""The learner's working folder: ``workspace/`` belongs to one learner.

The notebooks write ``workspace/app.py`` and ``workspace/Dockerfile`` next to themselves.
Several learners running the notebooks of one checkout (each with their own
``LABKIT_USER``) would overwrite each other's files there, so the first learner to open a
notebook owns ``workspace/`` (its owner file says who), and any other learner works in
``learners/<user>/`` instead: the notebook's kernel changes into that folder, where
``workspace/`` is theirs. One learner alone never sees a difference.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from labkit.course.workspace import WORKSPACE
from labkit.engine import settings

OWNER_FILE = ".labkit-user"
LEARNERS = Path("learners")


def owner(folder: Path = WORKSPACE) -> str | None:
    """The learner whose ``workspace/`` this is, or None when nobody claimed it yet."""
    try:
        return (folder / OWNER_FILE).read_text().strip() or None
    except OSError:
        return None


def claim(folder: Path = WORKSPACE, user: str | None = None) -> str:
    """Make ``folder`` exist and, unless someone already did, claim it for ``user``
    (atomically: of two learners starting at once, one wins); returns its owner."""
    user = user or settings().user
    folder.mkdir(parents=True, exist_ok=True)
    # The owner file appears with its content (a hard link of a written file), so another
    # learner never reads it empty.
    draft = folder / f"{OWNER_FILE}.{user}.{os.getpid()}.{threading.get_ident()}"
    draft.write_text(user + "\n")
    try:
        os.link(draft, folder / OWNER_FILE)
    except FileExistsError:
        return owner(folder) or user
    except OSError:  # a file system without hard links: create it exclusively instead
        try:
            fd = os.open(folder / OWNER_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return owner(folder) or user
        with os.fdopen(fd, "w") as f:
            f.write(user + "\n")
    finally:
        draft.unlink(missing_ok=True)
    return user


def enter(base: Path | None = None) -> Path | None:
    """Make sure this learner's ``workspace/`` exists, relative to the current folder.

    When ``workspace/`` here belongs to another learner, change into ``learners/<user>/``
    (made if needed) and return it; otherwise return None (nothing changes).
    """
    here = Path(base) if base is not None else Path.cwd()
    user = settings().user
    if claim(here / WORKSPACE, user) == user:
        return None
    own = here / LEARNERS / user
    claim(own / WORKSPACE, user)
    os.chdir(own)
    return own
