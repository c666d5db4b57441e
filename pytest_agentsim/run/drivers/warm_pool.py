"""Process mode's warm servers, pytest's side: one per agent file and environment.

A :class:`WarmServer` (:mod:`.warm`) pays the agent file's imports and prewarm once; each
scenario's job is forked from it (:meth:`WarmPool.job`). Servers are keyed by everything
a cold child's import could depend on: the interpreter, the file, the working directory
and the whole environment except what is per job (the dispatch, the log, the control
address, the fake gateway's URLs). The gateway's URLs are kept equal across a server's
jobs by giving its gateway the same port every time (:meth:`WarmPool.port_for`): a model
an agent builds at import time keeps pointing at a live gateway. Whatever cannot be
served warm raises :class:`WarmUnavailable` with the reason, and the caller starts a cold
child. :meth:`WarmPool.shutdown` (the plugin calls it when pytest ends; also at exit)
ends every server, and a server also ends when pytest's end of its stdin closes.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import shim, warm
from .reaper import TOKEN_ENV

__all__ = ["PER_JOB_ENV", "WARM_POOL", "WarmJob", "WarmPool", "WarmServer", "WarmUnavailable"]

log = logging.getLogger("pytest_agentsim.warm")

GATEWAY_URL_ENV = ("LIVEKIT_INFERENCE_URL", "OPENAI_BASE_URL")
PER_JOB_ENV = frozenset(
    {
        shim.DISPATCH_ENV,
        shim.PARENT_ENV,
        shim.LOG_ENV,
        shim.CONTROL_ENV,
        *GATEWAY_URL_ENV,
        "PYTEST_CURRENT_TEST",  # pytest's, different for every item
        TOKEN_ENV,  # the reaper's mark of one job's processes (a server's would kill it)
    }
)
"""Variables that differ per job and are not part of a server's key: the shim reads its own
when the job starts, the gateway's URLs are checked equal to the server's instead, and
pytest's test name is no input of an import."""

MAX_SERVERS = 3
"""Warm servers kept per pytest process; starting another ends the least recently used
(each holds the imported framework and agent: 130-400 MiB)."""

READY_TIMEOUT = 60.0
"""Seconds a warm server gets to import and prewarm the agent file."""

Key = tuple[str, str, str, tuple[tuple[str, str], ...]]


class WarmUnavailable(Exception):
    """This job cannot be forked from a warm server (``str()`` says why)."""


def fork_supported() -> bool:
    """Linux only: Windows has no fork(), and on macOS a fork without exec is unsafe once
    system frameworks are loaded (why Python's multiprocessing spawns there)."""
    return hasattr(os, "fork") and sys.platform.startswith("linux")


def warm_key(agent_file: Path, env: Mapping[str, str], cwd: Path) -> Key:
    kept = tuple(sorted((k, v) for k, v in env.items() if k not in PER_JOB_ENV))
    return (sys.executable, str(agent_file.resolve()), str(cwd), kept)


class WarmJob:
    """A job forked by a warm server: ``Popen``'s ``pid``/``poll``/``wait`` as the driver
    uses them; :meth:`release` lets the server reap it."""

    def __init__(self, pid: int, server: WarmServer) -> None:
        self.pid = pid
        self.server = server

    def poll(self) -> int | None:
        # its server says how it ended, a moment after it did (AgentProcess.exited waits)
        return self.server.exit_code(self.pid)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired([str(self.pid)], timeout or 0.0)
            time.sleep(0.01)
        return code

    def release(self) -> None:
        self.server.reap(self.pid)


