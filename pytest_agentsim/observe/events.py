"""What a turn produced, in one shape for every mode: :class:`ObservedEvent`.

A turn's events come from a ``RunResult`` (in-process user turns), from the timeline
(agent-initiated turns and greetings, whose events arrive as session events), or from the
``ChatItem`` protos of the session protocol (process mode). ``expect`` checks read only
this shape, so every mode is judged by the same rules. Duck-typed: nothing here imports
livekit.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from typing import Any

from .timeline import TimelineEntry

__all__ = [
    "ObservedEvent",
    "observe_proto_items",
    "observe_run_events",
    "observe_timeline",
    "parse_arguments",
    "proto_message_text",
    "proto_role",
]

# timeline entry kind -> observed event type
EVENT_KINDS = {
    "agent": "message",
    "tool_call": "function_call",
    "tool_output": "function_call_output",
    "handoff": "agent_handoff",
}


@dataclasses.dataclass(frozen=True)
class ObservedEvent:
    """A ``RunResult`` event reduced to what expectations look at."""

    type: str
    role: str | None = None
    text: str | None = None
    name: str | None = None
    arguments: Any = None
    is_error: bool | None = None
    new_agent: str | None = None  # agent_handoff: the new agent's class name, when known
    new_agent_id: str | None = None  # agent_handoff: its id (livekit's Agent.id)
    call_id: str | None = None  # function_call / function_call_output

    def describe(self) -> str:
        if self.type == "message":
            return f"message {self.role}: {self.text!r}"
        if self.type == "function_call":
            return f"function_call {self.name}({json.dumps(self.arguments, ensure_ascii=False)})"
        if self.type == "function_call_output":
            err = " [error]" if self.is_error else ""
            return f"function_call_output {self.text!r}{err}"
        return f"agent_handoff -> {self.new_agent or self.new_agent_id}"


def parse_arguments(raw: Any) -> Any:
    """Tool-call arguments as the model sent them (JSON text) made a value, if they parse."""
    if isinstance(raw, str):
        try:
            return json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            return raw
    return raw


def observe_run_events(events: Iterable[Any]) -> list[ObservedEvent]:
    """The events of a ``RunResult`` (livekit's ``RunEvent`` objects)."""
    out: list[ObservedEvent] = []
    for ev in events:
        t = ev.type
        if t == "message":
            out.append(ObservedEvent("message", role=ev.item.role, text=ev.item.text_content or ""))
        elif t == "function_call":
            item = ev.item
            out.append(
                ObservedEvent(
                    "function_call",
                    name=item.name,
                    arguments=parse_arguments(item.arguments),
                    call_id=item.call_id,
                )
            )
        elif t == "function_call_output":
            item = ev.item
            out.append(
                ObservedEvent(
                    "function_call_output",
                    text=item.output,
                    is_error=item.is_error,
                    name=item.name,
                    call_id=item.call_id,
                )
            )
        elif t == "agent_handoff":
            agent = ev.new_agent
            out.append(
                ObservedEvent(
                    "agent_handoff",
                    new_agent=type(agent).__name__,
                    new_agent_id=getattr(agent, "id", None),
                )
            )
    return out


def observe_timeline(entries: Sequence[TimelineEntry], turn: int) -> list[ObservedEvent]:
    """The events of turn ``turn`` as the timeline recorded them (turns with no
    ``RunResult``: a greeting, ``say:``/``generate_reply:`` turns)."""
    out: list[ObservedEvent] = []
    for e in entries:
        if e.turn != turn or e.kind not in EVENT_KINDS:
            continue
        d = e.detail
        if e.kind == "agent":
            out.append(ObservedEvent("message", role="assistant", text=d.get("content", e.text)))
        elif e.kind == "tool_call":
            out.append(
                ObservedEvent(
                    "function_call",
                    name=d.get("name"),
                    arguments=parse_arguments(d.get("arguments", "{}")),
                    call_id=d.get("call_id"),
                )
            )
        elif e.kind == "tool_output":
            out.append(
                ObservedEvent(
                    "function_call_output",
                    text=d.get("output"),
                    is_error=d.get("is_error"),
                    name=d.get("name"),
                    call_id=d.get("call_id"),
                )
            )
        else:
            out.append(
                ObservedEvent(
                    "agent_handoff",
                    new_agent=d.get("new_agent"),
                    new_agent_id=d.get("new_agent_id"),
                )
            )
    return out


def proto_message_text(message: Any) -> str:
    """A ``ChatMessage`` proto's text parts, joined as ``ChatMessage.text_content`` joins them."""
    return "\n".join(c.text for c in message.content if c.WhichOneof("payload") == "text")


def proto_role(message: Any) -> str:
    """``ASSISTANT`` -> ``"assistant"``, by the proto's own enum names (a role this protobuf
    release does not name stays visible as its number)."""
    enum = message.DESCRIPTOR.fields_by_name["role"].enum_type
    value = enum.values_by_number.get(int(message.role))
    return str(value.name).lower() if value is not None else str(int(message.role))


def observe_proto_items(items: Iterable[Any]) -> list[ObservedEvent]:
    """``ChatContext.ChatItem`` protos (process mode) as the agent's side of a turn."""
    out: list[ObservedEvent] = []
    for item in items:
        which = item.WhichOneof("item")
        if which == "message":
            msg = item.message
            role = proto_role(msg)
            if role in ("user", "system", "developer"):
                continue  # run() results carry the agent's side only
            out.append(ObservedEvent("message", role=role, text=proto_message_text(msg)))
        elif which == "function_call":
            fc = item.function_call
            out.append(
                ObservedEvent(
                    "function_call",
                    name=fc.name,
                    arguments=parse_arguments(fc.arguments),
                    call_id=fc.call_id,
                )
            )
        elif which == "function_call_output":
            fo = item.function_call_output
            out.append(
                ObservedEvent(
                    "function_call_output",
                    text=fo.output,
                    is_error=fo.is_error,
                    name=fo.name,
                    call_id=fo.call_id,
                )
            )
        elif which == "agent_handoff":
            out.append(ObservedEvent("agent_handoff", new_agent_id=item.agent_handoff.new_agent_id))
    return out
