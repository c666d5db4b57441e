"""yaml.v3's vocabulary: tags, limits, errors and the values :func:`decode` returns."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import Any, Final

PLAIN_TAG: Final = "tag:agentsim:plain"
"""Tag of an untagged plain scalar: yaml.v3 resolves its type from the text."""
STR_TAG: Final = "tag:yaml.org,2002:str"
MAP_TAG: Final = "tag:yaml.org,2002:map"
SEQ_TAG: Final = "tag:yaml.org,2002:seq"
MERGE_TAG: Final = "tag:yaml.org,2002:merge"
MAX_DEPTH: Final = 200
"""Deepest nesting of mappings/lists accepted, counted after alias expansion. yaml.v3 allows
10000, but decoding here is recursive and no scenario file needs more than a handful."""

LONG_PREFIX: Final = "tag:yaml.org,2002:"
# yaml.v3 short tags, used for resolution and in its error messages.
SHORT_STR: Final = "!!str"
SHORT_NULL: Final = "!!null"
SHORT_BOOL: Final = "!!bool"
SHORT_INT: Final = "!!int"
SHORT_FLOAT: Final = "!!float"
SHORT_TIMESTAMP: Final = "!!timestamp"
SHORT_BINARY: Final = "!!binary"
SHORT_MERGE: Final = "!!merge"
RESOLVABLE: Final = frozenset({SHORT_BOOL, SHORT_INT, SHORT_FLOAT, SHORT_NULL, SHORT_TIMESTAMP})


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


class NonFinite(float):
    """A NaN/Inf decoded for userdata: a distinct object, so an encoding error can be traced
    back to the scalar (and its line) that produced it."""
