"""Offline means offline: every way out of the machine is blocked and named (issue 17,
items 1-7), in each mode: an ``Agent`` in-process, an ``AgentServer`` entrypoint
in-process, and process mode.

Nothing here can reach the network even if the guard broke: remote addresses are
TEST-NET-1 (192.0.2.0/24, never routed), remote names are longer than DNS allows (no
resolver can send them) or are looked up under the *tripwire*, an audit hook behind the
guard's own that refuses, and records, whatever the guard let through.
"""

from __future__ import annotations

import _socket
import asyncio
import contextlib
import ipaddress
import multiprocessing
import os
import platform
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_agentsim.plugin.collect import run_blocking
from pytest_agentsim.transport.offline import (
    LOCAL_TOOLS,
    OfflineError,
    block_network,
    late_attempts,
    register_guarded_child,
    straggler_threads,
)

from .conftest import plugin_output

Write = Callable[[str, str], Path]

FAR = "192.0.2.1"  # TEST-NET-1 (RFC 5737)
UNSENDABLE = "api" + ".a" * 125 + ".example"  # 261 characters, over DNS's 255: never sent

# -- the tripwire ----------------------------------------------------------------------

_armed = threading.Event()
_tripped: list[str] = []
_tripwire_on = False
_SPAWNS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.fork", "os.forkpty")


def _strictly_local(host: Any) -> bool:
    name = (host.decode() if isinstance(host, bytes) else str(host)).strip("[]").lower()
    if name in ("localhost", "", "0.0.0.0", "::"):
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(name.split("%")[0]).is_loopback
    return False


def _tripwire(event: str, args: tuple[Any, ...]) -> None:
    if not _armed.is_set():
        return
    escaped: Any = None
    if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"):
        escaped = None if args[0] is None or _strictly_local(args[0]) else args[0]
    elif event == "socket.getnameinfo":
        escaped = None if _strictly_local(args[0][0]) else args[0]
    elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        sock, address = args
        inet = sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple)
        escaped = address if inet and not _strictly_local(address[0]) else None
    elif event in _SPAWNS:
        argv = args[1] if event == "subprocess.Popen" else None
        local = argv and os.path.basename(str(argv[0])) in LOCAL_TOOLS
        escaped = None if local else args
    if escaped is not None:
        _tripped.append(f"{event} {escaped!r}")
        raise RuntimeError(f"tripwire: the offline guard let {event} {escaped!r} through")


@pytest.fixture
def tripwire() -> Iterator[list[str]]:
    """Armed for the test: whatever the guard lets out is refused here and listed."""
    global _tripwire_on
    if not _tripwire_on:
        with block_network():  # the guard's hook first, so it runs before the tripwire
            pass
        sys.addaudithook(_tripwire)
        _tripwire_on = True
    _tripped.clear()
    _armed.set()
    try:
        yield _tripped
    finally:
        _armed.clear()
    assert _tripped == [], f"the guard let these through: {_tripped}"


def _refused(call: Callable[[], Any]) -> OfflineError:
    with pytest.raises(OfflineError) as info:
        call()
    return info.value


# -- items 1, 2, 4: sockets, name service, _socket ---------------------------------------


def test_udp_sendto_and_sendmsg_are_blocked_and_named(tripwire: list[str]) -> None:
    with block_network() as guard, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        err = _refused(lambda: udp.sendto(b"ping", (FAR, 53)))
        _refused(lambda: udp.sendto(b"ping", 0, (FAR, 123)))
        _refused(lambda: udp.sendmsg([b"ping"], [], 0, (FAR, 514)))
        udp.sendto(b"ping", ("127.0.0.1", 9))  # loopback is fine
    assert "192.0.2.1:53" in str(err) and "UDP sendto" in str(err)
    assert guard.blocked == [
        f"udp {FAR}:53 (sendto)",
        f"udp {FAR}:123 (sendto)",
        f"udp {FAR}:514 (sendmsg)",
    ]


