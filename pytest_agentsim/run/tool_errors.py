"""Why a tool failed: livekit turns an exception in a tool into the output "An internal
error occurred" and logs the exception; this handler reads that log record (by its
structure: the ``function`` extra and the exception) so the transcript names the cause."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from ..observe.frames import describe_exception

__all__ = ["USERDATA_FIX", "ToolErrorLog", "tool_failure"]

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
