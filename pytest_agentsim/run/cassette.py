"""Model-exchange cassettes: record every model request of a simulated run, replay offline.

A cassette is a YAML file, ``<yaml dir>/__cassettes__/<file stem>/<scenario name>.yaml``::

    # pytest-agentsim cassette (written by --agentsim-record; edit with care)
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
that look like JWTs, ``sk-`` keys or bearer tokens are replaced by ``<redacted>`` wherever
they appear. Replay matches requests in order by body hash (falling back to any unused
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
    r"|\bsk-[A-Za-z0-9_-]{8,}"  # OpenAI-style keys
    r"|\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}"  # auth header values
)
_SECRET_KEYS = {"authorization", "api-key", "api_key", "apikey", "x-api-key", "api_secret"}


def redact(value: Any) -> Any:
    """``value`` with secrets replaced (walks dicts and lists; keys named like secrets too)."""
    if isinstance(value, str):
        return _SECRET_RE.sub(REDACTED, value)
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


def cassette_path(yaml_path: Path, scenario_name: str) -> Path:
    """Where a scenario's cassette lives, beside its YAML file."""
    safe = re.sub(r"[^\w.-]+", "_", scenario_name).strip("._") or "scenario"
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
    """The ``data:`` payloads of an SSE body, one string each, redacted."""
    events: list[str] = []
    for block in raw.decode("utf-8", "replace").replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].lstrip() for line in block.split("\n") if line.startswith("data:")]
        if data:
            events.append(_SECRET_RE.sub(REDACTED, "\n".join(data)))
    return events


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
            "# Written by --agentsim-record (secrets redacted); replayed offline by default.\n"
        )
        return header + yaml.dump(
            doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1_000_000
        )

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(self.dump(), encoding="utf-8")

    # -- replay ------------------------------------------------------------------------
    def match(self, role: str, method: str, url_path: str, body: Any) -> Interaction:
        """The recorded interaction answering this request (marked used); else CassetteMiss."""
        sha = body_hash(body)
        unused = [i for i in self.interactions if not i.used]
        if unused and unused[0].sha == sha:
            unused[0].used = True
            return unused[0]
        for item in unused:
            if item.role == role and item.sha == sha:
                item.used = True
                return item
        n = sum(1 for i in self.interactions if i.used) + 1
        expected = next((i for i in unused if i.role == role), unused[0] if unused else None)
        if expected is None:
            held = len(self.interactions)
            detail = f"the cassette has no more recorded requests (it holds {held})"
        else:
            detail = f"the next recorded {expected.role} request differs: " + _difference(
                expected.body, body
            )
        raise CassetteMiss(
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