def test_asyncio_datagrams_and_sock_sendto_are_blocked(tripwire: list[str]) -> None:
    errors: list[Exception] = []

    class Protocol(asyncio.DatagramProtocol):
        def error_received(self, exc: Exception) -> None:
            errors.append(exc)  # where a datagram transport reports a failed sendto

    async def leak() -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
        transport.sendto(b"ping", (FAR, 514))
        transport.close()
        with pytest.raises(OfflineError):
            await loop.create_datagram_endpoint(Protocol, remote_addr=(FAR, 161))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setblocking(False)
            with pytest.raises(OfflineError):
                await loop.sock_sendto(s, b"ping", (FAR, 5353))

    with block_network() as guard:
        run_blocking(leak())  # not asyncio.run: it drops pytest-asyncio's open loop
    assert [type(e) for e in errors] == [OfflineError]
    assert guard.blocked == [
        f"udp {FAR}:514 (sendto)",
        f"udp {FAR}:161 (connect)",
        f"udp {FAR}:5353 (sendto)",
    ]


def test_name_lookups_are_blocked(tripwire: list[str]) -> None:
    with block_network() as guard:
        err = _refused(lambda: socket.gethostbyname("api.weather.example"))
        _refused(lambda: socket.gethostbyname_ex("api.weather.example"))
        _refused(lambda: socket.gethostbyaddr(FAR))
        _refused(lambda: socket.getnameinfo((FAR, 443), 0))
        # this machine's name is answered without a lookup; another's is refused (getfqdn
        # swallows the error, the guard still records it)
        assert socket.getfqdn() == socket.gethostname()
        assert socket.getfqdn("api.weather.example") == "api.weather.example"
        assert socket.gethostbyaddr("127.0.0.1")  # loopback: the hosts file
    assert "api.weather.example" in str(err) and "name lookup" in str(err)
    assert guard.blocked == [
        "api.weather.example (name lookup: gethostbyname)",
        "api.weather.example (name lookup: gethostbyname)",
        f"{FAR} (name lookup: gethostbyaddr)",
        f"{FAR} (name lookup: getnameinfo)",
        "api.weather.example (name lookup: gethostbyaddr)",
    ]


def test_numeric_getnameinfo_needs_no_lookup() -> None:
    with block_network() as guard:
        flags = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
        assert socket.getnameinfo((FAR, 443), flags) == (FAR, "443")
    assert guard.blocked == []


def test_localhost_subdomains_stay_on_loopback(tripwire: list[str]) -> None:
    """``*.localhost`` is loopback (RFC 6761) but a resolver may send it to DNS: the guard
    looks it up as ``localhost`` (the tripwire sees no other name), and refuses it where
    it cannot (``_socket`` directly)."""
    with socket.create_server(("127.0.0.1", 0)) as server, block_network() as guard:
        port = server.getsockname()[1]
        infos = socket.getaddrinfo("api.localhost", port, type=socket.SOCK_STREAM)
        assert {ipaddress.ip_address(i[4][0]).is_loopback for i in infos} == {True}
        assert socket.gethostbyname("metrics.api.localhost") == "127.0.0.1"
        assert socket.gethostbyname("localhost.") == "127.0.0.1"
        with socket.create_connection(("api.localhost", port), timeout=5):
            pass
        with socket.socket() as s:
            s.connect(("db.localhost", port))  # a name given to connect() itself
        _refused(lambda: _socket.getaddrinfo("api.localhost", port))
    assert guard.blocked == [f"api.localhost:{port} (api.localhost:{port})"]


def test_the_socket_module_can_be_bypassed_no_more(tripwire: list[str]) -> None:
    """``_socket`` used directly, and a name that CPython would resolve (DNS) before any
    audit event: refused before the lookup."""
    with block_network() as guard:
        raw = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        try:
            _refused(lambda: raw.connect((FAR, 443)))
            _refused(lambda: raw.connect_ex((UNSENDABLE, 443)))
        finally:
            raw.close()
        dgram = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
        try:
            _refused(lambda: dgram.sendto(b"ping", (UNSENDABLE, 53)))
        finally:
            dgram.close()
        _refused(lambda: _socket.gethostbyname("api.weather.example"))
        with socket.socket() as s:
            _refused(lambda: s.bind((UNSENDABLE, 0)))  # binding to a name resolves it
    assert _socket.socket is socket.socket.__mro__[1]  # put back when the guard exits
    assert guard.blocked == [
        f"https://{FAR} ({FAR}:443)",
        f"https://{UNSENDABLE} ({UNSENDABLE}:443, connect_ex)",
        f"udp {UNSENDABLE}:53 (sendto)",
        "api.weather.example (name lookup: gethostbyname)",
        f"{UNSENDABLE}:0 ({UNSENDABLE}:0, bind)",
    ]


