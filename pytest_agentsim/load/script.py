"""The ``agentsim:`` extension blocks of a scenario file, parsed into a typed script.

``lk agent simulate`` ignores these keys (Go's yaml.v3 drops unknown fields), so a file
stays valid for the cloud while carrying scripted turns, fakes' answers, faults and
expectations for local runs. Everything here is strict: an unknown key is an error with a
"did you mean", and every parsed element remembers its YAML line so a failure can point
at it. This module never imports pytest.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import yaml

from .. import faults as _faults
from ..answers import LLMAnswer, ToolCall
from ..errors import ScenarioError, did_you_mean
from ..faults import Fault
from .yamlv3 import YamlError, decode, scalar_text

__all__ = [
    "AgentsimConfig",
    "CloseExpectation",
    "EventExpectation",
    "ModelStep",
    "ScheduledFault",
    "SpokenExpectation",
    "TextMatcher",
    "ToolMock",
    "Turn",
    "merge_configs",
    "parse_agentsim_block",
    "parse_fault_spec",
]

Mode = Literal["text", "audio"]
Transport = Literal["fake", "gateway"]
MatchKind = Literal["contains", "equals", "regex", "judge"]

BLOCK_KEYS_FILE = (
    "agent",
    "mode",
    "timeout",
    "faults",
    "snapshot",
    "transport",
    "process",
    "allow_unused",
)
BLOCK_KEYS_SCENARIO = (*BLOCK_KEYS_FILE, "turns", "skip")
TURN_KEYS = ("user", "say", "generate_reply", "llm", "tts", "tools", "expect", "spoken", "closed")
EVENT_TYPES = ("message", "function_call", "function_call_output", "agent_handoff")
SCHEDULE_KEYS = ("times", "on_call", "then", "resource")
RESOURCES = ("llm", "tts", "stt")
CLOSE_REASONS = (
    "error",
    "job_shutdown",
    "participant_disconnected",
    "user_initiated",
    "task_completed",
)


# --------------------------------------------------------------------------- model


@dataclasses.dataclass(frozen=True)
class TextMatcher:
    """How a piece of text is checked: ``contains`` (case-insensitive), ``equals`` or
    ``regex`` (``re.search``)."""

    kind: MatchKind
    value: str
    line: int | None = None

    def matches(self, text: str | None) -> bool:
        text = text or ""
        if self.kind == "contains":
            return self.value.casefold() in text.casefold()
        if self.kind == "equals":
            return text.strip() == self.value.strip()
        if self.kind == "regex":
            return re.search(self.value, text) is not None
        # `judge`: graded by the LLM judge of the run (replayed from its cassette)
        from ..run.judge import CURRENT_JUDGE, JudgeError

        judge = CURRENT_JUDGE.get()
        if judge is None:
            raise JudgeError(
                f"judge {self.value!r}: no LLM judge in this run (judge matchers run in "
                "YAML scenarios, from a cassette)"
            )
        return judge.grade(text, self.value).passed

    def describe(self) -> str:
        if self.kind == "judge":
            from ..run.judge import CURRENT_JUDGE

            judge = CURRENT_JUDGE.get()
            reason = judge.reason_for(self.value) if judge is not None else None
            if reason:
                return f"judge {self.value!r} (the judge: {reason})"
        return f"{self.kind} {self.value!r}"


@dataclasses.dataclass(frozen=True)
class EventExpectation:
    """One expected ``RunResult`` event, in order."""

    type: str
    line: int | None = None
    role: str | None = None  # message
    text: TextMatcher | None = None  # message content / function_call_output output
    name: str | None = None  # function_call
    arguments: dict[str, Any] | None = None  # function_call: subset that must match
    is_error: bool | None = None  # function_call_output
    new_agent: str | None = None  # agent_handoff: class name

    def describe(self) -> str:
        parts = [self.type]
        if self.role:
            parts.append(f"role={self.role}")
        if self.name:
            parts.append(f"name={self.name}")
        if self.arguments:
            parts.append(f"arguments⊇{self.arguments}")
        if self.text:
            parts.append(self.text.describe())
        if self.is_error is not None:
            parts.append(f"is_error={self.is_error}")
        if self.new_agent:
            parts.append(f"new_agent={self.new_agent}")
        return " ".join(parts)


@dataclasses.dataclass(frozen=True)
class SpokenExpectation:
    text: TextMatcher
    source: str | None = None  # "tts" | "audio" | "text"
    line: int | None = None


@dataclasses.dataclass(frozen=True)
class CloseExpectation:
    """``closed: true`` / ``closed: {reason: ...}``: the session must close in this turn;
    ``closed: false``: it must still be open after it."""

    closed: bool
    reason: str | None = None
    line: int | None = None


@dataclasses.dataclass(frozen=True)
class ModelStep:
    """One scripted model call: an answer or a fault."""

    answer: LLMAnswer | None
    fault: Fault | None
    line: int | None = None


@dataclasses.dataclass(frozen=True)
class ToolMock:
    name: str
    value: Any = None
    raise_message: str | None = None
    line: int | None = None


@dataclasses.dataclass(frozen=True)
class ScheduledFault:
    fault: Fault
    resource: str
    line: int | None = None


@dataclasses.dataclass(frozen=True)
class Turn:
    index: int
    line: int | None
    user: str | None = None
    say: str | None = None
    generate_reply: str | None = None
    llm: tuple[ModelStep, ...] = ()
    tts: tuple[ModelStep, ...] = ()
    tools: tuple[ToolMock, ...] = ()
    expect: tuple[EventExpectation, ...] | None = None
    spoken: tuple[SpokenExpectation, ...] | None = None
    closed: CloseExpectation | None = None

    def describe(self) -> str:
        if self.user is not None:
            return f"user: {self.user}"
        if self.say is not None:
            return f"say: {self.say}"
        return f"generate_reply: {self.generate_reply or ''}".rstrip()


@dataclasses.dataclass(frozen=True)
class AgentsimConfig:
    """The effective ``agentsim`` settings of one scenario (file defaults + overrides).

    ``None`` means "not set here" so the plugin can fall back to ini/CLI values; the
    ``*_line`` fields and ``agent_origin`` say where a value came from.
    """

    agent: str | None = None
    agent_origin: Path | None = None  # the YAML file that named the agent (for relative imports)
    agent_line: int | None = None
    mode: Mode | None = None
    timeout: float | None = None
    turns: tuple[Turn, ...] | None = None
    faults: tuple[ScheduledFault, ...] = ()
    snapshot: bool | None = None
    transport: Transport | None = None
    process: bool | None = None
    allow_unused: bool | None = None
    skip: str | None = None
    line: int | None = None


def merge_configs(base: AgentsimConfig, override: AgentsimConfig) -> AgentsimConfig:
    """Scenario-level values win over file-level ones; fault schedules add up."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(AgentsimConfig):
        mine = getattr(override, field.name)
        values[field.name] = mine if mine is not None else getattr(base, field.name)
    if override.agent is None:
        values["agent_origin"], values["agent_line"] = base.agent_origin, base.agent_line
    values["faults"] = base.faults + override.faults
    values["line"] = override.line if override.line is not None else base.line
    return AgentsimConfig(**values)


