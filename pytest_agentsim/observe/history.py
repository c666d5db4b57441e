"""Normalized chat history: what a snapshot of a conversation should contain.

``ChatContext.to_dict()`` is almost what a snapshot wants, except that every run mints new
item ids (``item_<12 hex>``), real providers mint new tool ``call_id``/``group_id`` values, and
timestamps and metrics change on every run. :func:`normalize_history` keeps everything that
describes behaviour and replaces the unstable values by ordinal placeholders, in order of first
appearance, so two runs of the same conversation produce equal histories and a snapshot diff
shows only what the agent did differently.

Rules (each one is a decision a snapshot reader relies on):

* Item ids become ``item_1``, ``item_2``, ... in order of first appearance. Ids in LiveKit's
  reserved ``lk.`` namespace (``lk.agent_task.instructions``, its ``.dynamic`` sibling) are
  fixed by the framework and kept verbatim. Ids LiveKit derives from another id
  (``<generation id>/fnc_<n>`` for the n-th tool call of one model response, and the
  ``_running``/``_running_output`` placeholders of a running tool) keep their derived suffix,
  so ``item_4/fnc_0`` and ``item_4/fnc_1`` still say "two calls from one response".
  Any other id, including one chosen by user code, is replaced: the plugin cannot tell a
  hand-picked stable id from a provider's random one.
* ``call_id`` values become ``call_1``, ... and ``group_id`` values ``group_1``, ...; a
  ``function_call`` and its ``function_call_output`` share the same placeholder, so the
  call/output link survives normalization.
* ``created_at``, ``metrics`` and ``transcript_confidence`` (an STT's measurement: a
  spoken turn has one, a typed one none, and the fake STT always says 1.0) are dropped; so
  is the deprecated ``hash`` field.
* ``arguments`` of a function call is parsed when it is a JSON object and shown as a mapping,
  because the same call serialized with different spacing or key order by two providers is the
  same behaviour and a mapping diffs key by key. Anything else (malformed JSON, a JSON
  non-object, ``NaN``) stays the raw string, so broken arguments from a model remain visible.
  Tool ``output`` is never parsed: it is free text the model reads, and the exact text matters.
* ``tools_added``/``tools_removed`` are sorted: LiveKit computes them with set differences, so
  their order depends on string hashing (``PYTHONHASHSEED``) and would differ between processes.
* Fields that only some livekit-agents releases emit are normalized so snapshots do not churn
  on upgrade: ``reply_required`` (added after 1.6) is kept only when ``False``; empty ``extra``
  mappings are omitted; a 1.6-style serialized ``Instructions`` without a text variant becomes
  the plain string it stands for.
* Everything else is kept verbatim: roles, content, tool names, outputs, ``is_error``,
  ``interrupted`` (always present on messages), handoff ``old_agent_id``/``new_agent_id``,
  non-empty ``extra``, and fields a future release adds.
* The instructions of LiveKit's own workflow tasks (``beta.workflows``: ``GetEmailTask`` and
  friends) are LiveKit's prompt, not the user's: their ``agent_config_update`` shows
  ``(livekit's get_email_task prompt)`` instead, so snapshots do not churn when a livekit
  release rewords it. The user's own agents' instructions are kept verbatim.
* Keys come in a fixed order per item type (``type`` and ``id`` first), so printed histories
  read the same way every time.

Images and audio frames in message content are dropped (``to_dict`` drops them by default; a
video frame has no stable serialized form).

A history read over the session protocol (process mode) goes through
:func:`history_from_proto`, which rebuilds this shape from the ``ChatItem`` protos first.

This module never imports pytest; livekit is imported only for type checking, because the
engine may normalize histories (e.g. from the session protocol) without the full framework.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import pkgutil
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from livekit.agents.llm import ChatContext

__all__ = [
    "History",
    "chat_context_items",
    "history_from_proto",
    "mask_history",
    "normalize_history",
    "normalize_items",
]

History: TypeAlias = list[dict[str, Any]]
"""A normalized chat history: a plain ``list`` of plain ``dict`` items.

