"""Processes the agent started, found wherever they went: by a token in their environment.

The agent process leads its own process group, and its teardown kills the group. A process
it starts with ``start_new_session=True`` (or ``setsid``, or a double fork) leaves that
group and would outlive its scenario. Every descendant inherits the environment, so each
agent process gets a fresh :data:`TOKEN_ENV` and :func:`reap` kills whatever still carries
it. Linux only (``/proc``); elsewhere the process group is all there is. A process that
clears its own environment is not found.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from pathlib import Path

__all__ = ["TOKEN_ENV", "new_token", "reap"]

TOKEN_ENV = "AGENTSIM_RUN_TOKEN"

_PROC = Path("/proc")


def new_token() -> str:
    return uuid.uuid4().hex


def reap(token: str) -> list[int]:
    """Kills every process (but this one) whose environment carries ``token``; their pids."""
    if not _PROC.is_dir():
        return []
    needle = f"{TOKEN_ENV}={token}".encode()
    killed = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone already, or not ours to read
            continue
        if needle in environ.split(b"\0"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
    return killed
