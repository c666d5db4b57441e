"""Drawing a gateway's next answer from a script, as each transport needs it."""

from __future__ import annotations

from typing import TypeVar

from ..faults import CallScript, Fault, ScriptExhausted

__all__ = ["UNSCRIPTED", "NoAnswer", "draw", "handshake_fault"]

_T = TypeVar("_T")


class NoAnswer:
    """Marker: nothing scripted for this call."""


UNSCRIPTED = NoAnswer()


def handshake_fault(fault: Fault) -> bool:
    """Faults a gateway expresses by refusing the websocket upgrade."""
    return fault.status is not None or fault.kind in ("connection_error", "timeout")


def draw(script: CallScript[_T]) -> _T | Fault | NoAnswer:
    """The next scripted answer or fault; :data:`UNSCRIPTED` when nothing is scripted."""
    try:
        return script.next()
    except ScriptExhausted:
        return UNSCRIPTED
