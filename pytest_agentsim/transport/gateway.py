"""A fake LiveKit Inference gateway (and OpenAI API) for the *unmodified* real clients.

``async with InferenceGateway() as gw:`` serves scripted answers and faults to
``livekit.agents.inference.LLM/STT/TTS`` and ``livekit.plugins.openai.LLM`` over their real
network stacks. What carries what, and why:

* **LLM over HTTP, in-process: respx.** A respx router (``gw.router``, patcher
  ``using="httpx2"``, see :mod:`.respx_bridge` for why not ``alias_httpx()``) answers
  ``POST {base}/chat/completions`` (OpenAI SSE) and ``GET {base}/models`` for the cloud
  gateway (``https://agent-gateway.livekit.cloud/v1`` and staging), ``https://api.openai.com/v1``,
  the loopback base below, and any ``extra_base_urls``. No socket is opened. Requests the
  router does not know pass through to the real transport, where the offline guard (if on)
  names the host.
* **STT/TTS websockets: a loopback aiohttp server** on ``127.0.0.1`` (ephemeral port),
  because aioresponses cannot carry websocket frames. The real clients derive the websocket
  URL from the inference base URL (``http`` -> ``ws``, then ``/tts?model=`` / ``/stt?model=``),
  so the gateway sets ``LIVEKIT_INFERENCE_URL=http://127.0.0.1:PORT/v1`` while it runs.
* **That env var also moves ``inference.LLM``** to ``http://127.0.0.1:PORT/v1``. Both halves
  handle it: respx has routes for the loopback base (so in-process LLM calls still never touch
  a socket: the fast path), *and* the loopback server itself serves ``/v1/chat/completions``
  and ``/v1/models`` over real HTTP with the same scripts, for agents running in another
  process (SPEC §4 process mode; give the child :meth:`InferenceGateway.child_env`).
* **aiohttp HTTP** (plugins that call a model API with aiohttp):
  :meth:`InferenceGateway.aiohttp_mock` returns an aioresponses, fixed for aiohttp 3.14,
  routed to the same scripts.

Scripts: ``gw.llm``/``gw.stt``/``gw.tts`` are :class:`~pytest_agentsim.faults.CallScript`.
One LLM call is one ``chat/completions`` request (``GET /models``, the prewarm, is answered
but never scripted); one TTS call is one synthesis (the text up to ``session.flush``); one STT
call is one utterance (onset of voiced audio to its final transcript). TTS with nothing
scripted synthesizes audio sized to the text; STT with nothing scripted sends no transcript;
an LLM call with nothing scripted gets a 400 saying so (never retried) and is listed in
``gw.unscripted``.

Faults, per transport:

* LLM over respx / aioresponses: status faults (quota, rate limit, 5xx, ``terminal`` as a 400)
  are real HTTP responses with the fault's body and headers; ``timeout`` raises a read
  timeout and ``connection_error`` a connect error from the transport, at once;
  ``disconnect_mid_stream(after_chunks=N)`` streams N content chunks, then the body read
  fails (``ReadError`` / ``ClientPayloadError``).
* LLM over the loopback server: the same, except ``timeout`` holds the request until the
  client gives up, and ``connection_error`` drops the accepted connection unanswered.
* STT/TTS websockets: a fault that is next when a *new* websocket connects is the handshake
  answer (status faults: the HTTP status, body and headers, e.g. 429 quota; ``timeout``:
  no answer; ``connection_error``: dropped, including aiohttp's one automatic retry of the
  upgrade, so it fails like a refused connection). On an open connection a fault arrives
  in-band: status faults and ``terminal`` as ``{"type": "error", "code", "message", "error"}``,
  ``timeout`` as silence, ``connection_error`` as a dropped socket,
  ``disconnect_mid_stream(after_chunks=N)`` as N ``output_audio`` frames (TTS) then a drop.

This module never imports pytest.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import math
import os
import re
import socket
import struct
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx
from aiohttp import WSMsgType, web

from ..answers import LLMAnswer, STTAnswer, TTSAnswer, tool_calls_from
from ..faults import CallScript, Fault, ScriptExhausted
from . import wire
from .respx_bridge import MOCKER_NAME, PassUnmatchedRouter

if TYPE_CHECKING:
    from aioresponses import aioresponses

__all__ = [
    "CLOUD_INFERENCE_URLS",
    "OPENAI_BASE_URL",
    "InferenceGateway",
    "RecordedRequest",
    "Resource",
]

CLOUD_INFERENCE_URLS = (
    "https://agent-gateway.livekit.cloud/v1",
    "https://agent-gateway.staging.livekit.cloud/v1",
)
OPENAI_BASE_URL = "https://api.openai.com/v1"

# Dummy credentials: the clients refuse to start without them and sign a JWT with the
# secret. 40 bytes, because PyJWT warns (an error under filterwarnings=error) below 32.
_DUMMY_ENV = {
    "LIVEKIT_API_KEY": "agentsim-dummy-key",
    "LIVEKIT_API_SECRET": "agentsim-dummy-secret-0123456789abcdefghij",
    "OPENAI_API_KEY": "sk-agentsim-dummy",
}

Resource = Literal["llm", "stt", "tts"]
_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """One request the gateway saw. ``headers`` are lower-cased, credentials redacted."""

    method: str
    url: str
    json: Any
    headers: Mapping[str, str]
    transport: Literal["respx", "http", "aiohttp", "ws"]
    """``respx`` (in-process httpx/httpx2), ``http`` (loopback server), ``aiohttp``
    (aioresponses), ``ws`` (websocket handshake on the loopback server)."""
    resource: Literal["llm", "models", "stt", "tts"]


class _NoAnswer:
    """Marker: nothing scripted for this call."""


_UNSCRIPTED = _NoAnswer()


def _peek(script: CallScript[_T]) -> _T | Fault | None:
    """What ``script.next()`` would return, without consuming it (``None``: nothing)."""
    peek = getattr(script, "peek", None)
    if callable(peek):
        return peek()  # type: ignore[no-any-return]
    n = script.calls + 1
    for fault in script._scheduled:
        assert fault.on_call is not None
        if n >= fault.on_call and (fault.times is None or n < fault.on_call + fault.times):
            return fault
    return script._queue[0] if script._queue else None


def _handshake_fault(fault: Fault) -> bool:
    """Faults a gateway expresses by refusing the websocket upgrade."""
    return fault.status is not None or fault.kind in ("connection_error", "timeout")


def _draw(script: CallScript[_T]) -> _T | Fault | _NoAnswer:
    try:
        return script.next()
    except ScriptExhausted:
        return _UNSCRIPTED


# -- audio helpers ------------------------------------------------------------------------

_TONE_CACHE: dict[int, bytes] = {}


def _tone_10ms(sample_rate: int) -> bytes:
    """10 ms of a quiet 220 Hz tone, pcm_s16le mono (cached per rate): audible enough for
    an energy VAD, cheap to repeat."""
    cached = _TONE_CACHE.get(sample_rate)
    if cached is None:
        n = sample_rate // 100
        samples = (int(3000 * math.sin(2 * math.pi * 220 * i / sample_rate)) for i in range(n))
        cached = struct.pack(f"<{n}h", *samples)
        _TONE_CACHE[sample_rate] = cached
    return cached


def _pcm(seconds: float, sample_rate: int) -> bytes:
    return _tone_10ms(sample_rate) * max(1, round(seconds * 100))


def _rms(pcm: bytes) -> float:
    n = len(pcm) // 2
    if n == 0:
        return 0.0
    samples = struct.unpack(f"<{n}h", pcm[: n * 2])
    return math.sqrt(sum(s * s for s in samples) / n)


def _stale_http_factory(factory: Any) -> bool:
    """True when livekit's bound http-session factory hands out a session of another
    (closed) event loop. (A closed session is not stale: the factory makes a new one.)"""
    try:
        session = factory()
    except Exception:
        return True
    loop = getattr(session, "_loop", None)
    return loop is not None and (loop is not asyncio.get_running_loop() or loop.is_closed())


def _json_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


class _BrokenStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Response body that yields ``events`` then fails like a dropped connection."""

    def __init__(self, events: Sequence[bytes], message: str, request: httpx.Request) -> None:
        self._events = events
        self._message = message
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        yield from self._events
        raise httpx.ReadError(self._message, request=self._request)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for event in self._events:
            yield event
        raise httpx.ReadError(self._message, request=self._request)


