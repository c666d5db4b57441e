"""Decoding into Go ``interface{}``/``string`` and ``encoding/json.Marshal``."""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from typing import Any, Final

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .composer import SURROGATE, is_merge_key
from .resolve import NULL_TEXTS, resolve, short_tag
from .types import (
    MAX_DEPTH,
    PLAIN_TAG,
    RESOLVABLE,
    SHORT_BINARY,
    SHORT_FLOAT,
    SHORT_INT,
    SHORT_MERGE,
    SHORT_STR,
    STR_TAG,
    GenericMap,
    GoJSONError,
    GoTime,
    NestingTooDeep,
    NonFinite,
    YamlError,
)


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
        if not text.isascii() and SURROGATE.search(text):  # only !!binary can yield these
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
        return resolve(node.value)[1]
    if tag == STR_TAG:
        return node.value
    short = short_tag(tag)
    if short == SHORT_BINARY:
        return _binary(node)
    if short not in RESOLVABLE:
        return node.value  # unknown tags (!foo, !!map on a scalar...) decode as their text
    resolved, value = resolve(node.value, short)
    if resolved == short:
        return value
    if short == SHORT_FLOAT and resolved == SHORT_INT and -(1 << 63) <= value < 1 << 63:
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
        return None if node.value in NULL_TEXTS else str(node.value)
    short = short_tag(tag)
    if short == SHORT_BINARY:
        return _binary(node)
    if short in RESOLVABLE and _scalar_value(node) is None:  # also validates the tag
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
        return key.value == "<<" or resolve(key.value)[0] == SHORT_STR
    return short_tag(tag) == SHORT_MERGE


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
                    value = NonFinite(value)
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
            if is_merge_key(key_node):
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
    elif kind is float or kind is NonFinite:
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
