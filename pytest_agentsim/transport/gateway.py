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
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import socket
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx
from aiohttp import web

from ..answers import LLMAnswer, STTAnswer, TTSAnswer, tool_calls_from
from ..env import DUMMY_CREDENTIALS, ScopedEnv, loopback_models
from ..faults import CallScript, Fault
from . import wire
from .aiohttp_mock import AgentsimAioresponses, aiohttp_mock
from .respx_bridge import MOCKER_NAME, PassUnmatchedRouter
from .scripted import NoAnswer, draw
from .speech import SpeechSockets, abort, hold

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


Resource = Literal["llm", "stt", "tts"]
_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """One request the gateway saw. ``headers`` are lower-cased, credentials redacted."""

    method: str
    url: str
    json: Any
    headers: Mapping[str, str]
    transport: wire.Carrier
    """``respx`` (in-process httpx/httpx2), ``http`` (loopback server), ``aiohttp``
    (aioresponses), ``ws`` (websocket handshake on the loopback server)."""
    resource: wire.RequestKind


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


class InferenceGateway(SpeechSockets):
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
        port: the port to listen on when free (else any free one; 0: any).
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
        port: int = 0,
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
        self.served: list[tuple[LLMAnswer, frozenset[str]]] = []
        """LLM answers served, each with the tool names the request offered."""
        self.router = PassUnmatchedRouter(
            using=MOCKER_NAME, assert_all_called=False, assert_all_mocked=True
        )
        self._extra_base_urls = tuple(u.rstrip("/") for u in extra_base_urls)
        self._set_env = set_env
        self._http_context = http_context
        self.model_ids = tuple(model_ids)
        self._tts_seconds_per_char = tts_seconds_per_char
        self._stt_endpoint_silence = stt_endpoint_silence
        self._host = host
        self._wanted_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._env = ScopedEnv()
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
        self.script(resource).add_fault(fault)

    def script(self, resource: str) -> CallScript[Any]:
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
            left = self.script(name).unused()
            if left:
                out[name] = left
        return out

    def aiohttp_mock(self, **kwargs: Any) -> AgentsimAioresponses:
        """An aioresponses (not started: use ``with``) that routes aiohttp HTTP for the
        gateway's URLs to these scripts; see :func:`.aiohttp_mock.aiohttp_mock`."""
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
        return loopback_models(self.base_url)

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
                stack.callback(self._env.restore)
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
        env = self._env
        env.set("LIVEKIT_INFERENCE_URL", self.base_url)
        # inference.* read LIVEKIT_INFERENCE_API_* first, then LIVEKIT_API_*
        for short in ("KEY", "SECRET"):
            if not os.environ.get(f"LIVEKIT_INFERENCE_API_{short}"):
                env.default(f"LIVEKIT_API_{short}", DUMMY_CREDENTIALS[f"LIVEKIT_API_{short}"])
        env.default("OPENAI_API_KEY", DUMMY_CREDENTIALS["OPENAI_API_KEY"])

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
        reply = self.llm_reply(
            request.method, str(request.url), list(request.headers.items()), body, "respx"
        )
        return self._to_httpx(reply, request)

    def _respx_models(self, request: httpx.Request) -> httpx.Response:
        self.record_request(
            request.method, str(request.url), list(request.headers.items()), b"", "respx", "models"
        )
        return self._to_httpx(wire.models_reply(self.model_ids), request)

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
    def record_request(
        self,
        method: str,
        url: str,
        headers: wire.Headers,
        body: bytes,
        transport: wire.Carrier,
        resource: wire.RequestKind,
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

    def llm_reply(
        self,
        method: str,
        url: str,
        headers: wire.Headers,
        body: bytes,
        transport: wire.Carrier,
    ) -> wire.HTTPReply:
        rec = self.record_request(method, url, headers, body, transport, "llm")
        payload = rec.json if isinstance(rec.json, Mapping) else {}
        answer = draw(self.llm)
        n = self.llm.calls
        if isinstance(answer, NoAnswer):
            self.unscripted.append(f"llm call {n}")
            return wire.unscripted_reply("LLM", n)
        if isinstance(answer, Fault):
            return wire.fault_reply(payload, answer, n)
        if isinstance(answer, str):  # tolerate script.add("text")
            answer = LLMAnswer(text=answer)
        self.served.append((answer, wire.offered_tools(payload)))
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
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:  # the port asked for (the same across runs), else any free one
                sock.bind((self._host, self._wanted_port))
            except OSError:
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
        reply = self.llm_reply(
            request.method, str(request.url), list(request.headers.items()), body, "http"
        )
        return await self._serve_http(request, reply)

    async def _http_models(self, request: web.Request) -> web.StreamResponse:
        self.record_request(
            request.method, str(request.url), list(request.headers.items()), b"", "http", "models"
        )
        return await self._serve_http(request, wire.models_reply(self.model_ids))

    async def _serve_http(self, request: web.Request, reply: wire.HTTPReply) -> web.StreamResponse:
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.error == "timeout":
            await hold(request, self._closing)
            return web.Response(status=504)
        if reply.error == "connect":
            # the connection exists already; dropping it unanswered is the closest a server
            # gets to "could not connect" (the client sees a server disconnect)
            abort(request)
            return web.Response(status=502)
        if not reply.streamed:
            return web.Response(status=reply.status, body=reply.body, headers=dict(reply.headers))
        resp = web.StreamResponse(status=reply.status, headers=dict(reply.headers))
        await resp.prepare(request)
        for event in reply.events:
            await resp.write(event)
        if reply.error == "read":
            abort(request)
            return resp
        await resp.write_eof()
        return resp
