"""Cassettes keep no secrets, and a recording that fails leaves none behind (issue 17,
items 8-10 and 12).

Recordings run against a loopback OpenAI-compatible server the test starts; replays run
offline with that server stopped.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pytest_agentsim.plugin.collect import run_blocking
from pytest_agentsim.run.cassette import (
    REDACTED,
    Cassette,
    cassette_path,
    parse_sse,
    redact,
    redact_text,
)
from pytest_agentsim.run.proxy import ModelProxy

from .test_simulated import AGENT, AGENT_SAYS, PASS, SCENARIOS, USER, ModelServer, Write

# Realistic-looking secrets (none is real). An agent or a model can echo any of them.
OPENAI_KEY = "sk-proj-4fJd9KqLm2NpXr7TvWy1Zb3Cs5Ue8Gh0"
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GITHUB = "ghp_1234567890abcdefghijABCDEFGHIJ123456"
GITHUB_PAT = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"
SLACK = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp"
GOOGLE = "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"
BEARER = "mF_9.B5f-4.1JqM"
PASSWORD = "s3cret-pass"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"GET https://generativelanguage.googleapis.com/v1/models?key={OPENAI_KEY}&alt=sse",
            f"GET https://generativelanguage.googleapis.com/v1/models?key={REDACTED}&alt=sse",
        ),
        (
            "https://x.example/v1?api-version=2024-06-01&api_key=abc123&access_token=t0k&sig=zz",
            f"https://x.example/v1?api-version=2024-06-01&api_key={REDACTED}"
            f"&access_token={REDACTED}&sig={REDACTED}",
        ),
        (
            f"https://alice:{PASSWORD}@models.example/v1",
            f"https://{REDACTED}@models.example/v1",
        ),
        (f"authorization: bearer {BEARER}", f"authorization: {REDACTED}"),
        (f"BEARER {BEARER}", REDACTED),
        ("basic YWxpY2U6czNjcmV0LXBhc3M=", REDACTED),
        (f"id {AWS_KEY_ID}, secret {AWS_SECRET}.", f"id {REDACTED}, secret {REDACTED}."),
        (f"aws_secret_access_key = {AWS_SECRET}", REDACTED),
        (f"token {GITHUB} or {GITHUB_PAT}", f"token {REDACTED} or {REDACTED}"),
        (f"gho_{'a1' * 18} and ghs_{'B2' * 18}", f"{REDACTED} and {REDACTED}"),
        (f"slack {SLACK}; xoxp-12345-67890-abcdef", f"slack {REDACTED}; {REDACTED}"),
        (f"maps {GOOGLE}", f"maps {REDACTED}"),
    ],
)
def test_every_form_of_secret_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == expected
    assert redact_text(expected) == expected  # replay redacts again: nothing changes


@pytest.mark.parametrize(
    "text",
    [
        "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",  # ids of a model answer
        "call_Xy12abCD34efGH56ijKL78mn",
        "fp_44709d6fcb",
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",  # a sha1
        "https://hotel.example/rooms?date=2026-06-12&nights=2&monkey=1",
        "Book a room for two nights from Friday, please.",
        "The basic plan costs 10 dollars; bearer of good news.",
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    assert redact_text(text) == text


def _chunk(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _sse(pieces: list[str]) -> bytes:
    events = [
        json.dumps({"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": p}}]})
        for p in pieces
    ]
    return "".join(f"data: {e}\n\n" for e in [*events, "[DONE]"]).encode()


def _joined(events: list[str]) -> str:
    return "".join(json.loads(e)["choices"][0]["delta"]["content"] for e in events[:-1])


def test_a_secret_split_across_stream_events_is_redacted() -> None:
    """A streamed answer is redacted as the text it joins to, not event by event: no
    piece of a secret is left that could be joined back."""
    said = f"Your key is {OPENAI_KEY} and the AWS id {AWS_KEY_ID}. Keep them safe."
    pieces = _chunk(said, 5)
    events = parse_sse(_sse(pieces))
    assert len(events) == len(pieces) + 1 and events[-1] == "[DONE]"
    text = "\n".join(events)
    for secret in (OPENAI_KEY, AWS_KEY_ID):
        for piece in _chunk(secret, 5)[1:]:  # the later pieces, each harmless-looking alone
            assert piece not in text
    assert _joined(events) == redact_text(said)
    assert _joined(events) == f"Your key is {REDACTED} and the AWS id {REDACTED}. Keep them safe."
    # events that carry no secret are kept byte for byte
    assert events[0] == json.dumps(
        {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": "Your "}}]}
    )


def test_tool_call_arguments_streamed_in_pieces_are_redacted() -> None:
    arguments = json.dumps({"token": GITHUB, "city": "Paris"})
    events = [
        json.dumps(
            {
                "choices": [
                    {"delta": {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}}
                ]
            }
        )
        for piece in _chunk(arguments, 7)
    ]
    out = parse_sse("".join(f"data: {e}\n\n" for e in events).encode())
    joined = "".join(
        json.loads(e)["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] for e in out
    )
    assert json.loads(joined) == {"token": REDACTED, "city": "Paris"}


class StreamingServer:
    """An OpenAI-compatible server on 127.0.0.1: the agent's answers stream a few
    characters per event (as models do), the simulated user's and judge's come whole."""

    def __init__(self, *, user: list[str], agent: list[str], judge: str) -> None:
        self.replies = {"user": list(user), "agent": list(agent)}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                self._send("application/json", b'{"object": "list", "data": []}')

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                system = body["messages"][0].get("content", "")
                if "grading a conversation" in system:
                    text = judge
                else:
                    queue = server.replies["user" if "role-playing a user" in system else "agent"]
                    text = queue.pop(0) if len(queue) > 1 else queue[0]
                if body.get("stream"):
                    self._send("text/event-stream", _sse(_chunk(text, 6)))
                    return
                message = {"role": "assistant", "content": text}
                answer = {"id": "chatcmpl-2", "choices": [{"index": 0, "message": message}]}
                self._send("application/json", json.dumps(answer).encode())

            def _send(self, ctype: str, payload: bytes) -> None:
                self.send_response(200)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def __enter__(self) -> StreamingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def _record(pytester: pytest.Pytester, base_url: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--agentsim",
        "--agentsim-record",
        f"--agentsim-model-base-url={base_url}",
        "-p",
        "no:cacheprovider",
        *args,
    )


@pytest.fixture
def project(write: Write) -> Path:
    write("agent.py", AGENT)
    return write("scenarios.yaml", SCENARIOS)


def test_a_recording_keeps_no_secret_and_still_replays(
    pytester: pytest.Pytester, project: Path
) -> None:
    user = [
        f"Hi, my slack token is {SLACK} and the maps key {GOOGLE}; send bearer {BEARER}.",
        "Thanks. Bye! [END]",
    ]
    agent = [
        f"Stored. Your OpenAI key is {OPENAI_KEY}, AWS {AWS_KEY_ID} / {AWS_SECRET}.",
        f"Goodbye! Your GitHub token: {GITHUB}",
    ]
    with StreamingServer(user=user, agent=agent, judge=PASS) as server:
        _record(pytester, f"http://127.0.0.1:{server.port}/v1").assert_outcomes(passed=1)
    path = project.parent / "__cassettes__" / "scenarios" / "Books_a_room.yaml"
    text = path.read_text(encoding="utf-8")
    secrets = [SLACK, GOOGLE, BEARER, OPENAI_KEY, AWS_KEY_ID, AWS_SECRET, GITHUB]
    pieces = {piece for s in secrets for piece in _chunk(s, 6) if len(piece) == 6}
    assert [p for p in pieces if p in text] == []
    said = [i for i in Cassette.load(path).interactions if i.events is not None]
    assert _joined(said[0].events or []) == (
        f"Stored. Your OpenAI key is {REDACTED}, AWS {REDACTED} / {REDACTED}."
    )
    # what the agent said (streamed) and what the user then heard (a request) were
    # redacted alike, so the replay finds every request; twice, identically
    for _ in range(2):
        pytester.runpytest("--agentsim", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert path.read_text(encoding="utf-8") == text


def test_secret_query_parameters_never_reach_the_cassette(tmp_path: Path) -> None:
    """A client that puts its key in the query string (``?key=``, Google-style): the
    proxy forwards it, the cassette keeps its name only."""

    async def exchange() -> Cassette:
        with ModelServer(["unused"], ["Hello!"], [PASS]) as upstream:
            cassette = Cassette(path=tmp_path / "c.yaml", scenario="s")
            cassette.replay, cassette.record = False, True
            proxy = ModelProxy(cassette, upstreams={"agent": upstream.base_url})
            await proxy.start()
            try:
                url = f"{proxy.base_url('agent')}/chat/completions?key={GOOGLE}&alt=json"
                async with aiohttp.ClientSession() as http:
                    body = {
                        "model": "gpt-4.1-mini",
                        "messages": [{"role": "system", "content": "x"}],
                    }
                    async with http.post(url, json=body) as resp:
                        assert resp.status == 200
                assert upstream.requests  # it went through, key and all
            finally:
                await proxy.aclose()
        return cassette

    cassette = run_blocking(exchange())  # not asyncio.run: it drops pytest-asyncio's open loop
    (item,) = cassette.interactions
    assert item.url.endswith(f"/v1/chat/completions?key={REDACTED}&alt=json")
    assert GOOGLE not in cassette.dump()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_failed_recording_hides_credentials_and_leaves_no_cassette(
    pytester: pytest.Pytester, project: Path
) -> None:
    """Credentials in the base URL (which also clash with the clients' Authorization
    header) and a port nobody listens on: the failure names the request, redacted, and
    no cassette is written."""
    base = f"http://alice:{PASSWORD}@127.0.0.1:{_closed_port()}/v1?key={OPENAI_KEY}"
    result = _record(pytester, base)
    result.assert_outcomes(failed=1)
    out = result.stdout.str() + result.stderr.str()
    assert "recording failed" in out
    assert PASSWORD not in out and OPENAI_KEY not in out
    assert not (project.parent / "__cassettes__").exists()
    # nothing to replay: the next run says how to record, as before the first recording
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*without a cassette*--agentsim-record*"])


def test_redact_walks_json_and_secret_named_keys() -> None:
    body = {"api_key": "x", "messages": [{"content": f"use bearer {BEARER}"}], "n": 1}
    assert redact(body) == {
        "api_key": REDACTED,
        "messages": [{"content": f"use {REDACTED}"}],
        "n": 1,
    }


LONG_LABEL = "Books a room " + "for a very long stay with many extra requests " * 6 + "end"


def test_a_long_scenario_label_gets_a_short_cassette_name(
    pytester: pytest.Pytester, write: Write
) -> None:
    """A label longer than a file name may be (255 bytes) is cut and given a hash of the
    whole: deterministic, and distinct for labels that differ only at the end."""
    assert len(LONG_LABEL) > 290
    write("agent.py", AGENT)
    write("scenarios.yaml", SCENARIOS.replace("Books a room", LONG_LABEL))
    with ModelServer(USER, AGENT_SAYS, [PASS]) as server:
        _record(pytester, server.base_url).assert_outcomes(passed=1)
    (path,) = (pytester.path / "__cassettes__" / "scenarios").iterdir()
    assert path == cassette_path(pytester.path / "scenarios.yaml", LONG_LABEL)
    assert len(path.name.encode()) <= 130 and path.name.startswith("Books_a_room_for_a_very")
    pytester.runpytest("--agentsim", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    other = cassette_path(pytester.path / "scenarios.yaml", LONG_LABEL + "!")
    assert other != path and other.name[:100] == path.name[:100]
    short = cassette_path(pytester.path / "scenarios.yaml", "Books a room")
    assert short.name == "Books_a_room.yaml"  # short names are unchanged
    # non-ASCII labels are cut on a character, in bytes
    wide = cassette_path(pytester.path / "s.yaml", "チェックイン" * 60)
    assert len(wide.name.encode()) <= 130
    wide.name.encode().decode()
