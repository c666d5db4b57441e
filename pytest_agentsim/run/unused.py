"""Scripting mistakes the player reports: answers never used, and tool calls the agent
cannot make (a scripted ``tool_calls`` name it does not offer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..faults import Fault
from ..load.model import Scenario
from .outcome import StepFailed, location
from .scripts import Scripts, Served

__all__ = ["ScriptedLines", "check_tool_names", "unused_failure"]


class ScriptedLines:
    """Where each queued answer and fault was scripted: its YAML line and step."""

    def __init__(self) -> None:
        self._lines: dict[int, tuple[int | None, str]] = {}

    def add(self, item: Any, line: int | None, where: str) -> None:
        self._lines[id(item)] = (line, where)

    def line(self, item: Any) -> int | None:
        return self._lines.get(id(item), (None, ""))[0]

    def where(self, item: Any) -> str:
        return self._lines.get(id(item), (None, ""))[1]


def check_tool_names(served: Sequence[Served], lines: ScriptedLines) -> None:
    """Each served answer's tool calls name tools the agent offered on that call."""
    for answer, offered in served:
        for call in getattr(answer, "tool_calls", ()) or ():
            if call.name not in offered:
                tools = ", ".join(sorted(offered)) or "(none: it offered no tools on that call)"
                raise StepFailed(
                    f"the scripted tool call {call.name!r} names a tool the agent does not "
                    f"offer on that model call\n  it offers: {tools}\n"
                    "  fix: use one of those names in `tool_calls` (tools come from the agent's "
                    "@function_tool methods and its `tools=`)",
                    line=lines.line(answer),
                )


def unused_failure(
    scripts: Scripts, lines: ScriptedLines, scenario: Scenario, *, after_call: bool = False
) -> StepFailed | None:
    """Scripted answers and faults nothing used (``after_call``: only those of
    ``session_end``, whose calls come when the session has closed)."""
    leftovers: list[tuple[str, int | None]] = []
    for resource in ("llm", "tts", "stt"):
        for item in scripts.of(resource).unused():
            if after_call != (lines.where(item) == "session_end"):
                continue
            what = item.describe() if isinstance(item, Fault) else _describe_answer(item)
            leftovers.append((f"{resource}: {what}", lines.line(item)))
    if not leftovers:
        return None
    listing = "\n".join(f"    {location(scenario, line)}: {what}" for what, line in leftovers)
    made = " after the call" if after_call else ""
    return StepFailed(
        f"scripted model answers were never used (the agent made fewer model calls{made} "
        f"than scripted):\n{listing}\n"
        "  fix: remove them, or set `agentsim: {allow_unused: true}`",
        line=leftovers[0][1],
    )


def _describe_answer(answer: Any) -> str:
    parts = []
    if getattr(answer, "text", None):
        parts.append(f"say {answer.text!r}")
    for call in getattr(answer, "tool_calls", ()) or ():
        parts.append(f"tool_call {call.name}")
    return ", ".join(parts) or repr(answer)