# --------------------------------------------------------------------------- parsing


class _Ctx:
    """Where we are, to build errors with file:line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, node: yaml.Node | None, message: str, fix: str | None = None) -> ScenarioError:
        return ScenarioError(message, path=self.path, line=line_of(node), fix=fix)


def line_of(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _is_merge(key: yaml.Node) -> bool:
    return isinstance(key, yaml.ScalarNode) and key.value == "<<" and key.style is None


def _at_use_site(key: yaml.Node, value: yaml.Node) -> yaml.Node:
    """The value, marked where an error about it as a whole should point: at its key when it
    is an alias (the anchored node itself, marked where the anchor is defined) or a block
    mapping/list starting on a later line (``turns:`` rather than its first item). A shallow
    copy: its items keep their own lines."""
    if value.start_mark is None or key.start_mark is None:
        return value
    aliased = value.start_mark.index < key.start_mark.index
    block = (
        isinstance(value, yaml.CollectionNode)
        and not value.flow_style
        and value.start_mark.line > key.start_mark.line
    )
    if not (aliased or block):
        return value
    site = copy.copy(value)
    site.start_mark = key.start_mark
    return site


def complex_key(node: yaml.MappingNode) -> yaml.Node | None:
    """The first key (merged mappings included) that is a mapping or a list, if any."""
    for k, v in node.value:
        if _is_merge(k):
            sources = v.value if isinstance(v, yaml.SequenceNode) else [v]
            for src in sources:
                if isinstance(src, yaml.MappingNode) and (bad := complex_key(src)) is not None:
                    return bad
        elif not isinstance(k, yaml.ScalarNode):
            return k  # type: ignore[no-any-return]
    return None


def mapping_pairs(node: yaml.MappingNode) -> Iterator[tuple[yaml.ScalarNode, yaml.Node]]:
    """Key/value node pairs, with ``<<`` merges applied (explicit keys win).

    Keys that are mappings or lists are skipped (check them with :func:`complex_key`); an
    aliased value comes back marked at its key, so errors name the line that uses it.
    """
    explicit: list[tuple[yaml.ScalarNode, yaml.Node]] = []
    merged: list[tuple[yaml.ScalarNode, yaml.Node]] = []
    for k, v in node.value:
        if _is_merge(k):
            sources = v.value if isinstance(v, yaml.SequenceNode) else [v]
            for src in sources:
                if isinstance(src, yaml.MappingNode):
                    merged.extend(mapping_pairs(src))
            continue
        if isinstance(k, yaml.ScalarNode):
            explicit.append((k, _at_use_site(k, v)))
    seen = {k.value for k, _ in explicit}
    out = list(explicit)
    for k, v in merged:
        if k.value not in seen:
            seen.add(k.value)
            out.append((k, v))
    return iter(out)


def _check_keys(
    ctx: _Ctx, node: yaml.MappingNode, allowed: tuple[str, ...], where: str
) -> dict[str, tuple[yaml.ScalarNode, yaml.Node]]:
    out: dict[str, tuple[yaml.ScalarNode, yaml.Node]] = {}
    _no_complex_keys(ctx, node, where)
    for k, v in mapping_pairs(node):
        if k.value not in allowed:
            guess = did_you_mean(k.value, allowed)
            hint = f"did you mean {guess!r}?" if guess else f"allowed keys: {', '.join(allowed)}"
            raise ctx.error(k, f"unknown key {k.value!r} in {where}", hint)
        out[k.value] = (k, v)
    return out


def _no_complex_keys(ctx: _Ctx, node: yaml.MappingNode, where: str) -> None:
    bad = complex_key(node)
    if bad is not None:
        raise ctx.error(
            bad,
            f"a {'mapping' if isinstance(bad, yaml.MappingNode) else 'list'} cannot be a key "
            f"in {where}",
            "keys are plain names; check for a stray `?` or for `{`/`[` at the start of a key",
        )


def _as_mapping(ctx: _Ctx, node: yaml.Node, what: str, example: str) -> yaml.MappingNode:
    if not isinstance(node, yaml.MappingNode):
        raise ctx.error(
            node, f"{what} must be a mapping, got {_kind(node)}", f"write it as {example}"
        )
    return node


def _as_sequence(ctx: _Ctx, node: yaml.Node, what: str, example: str) -> list[yaml.Node]:
    if not isinstance(node, yaml.SequenceNode):
        raise ctx.error(node, f"{what} must be a list, got {_kind(node)}", f"write it as {example}")
    return list(node.value)


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"the scalar {node.value!r}"


def _value(ctx: _Ctx, node: yaml.Node) -> Any:
    try:
        return decode(node)
    except YamlError as e:
        raise ctx.error(node, e.message, e.fix) from None


def _text(ctx: _Ctx, node: yaml.Node, what: str) -> str:
    try:
        return scalar_text(node, what)
    except YamlError as e:
        raise ctx.error(node, e.message, e.fix) from None


def _bool(ctx: _Ctx, node: yaml.Node, what: str) -> bool:
    v = _value(ctx, node)
    if not isinstance(v, bool):
        raise ctx.error(
            node,
            f"{what} must be true or false, got {_kind(node)}",
            f"write `{what.rpartition('.')[2]}: true` or `false` (yes/no/on/off are text in "
            "YAML 1.2)",
        )
    return v


def _choice(ctx: _Ctx, node: yaml.Node, what: str, choices: tuple[str, ...]) -> str:
    v = _text(ctx, node, what)
    if v not in choices:
        guess = did_you_mean(v, choices)
        hint = f"did you mean {guess!r}?" if guess else f"use one of: {', '.join(choices)}"
        raise ctx.error(node, f"{what} must be one of {', '.join(choices)}, got {v!r}", hint)
    return v


def parse_agentsim_block(
    node: yaml.Node, path: Path, *, level: Literal["file", "scenario"]
) -> AgentsimConfig:
    """Parse one ``agentsim:`` mapping (file or scenario level)."""
    ctx = _Ctx(path)
    if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null") and node.style is None:
        return AgentsimConfig(line=line_of(node))
    block = _as_mapping(
        ctx, node, "agentsim", "agentsim: {agent: 'my_agent:MyAgent', turns: [...]}"
    )
    allowed = BLOCK_KEYS_SCENARIO if level == "scenario" else BLOCK_KEYS_FILE
    if level == "file":
        for k, _ in mapping_pairs(block):
            if k.value in ("turns", "skip"):
                raise ctx.error(
                    k,
                    f"'{k.value}' belongs to a scenario, not to the file-level agentsim block",
                    "move it under the scenario's own `agentsim:` block",
                )
    keys = _check_keys(ctx, block, allowed, "agentsim block")
    cfg: dict[str, Any] = {"line": line_of(node)}
    for key, (knode, vnode) in keys.items():
        if key == "agent":
            target = _text(ctx, vnode, "agentsim.agent")
            if not target.strip():
                raise ctx.error(
                    vnode, "agentsim.agent is empty", "name it as 'package.module:Attr'"
                )
            cfg.update(agent=target, agent_origin=path, agent_line=line_of(vnode))
        elif key == "mode":
            cfg["mode"] = _choice(ctx, vnode, "agentsim.mode", ("text", "audio"))
        elif key == "transport":
            cfg["transport"] = _choice(ctx, vnode, "agentsim.transport", ("fake", "gateway"))
        elif key == "timeout":
            t = _value(ctx, vnode)
            if (
                isinstance(t, bool)
                or not isinstance(t, int | float)
                or not math.isfinite(t)
                or not t > 0
            ):
                raise ctx.error(
                    vnode,
                    f"agentsim.timeout must be a positive number of seconds, got {_kind(vnode)}",
                    "e.g. timeout: 30",
                )
            cfg["timeout"] = float(t)
        elif key in ("snapshot", "process", "allow_unused"):
            cfg[key] = _bool(ctx, vnode, f"agentsim.{key}")
        elif key == "skip":
            if not isinstance(vnode, yaml.ScalarNode):
                raise ctx.error(
                    vnode,
                    f"agentsim.skip must be true, false or a reason, got {_kind(vnode)}",
                    "e.g. skip: 'flaky until the booking API is fixed'",
                )
            reason = _value(ctx, vnode)
            if reason is True:
                cfg["skip"] = "skipped in the scenario file"
            elif reason not in (False, None):
                cfg["skip"] = _text(ctx, vnode, "agentsim.skip")
        elif key == "faults":
            items = _as_sequence(
                ctx, vnode, "agentsim.faults", "faults: [{fault: quota_exceeded, on_call: 2}]"
            )
            cfg["faults"] = tuple(_scheduled_fault(ctx, item) for item in items)
        elif key == "turns":
            items = _as_sequence(ctx, vnode, "agentsim.turns", "turns: [{user: 'hi', llm: [...]}]")
            if not items:
                raise ctx.error(
                    vnode,
                    "agentsim.turns is empty",
                    "add at least one turn, or remove `turns` to run it as a simulated scenario",
                )
            cfg["turns"] = tuple(_turn(ctx, i, item) for i, item in enumerate(items))
        del knode
    return AgentsimConfig(**cfg)


def _scheduled_fault(ctx: _Ctx, node: yaml.Node) -> ScheduledFault:
    m = _as_mapping(ctx, node, "a fault", "{fault: quota_exceeded, on_call: 2, times: always}")
    fault, resource = parse_fault_spec(ctx.path, m, allow_resource=True)
    return ScheduledFault(fault=fault, resource=resource, line=line_of(node))


def parse_fault_spec(
    path: Path, node: yaml.MappingNode, *, allow_resource: bool = False
) -> tuple[Fault, str]:
    """``{fault: NAME, <constructor args>, times, on_call, then, resource}`` -> Fault."""
    ctx = _Ctx(path)
    _no_complex_keys(ctx, node, "a fault")
    pairs = dict((k.value, (k, v)) for k, v in mapping_pairs(node))
    if "fault" not in pairs:
        guess = next(
            (k for k in pairs if did_you_mean(k, ("fault",)) or k in _faults.FAULT_NAMES), None
        )
        raise ctx.error(
            node,
            "a fault needs a `fault:` naming it"
            + (f" (found {guess!r})" if guess is not None else ""),
            f"e.g. {{fault: quota_exceeded, on_call: 2}}; faults: {', '.join(_faults.FAULT_NAMES)}",
        )
    name_node = pairs["fault"][1]
    name = _choice(ctx, name_node, "fault", tuple(_faults.FAULT_NAMES))
    ctor: Callable[..., Fault] = _faults.FAULT_NAMES[name]
    params = list(inspect.signature(ctor).parameters)
    allowed = (
        ("fault", *params, *SCHEDULE_KEYS)
        if allow_resource
        else ("fault", *params, "times", "on_call", "then")
    )
    keys = _check_keys(ctx, node, allowed, f"fault {name!r}")
    kwargs: dict[str, Any] = {}
    for key, param in inspect.signature(ctor).parameters.items():
        if key not in keys:
            continue
        vnode = keys[key][1]
        if "int" in str(param.annotation):
            v = _value(ctx, vnode)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ctx.error(
                    vnode,
                    f"{key} must be a whole number, got {_kind(vnode)}",
                    f"e.g. {key}: {param.default if isinstance(param.default, int) else 1}",
                )
            kwargs[key] = v
        else:
            kwargs[key] = _text(ctx, vnode, key)
    try:
        fault = ctor(**kwargs)
    except (TypeError, ValueError) as e:
        # point at the argument the constructor complains about, if it names one
        culprit = next((keys[k][1] for k in kwargs if k in str(e)), node)
        raise ctx.error(
            culprit,
            f"invalid fault {name!r}: {e}",
            f"see the arguments of faults.{name}() in the fault reference",
        ) from None
    times: int | None = fault.times
    if "times" in keys:
        tnode = keys["times"][1]
        t = _value(ctx, tnode)
        if t == "always":
            times = None
        elif isinstance(t, int) and not isinstance(t, bool) and t >= 1:
            times = t
        else:
            raise ctx.error(
                tnode,
                f"times must be a positive whole number or 'always', got {_kind(tnode)}",
                "e.g. times: 3",
            )
    if "then" in keys:
        # "fail then recover": a persistent fault (quota) becomes a bounded one
        _choice(ctx, keys["then"][1], "then", ("ok",))
        if times is None and "times" in keys:
            raise ctx.error(
                keys["then"][1], "`then: ok` contradicts `times: always`", "give times a number"
            )
        times = 1 if times is None else times
    fault = fault.repeat(times)
    if "on_call" in keys:
        cnode = keys["on_call"][1]
        c = _value(ctx, cnode)
        if not isinstance(c, int) or isinstance(c, bool) or c < 1:
            raise ctx.error(cnode, "on_call must be a call number starting at 1", "e.g. on_call: 2")
        fault = fault.on(c)
    resource = "llm"
    if "resource" in keys:
        resource = _choice(ctx, keys["resource"][1], "resource", RESOURCES)
    return fault, resource


def _turn(ctx: _Ctx, index: int, node: yaml.Node) -> Turn:
    m = _as_mapping(ctx, node, f"turn {index + 1}", "{user: 'hello', expect: [...]}")
    keys = _check_keys(ctx, m, TURN_KEYS, f"turn {index + 1}")
    starters = [k for k in ("user", "say", "generate_reply") if k in keys]
    if len(starters) != 1:
        raise ctx.error(
            node,
            f"turn {index + 1} must have exactly one of user, say, generate_reply"
            + (f" (it has {', '.join(starters)})" if starters else ""),
            "start the turn with `user: <what the user says>`",
        )
    t: dict[str, Any] = {"index": index, "line": line_of(node)}
    for key in starters:
        vnode = keys[key][1]
        if key == "generate_reply" and isinstance(vnode, yaml.MappingNode):
            gk = _check_keys(ctx, vnode, ("instructions",), "generate_reply")
            t[key] = _text(ctx, gk["instructions"][1], "instructions") if gk else ""
        else:
            t[key] = _text(ctx, vnode, key)
    if "llm" in keys:
        t["llm"] = tuple(
            _model_step(ctx, n, "llm")
            for n in _as_sequence(ctx, keys["llm"][1], "llm", "llm: [{say: 'Hello!'}]")
        )
    if "tts" in keys:
        t["tts"] = tuple(
            _model_step(ctx, n, "tts")
            for n in _as_sequence(ctx, keys["tts"][1], "tts", "tts: [{fault: quota_exceeded}]")
        )
    if "tools" in keys:
        tm = _as_mapping(ctx, keys["tools"][1], "tools", "tools: {get_weather: 'sunny'}")
        _no_complex_keys(ctx, tm, "tools")
        t["tools"] = tuple(_tool_mock(ctx, k, v) for k, v in mapping_pairs(tm))
    if "expect" in keys:
        enode = keys["expect"][1]
        if isinstance(enode, yaml.ScalarNode) and _value(ctx, enode) is None:
            t["expect"] = ()
        else:
            t["expect"] = tuple(
                _event(ctx, n)
                for n in _as_sequence(
                    ctx, enode, "expect", "expect: [{message: {contains: 'hello'}}]"
                )
            )
    if "spoken" in keys:
        snode = keys["spoken"][1]
        if isinstance(snode, yaml.ScalarNode) and _value(ctx, snode) is None:
            t["spoken"] = ()
        else:
            t["spoken"] = tuple(
                _spoken(ctx, n)
                for n in _as_sequence(ctx, snode, "spoken", "spoken: ['temporarily unavailable']")
            )
    if "closed" in keys:
        t["closed"] = _closed(ctx, keys["closed"][1])
    return Turn(**t)


def _model_step(ctx: _Ctx, node: yaml.Node, resource: str) -> ModelStep:
    if isinstance(node, yaml.ScalarNode) and resource == "llm":
        # `- "Hello!"` is short for `- say: "Hello!"`
        return ModelStep(
            answer=LLMAnswer(text=_text(ctx, node, "llm answer")), fault=None, line=line_of(node)
        )
    m = _as_mapping(ctx, node, f"{resource} step", "{say: 'text'} or {fault: quota_exceeded}")
    names = {k.value for k, _ in mapping_pairs(m)}
    if "fault" in names:
        fault, _ = parse_fault_spec(ctx.path, m)
        return ModelStep(answer=None, fault=fault, line=line_of(node))
    if resource != "llm":
        raise ctx.error(
            node, f"a {resource} step can only script a fault", "write it as {fault: server_error}"
        )
    keys = _check_keys(ctx, m, ("say", "tool_calls", "chunks", "fault"), "llm step")
    text = _text(ctx, keys["say"][1], "say") if "say" in keys else None
    calls: tuple[ToolCall, ...] = ()
    if "tool_calls" in keys:
        cnode = keys["tool_calls"][1]
        calls = tuple(
            _tool_call(ctx, n)
            for n in _as_sequence(
                ctx,
                cnode,
                "tool_calls",
                "tool_calls: [{name: get_weather, arguments: {city: Paris}}]",
            )
        )
    chunks = None
    if "chunks" in keys:
        raw = _value(ctx, keys["chunks"][1])
        if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
            raise ctx.error(
                keys["chunks"][1],
                f"chunks must be a list of strings, got {_kind(keys['chunks'][1])}",
                "e.g. chunks: ['Hel', 'lo!'] (quote numbers: ['1', '2'])",
            )
        chunks = tuple(raw)
        text = text if text is not None else "".join(chunks)
    if text is None and not calls:
        raise ctx.error(
            node, "an llm step needs `say`, `tool_calls` or `fault`", "e.g. - say: 'Hello!'"
        )
    return ModelStep(
        answer=LLMAnswer(text=text, tool_calls=calls, chunks=chunks), fault=None, line=line_of(node)
    )


def _tool_call(ctx: _Ctx, node: yaml.Node) -> ToolCall:
    m = _as_mapping(ctx, node, "a tool call", "{name: get_weather, arguments: {city: Paris}}")
    keys = _check_keys(ctx, m, ("name", "arguments", "call_id"), "tool call")
    if "name" not in keys:
        raise ctx.error(node, "a tool call needs a `name`", "e.g. {name: get_weather}")
    args: Any = {}
    if "arguments" in keys:
        args = _value(ctx, keys["arguments"][1])
        if args is None:
            args = {}
        if not isinstance(args, dict | str):
            raise ctx.error(
                keys["arguments"][1],
                "tool call arguments must be a mapping",
                "e.g. arguments: {city: Paris}",
            )
        args = _jsonable(args)
    call_id = _text(ctx, keys["call_id"][1], "call_id") if "call_id" in keys else None
    return ToolCall(name=_text(ctx, keys["name"][1], "name"), arguments=args, call_id=call_id)


def _jsonable(value: Any) -> Any:
    """Timestamps in arguments reach the model as the text the user wrote."""
    from .yamlv3 import GoTime

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, GoTime):
        return value.to_json_str()
    return value


def _tool_mock(ctx: _Ctx, key: yaml.ScalarNode, node: yaml.Node) -> ToolMock:
    if isinstance(node, yaml.MappingNode):
        names = [k.value for k, _ in mapping_pairs(node)]
        if "raise" in names:
            keys = _check_keys(ctx, node, ("raise",), f"tool mock {key.value!r}")
            return ToolMock(
                name=key.value,
                raise_message=_text(ctx, keys["raise"][1], "raise"),
                line=line_of(key),
            )
    return ToolMock(name=key.value, value=_jsonable(_value(ctx, node)), line=line_of(key))


def _matcher(
    ctx: _Ctx, node: yaml.MappingNode, keys: dict[str, Any], what: str
) -> TextMatcher | None:
    found = [k for k in ("contains", "equals", "regex", "judge") if k in keys]
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
    value = _text(ctx, vnode, kind)
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


_EVENT_EXAMPLES = {
    "message": "message: {role: assistant, contains: 'hello'}",
    "function_call": "function_call: {name: get_weather, arguments: {city: Paris}}",
    "function_call_output": "function_call_output: {contains: 'sunny', is_error: false}",
    "agent_handoff": "agent_handoff: {new_agent: SupportAgent}",
}


def _event(ctx: _Ctx, node: yaml.Node) -> EventExpectation:
    example = "{message: {contains: 'hello'}}"
    m = _as_mapping(ctx, node, "an expected event", example)
    _no_complex_keys(ctx, m, "an expected event")
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
        text = _text(ctx, v, etype)
        if etype == "function_call":
            return EventExpectation(type=etype, name=text, line=line)
        if etype == "agent_handoff":
            return EventExpectation(type=etype, new_agent=text, line=line)
        matcher = TextMatcher("contains", text, line_of(v)) if text else None
        return EventExpectation(
            type=etype, text=matcher, role="assistant" if etype == "message" else None, line=line
        )
    vm = _as_mapping(ctx, v, etype, _EVENT_EXAMPLES[etype])
    if etype == "message":
        keys = _check_keys(ctx, vm, ("role", "contains", "equals", "regex", "judge"), "message")
        role = (
            _choice(ctx, keys["role"][1], "role", ("assistant", "user", "system", "developer"))
            if "role" in keys
            else "assistant"
        )
        return EventExpectation(
            type=etype, role=role, text=_matcher(ctx, vm, keys, "message"), line=line
        )
    if etype == "function_call":
        keys = _check_keys(ctx, vm, ("name", "arguments"), "function_call")
        name = _text(ctx, keys["name"][1], "name") if "name" in keys else None
        args = None
        if "arguments" in keys:
            args = _value(ctx, keys["arguments"][1])
            if not isinstance(args, dict):
                raise ctx.error(
                    keys["arguments"][1],
                    "function_call arguments must be a mapping (a subset of the call's arguments)",
                    "e.g. arguments: {date: '2026-06-15'}",
                )
            args = _jsonable(args)
        return EventExpectation(type=etype, name=name, arguments=args, line=line)
    if etype == "function_call_output":
        keys = _check_keys(
            ctx, vm, ("contains", "equals", "regex", "is_error"), "function_call_output"
        )
        is_error = _bool(ctx, keys["is_error"][1], "is_error") if "is_error" in keys else None
        return EventExpectation(
            type=etype,
            text=_matcher(ctx, vm, keys, "function_call_output"),
            is_error=is_error,
            line=line,
        )
    keys = _check_keys(ctx, vm, ("new_agent",), "agent_handoff")
    new_agent = _text(ctx, keys["new_agent"][1], "new_agent") if "new_agent" in keys else None
    return EventExpectation(type=etype, new_agent=new_agent, line=line)


def _spoken(ctx: _Ctx, node: yaml.Node) -> SpokenExpectation:
    if isinstance(node, yaml.ScalarNode):
        return SpokenExpectation(
            TextMatcher("contains", _text(ctx, node, "spoken"), line_of(node)), line=line_of(node)
        )
    m = _as_mapping(ctx, node, "a spoken matcher", "{contains: 'sorry'}")
    keys = _check_keys(ctx, m, ("contains", "equals", "regex", "source"), "spoken matcher")
    matcher = _matcher(ctx, m, keys, "spoken matcher")
    if matcher is None:
        raise ctx.error(
            node,
            "a spoken matcher needs contains, equals or regex",
            "e.g. - {contains: 'temporarily unavailable'}",
        )
    source = (
        _choice(ctx, keys["source"][1], "source", ("tts", "audio", "text"))
        if "source" in keys
        else None
    )
    return SpokenExpectation(matcher, source=source, line=line_of(node))


def _closed(ctx: _Ctx, node: yaml.Node) -> CloseExpectation:
    if isinstance(node, yaml.ScalarNode):
        v = _value(ctx, node)
        if isinstance(v, bool):
            return CloseExpectation(closed=v, line=line_of(node))
        if v is None:
            raise ctx.error(
                node,
                "closed is empty",
                "write `closed: true`, `closed: false` or `closed: {reason: user_initiated}`",
            )
        reason = _choice(ctx, node, "closed", CLOSE_REASONS)
        return CloseExpectation(closed=True, reason=reason, line=line_of(node))
    m = _as_mapping(ctx, node, "closed", "closed: {reason: user_initiated}")
    keys = _check_keys(ctx, m, ("reason",), "closed")
    why = _choice(ctx, keys["reason"][1], "reason", CLOSE_REASONS) if "reason" in keys else None
    return CloseExpectation(closed=True, reason=why, line=line_of(node))
