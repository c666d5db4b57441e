"""Offline guard: a test that tries to leave the machine fails, naming where it went.

The choke point is CPython's audit hooks (PEP 578): C socket functions raise an event
before they touch the network, whoever calls them (``socket``, ``_socket``, asyncio,
datagram transports, ``loop.sock_sendto``, any thread). For a non-loopback target the
hook refuses ``connect``, ``sendto`` (UDP; TCP ``MSG_FASTOPEN``), ``sendmsg``, non-IP
non-local families, name lookups (``getaddrinfo``, ``gethostbyname(_ex)``,
``gethostbyaddr``, non-numeric ``getnameinfo``) and child processes (``subprocess``,
``os.system``/``exec``/``posix_spawn``/``fork``, ``multiprocessing``), which would run
outside the guard, except :data:`LOCAL_TOOLS` and :func:`register_guarded_child` ones.
CPython resolves a host *name* passed to a socket method before its event, and a hook
can only refuse, so thin wrappers check those names first, look ``x.localhost`` up as
``localhost`` (RFC 6761; refused where no wrapper applies, as a resolver may send it to
DNS) and answer ``getfqdn()`` of this machine without a lookup. Not seen: native code
with its own sockets or resolver (gRPC C-core, c-ares, uvloop, livekit-rtc), and code
that ran before the guard.

:class:`OfflineError` subclasses ``ConnectionError`` (an ``OSError``) on purpose: client
libraries turn ``OSError`` into their own connection errors and keep it as the
``__cause__`` (httpcore2 -> ``httpx2.ConnectError`` -> ``openai.APIConnectionError`` ->
livekit ``APIConnectionError``; aiohttp -> ``ClientConnectorError``), so the agent sees an
ordinary connection failure and :func:`find_offline_error` digs the original out. An agent
may swallow it, so each attempt is also recorded on the guard (``guard.blocked``;
``on_blocked`` as it happens). A thread started under a guard that outlives it stays
guarded; its later attempts go to :func:`late_attempts` under that test's label, not to
whichever test runs then. Audit hooks are for good: the hook and wrappers are installed
on the first guard and do nothing while no guard or such thread is left.
"""

from __future__ import annotations

import _socket
import contextlib
import ipaddress
import os
import socket
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["NetworkGuard", "OfflineError", "block_network", "find_offline_error", "is_loopback"]
__all__ += ["LOCAL_TOOLS", "late_attempts", "register_guarded_child", "straggler_threads"]

_HOW_TO = (
    "Tests run offline: serve it with the inference_gateway fixture or a fake; "
    "pass --agentsim-allow-network to opt out."
)
_HOW_TO_PROCESS = "It would run outside the offline guard; pass --agentsim-allow-network."
# What the standard library runs to describe this machine (platform: uname -p;
# ctypes.util.find_library: ldconfig, gcc/cc, ld, objdump): local tools, never network.
LOCAL_TOOLS = frozenset({"uname", "ldconfig", "gcc", "cc", "ld", "objdump", "file", "getconf"})


