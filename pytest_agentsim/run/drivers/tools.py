"""A turn's ``tools:`` mocks, through livekit's own ``mock_tools``.

The mocks are set on every ``Agent`` class (a handoff mid-turn must see them too) and
layered over the mocks the agent set itself (an entrypoint's ``mock_tools(..., session=)``
for simulations), which are restored after the turn.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Callable, Iterator
from typing import Any

from livekit.agents import Agent, ToolError
from livekit.agents.voice import run_result
from livekit.agents.voice.run_result import mock_tools

from ...load.model import ToolMock

__all__ = [
    "ToolMocks",
    "context_tool_mocks",
    "session_tool_mocks",
    "shared_tool_mocks",
    "turn_tool_mocks",
]

ToolMocks = dict[type, dict[str, Callable[..., Any]]]

# livekit >= 1.7 has mock_tools(..., session=); 1.6 only the context-manager form
_SESSION_FORM = "session" in inspect.signature(mock_tools).parameters

# 1.6 in process mode's child: the table shared_tool_mocks() put in the session's context
_shared: ToolMocks | None = None


def session_tool_mocks(session: Any) -> ToolMocks:
    """The ``mock_tools(..., session=session)`` sets in force on ``session`` (a copy).

    livekit has no getter; the store is ``voice.run_result._SessionMockTools`` (1.7+).
    """
    store = getattr(run_result, "_SessionMockTools", None)
    current = store.get(session, {}) if store is not None else {}
    return {cls: dict(m) for cls, m in current.items()}


def context_tool_mocks() -> ToolMocks:
    """The context-manager ``mock_tools`` sets in force in the current context (a copy)."""
    var = getattr(run_result, "_MockToolsContextVar", None)
    current = var.get({}) if var is not None else {}
    return {cls: dict(m) for cls, m in current.items()}


@contextlib.contextmanager
def turn_tool_mocks(session: Any, mocks: tuple[ToolMock, ...]) -> Iterator[None]:
    """Mock ``mocks`` for one turn of ``session``, on every Agent class."""
    if not mocks:
        yield
        return
    table = {m.name: _mock_fn(m) for m in mocks}
    classes = _agent_classes(Agent)
    if _SESSION_FORM:
        own = session_tool_mocks(session)
        for cls in classes:
            mock_tools(cls, {**own.get(cls, {}), **table}, session=session)
        try:
            yield
        finally:
            for cls in classes:
                mock_tools(cls, own.get(cls, {}), session=session)
        return
    if _shared is not None:
        # the context-var form, set where this task cannot: edit the table the session's
        # tasks share (shared_tool_mocks)
        shared = _shared
        saved = {cls: shared.get(cls) for cls in classes}
        for cls in classes:
            shared[cls] = {**(saved[cls] or {}), **table}
        try:
            yield
        finally:
            for cls, before in saved.items():
                if before is None:
                    shared.pop(cls, None)
                else:
                    shared[cls] = before
        return
    # the context-var form: the turn's tasks inherit the context because session.run()
    # creates them from this task
    own = context_tool_mocks()
    with contextlib.ExitStack() as stack:
        for cls in classes:
            stack.enter_context(mock_tools(cls, {**own.get(cls, {}), **table}))
        yield


@contextlib.contextmanager
def shared_tool_mocks(*, keep: bool = False) -> Iterator[None]:
    """Around ``session.start()`` where turns do not come from the task that sets their
    mocks, on livekit 1.6 (a no-op on 1.7+, whose ``mock_tools(..., session=)`` needs no
    context): process mode's child, and spoken turns in this process.

    1.6 reads tool mocks from a context variable, and such turns run in tasks ``start()``
    creates (the session protocol's, the audio recognition's), not in the task that sets
    a turn's mocks. The variable is set here to one table (the entrypoint's own mocks so
    far) that those tasks share, and :func:`turn_tool_mocks` edits it in place: until
    exit, or with ``keep`` for good (the child's tasks hold it beyond ``start()``, and the
    child ends with its session).
    """
    global _shared
    var = getattr(run_result, "_MockToolsContextVar", None)
    if _SESSION_FORM or var is None:
        yield
        return
    table: ToolMocks = context_tool_mocks()
    token = var.set(table)
    outer, _shared = _shared, table
    try:
        yield
    finally:
        var.reset(token)
        if not keep:
            _shared = outer


def _mock_fn(mock: ToolMock) -> Callable[[], Any]:
    if mock.raise_message is not None:
        message = mock.raise_message

        def _raise() -> Any:
            raise ToolError(message)

        return _raise
    value = mock.value

    def _return() -> Any:
        # tools return strings or JSON-able values; the framework serializes either
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    return _return


def _agent_classes(base: type) -> list[type]:
    out, todo = [], [base]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return out
