"""Decode scenario files the way ``lk agent simulate`` does: Go ``yaml.v3`` + ``encoding/json``.

The CLI unmarshals ``scenarios.yaml`` with gopkg.in/yaml.v3 (a YAML 1.2-ish resolver) and then
``json.Marshal``\\ s each scenario's ``userdata`` map. PyYAML resolves YAML 1.1 (``yes`` is a bool,
``2026-06-12T09:00:00`` a datetime, ``017`` is 15 but ``09`` an error...), so we only use PyYAML's
*parser* (libyaml when available) and build the node tree ourselves from its events:

* plain scalars keep their source text with the private tag :data:`PLAIN_TAG`; quoted and block
  scalars get ``tag:yaml.org,2002:str``; explicit tags are kept in long form (``!!int`` ->
  ``tag:yaml.org,2002:int``). ``ScalarNode.style`` is ``None`` for plain scalars with both parsers.
* aliases resolve to the anchored node object itself (as in PyYAML), so consumers never see
  alias nodes; everything yaml.v3 derives from aliases is checked while composing.
* yaml.v3 semantics we reproduce while composing: duplicate keys are an error (compared by node
  kind and source text, so ``1:`` and ``"1":`` clash), anchors may be redefined, aliases to an
  enclosing node are an error, ``<<`` needs a mapping or a list of mappings, and the
  "excessive aliasing" budget that stops billion-laughs documents.

Then :func:`decode` mirrors yaml.v3's ``resolve()`` and its decoding into ``interface{}``, and
:func:`go_json` mirrors ``encoding/json.Marshal``. This module imports neither pytest nor livekit.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as _dt
import importlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any, Final

import yaml
import yaml.parser
import yaml.reader
import yaml.scanner
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "MAP_TAG",
    "MAX_DEPTH",
    "PLAIN_TAG",
    "SEQ_TAG",
    "STR_TAG",
    "GenericMap",
    "GoJSONError",
    "GoTime",
    "YamlError",
    "compose",
    "compose_document",
    "decode",
    "go_json",
    "is_null",
    "scalar_text",
    "userdata_json",
]

PLAIN_TAG: Final = "tag:agentsim:plain"
"""Tag of an untagged plain scalar: yaml.v3 resolves its type from the text."""
STR_TAG: Final = "tag:yaml.org,2002:str"
MAP_TAG: Final = "tag:yaml.org,2002:map"
SEQ_TAG: Final = "tag:yaml.org,2002:seq"
MERGE_TAG: Final = "tag:yaml.org,2002:merge"
MAX_DEPTH: Final = 200
"""Deepest nesting of mappings/lists accepted, counted after alias expansion. yaml.v3 allows
10000, but decoding here is recursive and no scenario file needs more than a handful."""

_LONG_PREFIX: Final = "tag:yaml.org,2002:"
# yaml.v3 short tags, used for resolution and in its error messages.
_STR: Final = "!!str"
_NULL: Final = "!!null"
_BOOL: Final = "!!bool"
_INT: Final = "!!int"
_FLOAT: Final = "!!float"
_TIMESTAMP: Final = "!!timestamp"
_BINARY: Final = "!!binary"
_MERGE: Final = "!!merge"
_RESOLVABLE: Final = frozenset({_BOOL, _INT, _FLOAT, _NULL, _TIMESTAMP})

_CPARSER: Any = None
if yaml.__with_libyaml__:  # pragma: no branch - depends on how PyYAML was built
    _CPARSER = importlib.import_module("yaml.cyaml").CParser


# ----------------------------------------------------------------------------------------------
# Public types


class YamlError(Exception):
    """A problem in the YAML, located by 1-based line/column, with a one-line fix suggestion."""

    def __init__(
        self,
        message: str,
        line: int | None = None,
        column: int | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.fix = fix

    def __str__(self) -> str:
        return self.message


class NestingTooDeep(YamlError):
    """The document nests deeper than :data:`MAX_DEPTH` (ours, whichever parser found it)."""


class GoJSONError(Exception):
    """What Go's ``json.Marshal`` would return as an error; ``value`` is the offending value."""

    def __init__(self, message: str, value: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.value = value

    def __str__(self) -> str:
        return self.message


class GenericMap(dict[Any, Any]):
    """A mapping yaml.v3 decodes as ``map[interface{}]interface{}`` (some key is not a string).

    ``encoding/json`` cannot encode that type, so :func:`go_json` rejects it.
    """


@dataclasses.dataclass(frozen=True)
class GoTime:
    """A yaml.v3 ``!!timestamp`` (a Go ``time.Time``), kept field by field.

    Fields rather than a :class:`datetime.datetime` because Go keeps nanoseconds and year 0.
    ``offset`` is the UTC offset in seconds (0 for ``Z`` and for timestamps without a zone).
    """

    year: int
    month: int
    day: int
    hour: int = 0
    minute: int = 0
    second: int = 0
    nanosecond: int = 0
    offset: int = 0

    @classmethod
    def from_datetime(cls, value: _dt.datetime) -> GoTime:
        """From a datetime; a naive one is taken as UTC (as Go's time.Parse does)."""
        delta = value.utcoffset()
        offset = 0 if delta is None else int(delta.total_seconds())
        return cls(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond * 1000,
            offset,
        )

    @property
    def datetime(self) -> _dt.datetime:
        """An aware datetime (microsecond precision; raises ValueError for year 0)."""
        tz = (
            _dt.timezone.utc
            if self.offset == 0
            else _dt.timezone(_dt.timedelta(seconds=self.offset))
        )
        return _dt.datetime(
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.nanosecond // 1000,
            tzinfo=tz,
        )

    def to_json_str(self) -> str:
        """Go's ``time.Time.MarshalJSON`` text without the quotes (RFC 3339, nanoseconds trimmed).

        Raises :class:`GoJSONError` where Go refuses (a zone offset of 24 hours or more).
        """
        if not 0 <= self.year <= 9999:
            raise GoJSONError(_time_error("year outside of range [0,9999]"), self)
        frac = f"{self.nanosecond:09d}".rstrip("0")
        if self.offset == 0:
            zone = "Z"
        else:
            minutes = abs(self.offset) // 60  # Go truncates offset seconds when formatting
            hours, minutes = divmod(minutes, 60)
            if hours >= 24:
                raise GoJSONError(_time_error("timezone hour outside of range [0,23]"), self)
            zone = f"{'-' if self.offset < 0 else '+'}{hours:02d}:{minutes:02d}"
        return (
            f"{self.year:04d}-{self.month:02d}-{self.day:02d}T"
            f"{self.hour:02d}:{self.minute:02d}:{self.second:02d}"
            f"{'.' + frac if frac else ''}{zone}"
        )


def _time_error(reason: str) -> str:
    return f"json: error calling MarshalJSON for type time.Time: Time.MarshalJSON: {reason}"


class _NonFinite(float):
    """A NaN/Inf decoded for userdata: a distinct object, so an encoding error can be traced
    back to the scalar (and its line) that produced it."""


# ----------------------------------------------------------------------------------------------
# Composing


class _PyParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    """PyYAML's pure-Python parser, used when libyaml is not available."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)


# Characters libyaml (and yaml.v3's port of it) refuse in a stream.
_BAD_CHAR: Final = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def compose(text: str | bytes, *, use_libyaml: bool | None = None) -> Node:
    """Parse exactly one YAML document into a node tree (see the module docstring).

    ``use_libyaml`` forces the C (True) or pure-Python (False) parser; default: C if available.
    Raises :class:`YamlError` for every problem, never a PyYAML exception; a second document
    is an error here (:func:`compose_document` ignores it, as yaml.v3 does).
    """
    root, ignored = compose_document(text, use_libyaml=use_libyaml)
    if ignored is not None:
        raise YamlError(
            "a second YAML document starts here; lk agent simulate would read only the first",
            ignored,
            fix="remove the `---` separator and put all scenarios in one `scenarios:` list, "
            "or split the documents into separate files",
        )
    return root


def compose_document(
    text: str | bytes, *, use_libyaml: bool | None = None
) -> tuple[Node, int | None]:
    """Compose the first YAML document as yaml.v3's ``Unmarshal`` does, ignoring the rest.

    Returns the root node and the 1-based line where ignored content (a second document)
    starts, or None when the stream holds one document. yaml.v3 stops reading at the end of
    the first document, so nothing after it is checked. Raises :class:`YamlError`.
    """
    source = _to_text(text)
    bad = _BAD_CHAR.search(source)
    if bad is not None:
        line, column = _line_col(source, bad.start())
        char = bad.group()
        binary = " (is this a binary file?)" if char == "\x00" else ""
        raise YamlError(
            f"the file contains the control character U+{ord(char):04X}, "
            f"which YAML does not allow{binary}",
            line,
            column,
            fix="save the file as plain UTF-8 text, or write the character as an escape "
            'inside double quotes (e.g. "\\u0007")',
        )
    c_parser = _CPARSER is not None if use_libyaml is None else use_libyaml
    if c_parser and _CPARSER is None:
        raise RuntimeError("PyYAML was built without libyaml")
    if not c_parser:
        _check_directives(source)
    try:
        return _compose_with(_CPARSER(source) if c_parser else _PyParser(source), source, c_parser)
    except YamlError:
        if not c_parser:
            raise
        # libyaml has nesting limits of its own (newer releases stop before ours, with their
        # own wording): a C-parser failure that the pure parser sees as too deep is ours
        try:
            _compose_with(_PyParser(source), source, False)
        except NestingTooDeep as deep:
            raise deep from None
        except YamlError:
            pass
        raise


def _compose_with(parser: Any, source: str, c_parser: bool) -> tuple[Node, int | None]:
    try:
        return _compose_events(parser, check_escapes=not c_parser)
    except RecursionError:  # pragma: no cover - the depth limit stops nesting long before
        raise YamlError("the YAML nests too deeply", fix="flatten the structure") from None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, source) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"invalid YAML: {exc}", fix=_DEFAULT_FIX) from None
    except (ValueError, OverflowError) as exc:  # the pure-Python scanner on bad \U escapes
        raise YamlError(f"invalid YAML: {exc}", fix="check the escape sequences") from None
    finally:
        parser.dispose()


def _to_text(data: str | bytes) -> str:
    if isinstance(data, str):
        return data[1:] if data.startswith("\ufeff") else data
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise YamlError(
            "the file is UTF-32 encoded, which lk agent simulate cannot read",
            1,
            1,
            fix="save the file as UTF-8",
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # yaml.v3's reader also accepts UTF-16 when it starts with a byte order mark
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise YamlError(
                "the file starts with a UTF-16 byte order mark but is not valid UTF-16",
                fix="save the file as UTF-8",
            ) from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if _looks_like_bomless_utf16(data):
        raise YamlError(
            "the file looks like UTF-16 without a byte order mark, which lk agent simulate "
            "reads as UTF-8",
            1,
            1,
            fix="save the file as UTF-8",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YamlError(
            f"the file is not valid UTF-8 (byte 0x{data[exc.start]:02x} cannot be decoded)",
            line,
            column,
            fix="save the file as UTF-8 text (is it a binary file?)",
        ) from None


def _check_directives(source: str) -> None:
    """libyaml (and yaml.v3) refuse unknown ``%`` directives; PyYAML's scanner skips them."""
    for number, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not line.startswith("%"):
            return  # directives only come before the first document
        name = line[1:].split(maxsplit=1)[0] if line[1:].strip() else ""
        if name not in ("YAML", "TAG"):
            raise YamlError(
                "found unknown directive name (while scanning a directive)",
                number,
                1,
                fix="remove the `%` directive line (scenario files need none)",
            )


def _looks_like_bomless_utf16(data: bytes) -> bool:
    """ASCII text saved as UTF-16: every other byte of the first few characters is zero."""
    head = data[:8]
    if len(head) < 4 or len(head) % 2:
        return False
    even, odd = head[0::2], head[1::2]
    return (not any(even) and all(odd)) or (not any(odd) and all(even))


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


class _Frame:
    """A mapping or list being composed."""

    __slots__ = (
        "anchor",
        "count0",
        "depth",
        "is_map",
        "items",
        "key",
        "merge",
        "node",
        "reach",
        "seen",
    )

    def __init__(self, node: Node, is_map: bool, depth: int, count0: int, anchor: str | None):
        self.node = node
        self.items: list[Any] = node.value
        self.is_map = is_map
        self.depth = depth
        self.reach = depth  # deepest nesting below this node, aliases expanded
        self.count0 = count0  # node count before this node (to size it for its aliases)
        self.anchor = anchor
        self.key: Node | None = None  # mapping: the key waiting for its value
        self.merge = False  # mapping: that key is `<<`
        self.seen: dict[Any, Any] = {}  # mapping: key identity -> mark of its first occurrence


_MERGE_KEY_TAGS: Final = frozenset({PLAIN_TAG, MERGE_TAG})


def _compose_events(parser: Any, check_escapes: bool) -> tuple[Node, int | None]:
    get = parser.get_event
    get()  # StreamStartEvent
    event = get()
    if type(event) is StreamEndEvent:
        raise YamlError("the file is empty", 1, fix=_EMPTY_FIX)
    # Anchor name -> (node, expanded node count or None while still open, nesting height).
    anchors: dict[str, tuple[Node, int | None, int]] = {}
    stack: list[_Frame] = []
    root: Node | None = None
    count = 0  # nodes yaml.v3 would decode, alias expansions included
    alias_count = 0  # ... of which reached through an alias
    while True:
        event = get()
        cls = type(event)
        if cls is ScalarEvent:
            mark = event.start_mark
            value = event.value
            style = event.style or None  # libyaml reports plain as "", PyYAML as None
            tag = event.tag
            if tag is None or tag == "!":  # yaml.v3 treats the non-specific "!" like no tag
                tag = PLAIN_TAG if style is None else STR_TAG
            if check_escapes and not value.isascii() and _SURROGATE.search(value):
                # libyaml and yaml.v3 reject "\ud800"-style escapes; PyYAML's scanner does not
                raise YamlError(
                    "found invalid Unicode character escape code",
                    mark.line + 1,
                    mark.column + 1,
                    fix="escape characters outside the BMP as \\UXXXXXXXX, not as surrogates",
                )
            node: Node = ScalarNode(tag, value, mark, event.end_mark, style)
            count += 1
            if event.anchor is not None:
                anchors[event.anchor] = (node, 1, 0)
            identity: Any = value
            height = 0
        elif cls is MappingStartEvent or cls is SequenceStartEvent:
            mark = event.start_mark
            is_map = cls is MappingStartEvent
            depth = len(stack) + 1
            if depth > MAX_DEPTH:
                raise NestingTooDeep(
                    f"the YAML nests deeper than {MAX_DEPTH} levels",
                    mark.line + 1,
                    mark.column + 1,
                    fix="flatten the structure",
                )
            tag = event.tag
            if tag is None or tag == "!":
                tag = MAP_TAG if is_map else SEQ_TAG
            node = (MappingNode if is_map else SequenceNode)(tag, [], mark, None, event.flow_style)
            count += 1
            if event.anchor is not None:
                # Registered before the children, as yaml.v3 does: a child alias to it is a cycle.
                anchors[event.anchor] = (node, None, 0)
            stack.append(_Frame(node, is_map, depth, count - 1, event.anchor))
            continue
        elif cls is MappingEndEvent or cls is SequenceEndEvent:
            frame = stack.pop()
            node = frame.node
            node.end_mark = event.end_mark
            mark = node.start_mark
            height = frame.reach - frame.depth + 1
            if frame.anchor is not None:
                entry = anchors.get(frame.anchor)
                if entry is not None and entry[0] is node:  # unless redefined inside itself
                    anchors[frame.anchor] = (node, count - frame.count0, height)
            identity = ("mapping" if frame.is_map else "sequence", "")
        elif cls is AliasEvent:
            mark = event.start_mark
            name = event.anchor
            entry = anchors.get(name)
            if entry is None:
                raise YamlError(
                    f"unknown anchor '{name}' referenced",
                    mark.line + 1,
                    mark.column + 1,
                    fix=f"define the anchor with `&{name}` before the alias `*{name}`",
                )
            node, size, height = entry
            if size is None:
                raise YamlError(
                    f"anchor '{name}' value contains itself",
                    mark.line + 1,
                    mark.column + 1,
                    fix="an alias cannot refer to a mapping or list that contains it",
                )
            count += 1 + size
            alias_count += size
            if _excessive_aliasing(alias_count, count):
                raise _aliasing_error(mark)
            identity = ("alias", name)  # yaml.v3 compares alias keys by anchor name
        elif cls is DocumentEndEvent:
            break
        else:  # pragma: no cover - the parser only emits the events above inside a document
            raise YamlError(f"unexpected YAML event {cls.__name__}")

        if not stack:
            root = node
            continue
        parent = stack[-1]
        if height:
            reach = parent.depth + height
            if reach > parent.reach:
                if reach > MAX_DEPTH:  # only an alias can get here: pushes are checked above
                    raise YamlError(
                        f"aliases expand to more than {MAX_DEPTH} levels of nesting",
                        mark.line + 1,
                        mark.column + 1,
                        fix="flatten the structure or use fewer nested aliases",
                    )
                parent.reach = reach
        if not parent.is_map:
            parent.items.append(node)
        elif parent.key is None:
            seen = parent.seen
            if identity in seen:
                shown = identity if isinstance(identity, str) else identity[1]
                raise YamlError(
                    f"mapping key {_go_quote(shown)} already defined at line "
                    f"{seen[identity].line + 1}",
                    mark.line + 1,
                    mark.column + 1,
                    fix="remove or rename one of the two keys (YAML keys must be unique)",
                )
            seen[identity] = mark
            parent.key = node
            # yaml.v3 isMerge: a scalar `<<`, plain or tagged !!merge (an alias is not a merge)
            parent.merge = identity == "<<" and node.tag in _MERGE_KEY_TAGS
        else:
            if parent.merge:
                _check_merge_value(node, cls is AliasEvent, mark)
            parent.items.append((parent.key, node))
            parent.key = None

    if _excessive_aliasing(alias_count, count):
        raise _aliasing_error(None)
    assert root is not None
    ignored = _ignored_content(get, event)
    if isinstance(root, ScalarNode) and root.tag == PLAIN_TAG and root.value == "":
        if ignored is not None:
            raise YamlError(
                "the first YAML document is empty, and lk agent simulate reads only the "
                "first document",
                ignored,
                fix="remove this `---` line (and any before it) so the scenarios are in the "
                "first document",
            )
        raise YamlError("the file is empty", 1, fix=_EMPTY_FIX)
    return root, ignored


def _ignored_content(get: Any, end: Any) -> int | None:
    """The 1-based line where content after the first document starts (None if there is none).

    yaml.v3 stops at the end of the first document and never parses what follows, so an
    error in the rest only tells where it starts.
    """
    try:
        following = get()
    except (yaml.YAMLError, ValueError, OverflowError) as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        return int((mark if mark is not None else end.end_mark).line) + 1
    if type(following) is StreamEndEvent:
        return None
    mark = following.start_mark if following.start_mark is not None else end.end_mark
    return int(mark.line) + 1


_EMPTY_FIX: Final = "start the file with `name:` and a `scenarios:` list"
_DEFAULT_FIX: Final = "check the YAML syntax on this line (quote text with special characters)"


def _is_merge_key(node: Node) -> bool:
    return (
        isinstance(node, ScalarNode)
        and node.value == "<<"
        and (node.tag == PLAIN_TAG or node.tag == MERGE_TAG)
    )


def _check_merge_value(node: Node, via_alias: bool, mark: Any) -> None:
    # yaml.v3 merges a mapping, an alias to a mapping, or a *literal* list of mappings (an alias
    # to a list is refused).
    if isinstance(node, MappingNode):
        return
    if (
        isinstance(node, SequenceNode)
        and not via_alias
        and all(isinstance(item, MappingNode) for item in node.value)
    ):
        return
    raise YamlError(
        "map merge requires map or sequence of maps as the value",
        mark.line + 1,
        mark.column + 1,
        fix="merge mappings: `<<: *defaults` or `<<: [*base, *extra]`",
    )


def _excessive_aliasing(alias_count: int, count: int) -> bool:
    """yaml.v3's billion-laughs guard (decode.go), applied to the counts while composing.

    yaml.v3 allows up to 99% of decoded nodes to come from aliases in documents up to 400,000
    nodes, scaling down to 10% at 4,000,000. Its check runs on every decoded node; here it runs
    after each alias expansion (where the ratio peaks) and once at the end.
    """
    if alias_count <= 100 or count <= 1000:
        return False
    if count <= 400_000:
        allowed = 0.99
    elif count >= 4_000_000:
        allowed = 0.10
    else:
        allowed = 0.99 - 0.89 * ((count - 400_000) / 3_600_000)
    return alias_count / count > allowed


def _aliasing_error(mark: Any) -> YamlError:
    return YamlError(
        "document contains excessive aliasing",
        None if mark is None else mark.line + 1,
        None if mark is None else mark.column + 1,
        fix="write the data out instead of multiplying it through nested aliases",
    )


def _go_quote(text: str) -> str:
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


def _syntax_error(exc: yaml.MarkedYAMLError, source: str) -> YamlError:
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
    fix = next((f for needle, f in _FIXES if needle in problem), _DEFAULT_FIX)
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


# ----------------------------------------------------------------------------------------------
# yaml.v3 resolve(): what a scalar's text means


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_LONG_PREFIX) :] if tag.startswith(_LONG_PREFIX) else tag


