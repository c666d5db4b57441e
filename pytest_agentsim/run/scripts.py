"""Where a scenario's scripted model answers go: the fakes, or the fake gateway.

The turn player queues ``llm:`` answers, ``tts:`` faults and scenario-wide faults on a
:class:`Scripts`, whatever serves the models in the mode at hand (in-process fakes, or the
loopback gateway that the real clients of an agent in another process talk to).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ..faults import CallScript, Fault
from ..observe.record import Recorder
from ..transport import InferenceGateway

__all__ = ["Scripts", "Served", "gateway_scripts"]

Served = tuple[Any, frozenset[str]]
"""An answer the model was given, and the names of the tools offered on that call."""


@dataclasses.dataclass
class Scripts:
    llm: CallScript[Any]
    tts: CallScript[Any]
    stt: CallScript[Any]
    unscripted: Callable[[], list[str]]
    """Model calls that found nothing scripted, or could not use what was (in order)."""
    served: Callable[[], list[Served]]
    """Answers served so far, with the tools offered on each call (in order)."""
    set_tts_ttfb: Callable[[float], None] = lambda seconds: None
    """Sets the TTS's time to first audio (``timing: {tts_ttfb}``)."""

    def of(self, resource: str) -> CallScript[Any]:
        script: CallScript[Any] = getattr(self, resource)
        return script


def gateway_scripts(gateway: InferenceGateway, rec: Recorder) -> Scripts:
    """The gateway's scripts; every fault it serves is noted on ``rec``'s timeline."""

    def noting(resource: str) -> Callable[[int, Fault], None]:
        def observe(call: int, fault: Fault) -> None:
            rec.record_fault(resource, call, fault, " (gateway)")

        return observe

    for resource in ("llm", "tts", "stt"):
        gateway.script(resource).fault_observers.append(noting(resource))
    return Scripts(
        llm=gateway.llm,
        tts=gateway.tts,
        stt=gateway.stt,
        unscripted=lambda: list(gateway.unscripted),
        served=lambda: list(gateway.served),
        set_tts_ttfb=lambda seconds: setattr(gateway, "tts_ttfb", seconds),
    )
