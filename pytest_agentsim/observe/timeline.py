"""The ordered record of one conversation, and its plain-text transcript.

Every observable thing (user input, agent messages, tool calls and outputs, handoffs,
faults fired by the fakes, speech that reached the user, errors, close) is appended here
in the order it happened, so failure reports, the HTML report and fallback-ordering
assertions all read the same record. Never imports pytest.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["TimelineEntry", "render_transcript"]

_LABELS = {
    "user": "user",
    "agent": "agent",
    "tool_call": "tool call",
    "tool_output": "tool output",
    "handoff": "handoff",
    "fault": "fault",
    "spoken": "spoken",
    "error": "error",
    "close": "close",
    "note": "note",
}


@dataclasses.dataclass
class TimelineEntry:
    """One event; ``turn`` is the 1-based scripted turn it belongs to (0 = before any)."""

    kind: str
    text: str
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)
    failed: bool = False
    yaml_line: int | None = None
    turn: int = 0

    def render(self) -> str:
        label = _LABELS.get(self.kind, self.kind)
        return f"{label:>11} | {self.text}"


def render_transcript(
    entries: list[TimelineEntry],
    *,
    failing: str | None = None,
    failing_line: str | None = None,
    max_text: int = 400,
) -> str:
    """Transcript lines, the failing step marked with ``>>`` and followed by the reason."""
    lines: list[str] = []
    for e in entries:
        text = e.render()
        if len(text) > max_text:
            text = text[: max_text - 1] + "…"
        lines.append((">> " if e.failed else "   ") + text)
        if e.failed and failing:
            lines.append(f"   {'':>11}   ^ {_headline(failing, failing_line)}")
    if failing and not any(e.failed for e in entries):
        lines.append(f">> {'':>11}   {_headline(failing, failing_line)}")
    return "\n".join(lines) if lines else "   (nothing happened)"


def _headline(reason: str, where: str | None) -> str:
    first = reason.splitlines()[0] if reason else ""
    return f"{first} ({where})" if where else first
