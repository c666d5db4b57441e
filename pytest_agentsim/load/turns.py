"""A scripted turn, the greeting and the after-call block, parsed: the model answers and
faults (``llm``, ``tts``), tool mocks, and what to check (``expect``, ``spoken``,
``closed``)."""

from __future__ import annotations

import math
from typing import Any

import yaml

from ..answers import LLMAnswer, ToolCall, TTSAnswer
from .expect import parse_closed, parse_event, parse_spoken, parse_text_matcher
from .faultspec import parse_fault_spec
from .model import ModelStep, SessionEnd, Timing, ToolMock, Turn
from .nodes import (
    Ctx,
    as_mapping,
    as_sequence,
    check_keys,
    jsonable,
    kind_of,
    line_of,
    mapping_pairs,
    no_complex_keys,
    text_of,
    value_of,
)

__all__ = [
    "STEP_KEYS",
    "TURN_KEYS",
    "parse_greeting",
    "parse_session_end",
    "parse_timing",
    "parse_turn",
]

MAX_REPEAT = 1000
"""More repeats than any agent makes model calls in one step (keeps a typo cheap)."""

STEP_KEYS = ("llm", "tts", "tools", "expect", "spoken", "closed")
STARTERS = ("user", "say", "generate_reply", "silence", "noise")
USER_TURN_KEYS = ("output", "input_required", "pause", "within", "interrupt")  # with `user:`
TURN_KEYS = (*STARTERS, *STEP_KEYS, *USER_TURN_KEYS)
MAX_SILENCE = 3600.0  # an hour of saying nothing: more is a typo
MAX_NOISE = 60.0  # a minute of coughing: more is a typo
MAX_DELAY = 600.0  # a provider delay of ten minutes is a typo
TIMING_KEYS = ("llm_ttft", "tts_ttfb", "stt_delay", "words_per_minute")
MAX_WORDS_PER_MINUTE = 600.0  # faster than any auctioneer: surely a typo


def parse_turn(ctx: Ctx, index: int, node: yaml.Node) -> Turn:
    """One of ``agentsim.turns``: a user turn, or agent-initiated speech."""
    m = as_mapping(ctx, node, f"turn {index + 1}", "{user: 'hello', expect: [...]}")
    keys = check_keys(ctx, m, TURN_KEYS, f"turn {index + 1}")
    starters = [k for k in STARTERS if k in keys]
    if len(starters) != 1:
        raise ctx.error(
            node,
            f"turn {index + 1} must have exactly one of user, say, generate_reply, silence, "
            "noise" + (f" (it has {', '.join(starters)})" if starters else ""),
            "start the turn with `user: <what the user says>` (what the agent does before "
            "the first turn goes in `agentsim: {greeting: {...}}`)",
        )
    t: dict[str, Any] = {"index": index, "line": line_of(node)}
    for key in USER_TURN_KEYS:
        if key in keys:
            if "user" not in keys and not (key == "interrupt" and "noise" in keys):
                what = {
                    "pause": "is how long the user waits before a user turn",
                    "within": "is the latency budget of the reply to a user turn",
                    "interrupt": "is when the user barges in with a user turn",
                }.get(key, "checks the RunResult of a user turn")
                raise ctx.error(
                    keys[key][0],
                    f"`{key}` {what}; turn {index + 1} has none",
                    f"move `{key}` to the `user:` turn it belongs to",
                )
            if key == "interrupt" and "pause" in keys:
                raise ctx.error(
                    keys["pause"][0],
                    "a turn that interrupts the agent cannot also wait for it to finish",
                    "keep `interrupt` (seconds into the agent's speech) or `pause`",
                )
            if key in ("pause", "within", "interrupt"):
                t[key] = _seconds(ctx, keys[key][1], key, MAX_SILENCE)
            else:
                t[key] = parse_text_matcher(ctx, keys[key][1], key)
    for key in starters:
        vnode = keys[key][1]
        if key == "silence":
            t[key] = _seconds(ctx, vnode, "silence", MAX_SILENCE)
        elif key == "noise":
            t[key] = _seconds(ctx, vnode, "noise", MAX_NOISE)
        elif key == "generate_reply" and isinstance(vnode, yaml.MappingNode):
            gk = check_keys(ctx, vnode, ("instructions",), "generate_reply")
            t[key] = text_of(ctx, gk["instructions"][1], "instructions") if gk else ""
        else:
            t[key] = text_of(ctx, vnode, key)
    return Turn(**t, **_step(ctx, keys))


def _seconds(ctx: Ctx, node: yaml.Node, what: str, most: float) -> float:
    value = value_of(ctx, node)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= most
    ):
        raise ctx.error(
            node,
            f"{what} must be a positive number of seconds up to {most:g}, got {kind_of(node)}",
            f"e.g. {what}: 12",
        )
    return float(value)


