"""The two voices of a conversation on a time axis, as inline SVG for the HTML report.

Drawn from a scenario's ``JobMetrics`` turns (protojson, see ``run/metrics.py``): the
caller's lane marks when each user turn ended, the agent's lane is a bar from its first
speech to the end of its turn, and between them the wait the caller had (its latency, in
red past the awkward-silence mark). An unanswered turn is a red cross on the agent's lane.
No script: hovering a mark shows its text (an SVG ``<title>``). Never imports pytest.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["voice_timeline"]

_WIDTH = 1000
_LEFT = 60  # room for the lane names
_CALLER_Y, _AGENT_Y, _AXIS_Y = 22, 58, 92
_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800)


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _tick_step(span_s: float) -> float:
    return next((s for s in _STEPS if span_s / s <= 10), _STEPS[-1])


def voice_timeline(turns: Sequence[Mapping[str, Any]]) -> str:
    """The SVG for ``turns`` (``JobMetrics.turns`` as protojson); empty without turns."""
    if not turns:
        return ""
    end_ms = max(max(int(t.get("endMs", 0)), int(t.get("startMs", 0))) for t in turns) or 1
    scale = (_WIDTH - _LEFT - 20) / end_ms

    def x(ms: float) -> float:
        return round(_LEFT + ms * scale, 1)

    parts = [
        f'<svg class="voices" viewBox="0 0 {_WIDTH} 110" width="100%" role="img" '
        'aria-label="who spoke when">',
        f'<text x="4" y="{_CALLER_Y + 4}" class="lane">caller</text>',
        f'<text x="4" y="{_AGENT_Y + 4}" class="lane">agent</text>',
        f'<line x1="{_LEFT}" y1="{_AXIS_Y}" x2="{_WIDTH - 20}" y2="{_AXIS_Y}" class="axis"/>',
    ]
    step = _tick_step(end_ms / 1000)
    tick = 0.0
    while tick * 1000 <= end_ms:
        parts.append(
            f'<line x1="{x(tick * 1000)}" y1="{_AXIS_Y}" x2="{x(tick * 1000)}" '
            f'y2="{_AXIS_Y + 4}" class="axis"/>'
            f'<text x="{x(tick * 1000)}" y="{_AXIS_Y + 15}" class="tick">{tick:g} s</text>'
        )
        tick += step
    asked: float | None = None
    for turn in turns:
        start = float(turn.get("startMs", 0))
        text = _esc(turn.get("text", ""))
        if turn.get("role") == "USER":
            asked = start
            parts.append(
                f'<circle cx="{x(start)}" cy="{_CALLER_Y}" r="5" class="user">'
                f"<title>caller at {start / 1000:g} s: {text}</title></circle>"
            )
            continue
        if turn.get("unanswered"):
            at = x(asked if asked is not None else float(turn.get("endMs", 0)))
            parts.append(
                f'<text x="{at}" y="{_AGENT_Y + 5}" class="unanswered">✕'
                "<title>unanswered</title></text>"
            )
            continue
        end = max(float(turn.get("endMs", start)), start)
        parts.append(
            f'<rect x="{x(start)}" y="{_AGENT_Y - 8}" width="{max(x(end) - x(start), 2)}" '
            f'height="16" rx="3" class="agent"><title>agent from {start / 1000:g} s: '
            f"{text}</title></rect>"
        )
        latency = turn.get("e2eLatencyMs")
        if asked is not None and latency is not None:
            cls = "wait awkward" if turn.get("awkwardSilence") else "wait"
            parts.append(
                f'<line x1="{x(asked)}" y1="{_CALLER_Y + 6}" x2="{x(start)}" '
                f'y2="{_AGENT_Y - 9}" class="{cls}"/>'
                f'<text x="{(x(asked) + x(start)) / 2 + 4}" y="{(_CALLER_Y + _AGENT_Y) / 2}" '
                f'class="{cls}">{int(latency) / 1000:g} s</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


CSS = """
svg.voices { background: #fff; border: 1px solid var(--line); border-radius: 6px;
  margin: 4px 0 8px; font: 11px system-ui, sans-serif; }
svg.voices .lane { fill: var(--muted); font-weight: 600; }
svg.voices .axis { stroke: var(--line); }
svg.voices .tick { fill: var(--muted); text-anchor: middle; }
svg.voices circle.user { fill: #0b5cad; }
svg.voices rect.agent { fill: #1a7f37; opacity: .8; }
svg.voices line.wait { stroke: var(--muted); stroke-dasharray: 3 2; }
svg.voices text.wait { fill: var(--muted); }
svg.voices .awkward { stroke: var(--fail); fill: var(--fail); }
svg.voices text.unanswered { fill: var(--fail); font-size: 14px; font-weight: 700; }
"""
