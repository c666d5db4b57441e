"""Parser errors as users should read them: located, in plain words, with a fix."""

from __future__ import annotations

import json
from typing import Final

import yaml
import yaml.parser
import yaml.reader
import yaml.scanner

from .types import YamlError

EMPTY_FIX: Final = "start the file with `name:` and a `scenarios:` list"
DEFAULT_FIX: Final = "check the YAML syntax on this line (quote text with special characters)"


def go_quote(text: str) -> str:
    """Roughly Go's ``%#v`` of a string (strconv.Quote), for messages."""
    return json.dumps(text, ensure_ascii=False)


_TAB_FIX: Final = "indent with spaces: YAML does not allow tabs for indentation"
_FIXES: Final = (
    ("found character '\\t'", _TAB_FIX),
    ("tab character", _TAB_FIX),
    ("mapping values are not allowed", "quote the value if it contains ': ' (e.g. \"Re: x\")"),
    ("could not find expected ':'", "check the indentation, and that each key ends with ': '"),
    (
        "did not find expected key",
        "check the indentation of this line and the one above, and that a quoted value ends "
        "at its closing quote (inside single quotes write '' for ')",
    ),
    (
        "did not find expected '-'",
        "check the indentation of this line: the keys of one mapping line up, and so do the "
        "`- ` items of a list (with a space after each `-`)",
    ),
    ("expected <block end>", "check the indentation of this line and the one above"),
    ("found undefined tag handle", "use a known tag such as !!str, or quote the value"),
    ("found unknown escape character", "use a valid escape, or single quotes: 'C:\\path'"),
    ("found unexpected end of stream", "close the open quote or bracket"),
    (
        "invalid Unicode character escape",
        "escape characters outside the BMP as \\UXXXXXXXX, not as surrogate pairs",
    ),
    ("found character that cannot start any token", "quote the value"),
    ("<document start>", "put a `---` line after the `%` directives, or remove them"),
    ("directive", "remove the `%` directive line (scenario files need none)"),
    ("incompatible YAML document", "remove the `%YAML` directive line (scenario files need none)"),
)
# Unclosed flow collections: the fix names the line of the opening bracket.
_FLOW_CLOSERS: Final = (("flow mapping", "{", "}"), ("flow sequence", "[", "]"))


def syntax_error(exc: yaml.MarkedYAMLError, source: str) -> YamlError:
    problem = exc.problem or exc.context or "invalid YAML"
    mark = exc.problem_mark or exc.context_mark
    ctx = exc.context_mark
    context = exc.context or ""
    if (
        "end of stream" in problem
        and "quoted scalar" in context
        and ctx is not None
        and mark is not None
    ):
        # The end of the file is where the scanner gave up; the quote that never closes is
        # where the fix goes.
        return YamlError(
            f"the quoted text that starts here is never closed (the file ends at line "
            f"{mark.line + 1} inside it)",
            ctx.line + 1,
            ctx.column + 1,
            fix='close the open quote (a quote inside double quotes is written \\", inside '
            "single quotes '')",
        )
    if "could not find expected ':'" in problem and ctx is not None:
        # the scanner gives up where the next line starts; the key without `:` is the culprit
        return YamlError(
            "this line looks like a key, but no `:` follows it",
            ctx.line + 1,
            ctx.column + 1,
            fix="end the key with ': ', or indent the line to continue the text above",
        )
    message = problem
    if exc.context and exc.problem:
        message = f"{problem} ({exc.context}"
        if ctx is not None and (mark is None or ctx.line != mark.line):
            message += f" that starts at line {ctx.line + 1}"
        message += ")"
    fix = next((f for needle, f in _FIXES if needle in problem), DEFAULT_FIX)
    for what, opener, closer in _FLOW_CLOSERS:
        if what in context and f"'{closer}'" in problem and ctx is not None:
            fix = (
                f"close the `{opener}` opened on line {ctx.line + 1} with `{closer}` (check the "
                "syntax: quote values that contain , [ ] { } or #)"
            )
    if mark is not None and "\t" in source:
        lines = source.splitlines()
        if mark.line < len(lines) and lines[mark.line][mark.column : mark.column + 1] == "\t":
            fix = _TAB_FIX  # libyaml does not always name the tab it trips over
            if "tab" not in message:
                message = f"found a tab character where YAML does not allow one: {message}"
    if mark is None:
        return YamlError(message, fix=fix)
    return YamlError(message, mark.line + 1, mark.column + 1, fix=fix)
