"""yaml.v3 + encoding/json fidelity: the userdata/tags lk agent simulate would send."""

from __future__ import annotations

import datetime as dt
import math
import textwrap
import time
from typing import Any

import pytest
import yaml
import yaml.scanner

from pytest_agentsim.load.yamlv3 import (
    MAP_TAG,
    MAX_DEPTH,
    PLAIN_TAG,
    SEQ_TAG,
    STR_TAG,
    GenericMap,
    GoJSONError,
    GoTime,
    YamlError,
    compose,
    composer,
    decode,
    go_json,
    scalar_text,
    userdata_json,
)

PARSERS = [
    pytest.param(
        True,
        id="libyaml",
        marks=pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml"),
    ),
    pytest.param(False, id="pure-python"),
]


def child(node: yaml.Node, key: str) -> yaml.Node:
    assert isinstance(node, yaml.MappingNode)
    for k, v in node.value:
        if k.value == key:
            return v  # type: ignore[no-any-return]
    raise KeyError(key)


def doc(text: str, *, use_libyaml: bool | None = None) -> yaml.Node:
    return compose(textwrap.dedent(text).lstrip("\n"), use_libyaml=use_libyaml)


def ud(text: str) -> str:
    """userdata_json of the `userdata` key of a dedented document."""
    return userdata_json(child(doc(text), "userdata"))


def value(text: str) -> Any:
    """decode() of a single value written after `v: `."""
    return decode(child(compose(f"v: {text}\n"), "v"))


def ud_error(text: str) -> YamlError:
    with pytest.raises(YamlError) as info:
        ud(text)
    return info.value


def compose_error(text: str | bytes, **kwargs: Any) -> YamlError:
    with pytest.raises(YamlError) as info:
        compose(text, **kwargs)
    assert not isinstance(info.value, yaml.YAMLError)
    return info.value


# ----------------------------------------------------------------------------------------------
# SPEC §3 examples, end to end


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{d: 2026-07-14}", '{"d":"2026-07-14T00:00:00Z"}'),
        ("{d: 2026-06-12 09:00:00}", '{"d":"2026-06-12T09:00:00Z"}'),
        ("{d: 2026-06-12T09:00:00}", '{"d":"2026-06-12T09:00:00"}'),
        (
            "{a: yes, b: on, c: no, d: off, e: y, f: n}",
            '{"a":"yes","b":"on","c":"no","d":"off","e":"y","f":"n"}',
        ),
        ("{x: 1.0}", '{"x":1}'),
        ("{x: 1e3}", '{"x":1000}'),
        ("{a: 017, b: 0o17}", '{"a":15,"b":15}'),
        ("{x: 0x1F}", '{"x":31}'),
        ("{x: null, y: ~, z: }", '{"x":null,"y":null,"z":null}'),
        ("{x: true, y: false}", '{"x":true,"y":false}'),
        ('{x: "1", y: "true", z: "2026-07-14"}', '{"x":"1","y":"true","z":"2026-07-14"}'),
        ("{t: 2026-06-12T09:00:00.500+02:00}", '{"t":"2026-06-12T09:00:00.5+02:00"}'),
        ("{list: [1, two, 3.5, null]}", '{"list":[1,"two",3.5,null]}'),
        ("{b: 2, a: 1, c: {z: 1, y: 2}}", '{"a":1,"b":2,"c":{"y":2,"z":1}}'),
    ],
)
def test_userdata_spec_conversions(body: str, expected: str) -> None:
    assert ud(f"userdata: {body}") == expected


@pytest.mark.parametrize("body", ["", "~", "null", "{}", "!!null", "{~: dropped}"])
def test_empty_userdata_is_empty_string(body: str) -> None:
    assert ud(f"userdata: {body}") == ""


def test_absent_userdata_is_empty_string() -> None:
    assert userdata_json(None) == ""


@pytest.mark.parametrize(
    ("body", "message", "line"),
    [
        ("[a, b]", "userdata must be a mapping, got a list", 2),
        ("just text", "userdata must be a mapping, got the scalar 'just text'", 2),
        ('""', "userdata must be a mapping, got the scalar ''", 2),
        ("{a: 1, b: .inf}", "json: unsupported value: +Inf", 2),
        ("{a: {b: [1, -.inf]}}", "json: unsupported value: -Inf", 2),
        ("{a: .nan}", "json: unsupported value: NaN", 2),
        ("{a: {1: x}}", "json: unsupported type: map[interface {}]interface {}", 2),
        ("{a: {b: {2026-01-01: x}}}", "map[interface {}]interface {}", 2),
        ("{a: {~: x}}", "map[interface {}]interface {}", 2),
        ("{t: 2026-06-12T09:00:00+24:00}", "timezone hour outside of range [0,23]", 2),
        ("{a: !!int abc}", "cannot decode !!str `abc` as a !!int", 2),
    ],
)
def test_userdata_errors(body: str, message: str, line: int) -> None:
    err = ud_error(f"name: x\nuserdata: {body}\n")
    assert message in err.message
    assert err.line == line
    assert err.fix