def test_tcp_fast_open_sendto_is_a_connect(tripwire: list[str]) -> None:
    flag = getattr(socket, "MSG_FASTOPEN", 0x20000000)
    with block_network() as guard, socket.socket() as s:
        err = _refused(lambda: s.sendto(b"GET / HTTP/1.0\r\n\r\n", flag, (FAR, 80)))
    assert err.target == f"http://{FAR}"
    assert guard.blocked == [f"http://{FAR} ({FAR}:80, sendto)"]


# -- item 3: child processes --------------------------------------------------------------


def _noop() -> None:
    return None


def test_child_processes_are_blocked_and_named(tripwire: list[str]) -> None:
    """A child runs outside the guard (a forked one would record its attempts in its own
    memory): starting one is refused and named, whichever way it is started."""
    python = [sys.executable, "-c", "print('the child ran')"]
    with block_network() as guard:
        err = _refused(lambda: subprocess.run(python, check=False))
        _refused(lambda: os.system("echo the child ran"))
        _refused(lambda: os.posix_spawn(sys.executable, python, os.environ))
        _refused(os.fork)
        _refused(multiprocessing.get_context("spawn").Process(target=_noop).start)
        platform.processor()  # the standard library's own `uname -p` is a local tool
    assert "blocked starting a child process" in str(err) and "print(" in str(err)
    command = f"{sys.executable} -c \"print('the child ran')\""
    assert guard.blocked[:4] == [
        f"child process `{command}` (subprocess.Popen; not covered offline)",
        "child process `echo the child ran` (os.system; not covered offline)",
        f"child process `{command}` (os.posix_spawn; not covered offline)",
        "child process `os.fork()` (os.fork; not covered offline)",
    ]
    assert re.fullmatch(r"child process `.*multiprocessing.*` \(fork_exec; .*\)", guard.blocked[4])
    assert len(guard.blocked) == 5


def test_a_child_that_guards_itself_may_start() -> None:
    """What process mode's child does (registered by the shim); it is refused when its
    environment turns its guard off."""
    register_guarded_child("platform", unless_env="AGENTSIM_TEST_UNGUARDED")
    argv = [sys.executable, "-m", "platform"]
    with block_network() as guard:
        assert subprocess.run(argv, capture_output=True, check=True).stdout
        env = {**os.environ, "AGENTSIM_TEST_UNGUARDED": "1"}
        _refused(lambda: subprocess.run(argv, env=env, check=False))
    assert guard.blocked == [
        f"child process `{sys.executable} -m platform` (subprocess.Popen; not covered offline)"
    ]


# -- item 6: threads that outlive their test ---------------------------------------------


def test_a_straggler_thread_is_charged_to_the_test_that_started_it(tripwire: list[str]) -> None:
    go, done = threading.Event(), threading.Event()
    outcomes: list[str] = []

    def phone_home() -> None:
        for _ in range(2):
            go.wait(10)
            go.clear()
            try:
                socket.create_connection((FAR, 443), timeout=1)
                outcomes.append("connected")
            except OfflineError as e:
                outcomes.append(e.entry)
            done.set()

    late_attempts()  # drain
    with block_network(label="test_one") as first:
        threading.Thread(target=phone_home, name="phone-home", daemon=True).start()
    assert ("test_one", "phone-home") in straggler_threads()
    with block_network(label="test_two") as second:
        go.set()
        assert done.wait(10)
    done.clear()
    go.set()  # now with no guard at all: still guarded, still charged to test_one
    assert done.wait(10)
    assert second.blocked == []  # not the running test's attempt
    entry = f"https://{FAR} ({FAR}:443)"
    assert outcomes == [entry, entry]
    assert first.late == [entry, entry]
    assert late_attempts() == [("test_one", entry), ("test_one", entry)]


def test_on_blocked_reports_each_attempt_as_it_happens(tripwire: list[str]) -> None:
    seen: list[str] = []
    with block_network(on_blocked=seen.append), socket.socket() as s:
        with contextlib.suppress(OfflineError):
            s.connect((FAR, 443))
        assert seen == [f"https://{FAR} ({FAR}:443)"]


# -- the same, from agents in every mode ---------------------------------------------------