A plain list (not a subclass) so that ``assert agentsim.history == snapshot`` serializes as
``list([...])`` with syrupy's default amber extension whichever code path built it, and so
``history == [...]`` comparisons with literals just work.
"""

# LiveKit's reserved, framework-fixed ids (generation.INSTRUCTIONS_MESSAGE_ID and
# chat_context.DYNAMIC_INSTRUCTIONS_MESSAGE_ID). Stable by contract: "value must not change".
_STABLE_ID_PREFIX = "lk."

# Suffixes LiveKit appends to an existing id (voice/generation.py). The suffix is a
# deterministic index within one model response, so it is kept; only the root is replaced.
_DERIVED_ID = re.compile(r"^(?P<root>[^/]+)(?P<suffix>/fnc_\d+(?:_running(?:_output)?)?)$")

# Fields dropped from every item: timings and deprecated content hashes change between runs.
_DROPPED_FIELDS = frozenset({"created_at", "metrics", "hash", "transcript_confidence"})

# Canonical key order per item type; keys not listed follow, sorted.
_KEY_ORDER: dict[str, tuple[str, ...]] = {
    "message": ("type", "id", "role", "content", "interrupted", "extra"),
    "function_call": ("type", "id", "call_id", "group_id", "name", "arguments", "extra"),
    "function_call_output": (
        "type",
        "id",
        "call_id",
        "name",
        "output",
        "is_error",
        "reply_required",
    ),
    "agent_handoff": ("type", "id", "old_agent_id", "new_agent_id"),
    "agent_config_update": ("type", "id", "instructions", "tools_added", "tools_removed"),
}
_DEFAULT_KEY_ORDER = ("type", "id")


class _Ordinals:
    """Maps unstable values to ``<prefix>_<n>`` in order of first appearance."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._seen: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        placeholder = self._seen.get(value)
        if placeholder is None:
            placeholder = f"{self._prefix}_{len(self._seen) + 1}"
            self._seen[value] = placeholder
        return placeholder


def chat_context_items(chat_ctx: ChatContext) -> list[dict[str, Any]]:
    """``chat_ctx.to_dict(exclude_timestamp=True, exclude_metrics=True)["items"]``, portably.

    Both keywords exist on every supported release (checked on 1.6.0 and 1.8.9); the signature
    check keeps an older or reshaped ``to_dict`` working, since the dropped fields are removed
    again during normalization anyway.
    """
    wanted = {"exclude_timestamp": True, "exclude_metrics": True}
    params = inspect.signature(chat_ctx.to_dict).parameters
    accepts_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in wanted.items() if accepts_kwargs or k in params}
    items: list[dict[str, Any]] = chat_ctx.to_dict(**kwargs)["items"]
    return items


def normalize_history(chat_ctx: ChatContext) -> History:
    """The chat history of ``chat_ctx`` with unstable values replaced (see module docs)."""
    return normalize_items(chat_context_items(chat_ctx))


def normalize_items(items: Iterable[Mapping[str, Any]]) -> History:
    """Normalize already-serialized chat items (``ChatContext.to_dict()["items"]`` shape).

    Separate from :func:`normalize_history` so histories that arrive as dicts (for example over
    the session protocol) normalize identically.
    """
    item_ids = _Ordinals("item")
    call_ids = _Ordinals("call")
    group_ids = _Ordinals("group")
    out: History = []
    agent_id: object = None  # the agent whose activity the items belong to
    for item in items:
        normalized = _normalize_item(item, item_ids, call_ids, group_ids)
        if item.get("type") == "agent_handoff":
            agent_id = item.get("new_agent_id")
        elif (
            item.get("type") == "agent_config_update"
            and "instructions" in normalized
            and agent_id in livekit_task_ids()
        ):
            normalized["instructions"] = f"(livekit's {agent_id} prompt)"
        out.append(normalized)
    return out


MASKED = "<masked>"


def mask_history(history: History, patterns: Iterable[str]) -> History:
    """``history`` with every match of ``patterns`` in its text shown as ``<masked>``
    (the scenario's ``snapshot: {mask: [...]}``: volatile values such as random ids)."""
    compiled = [re.compile(p) for p in patterns]
    if not compiled:
        return history

    def mask(value: Any) -> Any:
        if isinstance(value, str):
            for pattern in compiled:
                value = pattern.sub(MASKED, value)
            return value
        if isinstance(value, dict):
            return {k: mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        return value

    return [mask(item) for item in history]


_TASK_ID_LITERAL = re.compile(r"""\bid\s*=\s*["']([A-Za-z0-9_]+)["']""")


@functools.cache
def livekit_task_ids() -> frozenset[str]:
    """The agent ids of LiveKit's own workflow tasks: each class's default id (its
    snake-cased name) and the explicit ``id=`` its code passes (``card_number_task``)."""
    try:
        from livekit.agents import Agent
        from livekit.agents.beta import workflows
        from livekit.agents.utils.misc import camel_to_snake_case
    except ImportError:
        return frozenset()
    ids: set[str] = set()
    for info in pkgutil.iter_modules(workflows.__path__, workflows.__name__ + "."):
        try:
            module = importlib.import_module(info.name)
            source = inspect.getsource(module)
        except (ImportError, OSError, TypeError):
            continue
        ids.update(_TASK_ID_LITERAL.findall(source))
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Agent)
                and value.__module__ == info.name
            ):
                ids.add(camel_to_snake_case(value.__name__))
    return frozenset(ids)


