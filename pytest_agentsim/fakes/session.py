"""The session class under the name the installed livekit-agents gives it, and a session
built with offline defaults.

livekit-agents 2 renames ``AgentSession`` to ``LiveSession`` and keeps the old name as a
module-level alias that warns (``DeprecationWarning``) on every lookup; the plugin looks up
``LiveSession`` first and reads ``AgentSession`` only where it is the real class (1.x), so
no warning of ours reaches a user on any release.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import livekit.agents as lk

from .stt import MANUAL_FLUSH

if TYPE_CHECKING:
    from livekit.agents import AgentSession

__all__ = ["SESSION_ARGS", "SESSION_CLASS", "make_session"]


def _session_class() -> type[AgentSession[Any]]:
    live = getattr(lk, "LiveSession", None)  # 2.x: exported normally, no warning
    if live is not None:
        return live  # type: ignore[no-any-return]
    from livekit.agents import AgentSession  # 1.x: the class itself

    return AgentSession


SESSION_CLASS = _session_class()
"""``LiveSession`` (livekit-agents 2.x) or ``AgentSession`` (1.x)."""

SESSION_ARGS = frozenset(inspect.signature(SESSION_CLASS.__init__).parameters) - {"self"}
"""The keyword arguments the installed session takes (2.x adds ``state``, ``deps``)."""


def make_session(**kwargs: Any) -> AgentSession[Any]:
    """A session (``AgentSession(**kwargs)``) with offline defaults, on every release.

    Defaults (each only when the kwarg is absent): ``vad=None`` (otherwise livekit builds a
    Silero VAD) and ``turn_handling={"turn_detection": "manual", "endpointing":
    {"min_delay": 0.0}}``; every release takes ``turn_handling``. The zero endpointing
    delay only matters for audio turns (``commit_user_turn()`` otherwise waits 0.5 s of
    wall time before the reply); text turns never wait. On 1.6 only, with an ``stt``,
    ``session_close_transcript_timeout=0.0`` too (see the comment). Call it inside the
    running event loop.
    """
    kwargs.setdefault("vad", None)
    if kwargs.get("stt") is not None and not MANUAL_FLUSH:
        # 1.6 cannot flush an STT, so closing waits this long for a final transcript the
        # fake already delivered when the audio arrived
        kwargs.setdefault("session_close_transcript_timeout", 0.0)
    kwargs.setdefault(
        "turn_handling", {"turn_detection": "manual", "endpointing": {"min_delay": 0.0}}
    )
    return SESSION_CLASS(**kwargs)
