"""livekit's log records, read for the transcript.

Why a tool failed: livekit turns an exception in a tool into the output "An internal
error occurred" and logs the exception; :class:`ToolErrorLog` reads that log record (by its
structure: the ``function`` extra and the exception) so the transcript names the cause.

What a fault caused: livekit logs every retry of an injected failure and the traceback of
the turn it ends (~40 lines for one quota fault). The transcript already shows each one
(``fault | llm call 2: quota_exceeded``), so :class:`FaultLogFilter` keeps them out of
pytest's captured log; everything else livekit logs stays.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable
from typing import Any

from ..observe.frames import describe_exception
from ..transport.wire import REQUEST_ID_PREFIX

__all__ = ["USERDATA_FIX", "FaultLogFilter", "ToolErrorLog", "tool_failure"]

# what the fake gateway answers an unscripted call (transport/wire.py): the run reports
# those calls itself, with the fix
_UNSCRIPTED_MARK = "pytest-agentsim: "

USERDATA_FIX = (
    "the tool reads the session's userdata, which this session was not given: return "
    "`(agent, {'userdata': ...})` from the agent factory, or set "
    "`agentsim: {session: {userdata: ...}}` (an AgentServer target builds its own session)"
)


def tool_failure(exc: BaseException) -> tuple[str, str | None]:
    """``(description, fix)`` for an exception a tool raised."""
    fix = None
    frames = traceback.extract_tb(exc.__traceback__)
    # livekit's AgentSession.userdata property raises when no userdata was given
    if frames and frames[-1].name == "userdata" and "livekit" in frames[-1].filename:
        fix = USERDATA_FIX
    return describe_exception(exc), fix


class ToolErrorLog(logging.Handler):
    """Calls ``report(tool name, exception)`` for each tool exception livekit logs."""

    def __init__(self, report: Callable[[str, BaseException], Any]) -> None:
        super().__init__(level=logging.ERROR)
        self.report = report
        self._logger = logging.getLogger("livekit.agents")

    def emit(self, record: logging.LogRecord) -> None:
        function = getattr(record, "function", None)
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(function, str) and isinstance(exc, BaseException):
            self.report(function, exc)

    def __enter__(self) -> ToolErrorLog:
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)


class FaultLogFilter(logging.Filter):
    """Drops livekit's records about failures the scenario injected (``texts()``: the
    fault texts seen so far) or about calls nothing was scripted for."""

    def __init__(self, texts: Callable[[], set[str]]) -> None:
        super().__init__()
        self.texts = texts
        self._logger = logging.getLogger("livekit.agents")
        self._loop: asyncio.AbstractEventLoop | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is not self._loop:
            return True  # another run's record (a filter left behind must not hide it)
        # livekit's inference client logs each 429 with its request id: one of the fake
        # gateway's answers is always a fault the scenario injected
        if str(getattr(record, "request_id", "")).startswith(REQUEST_ID_PREFIX):
            return False
        texts = self.texts()
        parts = [record.getMessage()]
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None and len(parts) < 20:
            parts.append(str(exc))
            exc = exc.__cause__ or exc.__context__
        for part in parts:
            if _UNSCRIPTED_MARK in part or any(t in part for t in texts):
                return False
        return True

    def __enter__(self) -> FaultLogFilter:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._logger.addFilter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeFilter(self)
