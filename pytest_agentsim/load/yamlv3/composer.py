"""Compose one YAML document into nodes as yaml.v3 reads it, from PyYAML's parser events."""

from __future__ import annotations

import importlib
import re
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

from .syntax import (
    BAD_UNICODE_ESCAPE,
    DEFAULT_FIX,
    EMPTY_FIX,
    UNKNOWN_DIRECTIVE,
    go_quote,
    syntax_error,
)
from .types import (
    MAP_TAG,
    MAX_DEPTH,
    MERGE_TAG,
    PLAIN_TAG,
    SEQ_TAG,
    STR_TAG,
    NestingTooDeep,
    YamlError,
)

CPARSER: Any = None  # libyaml's parser, when PyYAML was built with it
if yaml.__with_libyaml__:  # pragma: no branch - depends on how PyYAML was built
    CPARSER = importlib.import_module("yaml.cyaml").CParser


class _PyParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    """PyYAML's pure-Python parser, used when libyaml is not available."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)


# Characters libyaml (and yaml.v3's port of it) refuse in a stream.
_BAD_CHAR: Final = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
SURROGATE: Final = re.compile("[\ud800-\udfff]")


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
    c_parser = CPARSER is not None if use_libyaml is None else use_libyaml
    if c_parser and CPARSER is None:
        raise RuntimeError("PyYAML was built without libyaml")
    if not c_parser:
        _check_directives(source)
    try:
        return _compose_with(CPARSER(source) if c_parser else _PyParser(source), source, c_parser)
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
        raise syntax_error(exc, source) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"invalid YAML: {exc}", fix=DEFAULT_FIX) from None
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
            message, fix = UNKNOWN_DIRECTIVE
            raise YamlError(message, number, 1, fix=fix)


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
        raise YamlError("the file is empty", 1, fix=EMPTY_FIX)
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
            if check_escapes and not value.isascii() and SURROGATE.search(value):
                # libyaml and yaml.v3 reject "\ud800"-style escapes; PyYAML's scanner does not
                message, fix = BAD_UNICODE_ESCAPE
                raise YamlError(message, mark.line + 1, mark.column + 1, fix=fix)
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
                raise aliasing_error(mark)
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
                    f"mapping key {go_quote(shown)} already defined at line "
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
        raise aliasing_error(None)
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
        raise YamlError("the file is empty", 1, fix=EMPTY_FIX)
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


def is_merge_key(node: Node) -> bool:
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


def aliasing_error(mark: Any) -> YamlError:
    return YamlError(
        "document contains excessive aliasing",
        None if mark is None else mark.line + 1,
        None if mark is None else mark.column + 1,
        fix="write the data out instead of multiplying it through nested aliases",
    )
