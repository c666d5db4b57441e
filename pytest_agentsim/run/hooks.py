"""An agent's ``on_enter`` that raises: livekit runs it as a task nobody awaits, so the
exception is only "never retrieved" at garbage collection and the greeting (or a sub-task's
first words) silently never happens. The activities a session starts are watched here (in
this process, and in process mode's child) so the step fails naming the agent's line."""

from __future__ import annotations

import asyncio
from typing import Any

from ..observe.frames import describe_exception

__all__ = ["HookWatch"]


class HookWatch:
    """The activities a session started; :meth:`failures` reports each crashed
    ``on_enter`` once."""

    def __init__(self) -> None:
        self._activities: list[Any] = []
        self._reported: set[int] = set()

    def saw_handoff(self, session: Any) -> None:
        """A handoff was just added: the session's current activity is the new agent's
        (its ``on_enter`` task starts right after)."""
        activity = getattr(session, "_activity", None)
        if activity is not None and all(a is not activity for a in self._activities):
            self._activities.append(activity)

    def _crashed(self) -> list[tuple[Any, asyncio.Future[Any]]]:
        out = []
        for activity in self._activities:
            task = getattr(activity, "_on_enter_task", None)
            if not isinstance(task, asyncio.Future) or id(task) in self._reported:
                continue
            if task.done() and not task.cancelled() and task.exception() is not None:
                out.append((activity, task))
        return out

    def crashed(self) -> bool:
        """Whether an ``on_enter`` raised that :meth:`failures` has not reported yet."""
        return bool(self._crashed())

    def failures(self) -> list[str]:
        out = []
        for activity, task in self._crashed():
            self._reported.add(id(task))
            agent = getattr(getattr(activity, "agent", None), "id", "the agent")
            exc = task.exception()
            assert exc is not None
            out.append(f"on_enter of {agent} raised {describe_exception(exc)}")
        return out
