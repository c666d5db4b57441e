"""Values a scenario captures from what the agent did, reused in later scripted answers.

A ``regex`` matcher with named groups (``function_call_output: {regex: 'code (?P<code>\\S+)'}``)
captures each group when it matches; a later step's ``llm:`` answers may then say
``${code}`` in tool-call arguments or text, as a model would repeat an id a tool returned.
``$${`` stays a literal ``${``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from ..answers import LLMAnswer, ToolCall

__all__ = ["MissingCapture", "substitute"]

_REF = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MissingCapture(LookupError):
    """A ``${name}`` that no earlier regex captured."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _text(value: str, captured: Mapping[str, str]) -> str:
    def replace(m: re.Match[str]) -> str:
        if m[1]:  # $${name}: a literal ${name}
            return "${" + m[2] + "}"
        if m[2] not in captured:
            raise MissingCapture(m[2])
        return captured[m[2]]

    return _REF.sub(replace, value)


def _value(value: Any, captured: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _text(value, captured)
    if isinstance(value, Mapping):
        return {k: _value(v, captured) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_value(v, captured) for v in value]
    return value


def substitute(answer: Any, captured: Mapping[str, str]) -> Any:
    """``answer`` with its ``${name}`` references filled in (other answers unchanged)."""
    if not isinstance(answer, LLMAnswer):
        return answer
    calls = tuple(
        dataclasses.replace(call, arguments=_value(call.arguments, captured))
        if isinstance(call, ToolCall)
        else call
        for call in answer.tool_calls
    )
    text = _text(answer.text, captured) if answer.text is not None else None
    chunks = tuple(_text(c, captured) for c in answer.chunks) if answer.chunks else answer.chunks
    return dataclasses.replace(answer, text=text, tool_calls=calls, chunks=chunks)