def test_userdata_error_points_at_the_offending_line() -> None:
    err = ud_error(
        """
        userdata:
          fine: 1
          nested:
            deeper:
              rate: .inf
        """
    )
    assert err.line == 5
    assert err.column == 13
    assert "NaN or infinity" in (err.fix or "")
    err = ud_error(
        """
        userdata:
          fine: {a: 1}
          bad:
            x: 1
            2: two
        """
    )
    assert err.line == 5  # the first key that is not a string
    assert "quote the key" in (err.fix or "")


def test_userdata_nan_before_generic_map_in_key_order() -> None:
    # encoding/json walks keys in sorted order and stops at the first error.
    assert "NaN" in ud_error("userdata: {b: {1: x}, a: .nan}").message
    assert "map[interface" in ud_error("userdata: {a: {1: x}, b: .nan}").message


def test_userdata_top_level_keys_are_their_text() -> None:
    # The CLI's field is map[string]any: yaml.v3 decodes each key into a Go string.
    assert ud("userdata: {1: a, true: b, 2026-01-01: c, 0x1F: d, 1.50: e, '': f, ~: g}") == (
        '{"":"f","0x1F":"d","1":"a","1.50":"e","2026-01-01":"c","true":"b"}'
    )


def test_userdata_top_level_mapping_key_is_an_error() -> None:
    err = ud_error("userdata:\n  ? [a]\n  : 1\n")
    assert "cannot unmarshal !!seq into string" in err.message
    assert err.line == 2


# ----------------------------------------------------------------------------------------------
# yaml.v3 resolve() of plain scalars


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("FALSE", False),
        ("tRUE", "tRUE"),
        ("yes", "yes"),
        ("No", "No"),
        ("ON", "ON"),
        ("off", "off"),
        ("y", "y"),
        ("n", "n"),
        ("~", None),
        ("null", None),
        ("Null", None),
        ("NULL", None),
        ("nULL", "nULL"),
        ("", None),
        ("0", 0),
        ("-0", 0),
        ("00", 0),
        ("42", 42),
        ("+42", 42),
        ("-42", -42),
        ("1_000", 1000),
        ("017", 15),
        ("-017", -15),
        ("0o17", 15),
        ("0O17", 15),
        ("-0o17", -15),
        ("0o-17", -15),
        ("0x1F", 31),
        ("0X1f", 31),
        ("-0x1F", -31),
        ("0x_1F", 31),
        ("0b101", 5),
        ("-0b101", -5),
        ("0b-101", -5),
        ("9223372036854775807", 9223372036854775807),
        ("9223372036854775808", 9223372036854775808),
        ("18446744073709551615", 18446744073709551615),
        ("-9223372036854775808", -9223372036854775808),
        ("0x", "0x"),
        ("0b", "0b"),
        ("0o8", "0o8"),
        ("12:30", "12:30"),
        ("1.2.3", "1.2.3"),
        ("-x", "-x"),
        ("+", "+"),
        ("1e400", "1e400"),
        ("0x1p-2", "0x1p-2"),
        ("+.nan", "+.nan"),
        ("._5", "._5"),
        (".", "."),
        (".e5", ".e5"),
        (".Infinity", ".Infinity"),
        ("<<", "<<"),
        ("hello world", "hello world"),
        ("20260-01-01", "20260-01-01"),
    ],
)
def test_plain_scalar_resolution(text: str, expected: Any) -> None:
    got = value(text)
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.0", 1.0),
        ("1.", 1.0),
        ("1e3", 1000.0),
        ("1E3", 1000.0),
        ("-1.5e-3", -0.0015),
        ("+.5", 0.5),
        (".5", 0.5),
        (".5e1", 5.0),
        (".5_0", 0.5),
        ("1_0.5", 10.5),
        ("09", 9.0),  # not octal, not int: ParseInt fails and the float pattern matches
        ("08.5", 8.5),
        ("18446744073709551616", 18446744073709551616.0),
        ("-9223372036854775809", -9223372036854775809.0),
        ("1e-400", 0.0),
    ],
)
def test_plain_scalar_floats(text: str, expected: float) -> None:
    got = value(text)
    assert type(got) is float
    assert got == expected


@pytest.mark.parametrize(
    ("text", "sign"),
    [(".inf", 1), (".Inf", 1), (".INF", 1), ("+.inf", 1), ("-.inf", -1), ("-.INF", -1)],
)
def test_plain_scalar_infinities(text: str, sign: int) -> None:
    assert value(text) == sign * math.inf


