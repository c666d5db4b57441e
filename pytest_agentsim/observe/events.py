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
    interrupted: bool | None = None  # message: livekit marks a reply cut off by the user

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


def _call(name: Any, arguments: Any, call_id: Any) -> ObservedEvent:
    return ObservedEvent(
        "function_call", name=name, arguments=parse_arguments(arguments), call_id=call_id
    )


def _output(name: Any, output: Any, is_error: Any, call_id: Any) -> ObservedEvent:
    return ObservedEvent(
        "function_call_output", text=output, is_error=is_error, name=name, call_id=call_id
    )


def observe_run_events(events: Iterable[Any]) -> list[ObservedEvent]:
    """The events of a ``RunResult`` (livekit's ``RunEvent`` objects)."""
    out: list[ObservedEvent] = []
    for ev in events:
        item: Any = getattr(ev, "item", None)
        if ev.type == "message":
            out.append(
                ObservedEvent(
                    "message",
                    role=item.role,
                    text=item.text_content or "",
                    interrupted=bool(getattr(item, "interrupted", False)),
                )
            )
        elif ev.type == "function_call":
            out.append(_call(item.name, item.arguments, item.call_id))
        elif ev.type == "function_call_output":
            out.append(_output(item.name, item.output, item.is_error, item.call_id))
        elif ev.type == "agent_handoff":
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
            out.append(
                ObservedEvent(
                    "message",
                    role="assistant",
                    text=d.get("content", e.text),
                    interrupted=bool(d.get("interrupted", False)),
                )
            )
        elif e.kind == "tool_call":
            out.append(_call(d.get("name"), d.get("arguments", "{}"), d.get("call_id")))
        elif e.kind == "tool_output":
            out.append(_output(d.get("name"), d.get("output"), d.get("is_error"), d.get("call_id")))
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
            role = proto_role(item.message)
            if role not in ("user", "system", "developer"):  # the agent's side only
                out.append(
                    ObservedEvent(
                        "message",
                        role=role,
                        text=proto_message_text(item.message),
                        interrupted=bool(getattr(item.message, "interrupted", False)),
                    )
                )
        elif which == "function_call":
            fc = item.function_call
            out.append(_call(fc.name, fc.arguments, fc.call_id))
        elif which == "function_call_output":
            fo = item.function_call_output
            out.append(_output(fo.name, fo.output, fo.is_error, fo.call_id))
        elif which == "agent_handoff":
            out.append(ObservedEvent("agent_handoff", new_agent_id=item.agent_handoff.new_agent_id))
    return out