# First character -> resolve.go's hint: Sign, Digit, in-Map, '.' (float or map).
_HINT: Final = {
    "+": "S",
    "-": "S",
    ".": ".",
    **dict.fromkeys("0123456789", "D"),
    **dict.fromkeys("yYnNtTfFoO~", "M"),
}
_NAN: Final = float("nan")
_INF: Final = float("inf")
# yaml.v3's resolve map: note yes/no/on/off/y/n are NOT booleans in yaml.v3.
_RESOLVE_MAP: Final[dict[str, tuple[str, Any]]] = {
    **dict.fromkeys(("true", "True", "TRUE"), (_BOOL, True)),
    **dict.fromkeys(("false", "False", "FALSE"), (_BOOL, False)),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), (_NULL, None)),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), (_FLOAT, _NAN)),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), (_FLOAT, _INF)),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), (_FLOAT, -_INF)),
}
_NULL_TEXTS: Final = frozenset({"", "~", "null", "Null", "NULL"})
_YAML_FLOAT: Final = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT: Final = re.compile(r"\.[0-9_]*([eE][-+]?[0-9][0-9_]*)?")
_MAX_U64: Final = (1 << 64) - 1
_DIGITS_FOR_BASE: Final = {
    2: frozenset("01"),
    8: frozenset("01234567"),
    10: frozenset("0123456789"),
    16: frozenset("0123456789abcdefABCDEF"),
}