@pytest.mark.parametrize("text", [".nan", ".NaN", ".NAN"])
def test_plain_scalar_nan(text: str) -> None:
    assert math.isnan(value(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-07-14", GoTime(2026, 7, 14)),
        ("2026-7-4", GoTime(2026, 7, 4)),
        ("2024-02-29", GoTime(2024, 2, 29)),
        ("0000-01-01", GoTime(0, 1, 1)),
        ("2026-06-12 09:00:00", GoTime(2026, 6, 12, 9)),
        ("2026-06-12   9:5:7", GoTime(2026, 6, 12, 9, 5, 7)),
        ("2026-06-12 09:00:00.25", GoTime(2026, 6, 12, 9, 0, 0, 250_000_000)),
        ("2026-06-12T09:00:00Z", GoTime(2026, 6, 12, 9)),
        ("2026-06-12t09:00:00Z", GoTime(2026, 6, 12, 9)),
        ("2026-06-12T09:00:00.500+02:00", GoTime(2026, 6, 12, 9, 0, 0, 500_000_000, 7200)),
        ("2026-06-12T09:00:00,5Z", GoTime(2026, 6, 12, 9, 0, 0, 500_000_000)),
        ("2026-06-12T09:00:00.1234567899Z", GoTime(2026, 6, 12, 9, 0, 0, 123_456_789)),
        ("2026-06-12T09:30:00-05:30", GoTime(2026, 6, 12, 9, 30, 0, 0, -19800)),
        ("2026-06-12T09:00:00+24:00", GoTime(2026, 6, 12, 9, 0, 0, 0, 86400)),
    ],
)
def test_timestamps(text: str, expected: GoTime) -> None:
    assert value(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-06-12T09:00:00",  # the T forms need a zone
        "2026-06-12 09:00:00Z",  # the space form takes no zone
        "2026-06-12 09:00:00 +02:00",
        "2026-06-12T09:00:00+0200",
        "2026-06-12T09:00:00z",
        "2026-06-12T24:00:00Z",
        "2026-06-12T09:60:00Z",
        "2026-06-12T09:00:60Z",
        "2026-06-12T09:00:00+25:00",
        "2026-02-30",
        "2023-02-29",
        "2026-13-01",
        "2026-00-10",
        "2026-06-123",
        "2026-06-12x",
        "26-06-12",
    ],
)
def test_not_timestamps_stay_strings(text: str) -> None:
    assert value(text) == text


@pytest.mark.parametrize(
    "text",
    ['"true"', "'1'", '"2026-07-14"', "'null'", '""', '"0x1F"', "'.inf'", '"<<"'],
)
def test_quoted_scalars_are_strings(text: str) -> None:
    assert value(text) == yaml.safe_load(text)
    assert type(value(text)) is str


def test_block_scalars_are_strings() -> None:
    root = doc(
        """
        a: |
          1
        b: >-
          true
        """
    )
    assert decode(root) == {"a": "1\n", "b": "true"}


# ----------------------------------------------------------------------------------------------
# Explicit tags


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!!str 1", "1"),
        ("!!str true", "true"),
        ("!!str 2026-07-14", "2026-07-14"),
        ("!!str", ""),
        ('!!int "12"', 12),
        ("!!int 0x10", 16),
        ("!!float 1", 1.0),
        ("!!float 1.5", 1.5),
        ("!!bool true", True),
        ("!!null ~", None),
        ("!!null", None),
        ("!!timestamp 2026-07-14", GoTime(2026, 7, 14)),
        ('!!timestamp "2026-07-14"', GoTime(2026, 7, 14)),
        ("!!binary aGVsbG8=", "hello"),
        ("!!binary |\n  aGVs\n  bG8=", "hello"),
        ("!foo 12", "12"),
        ("!!map scalar", "scalar"),
        ("! 12", 12),  # the non-specific tag: resolved like an untagged plain scalar
        ('! "12"', "12"),
        ("!<tag:yaml.org,2002:int> 7", 7),
    ],
)
def test_explicit_tags(text: str, expected: Any) -> None:
    got = value(text)
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("!!int 1.5", "cannot decode !!float `1.5` as a !!int"),
        ("!!int abc", "cannot decode !!str `abc` as a !!int"),
        ("!!bool yes", "cannot decode !!str `yes` as a !!bool"),
        ("!!bool 1", "cannot decode !!int `1` as a !!bool"),
        ("!!float abc", "cannot decode !!str `abc` as a !!float"),
        ("!!float 18446744073709551615", "cannot decode !!int `1844674...` as a !!float"),
        ("!!null 0", "cannot decode !!int `0` as a !!null"),
        ("!!timestamp 2026-06-12T09:00:00", "cannot decode !!str `2026-06...` as a !!timestamp"),
        ("!!binary abc$", "!!binary value contains invalid base64 data"),
        ("!!binary aGVsbG8", "!!binary value contains invalid base64 data"),
    ],
)
def test_explicit_tag_errors(text: str, message: str) -> None:
    with pytest.raises(YamlError) as info:
        value(text)
    assert info.value.message == message
    assert info.value.line == 1
    assert info.value.fix


