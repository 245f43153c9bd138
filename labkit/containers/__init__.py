"""Containers: run an app with a published port and wait for it, logs, stop, remove, diff,
why a container failed, and the docker commands for each.
"""

from . import graceful_stop, python_runtime
from .apps import (
    DIFF_KINDS,
    DIFF_LETTERS,
    POLL_INTERVAL,
    ContainerLogs,
    RunningApp,
    containers_frame,
    diff,
    diff_frame,
    http_session,
    list_containers,
    logs,
    remove,
    run,
    stop,
)
from .commands import (
    diff_command,
    exec_command,
    list_command,
    logs_command,
    remove_command,
    run_command,
    stop_command,
)

__all__ = [
    "ContainerLogs",
    "DIFF_KINDS",
    "DIFF_LETTERS",
    "POLL_INTERVAL",
    "RunningApp",
    "containers_frame",
    "diff",
    "diff_command",
    "diff_frame",
    "exec_command",
    "graceful_stop",
    "http_session",
    "list_command",
    "list_containers",
    "logs",
    "logs_command",
    "python_runtime",
    "remove",
    "remove_command",
    "run",
    "run_command",
    "stop",
    "stop_command",
]
