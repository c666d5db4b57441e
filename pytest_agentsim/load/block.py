"""The ``agentsim:`` extension blocks of a scenario file, parsed into the scenario model.

``lk agent simulate`` ignores these keys (Go's yaml.v3 drops unknown fields), so a file
stays valid for the cloud while carrying scripted turns, fakes' answers, faults and
expectations for local runs. Everything here is strict: an unknown key is an error with a
"did you mean", and every parsed element remembers its YAML line.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml

from .. import faults as _faults
from ..answers import LLMAnswer, ToolCall
from ..errors import did_you_mean
from ..faults import Fault
from .expect import parse_closed, parse_event, parse_spoken
from .model import AgentsimConfig, ModelStep, ScheduledFault, ToolMock, Turn
from .nodes import (
    Ctx,
    as_mapping,
    as_sequence,
    bool_of,
    check_keys,
    choice_of,
    jsonable,
    kind_of,
    line_of,
    mapping_pairs,
    no_complex_keys,
    text_of,
    value_of,
)

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
SCHEDULE_KEYS = ("times", "on_call", "then", "resource")
RESOURCES = ("llm", "tts", "stt")


def parse_agentsim_block(
    node: yaml.Node, path: Path, *, level: Literal["file", "scenario"]
) -> AgentsimConfig:
    """Parse one ``agentsim:`` mapping (file or scenario level)."""
    ctx = Ctx(path)
    if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null") and node.style is None:
        return AgentsimConfig(line=line_of(node))
    block = as_mapping(ctx, node, "agentsim", "agentsim: {agent: 'my_agent:MyAgent', turns: [...]}")
    allowed = BLOCK_KEYS_SCENARIO if level == "scenario" else BLOCK_KEYS_FILE
    if level == "file":
        for k, _ in mapping_pairs(block):
            if k.value in ("turns", "skip"):
                raise ctx.error(
                    k,
                    f"'{k.value}' belongs to a scenario, not to the file-level agentsim block",
                    "move it under the scenario's own `agentsim:` block",
                )
    keys = check_keys(ctx, block, allowed, "agentsim block")
    cfg: dict[str, Any] = {"line": line_of(node)}
    for key, (knode, vnode) in keys.items():
        if key == "agent":
            target = text_of(ctx, vnode, "agentsim.agent")
            if not target.strip():
                raise ctx.error(
                    vnode, "agentsim.agent is empty", "name it as 'package.module:Attr'"
                )
            cfg.update(agent=target, agent_origin=path, agent_line=line_of(vnode))
        elif key == "mode":
            cfg["mode"] = choice_of(ctx, vnode, "agentsim.mode", ("text", "audio"))
        elif key == "transport":
            cfg["transport"] = choice_of(ctx, vnode, "agentsim.transport", ("fake", "gateway"))
        elif key == "timeout":
            t = value_of(ctx, vnode)
            if (
                isinstance(t, bool)
                or not isinstance(t, int | float)
                or not math.isfinite(t)
                or not t > 0
            ):
                raise ctx.error(
                    vnode,
                    f"agentsim.timeout must be a positive number of seconds, got {kind_of(vnode)}",
                    "e.g. timeout: 30",
                )
            cfg["timeout"] = float(t)
        elif key in ("snapshot", "process", "allow_unused"):
            cfg[key] = bool_of(ctx, vnode, f"agentsim.{key}")
        elif key == "skip":
            if not isinstance(vnode, yaml.ScalarNode):
                raise ctx.error(
                    vnode,
                    f"agentsim.skip must be true, false or a reason, got {kind_of(vnode)}",
                    "e.g. skip: 'flaky until the booking API is fixed'",
                )
            reason = value_of(ctx, vnode)
            if reason is True:
                cfg["skip"] = "skipped in the scenario file"
            elif reason not in (False, None):
                cfg["skip"] = text_of(ctx, vnode, "agentsim.skip")
        elif key == "faults":
            items = as_sequence(
                ctx, vnode, "agentsim.faults", "faults: [{fault: quota_exceeded, on_call: 2}]"
            )
            cfg["faults"] = tuple(_scheduled_fault(ctx, item) for item in items)
        elif key == "turns":
            items = as_sequence(ctx, vnode, "agentsim.turns", "turns: [{user: 'hi', llm: [...]}]")
            if not items:
                raise ctx.error(
                    vnode,
                    "agentsim.turns is empty",
                    "add at least one turn, or remove `turns` to run it as a simulated scenario",
                )
            cfg["turns"] = tuple(_turn(ctx, i, item) for i, item in enumerate(items))
        del knode
    return AgentsimConfig(**cfg)


def _scheduled_fault(ctx: Ctx, node: yaml.Node) -> ScheduledFault:
    m = as_mapping(ctx, node, "a fault", "{fault: quota_exceeded, on_call: 2, times: always}")
    fault, resource = parse_fault_spec(ctx.path, m, allow_resource=True)
    return ScheduledFault(fault=fault, resource=resource, line=line_of(node))


def parse_fault_spec(
    path: Path, node: yaml.MappingNode, *, allow_resource: bool = False
) -> tuple[Fault, str]:
    """``{fault: NAME, <constructor args>, times, on_call, then, resource}`` -> Fault."""
    ctx = Ctx(path)
    no_complex_keys(ctx, node, "a fault")
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
    name = choice_of(ctx, name_node, "fault", tuple(_faults.FAULT_NAMES))
    ctor: Callable[..., Fault] = _faults.FAULT_NAMES[name]
    params = list(inspect.signature(ctor).parameters)
    allowed = (
        ("fault", *params, *SCHEDULE_KEYS)
        if allow_resource
        else ("fault", *params, "times", "on_call", "then")
    )
    keys = check_keys(ctx, node, allowed, f"fault {name!r}")
    kwargs: dict[str, Any] = {}
    for key, param in inspect.signature(ctor).parameters.items():
        if key not in keys:
            continue
        vnode = keys[key][1]
        if "int" in str(param.annotation):
            v = value_of(ctx, vnode)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ctx.error(
                    vnode,
                    f"{key} must be a whole number, got {kind_of(vnode)}",
                    f"e.g. {key}: {param.default if isinstance(param.default, int) else 1}",
                )
            kwargs[key] = v
        else:
            kwargs[key] = text_of(ctx, vnode, key)
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
        t = value_of(ctx, tnode)
        if t == "always":
            times = None
        elif isinstance(t, int) and not isinstance(t, bool) and t >= 1:
            times = t
        else:
            raise ctx.error(
                tnode,
                f"times must be a positive whole number or 'always', got {kind_of(tnode)}",
                "e.g. times: 3",
            )
    if "then" in keys:
        # "fail then recover": a persistent fault (quota) becomes a bounded one
        choice_of(ctx, keys["then"][1], "then", ("ok",))
        if times is None and "times" in keys:
            raise ctx.error(
                keys["then"][1], "`then: ok` contradicts `times: always`", "give times a number"
            )
        times = 1 if times is None else times
    fault = fault.repeat(times)
    if "on_call" in keys:
        cnode = keys["on_call"][1]
        c = value_of(ctx, cnode)
        if not isinstance(c, int) or isinstance(c, bool) or c < 1:
            raise ctx.error(cnode, "on_call must be a call number starting at 1", "e.g. on_call: 2")
        fault = fault.on(c)
    resource = "llm"
    if "resource" in keys:
        resource = choice_of(ctx, keys["resource"][1], "resource", RESOURCES)
    return fault, resource


def _turn(ctx: Ctx, index: int, node: yaml.Node) -> Turn:
    m = as_mapping(ctx, node, f"turn {index + 1}", "{user: 'hello', expect: [...]}")
    keys = check_keys(ctx, m, TURN_KEYS, f"turn {index + 1}")
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
            gk = check_keys(ctx, vnode, ("instructions",), "generate_reply")
            t[key] = text_of(ctx, gk["instructions"][1], "instructions") if gk else ""
        else:
            t[key] = text_of(ctx, vnode, key)
    if "llm" in keys:
        t["llm"] = tuple(
            _model_step(ctx, n, "llm")
            for n in as_sequence(ctx, keys["llm"][1], "llm", "llm: [{say: 'Hello!'}]")
        )
    if "tts" in keys:
        t["tts"] = tuple(
            _model_step(ctx, n, "tts")
            for n in as_sequence(ctx, keys["tts"][1], "tts", "tts: [{fault: quota_exceeded}]")
        )
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
    return Turn(**t)


def _model_step(ctx: Ctx, node: yaml.Node, resource: str) -> ModelStep:
    if isinstance(node, yaml.ScalarNode) and resource == "llm":
        # `- "Hello!"` is short for `- say: "Hello!"`
        return ModelStep(
            answer=LLMAnswer(text=text_of(ctx, node, "llm answer")), fault=None, line=line_of(node)
        )
    m = as_mapping(ctx, node, f"{resource} step", "{say: 'text'} or {fault: quota_exceeded}")
    names = {k.value for k, _ in mapping_pairs(m)}
    if "fault" in names:
        fault, _ = parse_fault_spec(ctx.path, m)
        return ModelStep(answer=None, fault=fault, line=line_of(node))
    if resource != "llm":
        raise ctx.error(
            node, f"a {resource} step can only script a fault", "write it as {fault: server_error}"
        )
    keys = check_keys(ctx, m, ("say", "tool_calls", "chunks", "fault"), "llm step")
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
    return ModelStep(
        answer=LLMAnswer(text=text, tool_calls=calls, chunks=chunks), fault=None, line=line_of(node)
    )


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
