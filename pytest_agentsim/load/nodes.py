"""YAML node helpers shared by the loader and the ``agentsim:`` block parser: keys with
``<<`` merges, typed values, and errors that name the line and the fix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ..errors import ScenarioError, did_you_mean
from .yamlv3 import GoTime, YamlError, decode, scalar_text


class Ctx:
    """Where we are, to build errors with file:line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, node: yaml.Node | None, message: str, fix: str | None = None) -> ScenarioError:
        return ScenarioError(message, path=self.path, line=line_of(node), fix=fix)


def line_of(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def is_merge(key: yaml.Node) -> bool:
    return isinstance(key, yaml.ScalarNode) and key.value == "<<" and key.style is None


def at_use_site(key: yaml.Node, value: yaml.Node) -> yaml.Node:
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
    # what copy.copy does for these plain classes, without its dispatch (a hot path)
    site = object.__new__(type(value))
    vars(site).update(vars(value))
    site.start_mark = key.start_mark
    return site


def complex_key(node: yaml.MappingNode) -> yaml.Node | None:
    """The first key (merged mappings included) that is a mapping or a list, if any."""
    for k, v in node.value:
        if is_merge(k):
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
        if is_merge(k):
            sources = v.value if isinstance(v, yaml.SequenceNode) else [v]
            for src in sources:
                if isinstance(src, yaml.MappingNode):
                    merged.extend(mapping_pairs(src))
            continue
        if isinstance(k, yaml.ScalarNode):
            explicit.append((k, at_use_site(k, v)))
    if not merged:  # the common case: no `<<` in this mapping
        return iter(explicit)
    seen = {k.value for k, _ in explicit}
    out = explicit
    for k, v in merged:
        if k.value not in seen:
            seen.add(k.value)
            out.append((k, v))
    return iter(out)


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null") and not node.style


def check_keys(
    ctx: Ctx, node: yaml.MappingNode, allowed: tuple[str, ...], where: str
) -> dict[str, tuple[yaml.ScalarNode, yaml.Node]]:
    out: dict[str, tuple[yaml.ScalarNode, yaml.Node]] = {}
    no_complex_keys(ctx, node, where)
    for k, v in mapping_pairs(node):
        if k.value not in allowed:
            guess = did_you_mean(k.value, allowed)
            hint = f"did you mean {guess!r}?" if guess else f"allowed keys: {', '.join(allowed)}"
            if node.flow_style and _is_null(v):
                # `{say: Hello, how are you?}`: the comma ended the text
                hint = "in `{...}` a comma separates entries: quote text that contains one"
            raise ctx.error(k, f"unknown key {k.value!r} in {where}", hint)
        out[k.value] = (k, v)
    return out


def no_complex_keys(
    ctx: Ctx, node: yaml.MappingNode, where: str, *, cli_fails: bool = False
) -> None:
    """Keys are plain names; ``cli_fails``: the CLI would fail on this one too (say so)."""
    bad = complex_key(node)
    if bad is not None:
        kind, tag = ("mapping", "map") if isinstance(bad, yaml.MappingNode) else ("list", "seq")
        cli = f' (lk agent simulate fails with "cannot unmarshal !!{tag} into string")'
        raise ctx.error(
            bad,
            f"a {kind} cannot be a key in {where}" + (cli if cli_fails else ""),
            "keys are plain names; check for a stray `?` or for `{`/`[` at the start of a key",
        )


def as_mapping(ctx: Ctx, node: yaml.Node, what: str, example: str) -> yaml.MappingNode:
    if not isinstance(node, yaml.MappingNode):
        raise ctx.error(
            node, f"{what} must be a mapping, got {kind_of(node)}", f"write it as {example}"
        )
    return node


def as_sequence(ctx: Ctx, node: yaml.Node, what: str, example: str) -> list[yaml.Node]:
    if not isinstance(node, yaml.SequenceNode):
        raise ctx.error(
            node, f"{what} must be a list, got {kind_of(node)}", f"write it as {example}"
        )
    return list(node.value)


def kind_of(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
    return f"the scalar {shown!r}"


def value_of(ctx: Ctx, node: yaml.Node) -> Any:
    try:
        return decode(node)
    except YamlError as e:
        raise ctx.error(node, e.message, e.fix) from None


def text_of(ctx: Ctx, node: yaml.Node, what: str) -> str:
    try:
        return scalar_text(node, what)
    except YamlError as e:
        raise ctx.error(node, e.message, e.fix) from None


def bool_of(ctx: Ctx, node: yaml.Node, what: str) -> bool:
    v = value_of(ctx, node)
    if not isinstance(v, bool):
        raise ctx.error(
            node,
            f"{what} must be true or false, got {kind_of(node)}",
            f"write `{what.rpartition('.')[2]}: true` or `false` (yes/no/on/off are text in "
            "YAML 1.2)",
        )
    return v


def choice_of(ctx: Ctx, node: yaml.Node, what: str, choices: tuple[str, ...]) -> str:
    v = text_of(ctx, node, what)
    if v not in choices:
        guess = did_you_mean(v, choices)
        hint = f"did you mean {guess!r}?" if guess else f"use one of: {', '.join(choices)}"
        raise ctx.error(node, f"{what} must be one of {', '.join(choices)}, got {v!r}", hint)
    return v


def jsonable(value: Any) -> Any:
    """Timestamps in arguments reach the model as the text the user wrote."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, GoTime):
        return value.to_json_str()
    return value