async def _hold(request: web.BaseRequest, closing: asyncio.Event, limit: float = 120.0) -> None:
    """A scripted ``timeout``: answer nothing until the client gives up (closes the
    connection) or the gateway shuts down."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not closing.is_set() and loop.time() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(closing.wait(), 0.05)


class InferenceGateway:
    """Fake LiveKit Inference gateway + OpenAI API. See the module docstring.

    Args:
        extra_base_urls: more OpenAI-compatible base URLs to answer (e.g. a ``base_url=``
            your agent passes to ``openai.LLM``), in-process via respx.
        set_env: set ``LIVEKIT_INFERENCE_URL`` (and dummy credentials where unset) while
            running, restoring the environment afterwards.
        http_context: bind livekit's ``utils.http_context`` (an aiohttp session for
            ``inference.STT/TTS``) when none is bound, so the clients work outside a job.
        model_ids: what ``GET /models`` lists.
        tts_seconds_per_char: length of unscripted synthesized speech.
        stt_endpoint_silence: seconds of silence that end an utterance.
    """

    def __init__(
        self,
        *,
        extra_base_urls: Sequence[str] = (),
        set_env: bool = True,
        http_context: bool = True,
        model_ids: Sequence[str] = ("gpt-4o-mini", "openai/gpt-4o-mini", "gpt-4.1"),
        tts_seconds_per_char: float = 0.06,
        stt_endpoint_silence: float = 0.5,
        host: str = "127.0.0.1",
    ) -> None:
        self.llm: CallScript[LLMAnswer] = CallScript()
        self.stt: CallScript[STTAnswer] = CallScript()
        self.tts: CallScript[TTSAnswer] = CallScript()
        self.requests: list[RecordedRequest] = []
        self.synthesized: list[str] = []
        """Text of every synthesis, in order."""
        self.transcribed: list[str] = []
        """Every final transcript sent, in order."""
        self.unscripted: list[str] = []
        """Calls that found nothing scripted (LLM answered 400; STT sent no transcript)."""
        self.router = PassUnmatchedRouter(
            using=MOCKER_NAME, assert_all_called=False, assert_all_mocked=True
        )
        self._extra_base_urls = tuple(u.rstrip("/") for u in extra_base_urls)
        self._set_env = set_env
        self._http_context = http_context
        self._model_ids = tuple(model_ids)
        self._tts_seconds_per_char = tts_seconds_per_char
        self._stt_endpoint_silence = stt_endpoint_silence
        self._host = host
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._saved_env: dict[str, str | None] = {}
        self._closing = asyncio.Event()
        self._sockets: set[web.WebSocketResponse] = set()
        self._drop_retry: dict[str, float] = {}  # resource -> loop time until which
        self._ws_count = 0

    # -- scripting ---------------------------------------------------------------------
    def add_response(
        self,
        text: str | None = None,
        tool_calls: Sequence[Mapping[str, Any]] | None = None,
        *,
        chunks: Sequence[str] | None = None,
    ) -> None:
        """Queue one LLM completion: ``text``, ``tool_calls=[{name, arguments}]``, or both."""
        if text is None and not tool_calls and chunks is None:
            raise ValueError("add_response() needs text=, tool_calls= or chunks=")
        self.llm.add(
            LLMAnswer(
                text=text if text is not None else ("".join(chunks) if chunks else None),
                tool_calls=tool_calls_from(tool_calls),
                chunks=tuple(chunks) if chunks is not None else None,
            )
        )

    def add_transcript(self, text: str, *, language: str = "en", confidence: float = 1.0) -> None:
        """Queue what the STT hears for the next utterance."""
        self.stt.add(STTAnswer(text=text, language=language, confidence=confidence))

    def add_speech(self, duration: float | None = None) -> None:
        """Queue one synthesis of ``duration`` seconds (default: sized to the text)."""
        self.tts.add(TTSAnswer(duration=duration))

    def add_fault(self, fault: Fault, resource: Resource = "llm") -> None:
        """Queue (or schedule, with ``fault.on(n)``) a fault for ``resource``."""
        self._script(resource).add_fault(fault)

    def _script(self, resource: Resource) -> CallScript[Any]:
        if resource == "llm":
            return self.llm
        if resource == "stt":
            return self.stt
        if resource == "tts":
            return self.tts
        raise ValueError(f"resource must be 'llm', 'stt' or 'tts', got {resource!r}")

    def unused(self) -> dict[str, list[Any]]:
        """Scripted answers and faults never served, by resource (empty dict: all used)."""
        out: dict[str, list[Any]] = {}
        names: tuple[Resource, ...] = ("llm", "stt", "tts")
        for name in names:
            left = self._script(name).unused()
            if left:
                out[name] = left
        return out

    def aiohttp_mock(self, **kwargs: Any) -> aioresponses:
        """An aioresponses (not started: use ``with``) that routes aiohttp HTTP for the
        gateway's URLs to these scripts; see :func:`.aiohttp_mock.aiohttp_mock`."""
        from .aiohttp_mock import aiohttp_mock

        return aiohttp_mock(self, **kwargs)

    # -- addresses ---------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("InferenceGateway is not started; use `async with`")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: what ``LIVEKIT_INFERENCE_URL`` is set to."""
        return f"http://{self._host}:{self.port}/v1"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._host}:{self.port}/v1"

    def base_urls(self) -> tuple[str, ...]:
        """Every base URL answered in-process."""
        return (*CLOUD_INFERENCE_URLS, OPENAI_BASE_URL, self.base_url, *self._extra_base_urls)

    def child_env(self) -> dict[str, str]:
        """Environment for an agent in another process: every model endpoint on loopback."""
        env = {k: v for k, v in _DUMMY_ENV.items() if not os.environ.get(k)}
        env["LIVEKIT_INFERENCE_URL"] = self.base_url
        env["OPENAI_BASE_URL"] = self.base_url
        return env

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> InferenceGateway:
        if self._stack is not None:
            raise RuntimeError("InferenceGateway already started")
        self._closing = asyncio.Event()
        stack = contextlib.AsyncExitStack()
        try:
            await self._start_server()
            stack.push_async_callback(self._stop_server)
            self._install_routes()
            stack.enter_context(self.router)
            if self._set_env:
                self._apply_env()
                stack.callback(self._restore_env)
            if self._http_context:
                await self._enter_http_context(stack)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def aclose(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> InferenceGateway:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _apply_env(self) -> None:
        wanted = {"LIVEKIT_INFERENCE_URL": self.base_url}
        if not (os.environ.get("LIVEKIT_INFERENCE_API_KEY") or os.environ.get("LIVEKIT_API_KEY")):
            wanted["LIVEKIT_API_KEY"] = _DUMMY_ENV["LIVEKIT_API_KEY"]
        if not (
            os.environ.get("LIVEKIT_INFERENCE_API_SECRET") or os.environ.get("LIVEKIT_API_SECRET")
        ):
            wanted["LIVEKIT_API_SECRET"] = _DUMMY_ENV["LIVEKIT_API_SECRET"]
        if not os.environ.get("OPENAI_API_KEY"):
            wanted["OPENAI_API_KEY"] = _DUMMY_ENV["OPENAI_API_KEY"]
        for key, value in wanted.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    async def _enter_http_context(self, stack: contextlib.AsyncExitStack) -> None:
        from livekit.agents.utils import http_context

        var = getattr(http_context, "_ContextVar", None)
        bound = var.get(None) if var is not None else None
        if bound is not None and var is not None and _stale_http_factory(bound):
            # A factory bound on a loop that is gone (e.g. leaked from an earlier test's
            # context; pytest-asyncio skips restoring context vars when a fixture's teardown
            # fails): `open()` would reuse it and every websocket would fail with "Event loop
            # is closed". Hide it for our lifetime.
            token = var.set(None)
            stack.callback(var.reset, token)
        # `open()` is a no-op pass-through when a live context is already bound (a job, or
        # the test's own); otherwise it binds a fresh aiohttp session and closes it on exit.
        await stack.enter_async_context(http_context.open())

    # -- respx (in-process HTTP) -------------------------------------------------------
    def _install_routes(self) -> None:
        for base in self.base_urls():
            prefix = re.escape(base)
            self.router.post(url__regex=rf"^{prefix}/chat/completions(\?.*)?$").mock(
                side_effect=self._respx_llm
            )
            self.router.get(url__regex=rf"^{prefix}/models(\?.*)?$").mock(
                side_effect=self._respx_models
            )

    def _respx_llm(self, request: httpx.Request) -> httpx.Response:
        body = request.content
        reply = self._llm_reply(
            request.method, str(request.url), list(request.headers.items()), body, "respx"
        )
        return self._to_httpx(reply, request)

    def _respx_models(self, request: httpx.Request) -> httpx.Response:
        self._record(
            request.method, str(request.url), list(request.headers.items()), b"", "respx", "models"
        )
        return self._to_httpx(wire.models_reply(self._model_ids), request)

    @staticmethod
    def _to_httpx(reply: wire.HTTPReply, request: httpx.Request) -> httpx.Response:
        if reply.error == "timeout":
            raise httpx.ReadTimeout(reply.error_message or "timed out", request=request)
        if reply.error == "connect":
            raise httpx.ConnectError(reply.error_message or "connection failed", request=request)
        if reply.error == "read":
            stream = _BrokenStream(reply.events, reply.error_message or "dropped", request)
            return httpx.Response(reply.status, headers=dict(reply.headers), stream=stream)
        return httpx.Response(reply.status, headers=dict(reply.headers), content=reply.full_body())

    # -- the LLM, whatever carried the request ------------------------------------------
    def _record(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]] | Mapping[str, str],
        body: bytes,
        transport: Literal["respx", "http", "aiohttp", "ws"],
        resource: Literal["llm", "models", "stt", "tts"],
    ) -> RecordedRequest:
        rec = RecordedRequest(
            method=method.upper(),
            url=url,
            json=_json_or_none(body),
            headers=wire.redact_headers(headers),
            transport=transport,
            resource=resource,
        )
        self.requests.append(rec)
        return rec

    def _llm_reply(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]] | Mapping[str, str],
        body: bytes,
        transport: Literal["respx", "http", "aiohttp", "ws"],
    ) -> wire.HTTPReply:
        rec = self._record(method, url, headers, body, transport, "llm")
        payload = rec.json if isinstance(rec.json, Mapping) else {}
        answer = _draw(self.llm)
        n = self.llm.calls
        if isinstance(answer, _NoAnswer):
            self.unscripted.append(f"llm call {n}")
            return wire.unscripted_reply("LLM", n)
        if isinstance(answer, Fault):
            return wire.fault_reply(payload, answer, n)
        if isinstance(answer, str):  # tolerate script.add("text")
            answer = LLMAnswer(text=answer)
        return wire.chat_completion_reply(payload, answer, n)

    # -- the loopback server ------------------------------------------------------------
    async def _start_server(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._http_llm)
        app.router.add_get("/v1/models", self._http_models)
        app.router.add_get("/v1/tts", self._ws_tts)
        app.router.add_get("/v1/stt", self._ws_stt)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((self._host, 0))
            site = web.SockSite(runner, sock)
            await site.start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._port = int(sock.getsockname()[1])
        self._runner = runner

    async def _stop_server(self) -> None:
        self._closing.set()
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _http_llm(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        reply = self._llm_reply(
            request.method, str(request.url), list(request.headers.items()), body, "http"
        )
        return await self._serve_http(request, reply)

    async def _http_models(self, request: web.Request) -> web.StreamResponse:
        self._record(
            request.method, str(request.url), list(request.headers.items()), b"", "http", "models"
        )
        return await self._serve_http(request, wire.models_reply(self._model_ids))

    async def _serve_http(self, request: web.Request, reply: wire.HTTPReply) -> web.StreamResponse:
        if reply.error == "timeout":
            await _hold(request, self._closing)
            return web.Response(status=504)
        if reply.error == "connect":
            # the connection exists already; dropping it unanswered is the closest a server
            # gets to "could not connect" (the client sees a server disconnect)
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=502)
        if not reply.streamed:
            return web.Response(status=reply.status, body=reply.body, headers=dict(reply.headers))
        resp = web.StreamResponse(status=reply.status, headers=dict(reply.headers))
        await resp.prepare(request)
        for event in reply.events:
            await resp.write(event)
        if reply.error == "read":
            if request.transport is not None:
                request.transport.abort()
            return resp
        await resp.write_eof()
        return resp

    async def _handshake(
        self, request: web.Request, resource: Literal["stt", "tts"]
    ) -> web.StreamResponse | None:
        """Record the upgrade request; answer it when a handshake fault is next (None:
        go ahead and upgrade)."""
        self._record_ws(request, resource)
        loop = asyncio.get_running_loop()
        if self._drop_retry.pop(resource, 0.0) > loop.time():
            # aiohttp retries an idempotent request (the upgrade GET) once when the server
            # drops it; a scripted connection_error is one failed *connection attempt*, as a
            # refused connection would be, so its immediate retry is dropped too.
            self._abort(request)
            return web.Response(status=502)
        script: CallScript[Any] = self.tts if resource == "tts" else self.stt
        fault = _peek(script)
        if not (isinstance(fault, Fault) and _handshake_fault(fault)):
            return None
        script.next()
        if fault.kind == "timeout":
            await _hold(request, self._closing)
            return web.Response(status=504)
        if fault.kind == "connection_error":
            self._drop_retry[resource] = loop.time() + 2.0
            self._abort(request)
            return web.Response(status=502)
        reply = wire.fault_reply({}, fault, 0)
        return web.Response(status=reply.status, body=reply.body, headers=dict(reply.headers))

    def _record_ws(self, request: web.Request, resource: Literal["stt", "tts"]) -> None:
        self._record(
            request.method,
            str(request.url).replace("http", "ws", 1),
            list(request.headers.items()),
            b"",
            "ws",
            resource,
        )

    async def _open_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        return ws

    @staticmethod
    def _abort(request: web.Request) -> None:
        if request.transport is not None:
            request.transport.abort()

    @staticmethod
    def _error_frame(fault: Fault, session_id: str) -> str:
        frame: dict[str, Any] = {
            "type": "error",
            "session_id": session_id,
            "code": fault.status if fault.status is not None else 400,
            "message": fault.message,
        }
        if fault.body:
            frame["error"] = dict(fault.body)
        return json.dumps(frame)

    # -- TTS ---------------------------------------------------------------------------
    async def _ws_tts(self, request: web.Request) -> web.StreamResponse:
        refused = await self._handshake(request, "tts")
        if refused is not None:
            return refused
        ws = await self._open_ws(request)
        self._ws_count += 1
        session_id = request.headers.get("X-LiveKit-Session-ID") or f"agentsim_tts_{self._ws_count}"
        sample_rate = 24000
        pending: list[str] = []
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                kind = data.get("type")
                if kind == "session.create":
                    sample_rate = int(data.get("sample_rate") or sample_rate)
                    await ws.send_str(
                        json.dumps({"type": "session.created", "session_id": session_id})
                    )
                elif kind == "input_transcript":
                    pending.append(str(data.get("transcript", "")))
                elif kind == "session.flush":
                    text = "".join(pending).strip()
                    pending.clear()
                    if not text:  # empty input: the client still waits for `done`
                        await ws.send_str(json.dumps({"type": "done", "session_id": session_id}))
                        continue
                    if not await self._synthesize(request, ws, session_id, text, sample_rate):
                        break
                elif kind == "session.close":
                    break
        finally:
            self._sockets.discard(ws)
        return ws

    async def _synthesize(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        session_id: str,
        text: str,
        sample_rate: int,
    ) -> bool:
        """Answer one synthesis; False when the connection was dropped."""
        self.synthesized.append(text)
        answer = _draw(self.tts)
        fault = answer if isinstance(answer, Fault) else None
        if fault is not None and fault.kind == "timeout":
            return True  # say nothing: the client's receive timeout fires
        if fault is not None and fault.kind == "connection_error":
            self._abort(request)
            return False
        if fault is not None and fault.kind != "disconnect_mid_stream":
            await ws.send_str(self._error_frame(fault, session_id))
            return True
        duration = self._tts_seconds_per_char * len(text)
        if isinstance(answer, TTSAnswer) and answer.duration is not None:
            duration = answer.duration
        pcm = _pcm(max(duration, 0.01), sample_rate)
        step = sample_rate // 10 * 2  # 100 ms per output_audio message
        frames = [pcm[i : i + step] for i in range(0, len(pcm), step)]
        if fault is not None:  # disconnect_mid_stream
            frames = frames[: fault.after_chunks]
        for frame in frames:
            await ws.send_str(
                json.dumps(
                    {
                        "type": "output_audio",
                        "session_id": session_id,
                        "audio": base64.b64encode(frame).decode(),
                    }
                )
            )
        if fault is not None:
            self._abort(request)
            return False
        await ws.send_str(json.dumps({"type": "done", "session_id": session_id}))
        return True

    # -- STT ---------------------------------------------------------------------------
    async def _ws_stt(self, request: web.Request) -> web.StreamResponse:
        refused = await self._handshake(request, "stt")
        if refused is not None:
            return refused
        ws = await self._open_ws(request)
        self._ws_count += 1
        session_id = request.headers.get("X-LiveKit-Session-ID") or f"agentsim_stt_{self._ws_count}"
        state = _Utterances(self, ws, request, session_id, self._stt_endpoint_silence)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    if not await state.audio(msg.data):
                        break
                    continue
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                kind = data.get("type")
                if kind == "session.create":
                    settings = data.get("settings") or {}
                    state.sample_rate = int(settings.get("sample_rate") or state.sample_rate)
                    await ws.send_str(
                        json.dumps({"type": "session.created", "session_id": session_id})
                    )
                elif kind == "input_audio":
                    if not await state.audio(base64.b64decode(data.get("audio", ""))):
                        break
                elif kind == "session.finalize":
                    if not await state.end_utterance():
                        break
                    await ws.send_str(
                        json.dumps({"type": "session.finalized", "session_id": session_id})
                    )
                elif kind == "session.close":
                    await ws.send_str(
                        json.dumps({"type": "session.closed", "session_id": session_id})
                    )
                    break
        finally:
            self._sockets.discard(ws)
        return ws