LEAKY_PY = '''
import _socket
import asyncio
import contextlib
import multiprocessing
import os
import socket
import subprocess
import sys

from livekit.agents import Agent, RunContext, function_tool

FAR = "192.0.2.1"
NAME = "{name}"
FAST_OPEN = getattr(socket, "MSG_FASTOPEN", 0x20000000)


def attempt(*calls) -> str:
    """What a careless agent does: try, swallow the error, carry on."""
    out = []
    for call in calls:
        try:
            call()
            out.append("went through")
        except Exception as e:
            out.append(type(e).__name__)
    return ", ".join(out)


def udp() -> socket.socket:
    return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


class Leaky(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You leak.")

    @function_tool
    async def send_metrics(self, context: RunContext) -> str:
        """UDP datagrams (statsd, syslog, NTP)."""
        s = udp()
        try:
            return attempt(
                lambda: s.sendto(b"calls:1|c", (FAR, 8125)),
                lambda: s.sendmsg([b"<14>hi"], [], 0, (FAR, 514)),
            )
        finally:
            s.close()

    @function_tool
    async def send_datagrams(self, context: RunContext) -> str:
        """asyncio datagram endpoints and loop.sock_sendto."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )
        transport.sendto(b"ping", (FAR, 9999))
        transport.close()
        with contextlib.suppress(OSError):
            await loop.create_datagram_endpoint(asyncio.DatagramProtocol, remote_addr=(FAR, 161))
        s = udp()
        s.setblocking(False)
        with contextlib.suppress(OSError):
            await loop.sock_sendto(s, b"ping", (FAR, 5353))
        s.close()
        return "sent"

    @function_tool
    async def look_up(self, context: RunContext) -> str:
        """Name service, every way."""
        return attempt(
            lambda: socket.gethostbyname(NAME),
            lambda: socket.gethostbyname_ex(NAME),
            lambda: socket.gethostbyaddr(FAR),
            lambda: socket.getnameinfo((FAR, 443), 0),
        )

    @function_tool
    async def raw_socket(self, context: RunContext) -> str:
        """_socket directly, and TCP fast open."""
        raw = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        fast = socket.socket()
        try:
            return attempt(
                lambda: raw.connect((FAR, 8443)),
                lambda: fast.sendto(b"GET /", FAST_OPEN, (FAR, 80)),
            )
        finally:
            raw.close()
            fast.close()

    @function_tool
    async def run_child(self, context: RunContext) -> str:
        """Child processes, which would run outside the guard."""
        return attempt(
            lambda: subprocess.run([sys.executable, "-c", "print('child ran')"], check=False),
            lambda: os.system("echo child ran"),
        )

    @function_tool
    async def spawn_worker(self, context: RunContext) -> str:
        """A multiprocessing worker."""
        ctx = multiprocessing.get_context("spawn")
        return attempt(lambda: ctx.Process(target=print, args=("worker ran",)).start())

    @function_tool
    async def local_names(self, context: RunContext) -> str:
        """*.localhost is loopback: allowed."""
        with socket.create_server(("127.0.0.1", 0)) as server:
            port = server.getsockname()[1]
            with socket.create_connection(("api.localhost", port), timeout=5):
                pass
        return socket.gethostbyname("metrics.localhost")
'''

SERVER_PY = """
from livekit.agents import AgentServer, AgentSession, JobContext, inference

from leaky import Leaky

server = AgentServer()


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    session = AgentSession(llm=inference.LLM("openai/gpt-4.1-mini"))
    await session.start(agent=Leaky(), room=ctx.room)
"""

# tool -> what the failure must name
LEAKS = {
    "send_metrics": [f"udp {FAR}:8125 (sendto)", f"udp {FAR}:514 (sendmsg)"],
    "send_datagrams": [
        f"udp {FAR}:9999 (sendto)",
        f"udp {FAR}:161 (connect)",
        f"udp {FAR}:5353 (sendto)",
    ],
    "look_up": [
        "{name} (name lookup: gethostbyname)",
        f"{FAR} (name lookup: gethostbyaddr)",
        f"{FAR} (name lookup: getnameinfo)",
    ],
    "raw_socket": [f"{FAR}:8443 ({FAR}:8443)", f"http://{FAR} ({FAR}:80, sendto)"],
    "run_child": [
        "child process `*python* -c \"print('child ran')\"` (subprocess.Popen; *)",
        "child process `echo child ran` (os.system; not covered offline)",
    ],
    "spawn_worker": ["child process `*multiprocessing*` (fork_exec; not covered offline)"],
}