# ----------------------------------------------------------------------------------------------
# Mappings, merges, anchors


def test_string_maps_are_dicts_and_others_generic() -> None:
    got = decode(doc("a: {x: 1, 'y': 2, !!str 3: 3}\nb: {1: one, x: 2}\nc: {null: 1}\n"))
    assert type(got["a"]) is dict
    assert got["a"] == {"x": 1, "y": 2, "3": 3}
    assert type(got["b"]) is GenericMap
    assert got["b"] == {1: "one", "x": 2}
    assert type(got["c"]) is GenericMap
    assert got["c"] == {None: 1}


def test_mapping_as_key_in_generic_map_is_an_error() -> None:
    with pytest.raises(YamlError, match="invalid map key"):
        decode(doc("m:\n  ? {a: 1}\n  : x\n"))


def test_merge_explicit_keys_win() -> None:
    root = doc(
        """
        base: &base {a: 1, b: 2}
        m:
          b: 20
          <<: *base
          c: 30
        """
    )
    assert decode(root)["m"] == {"a": 1, "b": 20, "c": 30}


def test_merge_earlier_sources_win() -> None:
    root = doc(
        """
        one: &one {a: 1, b: 1}
        two: &two {b: 2, c: 2}
        m:
          <<: [*one, *two, {c: 3, d: 3}]
        """
    )
    assert decode(root)["m"] == {"a": 1, "b": 1, "c": 2, "d": 3}


def test_nested_merges() -> None:
    root = doc(
        """
        grand: &grand {a: g, z: g}
        parent: &parent {<<: *grand, a: p, b: p}
        m: {<<: *parent, b: m}
        """
    )
    assert decode(root)["m"] == {"a": "p", "b": "m", "z": "g"}


def test_merged_keys_decode_as_text_in_a_string_map() -> None:
    # yaml.v3 picks the map type from the parent's keys; merged keys then decode as Go strings.
    assert decode(doc("m: {<<: {1: x}, a: b}\n"))["m"] == {"1": "x", "a": "b"}


def test_merge_into_top_level_userdata() -> None:
    root = doc(
        """
        defaults: &d {tier: gold, seats: 2}
        userdata:
          <<: *d
          seats: 4
        """
    )
    assert userdata_json(child(root, "userdata")) == '{"seats":4,"tier":"gold"}'


def test_top_level_userdata_merge_quirk_int_key_vs_text() -> None:
    # yaml.v3 remembers the parent's keys as interface{} (int 1) but sets merged keys as
    # strings ("1"), so the merged value overwrites the explicit one.
    assert ud("userdata:\n  1: explicit\n  <<: {'1': merged}\n") == '{"1":"merged"}'


def test_quoted_merge_key_is_a_plain_key() -> None:
    assert decode(doc("m: {'<<': {a: 1}}\n"))["m"] == {"<<": {"a": 1}}


def test_explicit_merge_tag() -> None:
    assert decode(doc("m: {!!merge <<: {a: 1}, b: 2}\n"))["m"] == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    "text",
    [
        "m:\n  <<: 1\n",
        "m:\n  <<: [{a: 1}, 2]\n",
        "s: &s [{a: 1}]\nm:\n  <<: *s\n",  # an alias to a list is refused, a literal list is not
        "x: &x 1\nm:\n  <<: [*x]\n",
    ],
)
def test_merge_needs_mappings(text: str) -> None:
    err = compose_error(text)
    assert err.message == "map merge requires map or sequence of maps as the value"
    assert err.line is not None and err.line >= 2


def test_aliases_share_nodes() -> None:
    root = doc("a: &x {k: v}\nb: *x\nc: [*x, *x]\n")
    assert child(root, "b") is child(root, "a")
    assert decode(root) == {"a": {"k": "v"}, "b": {"k": "v"}, "c": [{"k": "v"}, {"k": "v"}]}


def test_anchor_may_be_redefined() -> None:
    # YAML 1.2 and yaml.v3 allow it (PyYAML's own composer refuses): the latest one wins.
    assert decode(doc("a: &x 1\nb: &x 2\nc: *x\n")) == {"a": 1, "b": 2, "c": 2}


def test_unknown_anchor() -> None:
    err = compose_error("a: 1\nb: *nope\n")
    assert err.message == "unknown anchor 'nope' referenced"
    assert (err.line, err.column) == (2, 4)


def test_anchor_containing_itself() -> None:
    err = compose_error("a: &a\n  b: [1, *a]\n")
    assert err.message == "anchor 'a' value contains itself"
    assert err.line == 2