def history_from_proto(items: Iterable[Any]) -> History:
    """Normalize ``ChatContext.ChatItem`` protos as :func:`normalize_history` does a context.

    ``items`` is what the session protocol carries (``GetChatHistoryResponse.items``): the
    child's ``encode_chat_item(item)`` (1.7+) or ``_chat_item_to_proto(item)`` (1.6). Each
    proto is turned back into its ``to_dict()`` shape and normalized, so a history read over
    the protocol equals the in-process one and snapshots survive a switch between modes.

    Proto3 defaults become absent fields where ``to_dict`` omits ``None``: ``old_agent_id``
    and ``instructions`` by field presence (so ``""`` stays), empty ``tools_added``/
    ``tools_removed`` because LiveKit records no change as ``None``. Timestamps, metrics
    and ``transcript_confidence`` are ignored (normalization drops them anyway).
    ``reply_required`` is not on the wire: a 1.7+ output with no text and no error gets
    ``False``, as LiveKit records it for a tool returning ``None``, a bare handoff or
    ``StopResponse``. 1.6 sends outputs without ``id`` and ``name``: the id gets a fresh
    placeholder (ids are unique, so the ordinals still line up) and the name is the call's.

    Lost, so the normalized item differs from the in-process one:

    * ``group_id`` of a function call (the proto has no field; LiveKit's core never sets it).
    * ``reply_required``: a tool returning ``""`` shows ``False``; a silent or interrupted
      tool with output text, or ``ToolResult(reply_required=False)``, shows nothing.
    * Non-string ``extra`` values arrive as ``str(value)``.
    * Message content other than text (``CacheBreakpoint``; images and audio are dropped
      in-process too).
    * An ``AgentConfigUpdate`` with an explicit empty tool list shows no list.
    * 1.6 only: messages carry no ``transcript_confidence`` or ``extra``, function calls no
      ``extra``; text parts arrive joined into one with ``"\\n"``, and ``[""]`` as ``[]``;
      instructions with a text variant arrive as the one string the session used.

    A ChatItem with no known variant (an item type this protobuf release does not know)
    becomes ``{"type": "unknown", "id": ...}`` rather than vanishing, so later ids still match.
    """
    protos = list(items)
    # 1.6 omits an output's name; LiveKit always copies it from the call with the same call_id
    call_names: dict[str, str] = {}
    for proto in protos:
        if proto.WhichOneof("item") == "function_call":
            call_names.setdefault(proto.function_call.call_id, proto.function_call.name)
    return normalize_items(
        _proto_item_dict(proto, position, call_names) for position, proto in enumerate(protos)
    )


def _proto_item_dict(proto: Any, position: int, call_names: Mapping[str, str]) -> dict[str, Any]:
    """One ChatItem proto in ``ChatItem.model_dump(mode="json", exclude_none=True)`` shape."""
    # to_dict never has an empty id: an empty one on the wire is one the encoder left out
    fresh_id = f"\x00unsent-{position}"  # no LiveKit id looks like this, so no collision
    which = proto.WhichOneof("item")
    if which == "message":
        msg = proto.message
        out: dict[str, Any] = {
            "type": "message",
            "id": msg.id or fresh_id,
            "role": _role_name(msg),
            # a part with no known payload would be an image or audio: to_dict drops those
            "content": [part.text for part in msg.content if part.WhichOneof("payload") == "text"],
            "interrupted": msg.interrupted,
            "extra": dict(msg.extra),
        }
        return out
    if which == "function_call":
        call = proto.function_call
        return {
            "type": "function_call",
            "id": call.id or fresh_id,
            "call_id": call.call_id,
            "arguments": call.arguments,
            "name": call.name,
            "extra": dict(call.extra),
        }
    if which == "function_call_output":
        output = proto.function_call_output
        out = {
            "type": "function_call_output",
            "id": output.id or fresh_id,
            "name": output.name,
            "call_id": output.call_id,
            "output": output.output,
            "is_error": output.is_error,
        }
        if output.id:
            # 1.7+ has reply_required but does not send it; an empty, successful output is
            # what LiveKit records with False (None result, bare handoff, StopResponse)
            out["reply_required"] = output.is_error or output.output != ""
        else:
            # 1.6's encoder: no id, no name, and no reply_required in that release either
            out["name"] = output.name or call_names.get(output.call_id, "")
        return out
    if which == "agent_handoff":
        handoff = proto.agent_handoff
        out = {"type": "agent_handoff", "id": handoff.id or fresh_id}
        if handoff.HasField("old_agent_id"):
            out["old_agent_id"] = handoff.old_agent_id
        out["new_agent_id"] = handoff.new_agent_id
        return out
    if which == "agent_config_update":
        update = proto.agent_config_update
        out = {"type": "agent_config_update", "id": update.id or fresh_id}
        if update.HasField("instructions"):
            out["instructions"] = update.instructions
        # LiveKit stores "no change" as None, never []; a repeated field cannot tell them apart
        if update.tools_added:
            out["tools_added"] = list(update.tools_added)
        if update.tools_removed:
            out["tools_removed"] = list(update.tools_removed)
        return out
    return {"type": "unknown", "id": fresh_id}