def _scenarios(agent: str, tools: list[str], *, process: bool = False) -> str:
    out = [
        "name: Leaks",
        f"agentsim: {{agent: {agent!r}{', process: true' if process else ''}}}",
        "scenarios:",
    ]
    for tool in tools:
        out += [
            f"  - label: {tool}",
            "    agentsim:",
            "      turns:",
            "        - user: go",
            f"          llm: [{{tool_calls: [{{name: {tool}}}]}}, done]",
        ]
        if tool == "local_names":
            out += ["          expect:", "            - function_call: local_names"]
            out += [
                "            - function_call_output: {equals: 127.0.0.1}",
                "            - message: done",
            ]
    return "\n".join(out) + "\n"


def _failures(result: pytest.RunResult) -> dict[str, str]:
    """scenario label -> the text of its failure section."""
    parts = re.split(r"\n_{3,} scenario: (.+?) _{3,}\n", plugin_output(result))
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _assert_named(result: pytest.RunResult, tools: list[str], name: str) -> None:
    failures = _failures(result)
    assert sorted(failures) == sorted(tools), plugin_output(result)
    for tool in tools:
        text = failures[tool]
        assert "the agent tried to reach the network (blocked in offline runs):" in text, text
        for entry in LEAKS[tool]:
            pattern = re.escape(entry.format(name=name)).replace(r"\*", ".*")
            assert re.search(rf"^    {pattern}$", text, re.M), f"{tool}: {entry}\n{text}"


@pytest.mark.parametrize("mode", ["agent", "entrypoint"])
def test_every_leak_fails_its_scenario_in_process(
    pytester: pytest.Pytester, write: Write, tripwire: list[str], mode: str
) -> None:
    name = "api.weather.example"  # the tripwire stops it if the guard does not
    write("leaky.py", LEAKY_PY.replace("{name}", name))
    write("server.py", SERVER_PY)
    agent = "leaky:Leaky" if mode == "agent" else "server.py"
    write("scenarios.yaml", _scenarios(agent, [*LEAKS, "local_names"]))
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=len(LEAKS), passed=1)
    _assert_named(result, list(LEAKS), name)


def test_every_leak_fails_its_scenario_in_process_mode(
    pytester: pytest.Pytester, write: Write
) -> None:
    write("leaky.py", LEAKY_PY.replace("{name}", UNSENDABLE))
    write("server.py", SERVER_PY)
    tools = ["send_metrics", "look_up", "raw_socket", "run_child", "spawn_worker"]
    write("scenarios.yaml", _scenarios("server.py", [*tools, "local_names"], process=True))
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(failed=len(tools), passed=1)
    _assert_named(result, tools, UNSENDABLE)


STUBBORN_PY = """
import socket
import time

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, RunContext
from livekit.agents import function_tool, inference
from livekit.agents.job import get_job_context


class Stubborn(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="x")

    @function_tool
    async def report_usage(self, context: RunContext) -> str:
        \"\"\"Send usage, ignore failures, and flush slowly at shutdown.\"\"\"
        try:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.sendto(b"calls:1|c", ("192.0.2.1", 8125))
        except OSError:
            pass

        async def flush() -> None:
            time.sleep(30)  # blocks shutdown past the 2 s grace: the child is SIGKILLed

        get_job_context().add_shutdown_callback(flush)
        return "reported"


server = AgentServer()


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    session = AgentSession(llm=inference.LLM("openai/gpt-4.1-mini"))
    await session.start(agent=Stubborn(), room=ctx.room)
"""


def test_process_mode_reports_a_blocked_attempt_of_a_child_killed_at_teardown(
    pytester: pytest.Pytester, write: Write
) -> None:
    """Item 7: the child writes each blocked attempt to its log when it happens, so a
    child that has to be SIGKILLed (no exit handler runs) still fails its test."""
    write("agent.py", STUBBORN_PY)
    write(
        "scenarios.yaml",
        """
        name: Stubborn
        agentsim: {agent: agent.py, process: true}
        scenarios:
          - label: reports usage
            agentsim:
              turns:
                - user: go
                  llm: [{tool_calls: [{name: report_usage}]}, done]
        """,
    )
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the agent tried to reach the network (blocked in offline runs):",
            f"    udp {FAR}:8125 (sendto)",
        ]
    )


# -- item 5: code that runs when the agent module is imported ------------------------------

