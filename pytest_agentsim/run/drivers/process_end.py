"""How a process-mode scenario ends: ``finalize_simulation`` over the session protocol, or
the verdict the child's shim wrote when the agent closed the session itself; and the
readings of the child's messages (its errors, what the gateway served, its close); and
what process mode cannot run."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from livekit.agents.voice.remote_session import RemoteSession

from ...errors import ScenarioError
from ...load.model import Scenario, ToolMock, on_the_clock
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
    "unsupported_in_process",
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

    async def finalize(
        self, remote: RemoteSession, verdict: tuple[bool, str] | None = None
    ) -> None:
        """``finalize_simulation``: the agent's ``on_simulation_end`` and its verdict.

        ``verdict``: the simulator's (success, reason), a judge's (simulated scenarios);
        scripted scenarios that got here passed every turn."""
        note = self.rec.note
        if self.rec.closed:
            await self._finalized_after_close()
            return
        self.finishing = True
        try:
            result = await remote.finalize_simulation(
                provisional_success=verdict[0] if verdict else True,
                provisional_reason=verdict[1] if verdict else SCRIPTED_PASS_REASON,
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


def unsupported_in_process(scenario: Scenario, mode: str) -> ScenarioError | None:
    """Why ``scenario`` cannot run in process mode (None: it can)."""
    cfg = scenario.config
    timed = on_the_clock(scenario)
    if timed:
        return ScenarioError(
            f"`{timed[1]}` is measured on the virtual clock, and in process mode the "
            "agent runs on the wall clock in its own process",
            path=scenario.path,
            line=timed[0],
            fix="run this scenario in entrypoint mode (without `process: true`); "
            "`pause:` and `silence:` work in process mode too",
        )
    if mode == "audio":
        return None
    problems = [
        (sf.line, f"inject {sf.resource} faults") for sf in cfg.faults if sf.resource != "llm"
    ]
    steps = [*(cfg.turns or ()), *([cfg.greeting] if cfg.greeting else [])]
    problems += [(t.line, "script `tts:` steps") for t in steps if t.tts]
    if not problems:
        return None
    line, what = problems[0]
    return ScenarioError(
        f"process mode cannot {what} in text mode: the console session has no STT/TTS then",
        path=scenario.path,
        line=line,
        fix="add `mode: audio` to the scenario's agentsim block",
    )
