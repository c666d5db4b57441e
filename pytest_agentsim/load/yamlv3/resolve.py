"""yaml.v3's ``resolve()``: what a plain scalar's text means (Go's number and time rules)."""

from __future__ import annotations

import math
import re
from typing import Any, Final

from .types import (
    LONG_PREFIX,
    SHORT_BOOL,
    SHORT_FLOAT,
    SHORT_INT,
    SHORT_NULL,
    SHORT_STR,
    SHORT_TIMESTAMP,
    GoTime,
)

# ----------------------------------------------------------------------------------------------
# yaml.v3 resolve(): what a scalar's text means


def short_tag(tag: str) -> str:
    return "!!" + tag[len(LONG_PREFIX) :] if tag.startswith(LONG_PREFIX) else tag


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
    **dict.fromkeys(("true", "True", "TRUE"), (SHORT_BOOL, True)),
    **dict.fromkeys(("false", "False", "FALSE"), (SHORT_BOOL, False)),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), (SHORT_NULL, None)),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), (SHORT_FLOAT, _NAN)),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), (SHORT_FLOAT, _INF)),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), (SHORT_FLOAT, -_INF)),
}
NULL_TEXTS: Final = frozenset({"", "~", "null", "Null", "NULL"})
_YAML_FLOAT: Final = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT: Final = re.compile(r"\.[0-9_]*([eE][-+]?[0-9][0-9_]*)?")
_MAX_U64: Final = (1 << 64) - 1
_MAX_U64_DIGITS: Final = len(str(_MAX_U64))
_DIGITS_FOR_BASE: Final = {
    2: frozenset("01"),
    8: frozenset("01234567"),
    10: frozenset("0123456789"),
    16: frozenset("0123456789abcdefABCDEF"),
}


def resolve(value: str, tag: str = "") -> tuple[str, Any]:
    """yaml.v3 ``resolve(tag, value)`` for a plain scalar (tag "") or an explicit resolvable
    tag other than !!str; returns (resolved short tag, Python value)."""
    if not value:
        return SHORT_NULL, None
    hint = _HINT.get(value[0])
    if hint is None:
        return SHORT_STR, value
    item = _RESOLVE_MAP.get(value)
    if item is not None:
        return item
    if hint == "M":
        return SHORT_STR, value
    if hint == ".":
        dot = _go_parse_float(value)
        return (SHORT_STR, value) if dot is None else (SHORT_FLOAT, dot)
    # Leading digit or sign: timestamp, int, uint, float, then 0b/0o spellings ParseInt missed.
    if tag in ("", SHORT_TIMESTAMP):  # quoted/other-tagged text is never a timestamp
        stamp = _parse_timestamp(value)
        if stamp is not None:
            return SHORT_TIMESTAMP, stamp
    plain = value.replace("_", "")
    number = _go_parse_int(plain, 0)  # base 0: 0x, 0o, 0b and the legacy octal 017
    if number is None:
        number = _go_parse_uint(plain, 0)
    if number is not None:
        return SHORT_INT, number
    if _YAML_FLOAT.fullmatch(plain):
        number_f = float(plain)
        if not math.isinf(number_f):  # Go's ParseFloat fails with ErrRange: stays a string
            return SHORT_FLOAT, number_f
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
        return SHORT_INT, number
    return SHORT_STR, value


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
    if base == 10 and len(text) > _MAX_U64_DIGITS:
        # out of uint64 range, as Go says; and int() refuses decimal text over 4300 digits
        # (sys.get_int_max_str_digits) with a ValueError (no leading zeros here: that is octal)
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