# ----------------------------------------------------------------------------------------------
# Duplicate keys


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("a: 1\nb: 2\na: 3\n", 'mapping key "a" already defined at line 1', 3),
        ("m:\n  1: a\n  '1': b\n", 'mapping key "1" already defined at line 2', 3),
        ("m:\n  x: 1\n  !!str x: 2\n", 'mapping key "x" already defined at line 2', 3),
        ("m: {a: 1, a: 2}\n", 'mapping key "a" already defined at line 1', 1),
        ("s:\n  - k: 1\n    j: 2\n    k: 3\n", 'mapping key "k" already defined at line 2', 4),
        ("a: &k x\nm:\n  *k : 1\n  *k : 2\n", 'mapping key "k" already defined at line 3', 4),
        ("b: &b {x: 1}\nm:\n  <<: *b\n  <<: *b\n", 'mapping key "<<" already defined at line 3', 4),
    ],
)
def test_duplicate_keys(text: str, message: str, line: int) -> None:
    for use_libyaml in (None, False):
        err = compose_error(text, use_libyaml=use_libyaml)
        assert err.message == message
        assert err.line == line
        assert err.fix


@pytest.mark.parametrize(
    "text",
    [
        "b: &b {x: 1}\nm:\n  <<: *b\n  x: 2\n",  # merged keys are not duplicates
        "m:\n  1: a\n  01: b\n",  # different source text
        "a: &k x\nm:\n  *k : 1\n  k: 2\n",  # an alias key is compared by anchor name
        "m:\n  a: 1\n  A: 2\n",
    ],
)
def test_not_duplicate_keys(text: str) -> None:
    assert isinstance(compose(text), yaml.MappingNode)


# ----------------------------------------------------------------------------------------------
# Resource limits


def _billion_laughs(levels: int) -> str:
    lines = ["l0: &l0 [" + ", ".join(["lol"] * 10) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("use_libyaml", PARSERS)
def test_alias_bomb_fails_fast(use_libyaml: bool) -> None:
    start = time.perf_counter()
    err = compose_error(_billion_laughs(9), use_libyaml=use_libyaml)
    assert time.perf_counter() - start < 1.0
    assert err.message == "document contains excessive aliasing"
    assert err.line == 4  # l3 is where the expansion passes yaml.v3's budget
    assert err.fix


def test_moderate_aliasing_is_fine() -> None:
    base = "defaults: &d {a: 1, b: 2, c: [1, 2, 3]}\nscenarios:\n"
    text = base + "".join(f"  - {{label: s{i}, extra: *d}}\n" for i in range(300))
    assert len(decode(compose(text))["scenarios"]) == 300


def test_nesting_limit() -> None:
    ok = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    assert isinstance(compose(ok), yaml.MappingNode)
    err = compose_error("a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n")
    assert err.message == f"the YAML nests deeper than {MAX_DEPTH} levels"
    assert err.line == 1


@pytest.mark.parametrize("use_libyaml", PARSERS)
@pytest.mark.parametrize(
    "text", ["[" * 100_000, "{a: " * 100_000, "".join("  " * i + "- \n" for i in range(2000))]
)
def test_very_deep_nesting_is_our_error_whatever_the_parser(use_libyaml: bool, text: str) -> None:
    # libyaml 0.2.5 stops at 1000 levels with its own wording; the user still gets ours
    err = compose_error(text, use_libyaml=use_libyaml)
    assert err.message == f"the YAML nests deeper than {MAX_DEPTH} levels"
    assert err.line == (MAX_DEPTH + 1 if text.startswith(" ") or text.startswith("-") else 1)
    assert err.fix == "flatten the structure"


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")
def test_a_c_parser_limit_in_any_wording_becomes_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a future libyaml says when it gives up on depth, the pure parser's count
    decides: the message does not depend on the C library's text."""
    real = composer.CPARSER

    class Limited(real):  # type: ignore[misc, valid-type]
        def get_event(self) -> Any:
            raise yaml.scanner.ScannerError(problem="some new wording", problem_mark=None)

    monkeypatch.setattr(composer, "CPARSER", Limited)
    err = compose_error("[" * 500, use_libyaml=True)
    assert err.message == f"the YAML nests deeper than {MAX_DEPTH} levels"
    # a C-parser error on a shallow file is the C parser's own, marked as such
    err = compose_error("[" * 5, use_libyaml=True)
    assert err.message == "invalid YAML: some new wording"


def test_nesting_limit_counts_alias_expansion() -> None:
    text = "a: &a " + "[" * 150 + "]" * 150 + "\nb: &b " + "[" * 100 + "*a" + "]" * 100 + "\n"
    err = compose_error(text)
    assert err.message == f"aliases expand to more than {MAX_DEPTH} levels of nesting"
    assert err.line == 2


# ----------------------------------------------------------------------------------------------
# Input bytes, documents, syntax errors


def test_non_utf8_bytes_name_the_line() -> None:
    err = compose_error(b"name: x\nscenarios:\n  - label: caf\xe9\n")
    assert err.line == 3
    assert err.column == 15
    assert "not valid UTF-8" in err.message
    assert "0xe9" in err.message


def test_broken_utf16_is_an_error() -> None:
    err = compose_error(b"\xff\xfea\x00:\x00 \x00\x00\xd8")
    assert "not valid UTF-16" in err.message


def test_bom_and_utf16_are_accepted() -> None:
    assert decode(compose(b"\xef\xbb\xbfa: 1\n")) == {"a": 1}
    assert decode(compose("\ufeffa: 1\n")) == {"a": 1}
    assert decode(compose("a: é\n".encode("utf-16"))) == {"a": "é"}


@pytest.mark.parametrize(
    ("data", "line", "needle"),
    [
        (b"name: x\nlabel: \x00\x00\x00\n", 2, "U+0000"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 1, "not valid UTF-8"),
        (b"a: 1\nb: ring\x07\n", 2, "U+0007"),
        (b"a: \x7f\n", 1, "U+007F"),
    ],
)
def test_binary_junk(data: bytes, line: int, needle: str) -> None:
    err = compose_error(data)
    assert needle in err.message
    assert err.line == line
    assert err.fix


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "--- # x\n...\n"])
def test_empty_file(text: str) -> None:
    assert compose_error(text).message == "the file is empty"


