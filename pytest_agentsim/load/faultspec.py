"""A fault in YAML (``{fault: quota_exceeded, times: 2, on_call: 3}``), parsed into a
:class:`~pytest_agentsim.faults.Fault`, with the fault constructors' own arguments."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .. import faults as _faults
from ..errors import did_you_mean
from ..faults import Fault
from .nodes import (
    Ctx,
    check_keys,
    choice_of,
    kind_of,
    mapping_pairs,
    no_complex_keys,
    text_of,
    value_of,
)

__all__ = ["RESOURCES", "SCHEDULE_KEYS", "parse_fault_spec"]

SCHEDULE_KEYS = ("times", "on_call", "then", "resource")
RESOURCES = ("llm", "tts", "stt")


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