def _resolve(value: str, tag: str = "") -> tuple[str, Any]:
    """yaml.v3 ``resolve(tag, value)`` for a plain scalar (tag "") or an explicit resolvable
    tag other than !!str; returns (resolved short tag, Python value)."""
    if not value:
        return _NULL, None
    hint = _HINT.get(value[0])
    if hint is None:
        return _STR, value
    item = _RESOLVE_MAP.get(value)
    if item is not None:
        return item
    if hint == "M":
        return _STR, value
    if hint == ".":
        dot = _go_parse_float(value)
        return (_STR, value) if dot is None else (_FLOAT, dot)
    # Leading digit or sign: timestamp, int, uint, float, then 0b/0o spellings ParseInt missed.
    if tag in ("", _TIMESTAMP):  # quoted/other-tagged text is never a timestamp
        stamp = _parse_timestamp(value)
        if stamp is not None:
            return _TIMESTAMP, stamp
    plain = value.replace("_", "")
    number = _go_parse_int(plain, 0)  # base 0: 0x, 0o, 0b and the legacy octal 017
    if number is None:
        number = _go_parse_uint(plain, 0)
    if number is not None:
        return _INT, number
    if _YAML_FLOAT.fullmatch(plain):
        number_f = float(plain)
        if not math.isinf(number_f):  # Go's ParseFloat fails with ErrRange: stays a string
            return _FLOAT, number_f
    number = None
    if plain.startswith("0b"):
        number = _go_parse_int(plain[2:], 2)
        if number is None:
            number = _go_parse_uint(plain[2:], 2)
    elif plain.startswith("-0b"):
        number = _go_parse_int("-" + plain[3:], 2)
    if plain.startswith("0o"):
        number = _go_parse_int(plain[2:], 8)
        if number is None:
            number = _go_parse_uint(plain[2:], 8)
    elif plain.startswith("-0o"):
        number = _go_parse_int("-" + plain[3:], 8)
    if number is not None:
        return _INT, number
    return _STR, value


