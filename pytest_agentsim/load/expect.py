"""``expect``, ``spoken`` and ``closed`` in a turn: what a scenario checks, parsed."""

from __future__ import annotations

import re
from typing import Any

import yaml

from ..errors import did_you_mean
from .model import (
    CLOSE_REASONS,
    EVENT_TYPES,
    MATCH_KINDS,
    CloseExpectation,
    EventExpectation,
    SpokenExpectation,
    TextMatcher,
)
from .nodes import (
    Ctx,
    as_mapping,
    bool_of,
    check_keys,
    choice_of,
    jsonable,
    line_of,
    mapping_pairs,
    no_complex_keys,
    text_of,
    value_of,
)

TEXT_KINDS = tuple(k for k in MATCH_KINDS if k != "judge")  # no judge outside messages


def parse_matcher(
    ctx: Ctx, node: yaml.MappingNode, keys: dict[str, Any], what: str
) -> TextMatcher | None:
    found = [k for k in MATCH_KINDS if k in keys]
    if len(found) > 1:
        raise ctx.error(
            keys[found[1]][0],
            f"{what} has more than one of {', '.join(found)}",
            "keep one text matcher per event",
        )
    if not found:
        return None
    kind = found[0]
    vnode = keys[kind][1]
    value = text_of(ctx, vnode, kind)
    if kind == "judge" and what != "message":
        raise ctx.error(
            vnode,
            f"`judge` matchers grade agent messages; a {what} cannot use one",
            "use contains/equals/regex here, or `message: {judge: ...}`",
        )
    if kind == "regex":
        try:
            re.compile(value)
        except (re.error, OverflowError, RecursionError, ValueError) as e:
            shown = value if len(value) <= 60 else value[:57] + "..."
            raise ctx.error(
                vnode,
                f"invalid regex {shown!r}: {e}",
                "write a Python `re` pattern (in YAML, single quotes keep backslashes as-is), "
                "or use contains/equals for plain text",
            ) from None
    return TextMatcher(kind=kind, value=value, line=line_of(vnode))


def parse_text_matcher(ctx: Ctx, node: yaml.Node, what: str) -> TextMatcher:
    """``output: "text"`` (contains) or ``output: {equals | contains | not_contains |
    regex: ...}``: a text check outside the event list."""
    if isinstance(node, yaml.ScalarNode):
        return TextMatcher(kind="contains", value=text_of(ctx, node, what), line=line_of(node))
    m = as_mapping(ctx, node, what, f"{what}: {{contains: 'booked'}}")
    keys = check_keys(ctx, m, TEXT_KINDS, what)
    matcher = parse_matcher(ctx, m, keys, what)
    if matcher is None:
        raise ctx.error(node, f"{what} names no text check", f"e.g. {what}: {{contains: 'x'}}")
    return matcher


_EVENT_EXAMPLES = {
    "message": "message: {role: assistant, contains: 'hello'}",
    "function_call": "function_call: {name: get_weather, arguments: {city: Paris}}",
    "function_call_output": "function_call_output: {contains: 'sunny', is_error: false}",
    "agent_handoff": "agent_handoff: {new_agent: SupportAgent}",
}


