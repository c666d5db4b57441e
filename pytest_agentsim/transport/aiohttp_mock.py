"""aioresponses that works on aiohttp 3.14, optionally routed to an InferenceGateway.

Why a subclass: aioresponses 0.7.9 builds responses as ``ClientResponse(method, url,
writer=None, ...)``, but aiohttp 3.14 made ``stream_writer`` a required keyword (it reads
``stream_writer.output_size`` when ``writer`` is None), so every mocked request dies with a
``TypeError``. aioresponses lets each route choose its ``response_class``; our
:class:`CompatClientResponse` supplies a null stream writer when aiohttp wants one, and
:class:`AgentsimAioresponses` makes it the default. aiohttp itself is not patched.

Routing to a gateway (:func:`aiohttp_mock` with a gateway): the same scripts answer
``POST {base}/chat/completions`` and ``GET {base}/models`` for every base the gateway
answers in-process, and a websocket handshake (``ws_connect``) to the *cloud* gateway's
``/tts`` or ``/stt`` is answered with the next TTS/STT fault's status, body and headers
(aiohttp raises ``WSServerHandshakeError`` with that status; it drops the body). Frames
cannot be carried by aioresponses, so a handshake that should succeed raises a connection
error telling you to use the loopback gateway URL. Everything unmatched, including
websockets to the loopback gateway, passes through to the real connector (where the
offline guard applies).

How faults look on this transport: status faults are real HTTP responses; ``timeout``
raises ``aiohttp.ServerTimeoutError`` (an ``asyncio.TimeoutError``); ``connection_error``
raises ``aiohttp.ClientConnectorError``; ``disconnect_mid_stream`` delivers its chunks,
then the next read raises ``aiohttp.ClientPayloadError``, as a dropped connection does.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Mapping
from typing import Any, Protocol, cast

import aiohttp
from aiohttp import ClientResponse
from aiohttp.client_reqrep import ConnectionKey
from aioresponses import CallbackResult, aioresponses
from yarl import URL

from ..faults import CallScript, Fault
from . import wire
from .scripted import handshake_fault


class ServedScripts(Protocol):
    """What the aioresponses routes need of a gateway (:class:`~.gateway.InferenceGateway`)."""

    tts: CallScript[Any]
    stt: CallScript[Any]
    model_ids: tuple[str, ...]

    @property
    def base_url(self) -> str: ...

    def base_urls(self) -> tuple[str, ...]: ...

    def record_request(
        self,
        method: str,
        url: str,
        headers: wire.Headers,
        body: bytes,
        transport: wire.Carrier,
        resource: wire.RequestKind,
    ) -> Any: ...

    def llm_reply(
        self,
        method: str,
        url: str,
        headers: wire.Headers,
        body: bytes,
        transport: wire.Carrier,
    ) -> wire.HTTPReply: ...


__all__ = ["AgentsimAioresponses", "CompatClientResponse", "aiohttp_mock"]

_NEEDS_STREAM_WRITER = "stream_writer" in inspect.signature(ClientResponse.__init__).parameters


class _NullStreamWriter:
    """The one thing ClientResponse reads from a finished request's writer."""

    output_size = 0


class CompatClientResponse(ClientResponse):
    """``ClientResponse`` constructible the way aioresponses 0.7.9 does, on any aiohttp."""

    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        if _NEEDS_STREAM_WRITER and kwargs.get("stream_writer") is None:
            kwargs["stream_writer"] = _NullStreamWriter()
        super().__init__(method, url, **kwargs)


class _DroppingStreamReader(aiohttp.StreamReader):
    """A body whose connection drops after the data already received: reading past the
    buffered chunks raises ``ClientPayloadError`` instead of reaching end of stream."""

    __slots__ = ()  # same layout as StreamReader, so an instance can be switched over

    def feed_eof(self) -> None:
        return None  # the connection dropped: there is no clean end of stream

    async def _wait(self, func_name: str) -> None:
        raise aiohttp.ClientPayloadError(
            "Response payload is not completed: connection dropped (scripted disconnect_mid_stream)"
        )


class _DroppedResponse(CompatClientResponse):
    """Response whose body stream breaks after its last chunk (see the reader above)."""

    @property
    def content(self) -> aiohttp.StreamReader:
        return cast(aiohttp.StreamReader, self.__dict__["_agentsim_content"])

    @content.setter
    def content(self, reader: aiohttp.StreamReader) -> None:
        # aioresponses assigns a fresh StreamReader, then feeds the body and EOF into it;
        # switching that (our own, just-built) object to the dropping subclass keeps the
        # data and turns the EOF into a dropped connection.
        reader.__class__ = _DroppingStreamReader
        self.__dict__["_agentsim_content"] = reader


