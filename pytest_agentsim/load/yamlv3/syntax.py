"""Parser errors as users should read them: located, in our own words, with a fix.

libyaml and PyYAML's pure-Python parser word the same problem differently (and libyaml
releases reword them), so each problem is recognized in either wording and told in one
message of ours. A problem neither table knows keeps the parser's words, prefixed with
``invalid YAML:``, and the generic fix.
"""

from __future__ import annotations

import json
from typing import Any, Final

import yaml

from .types import YamlError

EMPTY_FIX: Final = "start the file with `name:` and a `scenarios:` list"
DEFAULT_FIX: Final = "check the YAML syntax on this line (quote text with special characters)"


def go_quote(text: str) -> str:
    """Roughly Go's ``%#v`` of a string (strconv.Quote), for messages."""
    return json.dumps(text, ensure_ascii=False)


_TAB_FIX: Final = "indent with spaces: YAML does not allow tabs for indentation"
UNKNOWN_DIRECTIVE: Final = (
    "this `%` directive is not one YAML knows",
    "remove the `%` directive line (scenario files need none)",
)
BAD_UNICODE_ESCAPE: Final = (
    "found invalid Unicode character escape code",
    "escape characters outside the BMP as \\UXXXXXXXX, not as surrogate pairs",
)
_LIST_FIX: Final = (
    "check the indentation of this line: the keys of one mapping line up, and so do the "
    "`- ` items of a list (with a space after each `-`)"
)
_MAPPING_FIX: Final = (
    "check the indentation of this line and the one above, and that a quoted value ends at "
    "its closing quote (inside single quotes write '' for ')"
)


def _char_at(source: str, mark: Any) -> str:
    lines = source.splitlines()
    if mark is None or mark.line >= len(lines):
        return ""
    line: str = lines[mark.line]
    return line[mark.column : mark.column + 1]


def _word_at(source: str, mark: Any) -> str:
    lines = source.splitlines()
    if mark is None or mark.line >= len(lines):
        return ""
    line: str = lines[mark.line]
    return line[mark.column :].split(" ", 1)[0]


def _translate(exc: yaml.MarkedYAMLError, source: str) -> tuple[str, str] | None:
    """``(message, fix)`` in our words for a problem either parser reports (None: unknown)."""
    problem = exc.problem or ""
    context = exc.context or ""
    mark = exc.problem_mark or exc.context_mark
    opened = exc.context_mark
    if _char_at(source, mark) == "\t" or "tab character" in problem:
        # libyaml does not always name the tab it trips over
        return "a tab character is used for indentation here, which YAML does not allow", _TAB_FIX
    if "mapping values are not allowed" in problem:
        return (
            "a `: ` inside this plain value makes YAML read it as a key",
            "quote the value if it contains ': ' (e.g. \"Re: x\")",
        )
    if "block collection" in context or "block mapping" in context:
        # libyaml: "did not find expected '-' indicator" / "... key";
        # PyYAML: "expected <block end>, but found ..."
        what = "list" if "collection" in context else "mapping"
        return (
            f"this line does not fit the {what} above it: an item or key at the wrong "
            "indentation, or text that should be quoted",
            _LIST_FIX if what == "list" else _MAPPING_FIX,
        )
    for flow, opener, closer in (("flow mapping", "{", "}"), ("flow sequence", "[", "]")):
        if flow in context and f"'{closer}'" in problem and opened is not None:
            return (
                f"the `{opener}` opened on line {opened.line + 1} is not closed here "
                f"(expected `,` or `{closer}`)",
                f"close the `{opener}` opened on line {opened.line + 1} with `{closer}` (check "
                "the syntax: quote values that contain , [ ] { } or #)",
            )
    if "cannot start any token" in problem:
        char = _char_at(source, mark)
        return f"`{char}` cannot start a plain value in YAML", "quote the value"
    if "document start" in problem:
        return (
            "a `%` directive must be followed by a `---` line",
            "put a `---` line after the `%` directives, or remove them",
        )
    if "directive" in problem or "directive" in context:
        return UNKNOWN_DIRECTIVE
    if "undefined tag handle" in problem:
        return (
            f"the tag handle of `{_word_at(source, mark)}` is not defined",
            "use a known tag such as !!str, or quote the value",
        )
    if "unknown escape character" in problem:
        # libyaml marks the backslash, PyYAML the character after it
        escape = _word_at(source, mark)[:2].lstrip("\\")[:1]
        return (
            f"`\\{escape}` is not an escape YAML knows (in double quotes)",
            "use a valid escape, or single quotes: 'C:\\path'",
        )
    if "invalid Unicode character escape" in problem:
        return BAD_UNICODE_ESCAPE
    return None


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
    translated = _translate(exc, source)
    if translated is not None:
        message, fix = translated
    else:
        message, fix = f"invalid YAML: {problem}", DEFAULT_FIX
    if mark is None:
        return YamlError(message, fix=fix)
    return YamlError(message, mark.line + 1, mark.column + 1, fix=fix)
