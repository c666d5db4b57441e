"""Offline guard: a test that tries to reach a non-loopback host fails, naming the host.

Choke points (the narrowest that every Python client stack goes through):

* ``socket.getaddrinfo`` -- name resolution. asyncio's ``loop.getaddrinfo`` looks the
  function up on the ``socket`` module at call time (and runs it in the default executor),
  so aiohttp, anyio/httpcore2 (httpx2, openai), websockets and blocking clients all pass
  here first. Blocking it turns an offline DNS failure (which can take seconds and reads as
  "Temporary failure in name resolution") into an immediate :class:`OfflineError`.
* ``socket.socket.connect`` / ``connect_ex`` -- for IP literals, which asyncio and most
  clients connect to without resolving. ``socket.socket`` is the Python subclass of the C
  socket type, so shadowing the methods there affects every socket created by Python code
  (asyncio's selector loop calls ``sock.connect`` on these objects) and nothing else.

Allowed: loopback (``127.0.0.0/8``, ``::1``, ``localhost``), unix sockets, and hosts the
caller lists. respx- and aioresponses-mocked requests never open sockets, so they pass.

:class:`OfflineError` subclasses ``ConnectionError`` (an ``OSError``) on purpose: client
libraries already turn ``OSError`` into their own connection errors and keep it as the
``__cause__`` (httpcore2 -> ``httpx2.ConnectError`` -> ``openai.APIConnectionError`` ->
livekit ``APIConnectionError``; aiohttp -> ``ClientConnectorError``), so the agent sees an
ordinary connection failure and :func:`find_offline_error` can dig the original out.
Because an agent may swallow that error, every blocked attempt is also recorded on the
guard (``guard.blocked``) so a harness can fail the test anyway.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

__all__ = ["NetworkGuard", "OfflineError", "block_network", "find_offline_error", "is_loopback"]

_HOW_TO = (
    "Tests run offline: serve it with the inference_gateway fixture or a fake; "
    "pass --agentsim-allow-network to opt out."
)


class OfflineError(ConnectionError):
    """A connection to a non-loopback host was attempted while the network is blocked."""

    def __init__(self, host: str, port: int | None, *, via: str) -> None:
        self.host = host
        self.port = port
        self.via = via
        self.url: str | None = None
        """Full request URL when :func:`find_offline_error` could recover it."""
        super().__init__(self._message())

    @property
    def target(self) -> str:
        """``https://host`` for 443, ``http://host`` for 80, else ``host:port``."""
        if self.port == 443:
            return f"https://{self.host}"
        if self.port == 80:
            return f"http://{self.host}"
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def _message(self) -> str:
        where = self.url or self.target
        return (
            f"pytest-agentsim blocked network access to {where} "
            f"({self.host}:{self.port}, {self.via}). {_HOW_TO}"
        )

    def __str__(self) -> str:
        # recomputed so a URL recovered later by find_offline_error shows up
        return self._message()


