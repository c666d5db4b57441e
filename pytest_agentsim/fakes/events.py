"""The observer events every fake reports, so a harness can build one timeline."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Literal

from ..faults import Fault

__all__ = ["FakeEvent", "FakeEventKind", "FakeResource", "Observable"]

FakeResource = Literal["llm", "tts", "stt"]
FakeEventKind = Literal["call", "answer", "fault", "unscripted"]

_log = logging.getLogger("pytest_agentsim.fakes")


@dataclasses.dataclass(frozen=True)
class FakeEvent:
    """One thing a fake did: a model call arrived, was answered, failed, or was unscripted.

    ``call`` is the resource's 1-based call number (every retry attempt is a call).
    """

    resource: FakeResource
    kind: FakeEventKind
    call: int
    detail: str
    fault: Fault | None = None


class Observable:
    """Mixin: ``add_observer(fn)`` and ``_notify(event)`` for the fakes."""

    _observers: list[Callable[[FakeEvent], None]]

    def _init_observers(self) -> None:
        self._observers = []

    def add_observer(self, fn: Callable[[FakeEvent], None]) -> None:
        """Call ``fn(event)`` synchronously for every :class:`FakeEvent` of this fake."""
        self._observers.append(fn)

    def remove_observer(self, fn: Callable[[FakeEvent], None]) -> None:
        self._observers.remove(fn)

    def _notify(self, event: FakeEvent) -> None:
        for fn in list(self._observers):
            try:
                fn(event)
            except Exception:
                # an observer bug must not turn into a model failure inside livekit's retry loop
                _log.exception("agentsim fake observer %r failed", fn)
