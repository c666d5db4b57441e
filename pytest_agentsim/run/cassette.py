"""Model-exchange cassettes: record every model request of a simulated run, replay offline.

A cassette is a YAML file, ``<yaml dir>/__cassettes__/<file stem>/<scenario name>.yaml``::

    # pytest-agentsim cassette (written by --agentsim-record-mode; edit with care)
    version: 1
    scenario: Books a room
    interactions:
    - role: user                # agent | agent-openai | user | judge
      request:
        method: POST
        url: https://api.openai.com/v1/chat/completions
        body_sha256: 3f2a...    # of the canonical (sorted-key, redacted) JSON body
        body: {model: ..., messages: [...]}
      response:
        status: 200
        content_type: application/json
        body: {...}             # a JSON answer, or for a streamed (SSE) answer:
        events: ['{"id": ...}', ..., '[DONE]']   # one `data:` payload per line

Request headers are never written (they carry ``Authorization`` / ``api-key``); strings
that look like secrets (JWTs, ``sk-``/AWS/GitHub/Slack/Google keys, bearer and basic
credentials in any case, ``user:password@`` and secret-named query parameters in URLs)
are replaced by ``<redacted>`` wherever they appear, in a streamed answer across its
events (:func:`redact_events`). When a cassette is replayed or recorded, and how it is
written, is :mod:`.recording`'s (record modes).

Replay matches requests in order by body hash (falling back to any unused
recorded request of the same role with the same hash); anything else is a
:class:`CassetteMiss`.

The loopback server that records and replays them is :class:`~.proxy.ModelProxy`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "Cassette",
    "CassetteMiss",
    "Interaction",
    "cassette_path",
    "redact",
]

VERSION = 1
REDACTED = "<redacted>"
_SECRET_RE = re.compile(
    r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"  # JWT
    r"|\bsk-[A-Za-z0-9_-]{8,}"  # OpenAI-style keys (sk-proj-, sk-ant-...)
    r"|(?i:\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}"  # auth header values, any case
    r"|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"  # AWS access key ids
    # AWS secret keys: after their name, or alone (40 base64 characters, mixed case+digit)
    r"|(?i:aws_?secret_?access_?key|secret_?access_?key)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}"
    r"|(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]{0,39}[a-z])(?=[A-Za-z0-9/+]{0,39}[A-Z])"
    r"(?=[A-Za-z0-9/+]{0,39}[0-9])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
    r"|\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"  # GitHub tokens
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|\bAIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|(?<=://)[^\s/?#@:]*:[^\s/?#@]*(?=@)"  # user:password@ in URLs
    # the value of a query parameter named like a secret (?key=, &access_token=, &sig=...)
    r"|(?P<param>(?<=[?&;])(?i:(?:[\w.-]*[_.-])?(?:(?:api|auth|access)?key|(?:auth|access)?token"
    r"|secret|passw(?:or)?d|pwd|sig|signature|credential|auth))=)[^&#\s\"'<>]+"
)
_SECRET_KEYS = {"authorization", "api-key", "api_key", "apikey", "x-api-key", "api_secret"}


def _sub(match: re.Match[str]) -> str:
    param = match.group("param")  # a query parameter keeps its name: ?key=<redacted>
    return REDACTED if param is None else param + REDACTED


def redact_text(text: str) -> str:
    """``text`` with every secret replaced by ``<redacted>`` (URLs, messages, errors)."""
    return _SECRET_RE.sub(_sub, text)


def redact(value: Any) -> Any:
    """``value`` with secrets replaced (walks dicts and lists; keys named like secrets too)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if str(k).lower() in _SECRET_KEYS else redact(v)) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def body_hash(body: Any) -> str:
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()[:16]


_MAX_NAME_BYTES = 120  # file systems allow 255 bytes per name; leave room for a suffix


def cassette_path(yaml_path: Path, scenario_name: str) -> Path:
    """Where a scenario's cassette lives, beside its YAML file. A long name is cut and
    given a hash of the whole name (deterministic, and distinct for distinct names)."""
    safe = re.sub(r"[^\w.-]+", "_", scenario_name).strip("._") or "scenario"
    if len(safe.encode()) > _MAX_NAME_BYTES:
        digest = hashlib.sha256(scenario_name.encode()).hexdigest()[:12]
        cut = safe.encode()[: _MAX_NAME_BYTES - 13].decode("utf-8", "ignore").rstrip("._")
        safe = f"{cut}-{digest}"
    return yaml_path.parent / "__cassettes__" / yaml_path.stem / f"{safe}.yaml"


def parse_body(raw: bytes) -> Any:
    """A request/response body as JSON (redacted); text if it is not JSON."""
    if not raw:
        return None
    try:
        return redact(json.loads(raw))
    except (ValueError, UnicodeDecodeError):
        return redact(raw.decode("utf-8", "replace"))


def parse_sse(raw: bytes) -> list[str]:
    """The ``data:`` payloads of an SSE body, one string each, redacted as one stream."""
    events: list[str] = []
    for block in raw.decode("utf-8", "replace").replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].lstrip() for line in block.split("\n") if line.startswith("data:")]
        if data:
            events.append("\n".join(data))
    return redact_events(events)


