"""End every process that carries a classroom hub's tag in its environment.

    python3 classroom/reaper.py TAG        (scripts/classroom.sh stop)

What the hub starts (the proxy, services, some in sessions of their own) inherits
``CLASSROOM_HUB_TAG=<the classroom's state folder>``: whatever of it is left after the hub
stopped is found by that tag in /proc/PID/environ, sent SIGTERM, then SIGKILL after 10 s.
Exit status 1 when some still run after SIGKILL. Standard library only: it runs with the
machine's python3, before or without the course's venv.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterable
from pathlib import Path

VARIABLE = "CLASSROOM_HUB_TAG"


def tagged(tag: str, proc: Path = Path("/proc")) -> list[int]:
    """The pids whose environment holds ``CLASSROOM_HUB_TAG=tag`` exactly (not this one)."""
    wanted = f"{VARIABLE}={tag}".encode()
    found = []
    for entry in proc.glob("[0-9]*"):
        if entry.name == str(os.getpid()):
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if wanted in environ.split(b"\0"):
            found.append(int(entry.name))
    return sorted(found)


def _signal(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _gone(tag: str, grace: float) -> bool:
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not tagged(tag):
            return True
        time.sleep(0.5)
    return not tagged(tag)


def reap(tag: str, grace: float = 10.0) -> list[int]:
    """SIGTERM what carries ``tag``, SIGKILL what is left after ``grace`` seconds; the pids
    still running after that (none when all went)."""
    pids = tagged(tag)
    if not pids:
        return []
    print(f"classroom: ending what the hub left running (pids {' '.join(map(str, pids))})",
          flush=True)
    _signal(pids, signal.SIGTERM)
    if _gone(tag, grace):
        return []
    pids = tagged(tag)
    print(f"classroom: still running after SIGTERM: pids {' '.join(map(str, pids))}; SIGKILL",
          flush=True)
    _signal(pids, signal.SIGKILL)
    return [] if _gone(tag, grace) else tagged(tag)


def main(argv: list[str]) -> int:
    """``TAG``: reap it; 1 when something outlived SIGKILL."""
    if len(argv) != 1 or not argv[0]:
        print("usage: python3 classroom/reaper.py TAG", file=sys.stderr)
        return 2
    left = reap(argv[0])
    if left:
        print("classroom: processes of the hub still run after SIGKILL: "
              f"{' '.join(map(str, left))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
