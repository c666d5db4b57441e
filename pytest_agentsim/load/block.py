"""The ``agentsim:`` extension blocks of a scenario file, parsed into the scenario model.

``lk agent simulate`` ignores these keys (Go's yaml.v3 drops unknown fields), so a file
stays valid for the cloud while carrying scripted turns, fakes' answers, faults and
expectations for local runs. Everything here is strict: an unknown key is an error with a
"did you mean", and every parsed element remembers its YAML line.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml

from .faultspec import parse_fault_spec
from .model import AgentsimConfig, ScheduledFault
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
    text_of,
    value_of,
)
from .turns import parse_greeting, parse_session_end, parse_timing, parse_turn

BLOCK_KEYS_FILE = (
    "agent",
    "mode",
    "timeout",
    "faults",
    "snapshot",
    "transport",
    "process",
    "allow_unused",
    "greeting",
    "session_end",
    "session",
    "env",
    "timing",
)
BLOCK_KEYS_SCENARIO = (*BLOCK_KEYS_FILE, "turns", "skip")
SESSION_KEYS = (
    "userdata",
    "state",  # state/deps: livekit-agents 2 sessions
    "deps",
    # voice time: how livekit hears the user (spoken turns) and when it gives up on them
    # (the options livekit has not deprecated; the rest are in turn_handling)
    "turn_handling",
    "aec_warmup_duration",
    "user_away_timeout",
)
MAX_TIMEOUT = 24 * 3600.0  # a day: more is a typo, not a scenario
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


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
                or not 0 < t <= MAX_TIMEOUT
            ):
                raise ctx.error(
                    vnode,
                    f"agentsim.timeout must be a positive number of seconds up to a day "
                    f"({MAX_TIMEOUT:g}), got {kind_of(vnode)}",
                    "e.g. timeout: 30",
                )
            cfg["timeout"] = float(t)
        elif key == "snapshot" and isinstance(vnode, yaml.MappingNode):
            cfg["snapshot"], cfg["snapshot_mask"] = True, _snapshot_mask(ctx, vnode)
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
                cfg["skip"] = text_of(ctx, vnode, "agentsim.skip").strip()
                if not cfg["skip"]:
                    raise ctx.error(
                        vnode,
                        "agentsim.skip is an empty reason",
                        "write `skip: true`, or say why: skip: 'flaky until the API is fixed'",
                    )
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
            cfg["turns"] = tuple(parse_turn(ctx, i, item) for i, item in enumerate(items))
        elif key == "greeting":
            cfg["greeting"] = parse_greeting(ctx, vnode)
        elif key == "session_end":
            cfg["session_end"] = parse_session_end(ctx, vnode)
        elif key == "session":
            cfg["session"], cfg["session_line"] = _session(ctx, vnode), line_of(vnode)
        elif key == "env":
            cfg["env"] = _env(ctx, vnode)
        elif key == "timing":
            cfg["timing"], cfg["timing_line"] = parse_timing(ctx, vnode), line_of(vnode)
        del knode
    return AgentsimConfig(**cfg)


def _session(ctx: Ctx, node: yaml.Node) -> dict[str, Any]:
    """``session: {userdata: ...}``: arguments for the ``AgentSession`` the plugin builds
    around an ``Agent`` target (``userdata`` is what ``ctx.userdata`` returns in tools; on
    livekit-agents 2 also ``state`` and ``deps``, read as ``ctx.state``/``ctx.deps``)."""
    m = as_mapping(ctx, node, "agentsim.session", "session: {userdata: {guest: Maya}}")
    keys = check_keys(ctx, m, SESSION_KEYS, "agentsim.session")
    return {key: jsonable(value_of(ctx, vnode)) for key, (_, vnode) in keys.items()}


def _snapshot_mask(ctx: Ctx, node: yaml.MappingNode) -> tuple[str, ...]:
    """``snapshot: {mask: [regex, ...]}``: a snapshot, with what the patterns match (random
    order ids, confirmation codes) shown as ``<masked>``."""
    keys = check_keys(ctx, node, ("mask",), "agentsim.snapshot")
    if "mask" not in keys:
        raise ctx.error(
            node,
            "agentsim.snapshot is a mapping without `mask`",
            "write `snapshot: true`, or `snapshot: {mask: ['ORD-[0-9]+']}`",
        )
    patterns: list[str] = []
    for item in as_sequence(ctx, keys["mask"][1], "snapshot.mask", "mask: ['ORD-[0-9]+']"):
        pattern = text_of(ctx, item, "snapshot.mask")
        try:
            compiled = re.compile(pattern)
        except re.error as e:
            raise ctx.error(
                item,
                f"snapshot.mask: {pattern!r} is not a regular expression ({e})",
                "quote it in single quotes, and escape regex characters meant literally",
            ) from None
        if compiled.match(""):
            raise ctx.error(
                item,
                f"snapshot.mask: {pattern!r} matches empty text (it would mask everywhere)",
                "make it match the volatile value itself, e.g. 'ORD-[0-9]+'",
            )
        patterns.append(pattern)
    return tuple(patterns)


def _env(ctx: Ctx, node: yaml.Node) -> dict[str, str | None]:
    """``env: {HOTEL_TODAY: 2026-06-08, CAL_API_KEY: null}``: environment variables set
    (null: unset) while the agent is imported and run. Values are kept as written."""
    m = as_mapping(ctx, node, "agentsim.env", "env: {HOTEL_TODAY: '2026-06-08'}")
    out: dict[str, str | None] = {}
    for k, v in mapping_pairs(m):
        if not _ENV_NAME.match(k.value):
            raise ctx.error(
                k,
                f"agentsim.env: {k.value!r} is not an environment variable name",
                "use letters, digits and underscores, not starting with a digit",
            )
        if k.value in out:
            raise ctx.error(k, f"agentsim.env sets {k.value!r} twice", "keep one of them")
        is_null = isinstance(v, yaml.ScalarNode) and value_of(ctx, v) is None
        out[k.value] = None if is_null else text_of(ctx, v, f"agentsim.env.{k.value}")
    return out


def _scheduled_fault(ctx: Ctx, node: yaml.Node) -> ScheduledFault:
    m = as_mapping(ctx, node, "a fault", "{fault: quota_exceeded, on_call: 2, times: always}")
    fault, resource = parse_fault_spec(ctx.path, m, allow_resource=True)
    return ScheduledFault(fault=fault, resource=resource, line=line_of(node))