# The fields a stream spreads a text over, one piece per event (OpenAI chat and Responses
# deltas, tool-call arguments, Anthropic-style deltas).
_STREAMED_KEYS = frozenset(
    {"content", "arguments", "text", "delta", "refusal", "reasoning_content", "partial_json"}
)


def redact_events(events: list[str]) -> list[str]:
    """SSE payloads with their secrets redacted across event boundaries.

    A secret the model streams arrives in pieces (``"sk-pro"``, ``"j-abc..."``), none of
    which looks like a secret alone. Each streamed text field is joined over the events,
    redacted as a whole, and cut back into the same events: the piece where a secret
    starts carries ``<redacted>``, the pieces it continued into lose that part. What a
    replay streams therefore joins to exactly the redacted text. Other fields and
    payloads that are not JSON are redacted one by one (non-JSON ones as one stream).
    """
    parsed: list[Any] = []
    for e in events:
        try:
            parsed.append(json.loads(e))
        except ValueError:
            parsed.append(None)
    streams: dict[tuple[Any, ...], list[int]] = {}  # field path -> events that carry it
    for i, obj in enumerate(parsed):
        for path in _streamed_paths(obj, ()):
            streams.setdefault(path, []).append(i)
    out_objs = [None if obj is None else _redact_except_streamed(obj) for obj in parsed]
    for path, carriers in streams.items():
        texts = [_get(parsed[i], path) for i in carriers]
        for i, text in zip(carriers, _redact_split(texts), strict=True):
            _get(out_objs[i], path[:-1])[path[-1]] = text
    plain = iter(_redact_split([e for e, obj in zip(events, parsed, strict=True) if obj is None]))
    return [
        next(plain) if obj is None else raw if new == obj else json.dumps(new, ensure_ascii=False)
        for raw, obj, new in zip(events, parsed, out_objs, strict=True)
    ]


