"""Run a command tied to the process that started it (the hub's managed services use it).

``python tied.py COMMAND [ARG...]`` resets SIGINT, SIGQUIT and SIGTERM to their defaults
(a hub started in the background hands its children SIGINT ignored, which turned the
hub's "SIGINT, wait, SIGTERM" shutdown of a service into a wait), asks the kernel to send
SIGTERM when the parent dies (so a hub that is killed takes its services with it), and
then becomes COMMAND. Linux only: elsewhere the command just runs.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG, PR_GET_PDEATHSIG = 1, 2


def _prctl(option: int, arg: object) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, arg, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option})")


def death_signal() -> int:
    """The signal this process gets when its parent dies (0: none, or not Linux)."""
    if sys.platform != "linux":
        return 0
    value = ctypes.c_int(0)
    _prctl(PR_GET_PDEATHSIG, ctypes.byref(value))
    return value.value


def set_death_signal(signum: int, parent: int) -> None:
    """``signum`` to this process when its parent exits; exit now if ``parent`` (its parent
    when the caller looked) has already gone. The kernel forgets it on a change of user."""
    if sys.platform != "linux":
        return
    _prctl(PR_SET_PDEATHSIG, signum)
    if os.getppid() != parent:
        sys.exit(0)


def tie_to_parent() -> None:
    """SIGTERM to this process when its parent exits; exit now if it already has."""
    parent = os.getppid()
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    set_death_signal(signal.SIGTERM, parent)


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: tied.py COMMAND [ARG...]")
    tie_to_parent()
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