def parse_event(ctx: Ctx, node: yaml.Node) -> EventExpectation:
    example = "{message: {contains: 'hello'}}"
    m = as_mapping(ctx, node, "an expected event", example)
    no_complex_keys(ctx, m, "an expected event")
    pairs = list(mapping_pairs(m))
    if len(pairs) != 1:
        raise ctx.error(
            node,
            f"each expected event is a mapping with exactly one of {', '.join(EVENT_TYPES)}",
            f"e.g. - {example}",
        )
    k, v = pairs[0]
    if k.value not in EVENT_TYPES:
        guess = did_you_mean(k.value, EVENT_TYPES)
        raise ctx.error(
            k,
            f"unknown event type {k.value!r}",
            f"did you mean {guess!r}?" if guess else f"use one of {', '.join(EVENT_TYPES)}",
        )
    line = line_of(node)
    etype = k.value
    if isinstance(v, yaml.ScalarNode):
        # shorthands: `message: "text"` (contains), `function_call: name`,
        # `agent_handoff: ClassName`, `function_call_output: "text"` (contains)
        text = text_of(ctx, v, etype)
        if etype == "function_call":
            return EventExpectation(type=etype, name=_tool_name(ctx, v, text), line=line)
        if etype == "agent_handoff":
            return EventExpectation(type=etype, new_agent=text, line=line)
        matcher = TextMatcher("contains", text, line_of(v)) if text else None
        return EventExpectation(
            type=etype, text=matcher, role="assistant" if etype == "message" else None, line=line
        )
    vm = as_mapping(ctx, v, etype, _EVENT_EXAMPLES[etype])
    if etype == "message":
        keys = check_keys(ctx, vm, ("role", "interrupted", *MATCH_KINDS), "message")
        role = (
            choice_of(ctx, keys["role"][1], "role", ("assistant", "user", "system", "developer"))
            if "role" in keys
            else "assistant"
        )
        return EventExpectation(
            type=etype,
            role=role,
            text=parse_matcher(ctx, vm, keys, "message"),
            line=line,
            interrupted=_interrupted(ctx, keys),
        )
    if etype == "function_call":
        keys = check_keys(ctx, vm, ("name", "arguments"), "function_call")
        name = (
            _tool_name(ctx, keys["name"][1], text_of(ctx, keys["name"][1], "name"))
            if "name" in keys
            else None
        )
        args = None
        if "arguments" in keys:
            args = value_of(ctx, keys["arguments"][1])
            if not isinstance(args, dict):
                raise ctx.error(
                    keys["arguments"][1],
                    "function_call arguments must be a mapping (a subset of the call's arguments)",
                    "e.g. arguments: {date: '2026-06-15'}",
                )
            args = jsonable(args)
        return EventExpectation(type=etype, name=name, arguments=args, line=line)
    if etype == "function_call_output":
        keys = check_keys(ctx, vm, (*TEXT_KINDS, "is_error"), "function_call_output")
        is_error = bool_of(ctx, keys["is_error"][1], "is_error") if "is_error" in keys else None
        return EventExpectation(
            type=etype,
            text=parse_matcher(ctx, vm, keys, "function_call_output"),
            is_error=is_error,
            line=line,
        )
    keys = check_keys(ctx, vm, ("new_agent",), "agent_handoff")
    new_agent = text_of(ctx, keys["new_agent"][1], "new_agent") if "new_agent" in keys else None
    return EventExpectation(type=etype, new_agent=new_agent, line=line)


def parse_spoken(ctx: Ctx, node: yaml.Node) -> SpokenExpectation:
    if isinstance(node, yaml.ScalarNode):
        return SpokenExpectation(
            TextMatcher("contains", text_of(ctx, node, "spoken"), line_of(node)), line=line_of(node)
        )
    m = as_mapping(ctx, node, "a spoken matcher", "{contains: 'sorry'}")
    keys = check_keys(ctx, m, (*TEXT_KINDS, "source", "interrupted"), "spoken matcher")
    matcher = parse_matcher(ctx, m, keys, "spoken matcher")
    if matcher is None:
        raise ctx.error(
            node,
            "a spoken matcher needs contains, equals or regex",
            "e.g. - {contains: 'temporarily unavailable'}",
        )
    source = (
        choice_of(ctx, keys["source"][1], "source", ("tts", "audio", "text"))
        if "source" in keys
        else None
    )
    return SpokenExpectation(
        matcher, source=source, line=line_of(node), interrupted=_interrupted(ctx, keys)
    )


def _interrupted(ctx: Ctx, keys: dict[str, tuple[yaml.ScalarNode, yaml.Node]]) -> bool | None:
    return bool_of(ctx, keys["interrupted"][1], "interrupted") if "interrupted" in keys else None


def parse_closed(ctx: Ctx, node: yaml.Node) -> CloseExpectation:
    if isinstance(node, yaml.ScalarNode):
        v = value_of(ctx, node)
        if isinstance(v, bool):
            return CloseExpectation(closed=v, line=line_of(node))
        if v is None:
            raise ctx.error(
                node,
                "closed is empty",
                "write `closed: true`, `closed: false` or `closed: {reason: user_initiated}`",
            )
        reason = choice_of(ctx, node, "closed", CLOSE_REASONS)
        return CloseExpectation(closed=True, reason=reason, line=line_of(node))
    m = as_mapping(ctx, node, "closed", "closed: {reason: user_initiated}")
    keys = check_keys(ctx, m, ("reason",), "closed")
    why = choice_of(ctx, keys["reason"][1], "reason", CLOSE_REASONS) if "reason" in keys else None
    return CloseExpectation(closed=True, reason=why, line=line_of(node))


def _tool_name(ctx: Ctx, node: yaml.Node, name: str) -> str:
    if not name.strip():
        raise ctx.error(
            node,
            "function_call names no tool (the name is empty)",
            "name the tool (e.g. function_call: get_weather), or leave `name` out to accept "
            "any call",
        )
    return name