class OfflineError(ConnectionError):
    """A network access (or a child process) was attempted while the network is blocked.

    ``kind``: ``tcp`` (a connection, or the lookup for one), ``udp``, ``dns`` (a lookup
    alone), ``process`` (``host`` is the command) or ``other`` (a non-IP family)."""

    def __init__(self, host: str, port: int | None, *, via: str, kind: str = "tcp") -> None:
        self.host, self.port, self.via, self.kind = host, port, via, kind
        self.url: str | None = None
        """Full request URL when :func:`find_offline_error` could recover it."""
        super().__init__(self._message())

    @property
    def target(self) -> str:
        """``https://host`` for 443, ``http://host`` for 80, else ``host:port``."""
        if self.port in (80, 443):
            return f"{'https' if self.port == 443 else 'http'}://{self.host}"
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def entry(self) -> str:
        """The line a guard keeps for this attempt (``guard.blocked``)."""
        if self.kind == "process":
            return f"child process `{self.host}` ({self.via}; not covered offline)"
        if self.kind == "other":
            return f"{self.host} ({self.via})"
        if self.kind == "dns" or self.port is None:
            return f"{self.host} (name lookup: {self.via})"
        if self.kind == "udp":
            return f"udp {self.host}:{self.port} ({self.via})"
        how = "" if self.via in ("connect", "getaddrinfo") else f", {self.via}"
        return f"{self.target} ({self.host}:{self.port}{how})"

    def _message(self) -> str:
        if self.kind == "process":
            what, how = f"starting a child process: {self.host} ({self.via})", _HOW_TO_PROCESS
        else:
            at = self.host if self.port is None else f"{self.host}:{self.port}"
            kind = {"udp": "UDP ", "dns": "name lookup, "}.get(self.kind, "")
            what = f"network access to {self.url or self.target} ({at}, {kind}{self.via})"
            how = _HOW_TO
        return f"pytest-agentsim blocked {what}. {how}"

    def __str__(self) -> str:
        # recomputed so a URL recovered later by find_offline_error shows up
        return self._message()


def is_loopback(host: str) -> bool:
    """True for ``localhost`` (and ``*.localhost``), ``127.0.0.0/8``, ``::1`` (and
    IPv4-mapped loopback)."""
    name = host.strip("[]").lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost") or _is_loopback_ip(name)


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(name.strip("[]").split("%", 1)[0])
    return None