class _Utterances:
    """Server-side endpointing for the fake STT: an utterance starts at the first voiced
    audio (RMS above a quiet threshold) and ends after ``silence`` seconds of quiet audio
    or at ``session.finalize``. The scripted answer is drawn at onset (so a fault hits the
    utterance it belongs to), an interim transcript follows, the final one at the end."""

    VOICED_RMS = 300.0

    def __init__(
        self,
        gateway: InferenceGateway,
        ws: web.WebSocketResponse,
        request: web.Request,
        session_id: str,
        silence: float,
    ) -> None:
        self.gateway = gateway
        self.ws = ws
        self.request = request
        self.session_id = session_id
        self.silence = silence
        self.sample_rate = 16000
        self.clock = 0.0  # seconds of audio received
        self.start: float | None = None
        self.quiet = 0.0
        self.answer: STTAnswer | Fault | _NoAnswer | None = None

    async def audio(self, pcm: bytes) -> bool:
        seconds = len(pcm) / 2 / self.sample_rate
        voiced = _rms(pcm) > self.VOICED_RMS
        at = self.clock
        self.clock += seconds
        if voiced:
            self.quiet = 0.0
            if self.start is None:
                return await self._begin(at)
            return True
        if self.start is not None:
            self.quiet += seconds
            if self.quiet >= self.silence:
                return await self.end_utterance()
        return True

    async def _begin(self, at: float) -> bool:
        self.start = at
        self.answer = answer = _draw(self.gateway.stt)
        if isinstance(answer, Fault):
            return await self._fault(answer)
        if isinstance(answer, STTAnswer):
            words = answer.text.split()
            interim = " ".join(words[: max(1, len(words) // 2)])
            await self._send("interim_transcript", answer, interim, at, 0.0)
        return True

    async def end_utterance(self) -> bool:
        start, answer = self.start, self.answer
        self.start, self.answer, self.quiet = None, None, 0.0
        if start is None or answer is None:
            return True
        if isinstance(answer, _NoAnswer):
            self.gateway.unscripted.append(f"stt call {self.gateway.stt.calls}")
            return True
        if isinstance(answer, Fault):
            return True  # already served at onset
        self.gateway.transcribed.append(answer.text)
        await self._send("final_transcript", answer, answer.text, start, self.clock - start)
        return True

    async def _fault(self, fault: Fault) -> bool:
        if fault.kind == "timeout":
            return True  # the transcript simply never comes
        if fault.kind == "connection_error":
            InferenceGateway._abort(self.request)
            return False
        if fault.kind == "disconnect_mid_stream":
            InferenceGateway._abort(self.request)
            return False
        await self.ws.send_str(InferenceGateway._error_frame(fault, self.session_id))
        return True

    async def _send(
        self, kind: str, answer: STTAnswer, text: str, start: float, duration: float
    ) -> None:
        words = text.split()
        step = duration / len(words) if words and duration > 0 else 0.0
        await self.ws.send_str(
            json.dumps(
                {
                    "type": kind,
                    "session_id": self.session_id,
                    "transcript": text,
                    "language": answer.language,
                    "confidence": answer.confidence,
                    "start": start,
                    "duration": duration,
                    "words": [
                        {
                            "word": w,
                            "start": start + i * step,
                            "end": start + (i + 1) * step,
                            "confidence": answer.confidence,
                        }
                        for i, w in enumerate(words)
                    ],
                }
            )
        )