def _role_name(message: Any) -> Any:
    """``ASSISTANT`` -> ``"assistant"``, by the proto's own enum names (no number table)."""
    enum = message.DESCRIPTOR.fields_by_name["role"].enum_type
    value = enum.values_by_number.get(int(message.role))
    # a role this protobuf release does not name stays visible as its number
    return value.name.lower() if value is not None else int(message.role)


def _normalize_item(
    item: Mapping[str, Any],
    item_ids: _Ordinals,
    call_ids: _Ordinals,
    group_ids: _Ordinals,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    item_type = item.get("type")
    for key, value in item.items():
        if key in _DROPPED_FIELDS:
            continue
        if key == "id" and isinstance(value, str):
            out[key] = _normalize_id(value, item_ids)
        elif key == "call_id" and isinstance(value, str):
            out[key] = call_ids(value)
        elif key == "group_id" and isinstance(value, str):
            out[key] = group_ids(value)
        elif key == "arguments" and item_type == "function_call" and isinstance(value, str):
            out[key] = _parse_arguments(value)
        elif key in ("tools_added", "tools_removed") and isinstance(value, list):
            out[key] = sorted(value, key=str)
        elif key == "extra" and value == {}:
            continue  # always {} unless a provider or user put something there
        elif key == "reply_required" and value is True:
            continue  # the default, and absent before 1.8: omit so snapshots survive upgrades
        elif key == "content" and isinstance(value, list):
            out[key] = [_normalize_content(part) for part in value]
        elif key == "instructions":
            out[key] = _normalize_content(value)
        else:
            out[key] = value
    return _ordered(out, _KEY_ORDER.get(str(item_type), _DEFAULT_KEY_ORDER))


def _normalize_id(item_id: str, item_ids: _Ordinals) -> str:
    if item_id.startswith(_STABLE_ID_PREFIX):
        return item_id
    derived = _DERIVED_ID.match(item_id)
    if derived is not None:
        return item_ids(derived["root"]) + derived["suffix"]
    return item_ids(item_id)


def _parse_arguments(raw: str) -> Any:
    def reject_constant(name: str) -> Any:
        # NaN/Infinity are not JSON; parsing them would also make the history unequal to itself.
        raise ValueError(name)

    try:
        parsed = json.loads(raw, parse_constant=reject_constant)
    except ValueError:
        return raw
    # Only objects are parsed: a JSON string "\"x\"" would otherwise look like raw text "x".
    return parsed if isinstance(parsed, dict) else raw


def _normalize_content(part: Any) -> Any:
    # livekit-agents 1.6 serializes an ``Instructions`` (a str subclass there) as
    # {"type": "instructions", "audio": ..., "text"?: ...}; later releases store the rendered
    # string. Without a text variant both mean the same plain string, so show it as one.
    if (
        isinstance(part, dict)
        and part.get("type") == "instructions"
        and isinstance(part.get("audio"), str)
        and part.get("text") is None
        and set(part) <= {"type", "audio", "text"}
    ):
        return part["audio"]
    return part


def _ordered(item: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    known = [key for key in order if key in item]
    rest = sorted(key for key in item if key not in order)
    return {key: item[key] for key in (*known, *rest)}