def _go_parse_uint(text: str, base: int) -> int | None:
    """Go ``strconv.ParseUint(text, base, 64)``; None on error (underscores already removed)."""
    if not text:
        return None
    if base == 0:
        base = 10
        if text[0] == "0":
            prefix = text[1:2].lower()
            if len(text) >= 3 and prefix in ("b", "o", "x"):
                base = {"b": 2, "o": 8, "x": 16}[prefix]
                text = text[2:]
            else:  # a leading 0 means octal, as in C
                base = 8
                text = text[1:]
        if not text:
            return 0
    digits = _DIGITS_FOR_BASE[base]
    for char in text:
        if char not in digits:
            return None
    number = int(text, base)
    return number if number <= _MAX_U64 else None


def _go_parse_int(text: str, base: int) -> int | None:
    """Go ``strconv.ParseInt(text, base, 64)``; None on error."""
    if not text:
        return None
    negative = text[0] == "-"
    if text[0] in "+-":
        text = text[1:]
    magnitude = _go_parse_uint(text, base)
    if magnitude is None:
        return None
    if negative:
        return -magnitude if magnitude <= 1 << 63 else None
    return magnitude if magnitude < 1 << 63 else None


def _go_parse_float(text: str) -> float | None:
    """Go ``strconv.ParseFloat(text, 64)`` for text starting with '.'; None on error."""
    match = _DOT_FLOAT.fullmatch(text)
    if match is None:
        return None
    mantissa = text[: match.start(1)] if match.group(1) else text
    if not any("0" <= c <= "9" for c in mantissa):
        return None
    if "_" in text and not _underscore_ok(text):
        return None
    number = float(text.replace("_", ""))
    return None if math.isinf(number) else number