def parse_greeting(ctx: Ctx, node: yaml.Node) -> Turn:
    """``greeting:``: what the agent does on its own between ``session.start()`` and the
    first turn (turn 0); the turn keys other than ``user``."""
    m = as_mapping(ctx, node, "greeting", "greeting: {llm: ['Hello!'], expect: [...]}")
    for k, _ in mapping_pairs(m):
        if k.value in STARTERS:
            raise ctx.error(
                k,
                f"`{k.value}` has no place in the greeting: it is what the agent does on its "
                "own before anyone speaks",
                "keep llm/tts/tools/expect/spoken/closed here, and put the user's first words "
                "in turn 1",
            )
    keys = check_keys(ctx, m, STEP_KEYS, "greeting")
    return Turn(index=-1, line=line_of(node), **_step(ctx, keys))


def parse_session_end(ctx: Ctx, node: yaml.Node) -> SessionEnd:
    """``session_end:``: answers for the models the agent builds after the call (an
    ``evals.JudgeGroup`` in ``on_session_end``, shutdown callbacks)."""
    m = as_mapping(ctx, node, "session_end", "session_end: {llm: [{say: 'pass'}]}")
    keys = check_keys(ctx, m, ("llm",), "session_end")
    llm = _steps(ctx, keys, "llm") if "llm" in keys else ()
    return SessionEnd(llm=llm, line=line_of(node))


def _steps(ctx: Ctx, keys: dict[str, Any], resource: str) -> tuple[ModelStep, ...]:
    example = "llm: [{say: 'Hello!'}]" if resource == "llm" else "tts: [{fault: server_error}]"
    out: list[ModelStep] = []
    for n in as_sequence(ctx, keys[resource][1], resource, example):
        out.extend(_model_steps(ctx, n, resource))
    return tuple(out)


def _step(ctx: Ctx, keys: dict[str, Any]) -> dict[str, Any]:
    """The keys a turn, the greeting and nothing else share (see :data:`STEP_KEYS`)."""
    t: dict[str, Any] = {}
    for resource in ("llm", "tts"):
        if resource in keys:
            t[resource] = _steps(ctx, keys, resource)
    if "tools" in keys:
        tm = as_mapping(ctx, keys["tools"][1], "tools", "tools: {get_weather: 'sunny'}")
        no_complex_keys(ctx, tm, "tools")
        t["tools"] = tuple(_tool_mock(ctx, k, v) for k, v in mapping_pairs(tm))
    if "expect" in keys:
        enode = keys["expect"][1]
        if isinstance(enode, yaml.ScalarNode) and value_of(ctx, enode) is None:
            t["expect"] = ()
        else:
            t["expect"] = tuple(
                parse_event(ctx, n)
                for n in as_sequence(
                    ctx, enode, "expect", "expect: [{message: {contains: 'hello'}}]"
                )
            )
    if "spoken" in keys:
        snode = keys["spoken"][1]
        if isinstance(snode, yaml.ScalarNode) and value_of(ctx, snode) is None:
            t["spoken"] = ()
        else:
            t["spoken"] = tuple(
                parse_spoken(ctx, n)
                for n in as_sequence(ctx, snode, "spoken", "spoken: ['temporarily unavailable']")
            )
    if "closed" in keys:
        t["closed"] = parse_closed(ctx, keys["closed"][1])
    return t


def _model_steps(ctx: Ctx, node: yaml.Node, resource: str) -> list[ModelStep]:
    """One entry of an ``llm:``/``tts:`` list: an answer (``times: N`` repeats it), or a
    fault (its own ``times`` says how many calls it fails)."""
    if isinstance(node, yaml.ScalarNode) and resource == "llm":
        # `- "Hello!"` is short for `- say: "Hello!"`
        answer = LLMAnswer(text=text_of(ctx, node, "llm answer"))
        return [ModelStep(answer=answer, fault=None, line=line_of(node))]
    m = as_mapping(ctx, node, f"{resource} step", "{say: 'text'} or {fault: quota_exceeded}")
    names = {k.value for k, _ in mapping_pairs(m)}
    if "fault" in names:
        fault, _ = parse_fault_spec(ctx.path, m)
        return [ModelStep(answer=None, fault=fault, line=line_of(node))]
    if resource == "tts":
        return _tts_steps(ctx, m)
    if resource != "llm":
        raise ctx.error(
            node, f"a {resource} step can only script a fault", "write it as {fault: server_error}"
        )
    keys = check_keys(ctx, m, ("say", "tool_calls", "chunks", "times", "fault", "ttft"), "llm step")
    times = _times(ctx, keys)
    text = text_of(ctx, keys["say"][1], "say") if "say" in keys else None
    calls: tuple[ToolCall, ...] = ()
    if "tool_calls" in keys:
        cnode = keys["tool_calls"][1]
        calls = tuple(
            _tool_call(ctx, n)
            for n in as_sequence(
                ctx,
                cnode,
                "tool_calls",
                "tool_calls: [{name: get_weather, arguments: {city: Paris}}]",
            )
        )
    chunks = None
    if "chunks" in keys:
        raw = value_of(ctx, keys["chunks"][1])
        if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
            raise ctx.error(
                keys["chunks"][1],
                f"chunks must be a list of strings, got {kind_of(keys['chunks'][1])}",
                "e.g. chunks: ['Hel', 'lo!'] (quote numbers: ['1', '2'])",
            )
        chunks = tuple(raw)
        text = text if text is not None else "".join(chunks)
    if text is None and not calls:
        raise ctx.error(
            node, "an llm step needs `say`, `tool_calls` or `fault`", "e.g. - say: 'Hello!'"
        )
    ttft = _seconds(ctx, keys["ttft"][1], "ttft", MAX_DELAY) if "ttft" in keys else None
    answer = LLMAnswer(text=text, tool_calls=calls, chunks=chunks, ttft=ttft)
    # one step per call: each is its own entry in the answer queue (and in leftovers)
    return [ModelStep(answer=answer, fault=None, line=line_of(node)) for _ in range(times)]