IMPORTS_PY = """
import socket

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, inference

# a module that phones home when imported (a telemetry client, a warm-up request)
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
    try:
        udp.sendto(b"started", ("192.0.2.1", 8125))
    except OSError:
        pass


class Quiet(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="x")


server = AgentServer()


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    session = AgentSession(llm=inference.LLM("openai/gpt-4.1-mini"))
    await session.start(agent=Quiet(), room=ctx.room)
"""


@pytest.mark.parametrize("mode", ["agent", "entrypoint", "process"])
def test_the_agent_module_is_imported_under_the_guard(
    pytester: pytest.Pytester, write: Write, mode: str
) -> None:
    # a fresh module name per run: in-process pytester runs share sys.modules
    module = f"phones_home_{mode}"
    write(f"{module}.py", IMPORTS_PY)
    agent = {"agent": f"{module}:Quiet", "entrypoint": f"{module}.py"}.get(mode, f"{module}.py")
    write("scenarios.yaml", _scenarios(agent, ["greets"], process=mode == "process"))
    (pytester.path / "scenarios.yaml").write_text(
        (pytester.path / "scenarios.yaml")
        .read_text()
        .replace("llm: [{tool_calls: [{name: greets}]}, done]", "llm: [Hello.]"),
        encoding="utf-8",
    )
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the agent tried to reach the network (blocked in offline runs):",
            f"    udp {FAR}:8125 (sendto)",
        ]
    )


# -- item 6: a thread that outlives the scenario that started it ---------------------------

STRAGGLER_PY = """
import socket
import threading
from pathlib import Path

from livekit.agents import Agent, RunContext, function_tool

THREADS: list[tuple[threading.Thread, threading.Event]] = []
OUT = Path(__file__).with_name("straggler.txt")


def phone_home(go: threading.Event) -> None:
    go.wait(30)
    try:
        socket.create_connection(("192.0.2.1", 443), timeout=1)
        result = "connected"
    except OSError as e:
        result = type(e).__name__
    with OUT.open("a") as f:
        f.write(result + "\\n")


def release(index: int) -> None:
    thread, go = THREADS[index]
    go.set()
    thread.join(10)


class Starter(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="x")

    @function_tool
    async def start_sync(self, context: RunContext) -> str:
        \"\"\"Start a background sync that connects later.\"\"\"
        go = threading.Event()
        thread = threading.Thread(target=phone_home, args=(go,), name="sync", daemon=True)
        thread.start()
        THREADS.append((thread, go))
        return "syncing"

    @function_tool
    async def nudge(self, context: RunContext) -> str:
        \"\"\"Let the first background sync connect now (during this scenario).\"\"\"
        release(0)
        return "nudged"
"""

STRAGGLER_CONFTEST = """
import sys
from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    # after the last test, before the plugin reports: the second sync connects now
    # (in the agent module as the plugin loaded it)
    path = str(Path(__file__).with_name("straggler.py"))
    agent = next(m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == path)
    agent.release(1)
"""


def test_a_thread_that_outlives_its_scenario_is_blocked_and_charged_to_it(
    pytester: pytest.Pytester, write: Write, tripwire: list[str]
) -> None:
    """The thread the first scenario starts connects during the second one: the second
    passes (not its doing); the attempt is blocked, and reported at the end of the session
    under the first scenario's name, as is the one another thread makes after the last
    test. The run fails."""
    write("straggler.py", STRAGGLER_PY)
    write("conftest.py", STRAGGLER_CONFTEST)
    write(
        "scenarios.yaml",
        """
        name: Stragglers
        agentsim: {agent: "straggler:Starter"}
        scenarios:
          - label: starts a sync
            agentsim:
              turns:
                - user: go
                  llm: [{tool_calls: [{name: start_sync}]}, done]
          - label: innocent bystander
            agentsim:
              turns:
                - user: go
                  llm: [{tool_calls: [{name: nudge}]}, done]
          - label: starts another sync
            agentsim:
              turns:
                - user: go
                  llm: [{tool_calls: [{name: start_sync}]}, done]
        """,
    )
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    assert (pytester.path / "straggler.txt").read_text().split() == ["OfflineError"] * 2
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    late = f"a thread it started tried to reach https://{FAR} ({FAR}:443) after it ended"
    result.stdout.fnmatch_lines(
        [
            "*agentsim: network access after a test ended*",
            f"scenarios.yaml::starts a sync: {late} (blocked)",
            f"scenarios.yaml::starts another sync: {late} (blocked)",
        ]
    )