@pytest.mark.parametrize(
    ("text", "line"),
    [("a: 1\n---\nb: 2\n", 2), ("---\na: 1\n...\n---\nb: 2\n", 4), ("- 1\n--- x\n", 2)],
)
def test_multiple_documents(text: str, line: int) -> None:
    err = compose_error(text)
    assert "second YAML document" in err.message
    assert err.line == line


def test_document_end_marker_alone_is_fine() -> None:
    assert decode(compose("a: 1\n...\n# trailing comment\n")) == {"a": 1}


@pytest.mark.parametrize("use_libyaml", PARSERS)
@pytest.mark.parametrize(
    ("text", "line", "fix_needle"),
    [
        ("a: 1\nb: c: d\n", 2, "quote the value"),
        ("a:\n\tb: 1\n", 2, "tabs"),
        ("a: [1, 2\nb: 3\n", 2, "syntax"),
        ('a: 1\nb: "open\n', 2, "close the open quote"),
        ("a:\n  - 1\n  b: 2\n", 3, "indentation"),
        ("a: !x!y 1\n", 1, "tag"),
        ('a: "\\q"\n', 1, "escape"),
    ],
)
def test_syntax_errors(use_libyaml: bool, text: str, line: int, fix_needle: str) -> None:
    err = compose_error(text, use_libyaml=use_libyaml)
    assert err.line == line
    assert fix_needle in (err.fix or "")
    assert "Traceback" not in err.message and "\n" not in err.message


@pytest.mark.parametrize("use_libyaml", PARSERS)
@pytest.mark.parametrize("text", ['a: "\\ud800"\n', 'a: "\\U00110000"\n'])
def test_invalid_unicode_escapes(use_libyaml: bool, text: str) -> None:
    err = compose_error(text, use_libyaml=use_libyaml)
    assert "escape" in err.message or "chr()" in err.message


# ----------------------------------------------------------------------------------------------
# The node tree


@pytest.mark.parametrize("use_libyaml", PARSERS)
def test_node_tags_and_styles(use_libyaml: bool) -> None:
    root = doc(
        """
        plain: 1
        dq: "1"
        sq: '1'
        lit: |
          x
        int: !!int "2"
        local: !foo bar
        nonspecific: ! 3
        nonspecific_quoted: ! "3"
        seq: [a]
        map: {a: b}
        tagged_map: !!map {a: b}
        """,
        use_libyaml=use_libyaml,
    )
    tags = {k.value: (v.tag, getattr(v, "style", None)) for k, v in root.value}
    assert tags == {
        "plain": (PLAIN_TAG, None),
        "dq": (STR_TAG, '"'),
        "sq": (STR_TAG, "'"),
        "lit": (STR_TAG, "|"),
        "int": ("tag:yaml.org,2002:int", '"'),
        "local": ("!foo", None),
        "nonspecific": (PLAIN_TAG, None),
        "nonspecific_quoted": (STR_TAG, '"'),
        "seq": (SEQ_TAG, None),
        "map": (MAP_TAG, None),
        "tagged_map": (MAP_TAG, None),
    }
    assert all(k.tag == PLAIN_TAG and k.style is None for k, _ in root.value)
    assert child(root, "lit").start_mark.line == 3


