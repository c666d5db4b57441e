"""How a process-mode scenario ends: ``finalize_simulation`` over the session protocol, or
the verdict the child's shim wrote when the agent closed the session itself; and the
readings of the child's messages (its errors, what the gateway served, its close)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from livekit.agents.voice.remote_session import RemoteSession

from ...load.model import ToolMock
from ...observe.record import Recorder
from ..outcome import StepFailed, vetoed
from .child import AgentProcess
from .dispatch import SCRIPTED_PASS_REASON

__all__ = [
    "ProcessEnd",
    "RemoteClose",
    "error_text",
    "indented",
    "mock_json",
    "served",
    "strip_request",
]


@dataclasses.dataclass(frozen=True)
class RemoteClose:
    """The child session's ``close``, as its log reported it (shaped like ``CloseEvent``)."""

    reason: str
    error: str | None = None


def error_text(text: str) -> str:
    """The remote ``ErrorEvent``'s repr, reduced to its error and whether it is recoverable."""
    m = re.search(r"\berror=(?P<err>.+) recoverable=(?P<rec>True|False)\s*$", text)
    if m is None:
        return text
    flag = "recoverable" if m["rec"] == "True" else "unrecoverable"
    return f"{m['err']} [{flag}]"


def served(entries: Sequence[Any]) -> str:
    """``quota_exceeded(429 MaxGatewayCredits) on llm calls 1-4``, from the gateway's record."""
    groups: dict[str, list[str]] = {}
    for e in entries:
        head, _, what = e.text.partition(": ")
        groups.setdefault(what, []).append(head.replace(" (gateway)", ""))
    parts = []
    for what, calls in groups.items():
        where = calls[0] if len(calls) == 1 else f"{calls[0]} to {calls[-1].split()[-1]}"
        parts.append(f"{what} on {where}")
    return "; ".join(parts)


def strip_request(text: str) -> str:
    """livekit's ``session request <kind> failed: <error>`` without its prefix."""
    return re.sub(r"^session request \w+ failed: ", "", text)


class ProcessEnd:
    """``on_simulation_end`` of the agent in ``child``, and its verdict."""

    def __init__(self, rec: Recorder, child: AgentProcess, timeout: float) -> None:
        self.rec = rec
        self.child = child
        self.timeout = timeout
        self.finishing = False  # finalize_simulation ends the session: not the agent's close

    def child_gone(self) -> str | None:
        code = self.child.exit_code
        return None if code is None else f"the agent process exited (code {code})"

    async def finalize(self, remote: RemoteSession) -> None:
        """``finalize_simulation``: the agent's ``on_simulation_end`` and its verdict."""
        note = self.rec.note
        if self.rec.closed:
            await self._finalized_after_close()
            return
        self.finishing = True
        try:
            result = await remote.finalize_simulation(
                provisional_success=True,
                provisional_reason=SCRIPTED_PASS_REASON,
                timeout=self.timeout,
            )
        except asyncio.TimeoutError:
            raise StepFailed(f"on_simulation_end did not finish within {self.timeout:g}s") from None
        except RuntimeError as e:
            text = self.child_gone() or strip_request(str(e))
            raise StepFailed(
                f"on_simulation_end failed: {text}",
                entry=note("error", f"finalize_simulation: {text}"),
            ) from None
        if result.HasField("user_verdict") and not result.user_verdict.success:
            raise vetoed(self.rec, result.user_verdict.reason)
        note("note", "on_simulation_end: passed (no ctx.fail)")

    async def _finalized_after_close(self) -> None:
        """The session closed first, so its host is gone and ``finalize_simulation``
        cannot reach it: the shim ran ``on_simulation_end`` in the child at the close."""
        note = self.rec.note
        detail = await self.child.simulation_end_after_close(self.timeout)
        if detail is None:
            raise StepFailed(
                "on_simulation_end did not report a verdict after the session closed "
                f"(within {self.timeout:g}s, or the agent process exited)",
                entry=note("error", "on_simulation_end: no verdict"),
            )
        if detail.get("error"):
            text = str(detail["error"])
            raise StepFailed(
                f"on_simulation_end failed: {text}",
                entry=note("error", f"on_simulation_end (after the close): {text}"),
            )
        if not detail.get("ran"):
            note("note", "on_simulation_end: none registered (the session had closed)")
            return
        if not detail.get("success", True):
            raise vetoed(self.rec, str(detail.get("reason") or ""))
        note("note", "on_simulation_end (run at the close): passed (no ctx.fail)")


def indented(text: str, prefix: str = "    ") -> str:
    """``text`` with every line indented, for a child's log quoted in a failure."""
    return "\n".join(prefix + ln for ln in text.splitlines())


def mock_json(mock: ToolMock) -> dict[str, Any]:
    """A turn's ``tools:`` mock as the control channel carries it to the child."""
    out: dict[str, Any] = {"name": mock.name, "value": mock.value}
    if mock.raise_message is not None:
        out["raise"] = mock.raise_message
    return out
