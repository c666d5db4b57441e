"""Scripted model answers shared by the in-process fakes and the fake gateway.

One answer is what a model returns for one call. The same objects feed
:class:`~pytest_agentsim.fakes.FakeLLM` and the transport-level gateway, so a scenario
runs identically on either. This module never imports pytest or livekit.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["LLMAnswer", "STTAnswer", "TTSAnswer", "ToolCall", "tool_calls_from"]


@dataclasses.dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: Mapping[str, Any] | str = dataclasses.field(default_factory=dict)
    call_id: str | None = None

    @property
    def arguments_json(self) -> str:
        """The arguments as the model sends them: a JSON string."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(dict(self.arguments), separators=(",", ":"), ensure_ascii=False)


@dataclasses.dataclass(frozen=True)
class LLMAnswer:
    """One LLM completion: text, tool calls, or both (text streamed first).

    ``chunks`` splits the text into stream deltas (default: one delta), which is what
    ``disconnect_mid_stream(after_chunks=N)`` counts.
    """

    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    chunks: tuple[str, ...] | None = None
    ttft: float | None = None  # seconds before the first token (voice time, SPEC §10)

    def text_chunks(self) -> tuple[str, ...]:
        if self.chunks is not None:
            return self.chunks
        return (self.text,) if self.text else ()


@dataclasses.dataclass(frozen=True)
class STTAnswer:
    """One final transcript the fake STT returns for one recognition."""

    text: str
    language: str = "en"
    confidence: float = 1.0


@dataclasses.dataclass(frozen=True)
class TTSAnswer:
    """Overrides what one synthesis returns (default: audio sized to the text)."""

    duration: float | None = None
    ttfb: float | None = None  # seconds before its first audio (voice time, SPEC §10)


def tool_calls_from(items: Sequence[Mapping[str, Any] | ToolCall] | None) -> tuple[ToolCall, ...]:
    """Accept ``[{"name": ..., "arguments": {...}, "call_id"?: ...}]`` or ToolCall objects."""
    out: list[ToolCall] = []
    for i, item in enumerate(items or ()):
        if isinstance(item, ToolCall):
            out.append(item)
            continue
        if "name" not in item:
            raise ValueError(f"tool call #{i + 1} has no 'name'")
        unknown = set(item) - {"name", "arguments", "call_id"}
        if unknown:
            raise ValueError(
                f"tool call #{i + 1} has unknown keys {sorted(unknown)}; "
                "allowed: name, arguments, call_id"
            )
        out.append(
            ToolCall(
                name=str(item["name"]),
                arguments=item.get("arguments") or {},
                call_id=item.get("call_id"),
            )
        )
    return tuple(out)