def _streamed_paths(obj: Any, at: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Paths (``("choices", 0, "delta", "content")``) of the streamed text fields in ``obj``."""
    if isinstance(obj, dict):
        items: Any = obj.items()
    elif isinstance(obj, list):
        items = enumerate(obj)
    else:
        return []
    found = []
    for key, value in items:
        if isinstance(value, str) and key in _STREAMED_KEYS:
            found.append((*at, key))
        elif isinstance(value, dict | list):
            found.extend(_streamed_paths(value, (*at, key)))
    return found


def _redact_except_streamed(obj: Any, key: Any = None) -> Any:
    if isinstance(obj, str):
        return obj if key in _STREAMED_KEYS else redact_text(obj)
    if isinstance(obj, dict):
        return {
            k: REDACTED if str(k).lower() in _SECRET_KEYS else _redact_except_streamed(v, k)
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_redact_except_streamed(v) for v in obj]
    return obj


def _get(obj: Any, at: tuple[Any, ...]) -> Any:
    for key in at:
        obj = obj[key]
    return obj


def _redact_split(texts: list[str]) -> list[str]:
    """``texts`` redacted as their concatenation, cut back at the same boundaries."""
    joined = "".join(texts)
    found = list(_SECRET_RE.finditer(joined))
    if not found:
        return list(texts)
    out: list[str] = []
    start = 0
    for text in texts:
        end = start + len(text)
        piece: list[str] = []
        pos = start
        for m in found:
            a, b = m.span()
            if b <= pos or a >= end:
                continue
            piece.append(joined[pos:a] if a > pos else "")
            if a >= start:  # the secret starts in this piece: it carries the mark
                piece.append(_sub(m))
            pos = min(b, end)
        piece.append(joined[pos:end])
        out.append("".join(piece))
        start = end
    return out


@dataclasses.dataclass
class Interaction:
    role: str
    method: str
    url: str
    body: Any
    status: int
    content_type: str
    response_body: Any = None
    events: list[str] | None = None
    used: bool = False

    def __post_init__(self) -> None:
        self.url = redact_text(self.url)  # ?key=..., user:password@ (every writer)

    @property
    def sha(self) -> str:
        return body_hash(self.body)

    def to_yaml(self) -> dict[str, Any]:
        response: dict[str, Any] = {"status": self.status, "content_type": self.content_type}
        if self.events is not None:
            response["events"] = list(self.events)
        else:
            response["body"] = self.response_body
        return {
            "role": self.role,
            "request": {
                "method": self.method,
                "url": self.url,
                "body_sha256": self.sha,
                "body": self.body,
            },
            "response": response,
        }

    @classmethod
    def from_yaml(cls, data: Mapping[str, Any]) -> Interaction:
        req, resp = data["request"], data["response"]
        return cls(
            role=str(data.get("role", "")),
            method=str(req.get("method", "POST")),
            url=str(req.get("url", "")),
            body=req.get("body"),
            status=int(resp.get("status", 200)),
            content_type=str(resp.get("content_type", "application/json")),
            response_body=resp.get("body"),
            events=[str(e) for e in resp["events"]] if "events" in resp else None,
        )

    def describe(self) -> str:
        return f"{self.role}: {self.method} {self.url}"

    def render(self) -> bytes:
        if self.events is not None:
            return "".join(f"data: {e}\n\n" for e in self.events).encode()
        if isinstance(self.response_body, str):
            return self.response_body.encode()
        return json.dumps(self.response_body, ensure_ascii=False).encode()


class CassetteMiss(Exception):
    """A replayed run made a model request the cassette does not hold."""


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


@dataclasses.dataclass
class Cassette:
    path: Path
    scenario: str
    interactions: list[Interaction] = dataclasses.field(default_factory=list)
    failed: str | None = None
    """Why recording failed (set by the proxy or judge): such a recording is not saved."""
    replay: bool = True  # answer requests from the recorded interactions
    record: bool = False  # send the others to the real models and record them
    kept: list[Interaction] = dataclasses.field(default_factory=list)
    """Mode ``all``: the earlier recording's interactions, written back unless re-made."""
    added: int = 0  # interactions recorded by this run
    complete: bool = False  # the run that recorded it got to its end (set by the caller)

    @classmethod
    def load(cls, path: Path) -> Cassette:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError(f"{path} is not a version-{VERSION} pytest-agentsim cassette")
        items = [Interaction.from_yaml(i) for i in data.get("interactions") or ()]
        return cls(path=path, scenario=str(data.get("scenario", "")), interactions=items)

    def dump(self) -> str:
        doc = {
            "version": VERSION,
            "scenario": self.scenario,
            "interactions": [i.to_yaml() for i in self.interactions],
        }
        header = (
            "# pytest-agentsim cassette: the model exchanges of one simulated scenario.\n"
            "# Written by --agentsim-record-mode (secrets redacted); replayed offline by default.\n"
        )
        return header + yaml.dump(
            doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1_000_000
        )

    def add(self, item: Interaction) -> None:
        """Record a new exchange (written by :func:`~.recording.save_cassette`)."""
        item.used = True
        self.interactions.append(item)
        self.added += 1

    def discard(self, item: Interaction) -> None:
        self.interactions.remove(item)
        self.added -= 1

    # -- replay ------------------------------------------------------------------------
    def lookup(self, role: str, method: str, url_path: str, body: Any) -> Interaction | None:
        """What the record mode says for this request: its recorded answer (marked used),
        or None to ask the real models (not replaying, or a new request while recording);
        a request a replay-only run does not hold raises :class:`CassetteMiss`."""
        if not self.replay:
            return None
        item = self._find(role, body)
        if item is None and not self.record:
            raise self._miss(role, method, url_path, body)
        return item

    def _find(self, role: str, body: Any) -> Interaction | None:
        sha = body_hash(body)
        unused = [i for i in self.interactions if not i.used]
        if unused and unused[0].sha == sha:
            unused[0].used = True
            return unused[0]
        for item in unused:
            if item.role == role and item.sha == sha:
                item.used = True
                return item
        return None

    def _miss(self, role: str, method: str, url_path: str, body: Any) -> CassetteMiss:
        unused = self.unused()
        n = sum(1 for i in self.interactions if i.used) + 1
        expected = next((i for i in unused if i.role == role), unused[0] if unused else None)
        if expected is None:
            held = len(self.interactions)
            detail = f"the cassette has no more recorded requests (it holds {held})"
        else:
            detail = f"the next recorded {expected.role} request differs: " + _difference(
                expected.body, body
            )
        return CassetteMiss(
            f"model request not in cassette {self.path.name}: {role} {method} {url_path} "
            f"(request #{n} of the run)\n  {detail}"
        )

    def unused(self) -> list[Interaction]:
        return [i for i in self.interactions if not i.used]


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else canonical_json(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _difference(recorded: Any, got: Any) -> str:
    """The first difference between two request bodies, in a line or two."""
    if isinstance(recorded, dict) and isinstance(got, dict):
        for key in sorted(set(recorded) | set(got)):
            if recorded.get(key) == got.get(key):
                continue
            a, b = recorded.get(key), got.get(key)
            if key == "messages" and isinstance(a, list) and isinstance(b, list):
                for i, (x, y) in enumerate(zip(a, b, strict=False)):
                    if isinstance(x, dict) and isinstance(y, dict):
                        cx, cy = x.get("content"), y.get("content")
                        if isinstance(cx, str) and isinstance(cy, str) and cx != cy:
                            at = _common_prefix(cx, cy)
                            start = max(0, at - 40)
                            lead = "…" if start else ""
                            return (
                                f"messages[{i}] ({x.get('role')}) content was recorded as "
                                f"{lead}{_short(cx[start:], 100)!r}\n"
                                f"  but is now {lead}{_short(cy[start:], 100)!r}"
                            )
                    if x != y:
                        return (
                            f"messages[{i}] was recorded as {_short(x)}\n  but is now {_short(y)}"
                        )
                return f"it had {len(a)} messages, now {len(b)}"
            return f"{key!r} was recorded as {_short(a)}\n  but is now {_short(b)}"
    return f"recorded {_short(recorded)}\n  now {_short(got)}"