def _underscore_ok(text: str) -> bool:
    """Go strconv's underscoreOK: '_' only between digits (or after a base prefix)."""
    saw = "^"
    if text[:1] in ("+", "-"):
        text = text[1:]
    index = 0
    hexadecimal = False
    if len(text) >= 2 and text[0] == "0" and text[1].lower() in ("b", "o", "x"):
        index = 2
        saw = "0"
        hexadecimal = text[1].lower() == "x"
    for char in text[index:]:
        if "0" <= char <= "9" or (hexadecimal and "a" <= char.lower() <= "f"):
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
    return saw != "_"


def _parse_timestamp(text: str) -> GoTime | None:
    """yaml.v3 ``parseTimestamp``: Go ``time.Parse`` with these layouts, in order:
    ``2006-1-2T15:4:5.999999999Z07:00``, the same with a lower-case ``t``,
    ``2006-1-2 15:4:5.999999999`` (UTC) and ``2006-1-2`` (midnight UTC).

    The zone is mandatory in the ``T`` forms, so ``2026-06-12T09:00:00`` is not a timestamp.
    """
    # Quick check: all formats start with YYYY-.
    if len(text) < 5 or text[4] != "-" or not _is_digits(text[:4]):
        return None
    year = int(text[:4])
    parsed = _getnum(text, 5, fixed=False)
    if parsed is None or text[parsed[1] : parsed[1] + 1] != "-":
        return None
    month, index = parsed[0], parsed[1] + 1
    parsed = _getnum(text, index, fixed=False)
    if parsed is None or not 1 <= month <= 12:
        return None
    day, index = parsed
    if not 1 <= day <= _days_in(month, year):
        return None
    if index == len(text):
        return GoTime(year, month, day)
    separator = text[index]
    if separator == " ":  # a layout space matches any run of spaces
        while index < len(text) and text[index] == " ":
            index += 1
    elif separator in "Tt":
        index += 1
    else:
        return None
    clock = []
    for position, limit in enumerate((24, 60, 60)):
        if position:
            if text[index : index + 1] != ":":
                return None
            index += 1
        parsed = _getnum(text, index, fixed=False)
        if parsed is None or parsed[0] >= limit:
            return None
        clock.append(parsed[0])
        index = parsed[1]
    nanosecond = 0
    if len(text) - index >= 2 and text[index] in ".," and _is_digits(text[index + 1]):
        end = index + 1
        while end < len(text) and _is_digits(text[end]):
            end += 1
        digits = text[index + 1 : min(end, index + 10)]  # Go truncates to nanoseconds
        nanosecond = int(digits) * 10 ** (9 - len(digits))
        index = end
    offset = 0
    if separator != " ":
        zone = text[index:]
        if zone[:1] == "Z":
            index += 1
        else:
            if len(zone) < 6 or zone[3] != ":" or zone[0] not in "+-":
                return None
            hours = _getnum(zone, 1, fixed=True)
            minutes = _getnum(zone, 4, fixed=True)
            if hours is None or minutes is None or hours[0] > 24 or minutes[0] > 60:
                return None
            offset = (hours[0] * 60 + minutes[0]) * 60 * (-1 if zone[0] == "-" else 1)
            index += 6
    if index != len(text):
        return None
    return GoTime(year, month, day, clock[0], clock[1], clock[2], nanosecond, offset)


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _getnum(text: str, index: int, fixed: bool) -> tuple[int, int] | None:
    """Go time's getnum: one or two ASCII digits (exactly two when fixed)."""
    if not _is_digits(text[index : index + 1]):
        return None
    if not _is_digits(text[index + 1 : index + 2]):
        return None if fixed else (int(text[index]), index + 1)
    return int(text[index : index + 2]), index + 2