def test_both_parsers_agree() -> None:
    text = textwrap.dedent(
        """
        name: Parity
        base: &b {tier: gold, n: 017}
        scenarios:
          - label: "One: two"
            tags: {a: 1, b: yes}
            userdata:
              <<: *b
              when: 2026-06-12 09:00:00
              at: [1.5e3, .5, 0x1F, ~, "x"]
              text: >
                folded
                lines
        """
    )

    def shape(node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return (node.tag, node.value, node.style, node.start_mark.line)
        if isinstance(node, yaml.SequenceNode):
            return [shape(n) for n in node.value]
        return [(shape(k), shape(v)) for k, v in node.value]

    if yaml.__with_libyaml__:
        assert shape(compose(text, use_libyaml=True)) == shape(compose(text, use_libyaml=False))
    root = compose(text, use_libyaml=False)
    scenario = child(root, "scenarios").value[0]
    assert userdata_json(child(scenario, "userdata")) == (
        '{"at":[1500,0.5,31,null,"x"],"n":15,"text":"folded lines\\n","tier":"gold",'
        '"when":"2026-06-12T09:00:00Z"}'
    )


# ----------------------------------------------------------------------------------------------
# scalar_text: Go string fields (label, instructions, tag values)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", "1"),
        ("true", "true"),
        ("yes", "yes"),
        ("~", ""),
        ("null", ""),
        ("", ""),
        ("''", ""),
        ("'null'", "null"),
        ("1.0", "1.0"),
        ("0x1F", "0x1F"),
        ("017", "017"),
        ("2026-07-14", "2026-07-14"),
        (".inf", ".inf"),
        ('"quoted: text"', "quoted: text"),
        ("|\n  block\n", "block\n"),
        ("!!str 1", "1"),
        ("!!int 0x10", "0x10"),
        ("!!null", ""),
        ("!!binary aGk=", "hi"),
        ("!foo bar", "bar"),
    ],
)
def test_scalar_text(text: str, expected: str) -> None:
    assert scalar_text(child(compose(f"v: {text}\n"), "v"), "v") == expected


@pytest.mark.parametrize(
    ("text", "got"), [("{a: 1}", "a mapping"), ("[1, 2]", "a list"), ("\n  - 1\n", "a list")]
)
def test_scalar_text_rejects_collections(text: str, got: str) -> None:
    node = child(compose(f"name: x\nv: {text}\n"), "v")
    with pytest.raises(YamlError) as info:
        scalar_text(node, "tag 'feature'")
    assert info.value.message == f"tag 'feature' must be a string, got {got}"
    assert info.value.line == (2 if text.startswith(("{", "[")) else 3)
    assert info.value.fix


def test_scalar_text_bad_tags() -> None:
    with pytest.raises(YamlError, match=r"cannot decode !!str `abc` as a !!int"):
        scalar_text(child(compose("v: !!int abc\n"), "v"), "label")
    with pytest.raises(YamlError, match="not valid UTF-8"):
        scalar_text(child(compose("v: !!binary /w==\n"), "v"), "label")


# ----------------------------------------------------------------------------------------------
# go_json: encoding/json.Marshal


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.5e21, "1.5e+21"),
        (1e-7, "1e-7"),
        (1.5e-9, "1.5e-9"),
        (1e-10, "1e-10"),
        (1e-6, "0.000001"),
        (0.000123, "0.000123"),
        (0.1, "0.1"),
        (-0.0, "-0"),
        (0.0, "0"),
        (1.0, "1"),
        (100.0, "100"),
        (-1.5, "-1.5"),
        (123456789.123, "123456789.123"),
        (2.0**63, "9223372036854776000"),  # shortest digits, zero-padded like strconv
        (1e100, "1e+100"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (0.1 + 0.2, "0.30000000000000004"),
    ],
)
def test_go_float_format(number: float, expected: str) -> None:
    assert go_json(number) == expected


@pytest.mark.parametrize(
    ("number", "message"),
    [
        (math.nan, "json: unsupported value: NaN"),
        (math.inf, "json: unsupported value: +Inf"),
        (-math.inf, "json: unsupported value: -Inf"),
    ],
)
def test_go_json_rejects_non_finite(number: float, message: str) -> None:
    with pytest.raises(GoJSONError) as info:
        go_json({"a": [number]})
    assert str(info.value) == message


def test_go_json_rejects_generic_maps() -> None:
    with pytest.raises(GoJSONError, match=r"unsupported type: map\[interface \{\}\]interface"):
        go_json({"a": GenericMap({1: 2})})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<a href='x'>&</a>", "\"\\u003ca href='x'\\u003e\\u0026\\u003c/a\\u003e\""),
        ('say "hi" \\ bye', '"say \\"hi\\" \\\\ bye"'),
        ("\x00\x01\x1f", '"\\u0000\\u0001\\u001f"'),
        ("\b\f\n\r\t", '"\\b\\f\\n\\r\\t"'),
        ("\x7f", '"\x7f"'),
        ("line\u2028para\u2029", '"line\\u2028para\\u2029"'),
        ("héllo ✓ 😀", '"héllo ✓ 😀"'),
        ("\udcff", '"\\ufffd"'),  # an invalid UTF-8 byte (from !!binary)
    ],
)
def test_go_json_strings(text: str, expected: str) -> None:
    assert go_json(text) == expected