def is_loopback(host: str) -> bool:
    """True for ``localhost``, ``127.0.0.0/8``, ``::1`` (and IPv4-mapped loopback)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        addr = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback


def _port_of(port: Any) -> int | None:
    if isinstance(port, int):
        return port
    if isinstance(port, (str, bytes)):
        text = port.decode() if isinstance(port, bytes) else port
        if text.isdigit():
            return int(text)
        try:
            return socket.getservbyname(text)
        except OSError:
            return None
    return None


# Resolving these is for binding a server, never for reaching another host.
_LOCAL_BIND_NAMES = frozenset({"", "0.0.0.0", "::"})

# -- global patch state (one set of patches however many guards are active) -----------

_lock = threading.Lock()
_active: list[NetworkGuard] = []
_orig_getaddrinfo: Callable[..., Any] | None = None
_orig_connect: Callable[..., Any] | None = None
_orig_connect_ex: Callable[..., Any] | None = None


def _check(host: Any, port: Any, via: str) -> None:
    if host is None:
        return
    name = host.decode() if isinstance(host, bytes) else str(host)
    with _lock:
        guards = list(_active)
    if not guards or is_loopback(name) or name in _LOCAL_BIND_NAMES:
        return
    if any(g.allows(name) for g in guards):
        return
    err = OfflineError(name, _port_of(port), via=via)
    for g in guards:
        g.blocked.append(f"{err.target} ({name}:{err.port})")
    raise err


def _guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    _check(host, port, "getaddrinfo")
    assert _orig_getaddrinfo is not None
    return _orig_getaddrinfo(host, port, *args, **kwargs)


def _inet_target(sock: socket.socket, address: Any) -> tuple[Any, Any] | None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        return address[0], address[1] if len(address) > 1 else None
    return None  # AF_UNIX and friends never leave the machine


def _guarded_connect(self: socket.socket, address: Any) -> None:
    target = _inet_target(self, address)
    if target is not None:
        _check(target[0], target[1], "connect")
    assert _orig_connect is not None
    _orig_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    target = _inet_target(self, address)
    if target is not None:
        _check(target[0], target[1], "connect_ex")
    assert _orig_connect_ex is not None
    return int(_orig_connect_ex(self, address))


def _install() -> None:
    global _orig_getaddrinfo, _orig_connect, _orig_connect_ex
    _orig_getaddrinfo = socket.getaddrinfo
    _orig_connect = socket.socket.connect
    _orig_connect_ex = socket.socket.connect_ex
    socket.getaddrinfo = _guarded_getaddrinfo
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign,assignment]


def _uninstall() -> None:
    global _orig_getaddrinfo, _orig_connect, _orig_connect_ex
    if _orig_getaddrinfo is not None:
        socket.getaddrinfo = _orig_getaddrinfo
    if _orig_connect is not None:
        socket.socket.connect = _orig_connect  # type: ignore[method-assign]
    if _orig_connect_ex is not None:
        socket.socket.connect_ex = _orig_connect_ex  # type: ignore[method-assign]
    _orig_getaddrinfo = _orig_connect = _orig_connect_ex = None


class NetworkGuard:
    """Context manager returned by :func:`block_network`. Re-entrant across guards: the
    socket patches are installed once and removed when the last guard exits."""

    def __init__(self, allow_hosts: Iterable[str] = ()) -> None:
        self.allow_hosts = frozenset(h.lower() for h in allow_hosts)
        self.blocked: list[str] = []
        """Every blocked attempt, ``"https://host (host:port)"``, in order."""

    def allows(self, host: str) -> bool:
        return host.lower() in self.allow_hosts

    @property
    def active(self) -> bool:
        return self in _active

    def __enter__(self) -> NetworkGuard:
        with _lock:
            if not _active:
                _install()
            _active.append(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with _lock:
            if self in _active:
                _active.remove(self)
            if not _active:
                _uninstall()


def block_network(allow_hosts: Iterable[str] = ()) -> NetworkGuard:
    """Block every non-loopback connection inside the ``with`` block.

    ``allow_hosts`` names extra hosts that may be reached (exact, case-insensitive).
    """
    return NetworkGuard(allow_hosts)


def _request_url(exc: BaseException) -> str | None:
    """The URL a client exception was about, when the client records it."""
    request = getattr(exc, "_request", None) or getattr(exc, "request", None)
    url = getattr(request, "url", None)
    if url is None:
        info = getattr(exc, "request_info", None)  # aiohttp ClientResponseError
        url = getattr(info, "real_url", None)
    return None if url is None else str(url)


def find_offline_error(exc: object) -> OfflineError | None:
    """The :class:`OfflineError` behind ``exc``, following ``__cause__``/``__context__``,
    livekit's wrappers (``ErrorEvent.error`` -> ``LLMError.error`` -> the exception) and
    exception groups. When an exception on the way recorded its request URL, it is copied
    to ``OfflineError.url`` so the message names the full URL."""
    for _ in range(3):  # ErrorEvent -> LLMError/TTSError/STTError -> exception
        if exc is None or isinstance(exc, BaseException):
            break
        exc = getattr(exc, "error", None)
    seen: set[int] = set()
    url: str | None = None
    stack: list[BaseException] = [exc] if isinstance(exc, BaseException) else []
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OfflineError):
            if url is not None and current.url is None:
                current.url = url
            return current
        with contextlib.suppress(RuntimeError):  # httpx raises if .request was never set
            url = url or _request_url(current)
        nested: list[Any] = [current.__cause__, current.__context__]
        nested.append(getattr(current, "error", None))  # livekit error wrappers
        nested.append(getattr(current, "os_error", None))  # aiohttp connector errors
        nested.extend(getattr(current, "exceptions", None) or ())  # exception groups
        stack.extend(n for n in reversed(nested) if isinstance(n, BaseException))
    return None
