"""The session class under the name the installed livekit-agents gives it, and a session
built with offline defaults.

livekit-agents 2 renames ``AgentSession`` to ``LiveSession`` and keeps the old name as a
module-level alias that warns (``DeprecationWarning``) on every lookup; the plugin looks up
``LiveSession`` first and reads ``AgentSession`` only where it is the real class (1.x), so
no warning of ours reaches a user on any release.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, get_args

import livekit.agents as lk
from livekit.agents.voice.events import EventTypes

from .stt import MANUAL_FLUSH

if TYPE_CHECKING:
    from livekit.agents import AgentSession

__all__ = [
    "SESSION_ARGS",
    "SESSION_CLASS",
    "START_WATCHES_ON_ENTER",
    "TOOL_UPDATES",
    "make_session",
    "run_captures_on_enter",
]


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

START_WATCHES_ON_ENTER = "_on_enter_task" in inspect.getsource(SESSION_CLASS._update_activity_task)
"""Whether ``start(capture_run=True)`` returns a run that waits for ``on_enter`` (livekit
> 1.6.0). On 1.6.0 the run watches only the speech ``on_enter`` makes: one that says
nothing leaves it unfinished, so ``start()`` never returns."""

TOOL_UPDATES = "tool_execution_updated" in get_args(EventTypes)
"""Whether the session emits a tool call as it starts (``tool_execution_updated``, livekit
> 1.6); on 1.6 only each speech handle reports it (``_add_item_added_callback``)."""


@contextlib.contextmanager
def run_captures_on_enter(session: AgentSession[Any]) -> Iterator[None]:
    """Around ``session.start(capture_run=True)``: the captured run also waits for the
    agent's ``on_enter`` task, as newer livekit's ``start()`` does itself (a no-op there).

    On livekit-agents 1.6.0 the session's ``_update_activity`` is wrapped for the
    duration, so the activity ``start()`` creates has its ``on_enter`` watched by the run.
    """
    if START_WATCHES_ON_ENTER:
        yield
        return
    update = session._update_activity  # bound now: includes any class-level patch

    async def update_activity(agent: Any, *args: Any, **kwargs: Any) -> None:
        await update(agent, *args, **kwargs)
        if kwargs.get("wait_on_enter", True):
            return  # on_enter already awaited
        task = getattr(session._activity, "_on_enter_task", None)
        run = session._global_run_state
        if task is not None and run is not None and not run.done():
            run._watch_handle(task)

    setattr(session, "_update_activity", update_activity)  # noqa: B010
    try:
        yield
    finally:
        with contextlib.suppress(AttributeError):
            delattr(session, "_update_activity")


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