def _times(ctx: Ctx, keys: dict[str, tuple[yaml.ScalarNode, yaml.Node]]) -> int:
    """A step's ``times: N``: the model calls it serves (1 without it)."""
    if "times" not in keys:
        return 1
    tnode = keys["times"][1]
    times = value_of(ctx, tnode)
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise ctx.error(
            tnode,
            f"times must be a positive whole number, got {kind_of(tnode)}",
            "e.g. times: 8 (the same answer for 8 model calls)",
        )
    if times > MAX_REPEAT:
        raise ctx.error(
            tnode,
            f"times: {times} is more model calls than one step makes",
            f"give the number of calls this answer serves (at most {MAX_REPEAT})",
        )
    return times


def _tts_steps(ctx: Ctx, m: yaml.MappingNode) -> list[ModelStep]:
    """A ``tts:`` answer: one synthesis's ``ttfb`` (seconds before its first audio) and
    ``duration`` (seconds of audio; default: sized to the text)."""
    keys = check_keys(ctx, m, ("ttfb", "duration", "times", "fault"), "tts step")
    if "ttfb" not in keys and "duration" not in keys:
        raise ctx.error(
            m, "a tts step needs `ttfb`, `duration` or `fault`", "e.g. - {ttfb: 0.8, duration: 3}"
        )
    answer = TTSAnswer(
        ttfb=_seconds(ctx, keys["ttfb"][1], "ttfb", MAX_DELAY) if "ttfb" in keys else None,
        duration=(
            _seconds(ctx, keys["duration"][1], "duration", MAX_DELAY)
            if "duration" in keys
            else None
        ),
    )
    return [ModelStep(answer=answer, fault=None, line=line_of(m))] * _times(ctx, keys)


def _tool_call(ctx: Ctx, node: yaml.Node) -> ToolCall:
    m = as_mapping(ctx, node, "a tool call", "{name: get_weather, arguments: {city: Paris}}")
    keys = check_keys(ctx, m, ("name", "arguments", "call_id"), "tool call")
    if "name" not in keys:
        raise ctx.error(node, "a tool call needs a `name`", "e.g. {name: get_weather}")
    args: Any = {}
    if "arguments" in keys:
        args = value_of(ctx, keys["arguments"][1])
        if args is None:
            args = {}
        if not isinstance(args, dict | str):
            raise ctx.error(
                keys["arguments"][1],
                "tool call arguments must be a mapping",
                "e.g. arguments: {city: Paris}",
            )
        args = jsonable(args)
    call_id = text_of(ctx, keys["call_id"][1], "call_id") if "call_id" in keys else None
    return ToolCall(name=text_of(ctx, keys["name"][1], "name"), arguments=args, call_id=call_id)


def _tool_mock(ctx: Ctx, key: yaml.ScalarNode, node: yaml.Node) -> ToolMock:
    if isinstance(node, yaml.MappingNode):
        names = [k.value for k, _ in mapping_pairs(node)]
        if "raise" in names:
            keys = check_keys(ctx, node, ("raise",), f"tool mock {key.value!r}")
            return ToolMock(
                name=key.value,
                raise_message=text_of(ctx, keys["raise"][1], "raise"),
                line=line_of(key),
            )
    return ToolMock(name=key.value, value=jsonable(value_of(ctx, node)), line=line_of(key))


def parse_timing(ctx: Ctx, node: yaml.Node) -> Timing:
    """``timing:``: provider delays, in seconds on the scenario's clock."""
    m = as_mapping(ctx, node, "agentsim.timing", "timing: {llm_ttft: 0.6, tts_ttfb: 0.2}")
    keys = check_keys(ctx, m, TIMING_KEYS, "agentsim.timing")
    values: dict[str, float] = {
        key: _seconds(ctx, keys[key][1], f"timing.{key}", MAX_DELAY)
        for key in ("llm_ttft", "tts_ttfb", "stt_delay")
        if key in keys
    }
    if "words_per_minute" in keys:
        node = keys["words_per_minute"][1]
        wpm = value_of(ctx, node)
        if (
            isinstance(wpm, bool)
            or not isinstance(wpm, int | float)
            or not 0 < wpm <= MAX_WORDS_PER_MINUTE
        ):
            raise ctx.error(
                node,
                "timing.words_per_minute must be a positive number up to "
                f"{MAX_WORDS_PER_MINUTE:g}, got {kind_of(node)}",
                "e.g. words_per_minute: 150 (an unhurried speaker)",
            )
        values["words_per_minute"] = float(wpm)
    return Timing(**values)