def _is_loopback_ip(name: str) -> bool:
    addr = _ip(name)
    mapped = getattr(addr, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return addr is not None and (mapped or addr).is_loopback


def _stays_local(host: str) -> bool:
    """What may reach the resolver or a socket as is: loopback literals, the bind-all
    names, and ``localhost`` (answered from the hosts file)."""
    name = host.strip("[]").lower()
    return name in ("localhost", "", "0.0.0.0", "::") or _is_loopback_ip(name)


def _local_alias(host: Any) -> Any:
    """``localhost`` for ``x.localhost`` / ``localhost.``, else ``host`` unchanged."""
    name = _text(host).lower()
    bare = name.rstrip(".")
    if bare.endswith(".localhost") or (bare == "localhost" and bare != name):
        return "localhost"
    return host


def _port_of(port: Any) -> int | None:
    if not isinstance(port, (str, bytes)):
        return port if isinstance(port, int) else None
    with contextlib.suppress(OSError):
        return int(port) if _text(port).isdigit() else socket.getservbyname(_text(port))
    return None


def _text(value: Any) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def _command(argv: Any) -> str:
    if isinstance(argv, (str, bytes)):  # a shell command line
        text = _text(argv)
    else:  # argv: words with spaces quoted as Python would
        text = " ".join(w if w and w.split() == [w] else repr(w) for w in map(_text, argv or ()))
    return text if len(text) <= 160 else text[:159] + "…"


# -- state: one hook and one set of wrappers however many guards are active ------------

_lock = threading.RLock()
_active: list[NetworkGuard] = []
# threads a finished guarded test left running -> the guard of that test
_orphans: weakref.WeakKeyDictionary[threading.Thread, NetworkGuard] = weakref.WeakKeyDictionary()
_late: list[tuple[str, str]] = []
_tls = threading.local()  # .numeric: in getnameinfo(NI_NUMERICHOST); .spawn_ok: exempt Popen
_guarded_children: dict[str, str] = {}  # `python -m` module -> env var turning its guard off
_orig: dict[str, Any] = {}


def _owner() -> NetworkGuard | None:
    return _orphans.get(threading.current_thread()) if _orphans else None


def _intercept(err: OfflineError, host: str | None = None) -> None:
    """Record ``err`` on the guard(s) it concerns and raise it; return when no guard
    concerns this thread or one allows ``host``."""
    owner = _owner()
    with _lock:
        guards = [owner] if owner is not None else list(_active)
    if not guards or (host is not None and any(g.allows(host) for g in guards)):
        return
    for g in guards:
        if g is owner:  # a straggler: charged to the test that started it
            g.late.append(err.entry)
            _late.append((g.label, err.entry))
        else:
            g.blocked.append(err.entry)
        if g.on_blocked is not None:
            with contextlib.suppress(Exception):  # a report must not mask the block
                g.on_blocked(err.entry)
    raise err


# -- audit events ---------------------------------------------------------------------

_LOCAL_FAMILIES = {getattr(socket, f, None) for f in ("AF_UNIX", "AF_NETLINK")} - {None}
_IP_FAMILIES = {socket.AF_INET, socket.AF_INET6}


def _on_lookup(via: str, args: tuple[Any, ...]) -> None:
    host = args[0]
    if via == "getnameinfo":  # (sockaddr,)
        if getattr(_tls, "numeric", False) or not isinstance(host, tuple) or not host:
            return
        host = host[0]
    if host is None or _stays_local(_text(host)):
        return
    name, port = _text(host), _port_of(args[1]) if via == "getaddrinfo" else None
    _intercept(OfflineError(name, port, via=via, kind="dns" if port is None else "tcp"), name)


def _inet_error(sock: Any, address: tuple[Any, ...], via: str) -> OfflineError:
    port = address[1] if len(address) > 1 and isinstance(address[1], int) else None
    udp = getattr(sock, "type", None) == socket.SOCK_DGRAM and via != "bind"
    return OfflineError(_text(address[0]), port, via=via, kind="udp" if udp else "tcp")


def _on_socket(via: str, args: tuple[Any, ...]) -> None:
    sock, address = args[0], args[1]
    family = getattr(sock, "family", None)
    if address is None or family in _LOCAL_FAMILIES:  # sendmsg() without an address
        return
    if family in _IP_FAMILIES and isinstance(address, tuple) and address:
        name = _text(address[0])
        if not (_stays_local(name) or (via == "bind" and _ip(name) is not None)):
            _intercept(_inet_error(sock, address, via), name)  # binding sends nothing
    elif via != "bind":  # packet, vsock, bluetooth...: nothing we can call loopback
        _intercept(OfflineError(repr(address), None, via=f"{via}, family {family}", kind="other"))


def _exempt_child(argv: Any, env: Any) -> bool:
    """A local tool, or a child that installs its own guard (and reports in its log)."""
    if not isinstance(argv, (list, tuple)) or not argv:
        return False
    if os.path.basename(_text(argv[0])) in LOCAL_TOOLS:
        return True
    off = _guarded_children.get(_text(argv[2])) if len(argv) > 2 and argv[1] == "-m" else None
    on = off and (os.environ.get(off) if env is None else env.get(off) or env.get(off.encode()))
    return off is not None and not on  # (a Popen env may have bytes keys)


def _on_process(via: str, args: tuple[Any, ...]) -> None:
    if via == "subprocess.Popen" and _exempt_child(args[1], args[3]):
        _tls.spawn_ok = args[1]  # its fork_exec/posix_spawn gets this very argv list
        return
    if via == "os.posix_spawn" and _exempted(args[1]):
        return
    # Popen: (executable, args, cwd, env); posix_spawn: (path, argv, env); exec: (path,
    # args, env); spawn: (mode, path, args, env); system: (command,). A fork copies this
    # process, guard included: its attempts would be recorded in the copy, never here.
    where = {"subprocess.Popen": 1, "os.posix_spawn": 1, "os.system": 0}.get(via, -2)
    command = f"{via}()" if via in ("os.fork", "os.forkpty") else _command(args[where])
    _intercept(OfflineError(command, None, via=via, kind="process"))


def _exempted(argv: Any) -> bool:
    """Whether this is the argv of the exempt Popen the hook let through (then forget it)."""
    ok, _tls.spawn_ok = getattr(_tls, "spawn_ok", None) is argv is not None, None
    return ok


# audit event -> handler (gethostbyname_ex raises socket.gethostbyname too)
_LOOKUPS = ("getaddrinfo", "gethostbyname", "gethostbyaddr", "getnameinfo")
_SPAWNS = ("subprocess.Popen", "os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork")
_HANDLERS: dict[str, Callable[[str, tuple[Any, ...]], None]] = {
    **{f"socket.{name}": _on_lookup for name in _LOOKUPS},
    **{f"socket.{name}": _on_socket for name in ("connect", "sendto", "sendmsg", "bind")},
    **dict.fromkeys((*_SPAWNS, "os.forkpty"), _on_process),
}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    handler = _HANDLERS.get(event)
    if handler is not None and (_active or _orphans):
        handler(event.removeprefix("socket."), args)


# -- wrappers: what a hook cannot do (check a name before CPython resolves it, answer) --


def _engaged() -> bool:
    return bool(_active) or _owner() is not None


def _aliased(name: str) -> Callable[..., Any]:
    original = getattr(socket, name)

    def call(host: Any, *args: Any, **kwargs: Any) -> Any:
        return original(_local_alias(host) if _engaged() else host, *args, **kwargs)

    call.__name__, call.__qualname__, call.__doc__ = name, name, original.__doc__
    return call


def _getnameinfo(sockaddr: Any, flags: int) -> Any:
    _tls.numeric = bool(flags & socket.NI_NUMERICHOST)  # no lookup: nothing leaves
    try:
        return _orig["getnameinfo"](sockaddr, flags)
    finally:
        _tls.numeric = False


def _getfqdn(name: str = "") -> str:
    if _engaged() and name.strip() in ("", "0.0.0.0", "::", socket.gethostname()):
        return socket.gethostname()  # this machine: getfqdn's answer when DNS fails
    return str(_orig["getfqdn"](name))


def _fork_exec(*args: Any, **kwargs: Any) -> Any:
    # multiprocessing's spawn/forkserver start children here, without an audit event
    argv = args[0] if args else kwargs.get("args")
    if (_active or _orphans) and not _exempted(argv):
        _intercept(OfflineError(_command(argv), None, via="fork_exec", kind="process"))
    return _orig["fork_exec"](*args, **kwargs)


# where each socket method takes its address: (data, [flags,] address) for sendto
_ADDRESS_AT: dict[str, Callable[[int], int | None]] = {
    **dict.fromkeys(("connect", "connect_ex", "bind"), lambda n: 0 if n else None),
    "sendto": lambda n: n - 1 if n >= 2 else None,
    "sendmsg": lambda n: 3 if n >= 4 else None,  # (buffers, ancdata, flags, address)
}
_CSocket = _socket.socket  # the C type socket.socket subclasses
_ADDRESS_AT = {k: v for k, v in _ADDRESS_AT.items() if hasattr(_CSocket, k)}  # no sendmsg: Windows


def _named(sock: Any, address: Any, via: str) -> Any:
    """``address`` for a socket method, its host name checked before CPython resolves it
    (``x.localhost`` becomes ``localhost``); literals are the hook's."""
    family = getattr(sock, "family", None)
    if family not in _IP_FAMILIES or not isinstance(address, tuple) or not address:
        return address
    host = address[0]
    if not isinstance(host, (str, bytes)) or _ip(_text(host)) is not None:
        return address
    if _local_alias(host) != host:
        return ("localhost", *address[1:])
    if not _stays_local(_text(host)):
        _intercept(_inet_error(sock, address, via), _text(host))
    return address


def _address_checked(via: str) -> Callable[..., Any]:
    original, at = getattr(_CSocket, via), _ADDRESS_AT[via]

    def method(self: Any, *args: Any) -> Any:
        i = at(len(args))
        if i is not None and (_active or _orphans):
            args = (*args[:i], _named(self, args[i], via), *args[i + 1 :])
        return original(self, *args)

    method.__name__, method.__qualname__, method.__doc__ = via, via, original.__doc__
    return method


# _socket.socket while a guard is active, for code that bypasses the socket module
_GuardedCSocket = type("socket", (_CSocket,), {v: _address_checked(v) for v in _ADDRESS_AT})


def _install() -> None:
    """Once per process (an audit hook is for good); every piece is a no-op when idle."""
    if _orig:
        return
    for via in _ADDRESS_AT:
        setattr(socket.socket, via, _address_checked(via))
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        setattr(socket, name, _aliased(name))
    _orig["getnameinfo"], socket.getnameinfo = socket.getnameinfo, _getnameinfo
    _orig["getfqdn"], socket.getfqdn = socket.getfqdn, _getfqdn
    with contextlib.suppress(ImportError):  # POSIX only
        import _posixsubprocess

        _orig["fork_exec"], _posixsubprocess.fork_exec = _posixsubprocess.fork_exec, _fork_exec
    sys.addaudithook(_audit)


class NetworkGuard:
    """Context manager returned by :func:`block_network`. Re-entrant across guards; the
    last to exit keeps the threads started under it (still running) guarded."""

    def __init__(
        self,
        allow_hosts: Iterable[str] = (),
        *,
        label: str = "",
        on_blocked: Callable[[str], None] | None = None,
    ) -> None:
        self.allow_hosts = frozenset(h.lower() for h in allow_hosts)
        self.label = label
        self.on_blocked = on_blocked
        self.blocked: list[str] = []
        """Every blocked attempt, ``"https://host (host:port)"``, in order."""
        self.late: list[str] = []
        """Attempts of threads started under this guard, made after it exited."""

    def allows(self, host: str) -> bool:
        return host.lower() in self.allow_hosts

    @property
    def active(self) -> bool:
        return self in _active

    def __enter__(self) -> NetworkGuard:
        if not self.label:  # "tests/test_x.py::test_y (call)" -> the test's node id
            self.label = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
        self._threads_before: set[threading.Thread] = set(threading.enumerate())
        with _lock:
            _install()
            if not _active:
                _socket.socket = _GuardedCSocket  # type: ignore[misc,assignment]
            _active.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with _lock:
            if self in _active:
                _active.remove(self)
            last = not _active
            if last:
                _socket.socket = _CSocket  # type: ignore[misc]
        if last:  # (an outer guard of the same test keeps them until it exits)
            for thread in set(threading.enumerate()) - self._threads_before:
                if thread is not threading.current_thread() and thread.is_alive():
                    _orphans.setdefault(thread, self)


def block_network(
    allow_hosts: Iterable[str] = (),
    *,
    label: str = "",
    on_blocked: Callable[[str], None] | None = None,
) -> NetworkGuard:
    """Block every non-loopback network access (and child processes) inside the ``with``.

    ``allow_hosts`` names extra hosts that may be reached (exact, case-insensitive);
    ``label`` names the test for :func:`late_attempts` (default: pytest's current test);
    ``on_blocked(entry)`` is called at each blocked attempt, in the thread that made it.
    """
    return NetworkGuard(allow_hosts, label=label, on_blocked=on_blocked)


def late_attempts() -> list[tuple[str, str]]:
    """``(test label, blocked attempt)`` made by threads after the guarded test that
    started them had ended, since the last call (the list is drained)."""
    with _lock:
        out, _late[:] = list(_late), []
    return out


def straggler_threads() -> list[tuple[str, str]]:
    """``(test label, thread name)`` of threads started under a guard, running after it."""
    return [(g.label, t.name) for t, g in list(_orphans.items()) if t.is_alive()]


def register_guarded_child(module: str, *, unless_env: str) -> None:
    """Let ``python -m <module>`` start under a guard: that child installs its own guard
    (unless ``unless_env`` is set in its environment) and reports what it blocks."""
    _guarded_children[module] = unless_env


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
