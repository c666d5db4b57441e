"""respx for clients built on ``httpx2`` (openai >= 3, livekit-agents 1.8), without aliasing.

The problem
-----------
openai 3.x and livekit-agents 1.8 import ``httpx2``, a renamed fork of ``httpx`` with its own
classes. respx patches ``httpx`` (``httpx._client.AsyncClient._transport_for_url`` or the
``httpcore`` pool) and builds ``httpx.Request``/``httpx.Response`` objects, so by default it
never sees an ``httpx2`` request. ``httpx2.alias_httpx()`` makes ``import httpx`` return
``httpx2``, but only if it runs before *anything* imports ``httpx`` (it raises otherwise), and
in a pytest process respx's own ``pytest11`` entry point imports ``httpx`` before any other
plugin can run: plugin load order follows installed-distribution order, which we do not
control. An import-time ``prepare_httpx()`` hook would therefore be fragile, so we do not
need or provide one.

The approach
------------
respx lets a router choose its patcher by name (``MockRouter(using=...)``, looked up in
``respx.mocks.Mocker.registry``; subclasses register themselves). :class:`Httpx2Mocker`
(``using="httpx2"``) patches ``_transport_for_url`` on ``httpx2.Client``/``AsyncClient``
(and on ``httpx.Client``/``AsyncClient`` too, so livekit-agents 1.6, whose clients are real
``httpx``, is served by the same router). For an ``httpx2`` request it returns a bridge
transport that:

* converts the ``httpx2.Request`` to an ``httpx.Request`` and asks the registered respx
  routers, exactly as respx's own mocker does, so routes, side effects, ``pass_through()``,
  ``router.calls`` and ``assert_all_called`` all behave as documented by respx;
* converts the ``httpx.Response`` back to an ``httpx2.Response``, streaming its body lazily
  (an SSE generator keeps streaming chunk by chunk);
* re-raises ``httpx`` transport exceptions (raised by side effects or while streaming) as the
  same-named ``httpx2`` exception with the ``httpx2`` request attached, because the clients
  catch ``httpx2.TimeoutException`` etc. by class;
* on ``PassThrough`` (no mock wanted) hands the original request to the real ``httpx2``
  transport, so unmocked hosts reach the socket layer, where the offline guard names them.

It works whatever the import order, with or without ``alias_httpx()`` (when ``httpx`` *is*
``httpx2`` the conversions are skipped), and patches nothing but the one method respx
itself patches. Importing this module registers the mocker; nothing else is global.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, ClassVar, cast

import httpx
import httpx2
import respx
from respx.mocks import Mocker
from respx.models import AllMockedAssertionError, PassThrough
from respx.transports import TryTransport

__all__ = ["MOCKER_NAME", "Httpx2Mocker", "PassUnmatchedRouter", "to_httpx2_error"]

MOCKER_NAME = "httpx2"

_HTTPX2_TARGETS = ("httpx2._client.Client", "httpx2._client.AsyncClient")
_HTTPX_TARGETS = ("httpx._client.Client", "httpx._client.AsyncClient")
# Response extensions that mean the same thing in both libraries; others (network
# streams, trace hooks) are transport-specific and must not cross over.
_PORTABLE_EXTENSIONS = ("http_version", "reason_phrase")


# True when `httpx2.alias_httpx()` ran before anything imported httpx (then `httpx` *is*
# `httpx2` and no conversion is needed). Fixed from here on: once httpx is imported (this
# module just did), alias_httpx() refuses to run.
_ALIASED: bool = cast(Any, httpx) is httpx2


def to_httpx2_error(exc: BaseException, request: httpx2.Request) -> BaseException:
    """The ``httpx2`` twin of an ``httpx`` exception (same class name), else ``exc``."""
    if _ALIASED or not isinstance(exc, httpx.HTTPError):
        return exc
    twin = getattr(httpx2, type(exc).__name__, None)
    if isinstance(twin, type) and issubclass(twin, httpx2.RequestError):
        new = twin(str(exc), request=request)
        new.__cause__ = exc
        return new
    return exc


def _to_httpx_request(request: httpx2.Request, body: bytes) -> httpx.Request:
    return httpx.Request(
        request.method,
        str(request.url),
        headers=list(request.headers.raw),
        content=body,
    )


class _AsyncBodyBridge(httpx2.AsyncByteStream):
    """Streams an ``httpx`` response body into ``httpx2``, translating errors."""

    def __init__(self, source: Any, request: httpx2.Request) -> None:
        self._source = source
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._source:
                yield chunk
        except httpx.HTTPError as exc:
            raise to_httpx2_error(exc, self._request) from exc

    async def aclose(self) -> None:
        close = getattr(self._source, "aclose", None)
        if close is not None:
            await close()


class _SyncBodyBridge(httpx2.SyncByteStream):
    def __init__(self, source: Any, request: httpx2.Request) -> None:
        self._source = source
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._source
        except httpx.HTTPError as exc:
            raise to_httpx2_error(exc, self._request) from exc

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()


def _to_httpx2_response(
    response: httpx.Response, request: httpx2.Request, *, is_async: bool
) -> httpx2.Response:
    extensions = {k: v for k, v in response.extensions.items() if k in _PORTABLE_EXTENSIONS}
    headers = list(response.headers.raw)
    if hasattr(response, "_content"):
        # respx pre-reads plain bodies; `.content` is decoded, so drop the encoding header
        # or httpx2 would try to decompress it a second time
        headers = [(k, v) for k, v in headers if k.lower() != b"content-encoding"]
        return httpx2.Response(
            response.status_code,
            headers=headers,
            content=response.content,
            request=request,
            extensions=extensions,
        )
    stream: httpx2.AsyncByteStream | httpx2.SyncByteStream = (
        _AsyncBodyBridge(response.stream, request)
        if is_async
        else _SyncBodyBridge(response.stream, request)
    )
    return httpx2.Response(
        response.status_code,
        headers=headers,
        stream=stream,
        request=request,
        extensions=extensions,
    )


class _Httpx2BridgeTransport(httpx2.AsyncBaseTransport, httpx2.BaseTransport):
    """What a patched ``httpx2`` client sends through: respx routers first, then the wire."""

    def __init__(self, mocker: type[Httpx2Mocker], real: Any) -> None:
        self._mocker = mocker
        self._real = real

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        if _ALIASED:
            probe: Any = request
        else:
            probe = _to_httpx_request(request, body)
        try:
            response = await self._mocker.async_handler(probe)
        except PassThrough:
            return cast(httpx2.Response, await self._real.handle_async_request(request))
        except httpx.HTTPError as exc:
            raise to_httpx2_error(exc, request) from exc
        if _ALIASED:
            return cast(httpx2.Response, response)
        return _to_httpx2_response(response, request, is_async=True)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        body = request.read()
        probe: Any = request if _ALIASED else _to_httpx_request(request, body)
        try:
            response = self._mocker.handler(probe)
        except PassThrough:
            return cast(httpx2.Response, self._real.handle_request(request))
        except httpx.HTTPError as exc:
            raise to_httpx2_error(exc, request) from exc
        if _ALIASED:
            return cast(httpx2.Response, response)
        return _to_httpx2_response(response, request, is_async=False)

    async def aclose(self) -> None:
        # the real transport belongs to the client, which closes it itself
        return None

    def close(self) -> None:
        return None


class Httpx2Mocker(Mocker):
    """respx mocker for ``httpx2`` clients (and plain ``httpx`` ones): ``using="httpx2"``.

    respx registers mockers by name, once: when this module is imported again (pytester's
    in-process runs drop modules an inner run imported), the copy stays unnamed and
    :data:`HTTPX2_MOCKER` is the class respx knows.
    """

    # the name registers the class with respx (in __init_subclass__), so only the first
    # import of this module may give it one
    if MOCKER_NAME not in Mocker.registry:
        name: ClassVar[str] = MOCKER_NAME
    targets: ClassVar[list[str]] = []
    target_methods: ClassVar[list[str]] = ["_transport_for_url"]

    @classmethod
    def start(cls) -> None:
        if cls._patches:
            return
        # with httpx aliased to httpx2 the httpx targets are the same classes: patch once
        cls.targets = list(_HTTPX2_TARGETS) + ([] if _ALIASED else list(_HTTPX_TARGETS))
        super().start()

    # "Unmatched goes to the network" is opt-in per router (PassUnmatchedRouter, used by the
    # gateway so the offline guard can name the host, or so --agentsim-allow-network lets
    # it through); plain `respx.mock(using="httpx2")` keeps respx's AllMockedAssertionError.
    @classmethod
    def _pass_unmatched(cls, request: Any) -> PassThrough | None:
        if any(getattr(r, "pass_unmatched", False) for r in cls.routers):
            return PassThrough("unmatched", request=request, origin=cast(Any, None))
        return None

    @classmethod
    async def async_handler(cls, httpx_request: Any) -> Any:
        try:
            return await super().async_handler(httpx_request)  # type: ignore[no-untyped-call]
        except AllMockedAssertionError:
            passthrough = cls._pass_unmatched(httpx_request)
            if passthrough is None:
                raise
            raise passthrough from None

    @classmethod
    def handler(cls, httpx_request: Any) -> Any:
        try:
            return super().handler(httpx_request)  # type: ignore[no-untyped-call]
        except AllMockedAssertionError:
            passthrough = cls._pass_unmatched(httpx_request)
            if passthrough is None:
                raise
            raise passthrough from None

    @classmethod
    def mock(cls, spec: Callable[..., Any]) -> Callable[..., Any]:
        def _transport_for_url(self: Any, *args: Any, **kwargs: Any) -> Any:
            real = spec(self, *args, **kwargs)
            if isinstance(self, (httpx2.Client, httpx2.AsyncClient)):
                return _Httpx2BridgeTransport(cls, real)
            # a plain httpx client: exactly what respx's own HTTPX mocker does
            handler = (
                cls.async_handler if inspect.iscoroutinefunction(self.request) else cls.handler
            )
            return TryTransport([httpx.MockTransport(handler), real])

        return _transport_for_url


HTTPX2_MOCKER: type[Mocker] = Mocker.registry[MOCKER_NAME]
"""The ``httpx2`` mocker respx uses (:class:`Httpx2Mocker` of this module's first import)."""


class PassUnmatchedRouter(respx.MockRouter):
    """A respx router whose unmatched requests go to the real transport instead of raising
    ``AllMockedAssertionError`` (with :class:`Httpx2Mocker` only)."""

    pass_unmatched = True
