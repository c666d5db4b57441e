"""A scenario's run settings, resolved (the plugin applies CLI > scenario > file > ini >
default in :func:`pytest_agentsim.plugin.settings.run_settings`)."""

from __future__ import annotations

import dataclasses
from typing import Literal

__all__ = ["RunSettings"]


@dataclasses.dataclass(frozen=True)
class RunSettings:
    mode: Literal["text", "audio"] = "text"
    timeout: float = 30.0
    allow_unused: bool = False
    real_timing: bool = False
    transport: Literal["fake", "gateway"] = "fake"  # gateway: the real client, fake gateway
    keep_history: bool = True  # normalize the chat history at the end (snapshots need it)
    process: bool = False  # the agent file in a child process (process mode)
    allow_network: bool = False
    # process mode: fork each job from a warm server per agent file (off: a cold child)
    warm: bool = False