class WarmServer:
    """One warm server process (:mod:`.warm`) and the lines it answers."""

    def __init__(self, agent_file: Path, env: Mapping[str, str], cwd: Path) -> None:
        self.env = dict(env)
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in close()
            prefix="agentsim-warm-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", warm.__spec__.name, str(agent_file)],
            env={**env, shim.PARENT_ENV: str(os.getpid())},
            cwd=str(cwd),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            start_new_session=True,  # Ctrl-C reaches pytest only; pytest ends it
        )
        assert self.proc.stdout is not None
        self._out = self.proc.stdout.fileno()
        os.set_blocking(self._out, False)
        self._pending = b""
        self._replies: list[dict[str, Any]] = []
        self._exits: dict[int, int] = {}
        self.ready: dict[str, Any] | None = None
        self.unfit: str | None = None
        self.retry_without_prewarm = False  # unfit because of what setup_fnc started

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        self._pump()
        return self.proc.poll() is None and self.unfit is None

    def _pump(self) -> None:
        """Read what the server has answered so far (never blocks)."""
        while True:
            try:
                chunk = os.read(self._out, 65536)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            self._pending += chunk
        while b"\n" in self._pending:
            line, self._pending = self._pending.split(b"\n", 1)
            message = json.loads(line)
            if "exit" in message:
                self._exits[int(message["exit"])] = int(message["code"])
            elif "ready" in message:
                self.ready = message
            elif "unfit" in message:
                self.unfit = str(message["unfit"])
                self.retry_without_prewarm = bool(message.get("retry_without_prewarm"))
            else:
                self._replies.append(message)

    def _send(self, **request: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()

    async def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while self.ready is None:
            self._pump()
            if self.unfit is not None:
                raise WarmUnavailable(self.unfit)
            if self.ready is not None:
                break
            if self.proc.poll() is not None:
                raise WarmUnavailable(f"the warm server exited (code {self.proc.returncode})")
            if time.monotonic() >= deadline:
                raise WarmUnavailable(f"the warm server was not ready within {timeout:g}s")
            await asyncio.sleep(0.01)

    async def fork(self, env: Mapping[str, str], connect: str, log_path: Path) -> WarmJob:
        try:
            self._send(op="fork", env=dict(env), connect=connect, log=str(log_path))
        except (BrokenPipeError, OSError) as e:
            raise WarmUnavailable(f"the warm server is gone ({e})") from None
        deadline = time.monotonic() + 10.0
        while not self._replies:
            self._pump()
            if self.proc.poll() is not None or time.monotonic() >= deadline:
                raise WarmUnavailable("the warm server did not answer a fork request")
            await asyncio.sleep(0.002)
        reply = self._replies.pop(0)
        if "refused" in reply:
            raise WarmUnavailable(str(reply["refused"]))
        return WarmJob(int(reply["pid"]), self)

    def exit_code(self, pid: int) -> int | None:
        self._pump()
        code = self._exits.get(pid)
        if code is None and self.proc.poll() is not None:
            return -signal.SIGKILL  # the server died; its jobs died with it
        return code

    def reap(self, pid: int) -> None:
        self._exits.pop(pid, None)
        with contextlib.suppress(OSError, ValueError):
            self._send(op="reap", pid=pid)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            text = Path(self.log.name).read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    def close(self) -> None:
        """End the server (and any job it still runs); closing its stdin asks it to."""
        proc = self.proc
        with contextlib.suppress(OSError, ValueError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=3)
        with contextlib.suppress(OSError, ValueError):
            if proc.stdout is not None:
                proc.stdout.close()
        self.log.close()
        with contextlib.suppress(OSError):
            os.unlink(self.log.name)


class WarmPool:
    """The warm servers of this pytest process, by :func:`warm_key`."""

    def __init__(self) -> None:
        self._servers: dict[Key, WarmServer] = {}
        self._cold: dict[Key, str] = {}  # keys that run cold, and why
        self._ports: dict[Key, int] = {}

    def port_for(self, key: Key) -> int:
        """The port the fake gateway of this key's jobs takes (the same each time)."""
        port = self._ports.get(key)
        if port is None:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            self._ports[key] = port
        return port

    async def job(
        self, agent_file: Path, env: Mapping[str, str], cwd: Path, connect: str, log_path: Path
    ) -> tuple[WarmJob, WarmServer]:
        """Fork this scenario's job from the warm server of its key (started on first use).

        ``env`` is the job's whole environment. Raises :class:`WarmUnavailable`.
        """
        if not fork_supported():
            raise WarmUnavailable("warm servers fork, which only Linux does safely")
        key = warm_key(agent_file, env, cwd)
        if key in self._cold:
            raise WarmUnavailable(self._cold[key])
        server = self._servers.get(key)
        if server is not None and not server.alive():
            self._servers.pop(key).close()
            self._cold[key] = "its warm server died"
            raise WarmUnavailable(self._cold[key])
        if server is not None:
            self._servers[key] = self._servers.pop(key)  # most recently used last
        else:
            while len(self._servers) >= MAX_SERVERS:
                self._servers.pop(next(iter(self._servers))).close()
            imported_with = {
                k: v for k, v in env.items() if k not in PER_JOB_ENV or k in GATEWAY_URL_ENV
            }
            server = await self._start(key, agent_file, imported_with, cwd)
        moved = [k for k in GATEWAY_URL_ENV if env.get(k) != server.env.get(k)]
        if moved:  # the gateway could not take its port: the import saw another URL
            raise WarmUnavailable(f"{moved[0]} differs from the warm server's")
        return await server.fork(env, connect, log_path), server

    async def _start(
        self, key: Key, agent_file: Path, env: dict[str, str], cwd: Path
    ) -> WarmServer:
        server = WarmServer(agent_file, env, cwd)
        self._servers[key] = server
        try:
            await server.wait_ready()
            return server
        except WarmUnavailable as e:
            self._servers.pop(key).close()
            if server.retry_without_prewarm and env.get(warm.PREWARM_ENV) != "0":
                # the imports can still be shared; each job then prewarms itself, as cold
                log.debug("warm server for %s: %s; prewarming per job", agent_file, e)
                return await self._start(key, agent_file, {**env, warm.PREWARM_ENV: "0"}, cwd)
            self._cold[key] = str(e)
            log.debug("warm server for %s unavailable: %s", agent_file, e)
            raise

    def server_pids(self) -> list[int]:
        return [server.pid for server in self._servers.values()]

    def shutdown(self) -> None:
        """End every server; the next session starts afresh."""
        servers, self._servers = list(self._servers.values()), {}
        self._cold.clear()
        self._ports.clear()
        for server in servers:
            server.close()


WARM_POOL = WarmPool()
"""This process's warm servers. Module state on purpose: the servers outlive any one
scenario's event loop and settings, and atexit must find them."""

atexit.register(WARM_POOL.shutdown)