def _days_in(month: int, year: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


# ----------------------------------------------------------------------------------------------
# Decoding into Go interface{} / string


def decode(node: Node) -> Any:
    """Decode a composed node as yaml.v3 decodes into ``interface{}``.

    Returns dict (all keys strings) / :class:`GenericMap` / list / str / int / float / bool /
    None / :class:`GoTime`. ``<<`` merges are applied as yaml.v3 applies them.
    """
    return _Decoder(None).value(node, 0)


def scalar_text(node: Node, what: str) -> str:
    """What yaml.v3 stores in a Go ``string`` field for this node: the scalar's source text
    (``1`` -> "1", ``true`` -> "true"), "" for null, the decoded bytes for ``!!binary``."""
    if isinstance(node, ScalarNode):
        text = _go_string(node)
        if text is None:
            return ""
        if not text.isascii() and _SURROGATE.search(text):  # only !!binary can yield these
            raise YamlError(
                f"{what}: the !!binary value is not valid UTF-8 text",
                *_position(node),
                fix="encode UTF-8 text, or drop the !!binary tag",
            )
        return text
    kind = "a mapping" if isinstance(node, MappingNode) else "a list"
    raise YamlError(
        f"{what} must be a string, got {kind}",
        *_position(node),
        fix="write a single value; quote it if it contains ': ', or starts with '{' or '['",
    )


def userdata_json(node: Node | None) -> str:
    """The ``Scenario.userdata`` string the CLI sends: ``json.Marshal`` of the decoded mapping,
    or "" when userdata is absent, null or empty."""
    if node is None:
        return ""
    if not isinstance(node, MappingNode):
        if isinstance(node, ScalarNode) and _scalar_value(node) is None:
            return ""
        got = "a list" if isinstance(node, SequenceNode) else f"the scalar {node.value!r}"
        raise YamlError(
            f"userdata must be a mapping, got {got}",
            *_position(node),
            fix="write key: value pairs, e.g. `userdata: {customer_id: 42}`, or remove it",
        )
    origins: dict[int, Node] = {}
    data: dict[str, Any] = {}
    # The CLI's field is map[string]any: top-level keys are decoded as Go strings (their text).
    _Decoder(origins).mapping(node, data, 0)
    if not data:
        return ""
    try:
        return go_json(data)
    except GoJSONError as exc:
        culprit = origins.get(id(exc.value), node)
        if "unsupported value" in exc.message:
            fix = 'JSON has no NaN or infinity: quote the value (".inf") to send it as text'
        elif "map[interface {}]" in exc.message:
            fix = 'keys of nested mappings must be strings: quote the key (e.g. "1": ...)'
        else:
            fix = "use a UTC offset between -23:59 and +23:59"
        raise YamlError(
            f"userdata cannot be JSON-encoded as lk agent simulate does it: {exc.message}",
            *_position(culprit),
            fix=fix,
        ) from None


def _position(node: Node) -> tuple[int | None, int | None]:
    mark = node.start_mark
    if mark is None:
        return None, None
    return mark.line + 1, mark.column + 1


def _scalar_value(node: ScalarNode) -> Any:
    tag = node.tag
    if tag == PLAIN_TAG:
        return _resolve(node.value)[1]
    if tag == STR_TAG:
        return node.value
    short = _short_tag(tag)
    if short == _BINARY:
        return _binary(node)
    if short not in _RESOLVABLE:
        return node.value  # unknown tags (!foo, !!map on a scalar...) decode as their text
    resolved, value = _resolve(node.value, short)
    if resolved == short:
        return value
    if short == _FLOAT and resolved == _INT and -(1 << 63) <= value < 1 << 63:
        return float(value)  # yaml.v3 widens ints (not uint64s) under !!float
    shown = node.value if len(node.value) <= 10 else node.value[:7] + "..."
    raise YamlError(
        f"cannot decode {resolved} `{shown}` as a {short}",
        *_position(node),
        fix=f"remove the {short} tag or write a valid {short[2:]}",
    )


def _binary(node: ScalarNode) -> str:
    # Go's base64.StdEncoding ignores \r and \n only; the bytes become a Go string as-is
    # (surrogateescape keeps invalid UTF-8 bytes, which encoding/json turns into \ufffd).
    data = node.value.replace("\n", "").replace("\r", "")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise YamlError(
            "!!binary value contains invalid base64 data",
            *_position(node),
            fix="check the base64 text, or drop the !!binary tag",
        ) from None
    return raw.decode("utf-8", "surrogateescape")


def _go_string(node: ScalarNode) -> str | None:
    """Decode into a Go string; None where yaml.v3 leaves the string unset (null)."""
    tag = node.tag
    if tag == STR_TAG:
        return str(node.value)
    if tag == PLAIN_TAG:
        return None if node.value in _NULL_TEXTS else str(node.value)
    short = _short_tag(tag)
    if short == _BINARY:
        return _binary(node)
    if short in _RESOLVABLE and _scalar_value(node) is None:  # also validates the tag
        return None
    return str(node.value)


def is_null(node: Node) -> bool:
    """True when yaml.v3 decodes the node as null into a Go string, map or slice field
    (``~``, ``null``, empty, ``!!null``): it leaves the field unset, and drops a map entry
    whose string key is null."""
    if not isinstance(node, ScalarNode):
        return False
    try:
        return _go_string(node) is None
    except YamlError:
        return False


def _is_text_key(key: Node) -> bool:
    """yaml.v3 isStringMap: the key's ShortTag is !!str or !!merge."""
    if not isinstance(key, ScalarNode):
        return False
    tag = key.tag
    if tag == STR_TAG:
        return True
    if tag == PLAIN_TAG:
        return key.value == "<<" or _resolve(key.value)[0] == _STR
    return _short_tag(tag) == _MERGE


class _Decoder:
    """yaml.v3's decoder for ``interface{}`` targets, merges included.

    ``origins`` (userdata only) maps id() of values encoding/json will refuse to the node that
    produced them, so the error can name a line.
    """

    __slots__ = ("merged", "origins")

    def __init__(self, origins: dict[int, Node] | None) -> None:
        # Keys already set while merging (yaml.v3's mergedFields), as (type, key) because Go
        # compares interface keys by type too: 1, 1.0 and true are different keys.
        self.merged: set[tuple[type, Any]] | None = None
        self.origins = origins

    def value(self, node: Node, depth: int) -> Any:
        if isinstance(node, ScalarNode):
            value = _scalar_value(node)
            if self.origins is not None:
                if type(value) is float and not math.isfinite(value):
                    value = _NonFinite(value)
                    self.origins[id(value)] = node
                elif type(value) is GoTime:
                    self.origins[id(value)] = node
            return value
        if depth >= MAX_DEPTH:  # compose() already refuses this; guards hand-built trees
            raise NestingTooDeep(f"the YAML nests deeper than {MAX_DEPTH} levels", *_position(node))
        if isinstance(node, SequenceNode):
            return [self.value(item, depth + 1) for item in node.value]
        if isinstance(node, MappingNode):
            out: dict[Any, Any]
            odd_key = next((k for k, _ in node.value if not _is_text_key(k)), None)
            if odd_key is None:
                out = {}
            else:
                out = GenericMap()
                if self.origins is not None:
                    self.origins[id(out)] = odd_key
            self.mapping(node, out, depth)
            return out
        raise YamlError(f"cannot decode a {type(node).__name__}", *_position(node))

    def mapping(self, node: MappingNode, out: dict[Any, Any], depth: int) -> None:
        # A map[string]interface{} decodes its keys as Go strings (their text, even from a merged
        # mapping with non-string keys); a map[interface{}]interface{} decodes them as values.
        text_keys = not isinstance(out, GenericMap)
        merged, self.merged = self.merged, None
        merge_value: Node | None = None
        for key_node, value_node in node.value:
            if _is_merge_key(key_node):
                merge_value = value_node
                continue
            key: Any
            if text_keys:
                key = self.text_key(key_node)
                if key is None:  # a null key can't be set in a Go string: yaml.v3 drops it
                    continue
            else:
                key = self.value(key_node, depth + 1)
                if isinstance(key, dict | list):
                    raise YamlError(
                        "invalid map key: a mapping or list cannot be a key",
                        *_position(key_node),
                        fix="use a plain string key",
                    )
            if merged is not None:
                seen = (type(key), key)
                if seen in merged:
                    continue  # explicit keys and earlier merge sources win
                merged.add(seen)
            out[key] = self.value(value_node, depth + 1)
        self.merged = merged
        if merge_value is not None:
            self.merge(node, merge_value, out, depth)

    def merge(self, parent: MappingNode, source: Node, out: dict[Any, Any], depth: int) -> None:
        outer = self.merged
        if outer is None:
            fresh: set[tuple[type, Any]] = set()
            for key_node, _ in parent.value:
                key = self.value(key_node, depth + 1)  # yaml.v3 decodes these as interface{}
                try:
                    fresh.add((type(key), key))
                except TypeError:
                    raise YamlError(
                        "invalid map key: a mapping or list cannot be a key",
                        *_position(key_node),
                        fix="use a plain string key",
                    ) from None
            self.merged = fresh
        sources = source.value if isinstance(source, SequenceNode) else [source]
        for item in sources:
            if not isinstance(item, MappingNode):
                raise YamlError(
                    "map merge requires map or sequence of maps as the value",
                    *_position(item),
                    fix="merge mappings: `<<: *defaults` or `<<: [*base, *extra]`",
                )
            self.mapping(item, out, depth)
        self.merged = outer

    def text_key(self, node: Node) -> str | None:
        if isinstance(node, ScalarNode):
            return _go_string(node)
        kind = "!!map" if isinstance(node, MappingNode) else "!!seq"
        raise YamlError(
            f"cannot unmarshal {kind} into string: a {kind[2:]} cannot be a userdata key",
            *_position(node),
            fix="use a plain string key",
        )


# ----------------------------------------------------------------------------------------------
# encoding/json.Marshal


def go_json(value: Any) -> str:
    """Go ``json.Marshal`` of a :func:`decode` result (compact, sorted keys, HTML-safe)."""
    parts: list[str] = []
    _encode(value, parts, 0)
    return "".join(parts)


_JSON_DEPTH_LIMIT: Final = 500
# Escapes of encoding/json (Go 1.22+: \b and \f have short forms; HTML-sensitive <, >, & and the
# JavaScript line terminators U+2028/U+2029 are escaped; invalid UTF-8 becomes \ufffd).
_JSON_ESCAPES: Final[dict[str, str]] = {
    **{chr(c): f"\\u{c:04x}" for c in range(0x20)},
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    '"': '\\"',
    "\\": "\\\\",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_JSON_NEEDS_ESCAPE: Final = re.compile('[\x00-\x1f"\\\\<>&\u2028\u2029\ud800-\udfff]')


def _escape_char(match: re.Match[str]) -> str:
    return _JSON_ESCAPES.get(match.group(), "\\ufffd")  # unmapped: a lone surrogate (bad UTF-8)


def _json_string(text: str) -> str:
    if _JSON_NEEDS_ESCAPE.search(text) is None:
        return f'"{text}"'
    return '"' + _JSON_NEEDS_ESCAPE.sub(_escape_char, text) + '"'


def _utf8_order(item: tuple[str, Any]) -> bytes:
    # Go sorts map keys by their bytes; surrogateescape restores the bytes of invalid UTF-8.
    try:
        return item[0].encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return item[0].encode("utf-8", "surrogatepass")


def _encode(value: Any, out: list[str], depth: int) -> None:
    kind = type(value)
    if kind is str:
        out.append(_json_string(value))
    elif value is None:
        out.append("null")
    elif kind is bool:
        out.append("true" if value else "false")
    elif kind is int:
        out.append(str(value))
    elif kind is float or kind is _NonFinite:
        out.append(_go_float(value))
    elif kind is GoTime:
        out.append(f'"{value.to_json_str()}"')
    elif kind is GenericMap:
        raise GoJSONError("json: unsupported type: map[interface {}]interface {}", value)
    elif kind is dict or kind is list:
        if depth >= _JSON_DEPTH_LIMIT:
            raise GoJSONError("json: unsupported value: nesting too deep (a cycle?)", value)
        if kind is list:
            out.append("[")
            for index, item in enumerate(value):
                if index:
                    out.append(",")
                _encode(item, out, depth + 1)
            out.append("]")
            return
        if any(type(key) is not str for key in value):
            raise GoJSONError("json: unsupported type: map[interface {}]interface {}", value)
        out.append("{")
        for index, (key, item) in enumerate(sorted(value.items(), key=_utf8_order)):
            if index:
                out.append(",")
            out.append(_json_string(key))
            out.append(":")
            _encode(item, out, depth + 1)
        out.append("}")
    elif isinstance(value, GenericMap):
        raise GoJSONError("json: unsupported type: map[interface {}]interface {}", value)
    else:  # subclasses and other containers from callers: encode as their base type
        for base in (bool, int, float, str):
            if isinstance(value, base):
                _encode(base(value), out, depth)
                return
        if isinstance(value, Mapping):
            _encode(dict(value), out, depth)
        elif isinstance(value, list | tuple):
            _encode(list(value), out, depth)
        else:
            raise GoJSONError(f"json: unsupported type: {kind.__name__}", value)


def _go_float(number: float) -> str:
    """encoding/json's float64 encoding: strconv 'f' shortest for 1e-6 <= |x| < 1e21,
    else 'e' shortest with e-07 shortened to e-7."""
    if math.isnan(number):
        raise GoJSONError("json: unsupported value: NaN", number)
    if math.isinf(number):
        raise GoJSONError(f"json: unsupported value: {'+' if number > 0 else '-'}Inf", number)
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    text = repr(float(number))  # shortest round-trip digits, as Go's strconv uses
    sign = "-" if text[0] == "-" else ""
    mantissa, _, exponent = text.lstrip("-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    # Decimal point position relative to the first significant digit.
    point = len(whole) - (len(whole + fraction) - len(digits)) + int(exponent or 0)
    digits = digits.rstrip("0")
    magnitude = abs(number)
    if magnitude < 1e-6 or magnitude >= 1e21:
        power = point - 1
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        if -10 < power < 0:
            return f"{sign}{body}e-{-power}"  # Go writes e-07, encoding/json trims it to e-7
        return f"{sign}{body}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"