class AgentsimAioresponses(aioresponses):
    """aioresponses whose routes default to :class:`CompatClientResponse`; with a
    ``gateway``, (re)installs the gateway's routes each time it starts (aioresponses
    clears its routes on start)."""

    def __init__(self, gateway: ServedScripts | None = None, **kwargs: Any) -> None:
        self.gateway = gateway
        super().__init__(**kwargs)

    def start(self) -> None:
        super().start()
        if self.gateway is not None:
            _route_gateway(self, self.gateway)

    def add(self, url: Any, method: str = "GET", *args: Any, **kwargs: Any) -> None:
        if kwargs.get("response_class") is None:
            kwargs["response_class"] = CompatClientResponse
        super().add(url, method, *args, **kwargs)


def _connector_error(url: URL, message: str) -> aiohttp.ClientConnectorError:
    key = ConnectionKey(
        url.host or "", url.port, url.scheme in ("https", "wss"), True, None, None, None
    )
    return aiohttp.ClientConnectorError(key, OSError(message))


def _body_of(kwargs: Mapping[str, Any]) -> bytes:
    if kwargs.get("json") is not None:
        return json.dumps(kwargs["json"]).encode()
    data = kwargs.get("data")
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    return b""


def _headers_of(kwargs: Mapping[str, Any]) -> list[tuple[str, str]]:
    headers = kwargs.get("headers") or {}
    items = headers.items() if hasattr(headers, "items") else headers
    return [(str(k), str(v)) for k, v in items]


def _render(url: URL, reply: wire.HTTPReply) -> CallbackResult:
    if reply.error == "timeout":
        raise aiohttp.ServerTimeoutError(reply.error_message or "timed out")
    if reply.error == "connect":
        raise _connector_error(url, reply.error_message or "connection failed")
    headers = dict(reply.headers)
    content_type = headers.pop("content-type", "application/json")
    return CallbackResult(
        status=reply.status,
        body=reply.full_body(),
        content_type=content_type,
        headers=headers,
        response_class=_DroppedResponse if reply.error == "read" else CompatClientResponse,
    )


def _route_gateway(mock: AgentsimAioresponses, gateway: ServedScripts) -> None:
    def llm(url: URL, **kwargs: Any) -> CallbackResult:
        reply = gateway.llm_reply(
            "POST", str(url), _headers_of(kwargs), _body_of(kwargs), "aiohttp"
        )
        return _render(url, reply)

    def models(url: URL, **kwargs: Any) -> CallbackResult:
        gateway.record_request("GET", str(url), _headers_of(kwargs), b"", "aiohttp", "models")
        return _render(url, wire.models_reply(gateway.model_ids))

    def handshake(url: URL, **kwargs: Any) -> CallbackResult:
        tts = url.path.endswith("/tts")
        gateway.record_request(
            "GET", str(url), _headers_of(kwargs), b"", "aiohttp", "tts" if tts else "stt"
        )
        script: CallScript[Any] = gateway.tts if tts else gateway.stt
        head = script.peek()
        if isinstance(head, Fault) and handshake_fault(head):
            script.next()
            if head.kind == "timeout":
                raise aiohttp.ServerTimeoutError(head.message)
            if head.kind == "connection_error":
                raise _connector_error(url, head.message)
            return _render(url, wire.fault_reply({}, head, 0))
        raise _connector_error(
            url,
            "pytest-agentsim: aioresponses cannot carry websocket frames; point the client "
            f"at the loopback gateway ({gateway.base_url}, what LIVEKIT_INFERENCE_URL is set "
            "to while the gateway runs) instead of an explicit cloud base_url",
        )

    for base in gateway.base_urls():
        prefix = re.escape(base)
        mock.post(re.compile(rf"^{prefix}/chat/completions(\?.*)?$"), callback=llm, repeat=True)
        mock.get(re.compile(rf"^{prefix}/models(\?.*)?$"), callback=models, repeat=True)
    ws_hosts = "|".join(
        re.escape(u.split("://", 1)[1])
        for u in gateway.base_urls()
        if not u.startswith("http://127.") and "localhost" not in u
    )
    mock.get(
        re.compile(rf"^wss?://({ws_hosts})/(tts|stt)(\?.*)?$"), callback=handshake, repeat=True
    )


def aiohttp_mock(gateway: ServedScripts | None = None, **kwargs: Any) -> AgentsimAioresponses:
    """A working aioresponses for aiohttp 3.14 (not started: use ``with``).

    With ``gateway``, it answers the gateway's LLM URLs from its scripts and refuses cloud
    websocket handshakes with scripted faults; unmatched requests pass through (set
    ``passthrough_unmatched=False`` for aioresponses' own "Connection refused" instead).
    """
    if gateway is not None:
        kwargs.setdefault("passthrough_unmatched", True)
    return AgentsimAioresponses(gateway, **kwargs)
