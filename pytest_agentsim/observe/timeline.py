"""The ordered record of one conversation, and its plain-text transcript.

Every observable thing (user input, agent messages, tool calls and outputs, handoffs,
faults fired by the fakes, speech that reached the user, errors, close) is appended here
in the order it happened, so failure reports, the HTML report and fallback-ordering
assertions all read the same record. Never imports pytest.
"""

from __future__ import annotations

import dataclasses
import re
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
    for e, text in _collapsed(entries):
        if len(text) > max_text:
            text = text[: max_text - 1] + "…"
        lines.append((">> " if e.failed else "   ") + text)
        if e.failed and failing:
            lines.append(f"   {'':>11}   ^ {_headline(failing, failing_line)}")
    if failing and not any(e.failed for e in entries):
        lines.append(f">> {'':>11}   {_headline(failing, failing_line)}")
    return "\n".join(lines) if lines else "   (nothing happened)"


_CALL_NUMBER = re.compile(r"^(\w+) call (\d+)(.*)$", re.S)


def _collapsed(entries: list[TimelineEntry]) -> list[tuple[TimelineEntry, str]]:
    """Each entry with its rendered line; a run of the same fault on consecutive calls
    (credits gone: every retry, every judge) becomes one ``llm calls 2-33: ...`` line."""
    out: list[tuple[TimelineEntry, str]] = []
    run: list[tuple[TimelineEntry, re.Match[str]]] = []

    def flush() -> None:
        if len(run) > 1:
            first, last = run[0][1], run[-1][1]
            out.append(
                (
                    run[-1][0],
                    run[0][0]
                    .render()
                    .replace(first.group(0), f"{first[1]} calls {first[2]}-{last[2]}{first[3]}"),
                )
            )
        elif run:
            out.append((run[0][0], run[0][0].render()))
        run.clear()

    for e in entries:
        found = _CALL_NUMBER.match(e.text) if e.kind == "fault" and not e.failed else None
        if found and run:
            prev = run[-1][1]
            if (found[1], found[3]) == (prev[1], prev[3]) and int(found[2]) == int(prev[2]) + 1:
                run.append((e, found))
                continue
        flush()
        if found:
            run.append((e, found))
        else:
            out.append((e, e.render()))
    flush()
    return out


def _headline(reason: str, where: str | None) -> str:
    first = reason.splitlines()[0] if reason else ""
    return f"{first} ({where})" if where else first