def test_go_json_sorts_keys_by_utf8_bytes() -> None:
    data = {"b": 1, "a": 2, "B": 3, "é": 4, "z": 5, "aa": 6, "\U0001f600": 7, "\uffff": 8}
    assert go_json(data) == '{"B":3,"a":2,"aa":6,"b":1,"z":5,"é":4,"\uffff":8,"😀":7}'


def test_go_json_values() -> None:
    data: dict[str, Any] = {
        "none": None,
        "t": True,
        "f": False,
        "i": -3,
        "u": 18446744073709551615,
        "l": [],
        "m": {},
        "time": GoTime(2026, 6, 12, 9, 0, 0, 120_000_000, -3600),
        "nested": [{"x": [1, {"y": None}]}],
    }
    assert go_json(data) == (
        '{"f":false,"i":-3,"l":[],"m":{},"nested":[{"x":[1,{"y":null}]}],"none":null,'
        '"t":true,"time":"2026-06-12T09:00:00.12-01:00","u":18446744073709551615}'
    )


def test_go_json_invalid_utf8_from_binary() -> None:
    assert ud("userdata: {b: !!binary /2hp}") == '{"b":"\\ufffdhi"}'


# ----------------------------------------------------------------------------------------------
# GoTime


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        (GoTime(2026, 7, 14), "2026-07-14T00:00:00Z"),
        (GoTime(2026, 6, 12, 9, 0, 0, 500_000_000, 7200), "2026-06-12T09:00:00.5+02:00"),
        (GoTime(2026, 6, 12, 9, 0, 0, 1, 0), "2026-06-12T09:00:00.000000001Z"),
        (GoTime(2026, 6, 12, 9, 0, 0, 0, -19800), "2026-06-12T09:00:00-05:30"),
        (GoTime(0, 1, 1), "0000-01-01T00:00:00Z"),
    ],
)
def test_gotime_json(stamp: GoTime, expected: str) -> None:
    assert stamp.to_json_str() == expected


def test_gotime_datetime_round_trip() -> None:
    stamp = GoTime(2026, 6, 12, 9, 30, 15, 123_456_789, 7200)
    aware = stamp.datetime
    assert aware == dt.datetime(
        2026, 6, 12, 9, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))
    )
    assert GoTime.from_datetime(dt.datetime(2026, 1, 2, 3, 4, 5)) == GoTime(2026, 1, 2, 3, 4, 5)
    assert GoTime.from_datetime(aware) == GoTime(2026, 6, 12, 9, 30, 15, 123_456_000, 7200)
    assert GoTime(2026, 7, 14).datetime.tzinfo is dt.timezone.utc


# ----------------------------------------------------------------------------------------------
# Speed


def _scenarios(count: int) -> str:
    out = ["name: bench", "defaults: &defaults {tier: gold, seats: 2}", "scenarios:"]
    for i in range(count):
        out += [
            f"  - id: s{i:04d}",
            f'    label: "Scenario {i} books a room"',
            "    instructions: |",
            f"      You are caller {i} and want a room on June 15th.",
            "    agent_expectations: The agent confirms the booking.",
            f"    tags: {{feature: room_booking, priority: {i % 3}, smoke: true}}",
            "    userdata:",
            "      <<: *defaults",
            f"      date: 2026-07-{i % 28 + 1:02d}",
            f"      meta: {{vip: yes, rate: 1.5e2, at: 2026-06-12 09:00:00, n: {i}}}",
        ]
    return "\n".join(out) + "\n"


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="the speed target assumes libyaml")
def test_thousand_scenarios_compose_and_decode_fast() -> None:
    data = _scenarios(1000).encode()
    start = time.process_time()
    root = compose(data)
    payloads = []
    for scenario in child(root, "scenarios").value:
        for key, node in scenario.value:
            if key.value == "tags":
                for tag_key, tag_value in node.value:
                    scalar_text(tag_key, "tag name")
                    scalar_text(tag_value, "tag value")
            elif key.value == "userdata":
                payloads.append(userdata_json(node))
            else:
                scalar_text(node, key.value)
    elapsed = time.process_time() - start
    assert len(payloads) == 1000
    assert payloads[7] == (
        '{"date":"2026-07-08T00:00:00Z","meta":{"at":"2026-06-12T09:00:00Z","n":7,"rate":150,'
        '"vip":"yes"},"seats":2,"tier":"gold"}'
    )
    assert elapsed < 1.0, f"compose+decode of 1,000 scenarios took {elapsed:.3f}s"
