"""Process mode's child: the agent file in its own process, connected to a ``RemoteSession``.

``python -m pytest_agentsim.run.drivers.shim <file> --connect-addr 127.0.0.1:PORT`` is
livekit's own CLI ``main()`` (console mode) with the scenario's simulation dispatch on the
console job (:mod:`.shim`). The plugin is the TCP server the child's
``TcpSessionTransport`` dials when the entrypoint reaches ``session.start()``; the
accepted connection is driven by livekit's stock ``RemoteSession``. The child runs in its
own process group, its output goes to a log whose tail is attached to failing reports,
and it ends itself if pytest goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from livekit.agents.voice.remote_session import RemoteSession, TcpSessionTransport
from livekit.protocol.agent_pb import agent_session as agent_pb

from . import shim
from .reaper import TOKEN_ENV, new_token, reap
from .speaker import RemoteSpeaker
from .warm_pool import Key, WarmJob, WarmPool, WarmUnavailable, log, warm_key

__all__ = ["CONNECT_TIMEOUT", "LOG_TAIL_LINES", "AgentProcess", "ChildFailed"]

CONNECT_TIMEOUT = 30.0
"""Seconds the child gets to reach ``session.start()`` (start-up is import-bound, ~2-3 s)."""

KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL at teardown."""

LOG_TAIL_LINES = 40


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class ChildFailed(Exception):
    """The agent process died or never connected (``str()`` says why, with its log)."""


class AgentProcess:
    """One agent file in a child process, connected to a ``RemoteSession``.

    ``await start()`` launches it and returns the ready session; ``await aclose()`` (always)
    ends it. ``log_tail()`` is the end of its output.
    """

    def __init__(
        self,
        agent_file: Path,
        *,
        dispatch: str,
        env: dict[str, str],
        cwd: Path | None = None,
        real_timing: bool = False,
        allow_network: bool = False,
        mode: str = "text",
        speaker: RemoteSpeaker | None = None,
        warm: WarmPool | None = None,
    ) -> None:
        self.agent_file = agent_file
        self.mode = mode
        self.speaker = speaker
        self.transport: _AcceptedTransport | None = None
        self.dispatch = dispatch
        self.extra_env = dict(env)
        # where pytest runs, as in-process (files the agent writes land in the same place)
        self.cwd = cwd or Path.cwd()
        self.real_timing = real_timing
        self.allow_network = allow_network
        self.warm = warm
        self.proc: subprocess.Popen[bytes] | WarmJob | None = None
        self.warm_server: int | None = None  # pid of the warm server that forked the job
        self.cold_reason: str | None = None  # why a warm pool could not serve it
        self.remote: RemoteSession | None = None
        self.started_at = 0.0
        self.startup_seconds: float | None = None
        self._server: asyncio.Server | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in aclose()
            prefix="agentsim-child-", suffix=".log", delete=False
        )
        self.log_path = Path(self._log.name)
        self.token = new_token()  # marks everything the agent process starts (reaper.py)

    def base_env(self) -> dict[str, str]:
        """The child's environment, without what is per job (the dispatch, its log)."""
        env = {**os.environ, **self.extra_env}
        env.pop(shim.REAL_TIMING_ENV, None)
        env.pop(shim.ALLOW_NETWORK_ENV, None)
        if self.real_timing:
            env[shim.REAL_TIMING_ENV] = "1"
        if self.allow_network:
            env[shim.ALLOW_NETWORK_ENV] = "1"
        # the agent's siblings are importable as when it is run from its folder; the child
        # imports pytest_agentsim (the shim) however the parent found it; the user's own
        # PYTHONPATH keeps precedence
        package_root = str(Path(__file__).resolve().parents[3])
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(self.agent_file.parent), env.get("PYTHONPATH", ""), package_root) if p
        )
        return env

    def warm_key(self) -> Key:
        return warm_key(self.agent_file, self.base_env(), self.cwd)

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self, connect_timeout: float = CONNECT_TIMEOUT) -> RemoteSession:
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
        accepted = loop.create_future()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if accepted.done():  # one session per job: a second connection is refused
                writer.close()
                return
            accepted.set_result((reader, writer))

        self._server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        env = self.base_env()
        env[shim.DISPATCH_ENV] = self.dispatch
        env[shim.PARENT_ENV] = str(os.getpid())
        env[shim.LOG_ENV] = str(self.log_path)
        env[TOKEN_ENV] = self.token  # per job: marks what it starts (reaper.py)
        connect = f"127.0.0.1:{port}"
        self.started_at = time.monotonic()
        if self.warm is not None:
            try:
                self.proc, server = await self.warm.job(
                    self.agent_file, env, self.cwd, connect, self.log_path
                )
                self.warm_server = server.pid
            except WarmUnavailable as e:
                self.cold_reason = str(e)
                log.debug("%s starts cold: %s", self.agent_file, e)
        if self.proc is None:
            argv = [
                sys.executable,
                "-m",
                "pytest_agentsim.run.drivers.shim",
                str(self.agent_file),
                "--connect-addr",
                connect,
            ]
            self.proc = subprocess.Popen(
                argv,
                env=env,
                cwd=str(self.cwd),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = loop.time() + connect_timeout
        while not accepted.done():
            code = self.proc.poll()
            if code is not None:
                raise ChildFailed(
                    f"the agent process exited with code {code} before its session "
                    f"connected (it never reached session.start())"
                )
            if loop.time() >= deadline:
                raise ChildFailed(
                    f"the agent process did not connect within {connect_timeout:g}s (its "
                    "entrypoint never reached session.start(): it may have raised before it, "
                    "or be waiting for something that never comes)"
                )
            crashed = self._marked(shim.ENTRY_FAILED_MARK)
            if crashed is not None:
                raise ChildFailed(
                    "the agent's entrypoint raised before its session started: "
                    f"{crashed.get('error')} (session.start() was never reached)"
                )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(accepted), 0.05)
        reader, writer = accepted.result()
        self.transport = _AcceptedTransport(reader, writer)
        self.transport.speaker = self.speaker
        self.remote = RemoteSession(self.transport)
        try:
            await self.remote.start()
            await self.remote.wait_for_ready(timeout=max(5.0, connect_timeout / 2))
            # console mode attaches TCP audio I/O. User turns arrive as text (run_input),
            # so audio input is off; text mode turns audio output off too, as the
            # simulator does (else the replies of an agent without TTS never come back),
            # while audio mode keeps it and answers the playback protocol
            await self.remote.update_io(
                input_audio_enabled=False, output_audio_enabled=self.mode == "audio"
            )
        except (Exception, asyncio.TimeoutError) as e:
            code = self.exit_code
            raise ChildFailed(
                "the agent's session connected but did not answer the session protocol "
                f"({type(e).__name__}: {e})"
                + (f"; the agent process exited with code {code}" if code is not None else "")
            ) from None
        self.startup_seconds = time.monotonic() - self.started_at
        return self.remote

    async def aclose(self) -> None:
        remote, self.remote = self.remote, None
        if remote is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(remote.aclose(), 1.0)
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + KILL_GRACE
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        if proc is not None:
            # anything left in the child's group (it leads its own session) goes now
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            reap(self.token)  # and what left the group (start_new_session=True)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            if isinstance(proc, WarmJob):
                proc.release()  # its pid (and group) may be reused from now on
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self._log.close()

    def remove_log(self) -> None:
        with contextlib.suppress(OSError):
            self.log_path.unlink()

    # -- reading the child -------------------------------------------------------------
    @property
    def exit_code(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    async def exited(self, within: float) -> int | None:
        """The exit code, waiting up to ``within`` seconds for the process to end."""
        deadline = time.monotonic() + within
        while (code := self.exit_code) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return code

    def log_text(self) -> str:
        try:
            raw = self.log_path.read_bytes()
        except OSError:
            return ""
        return _ANSI.sub("", raw.decode("utf-8", "replace"))

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = [
            ln
            for ln in self.log_text().splitlines()
            if ln.strip() and not ln.startswith(shim.MARKS)
        ]
        return "\n".join(text[-lines:])

    def blocked_network(self) -> list[str]:
        """Non-loopback hosts the child tried to reach (the shim logs each as it happens)."""
        return [
            ln[len(shim.BLOCKED_MARK) :]
            for ln in self.log_text().splitlines()
            if ln.startswith(shim.BLOCKED_MARK)
        ]

    def _marked(self, mark: str) -> dict[str, Any] | None:
        """The last JSON record the shim logged after ``mark``."""
        for ln in reversed(self.log_text().splitlines()):
            if ln.startswith(mark):
                with contextlib.suppress(ValueError):
                    detail = json.loads(ln[len(mark) :])
                    if isinstance(detail, dict):
                        return detail
        return None

    def close_reason(self) -> tuple[str | None, str | None]:
        """``(reason, error)`` of the child session's close, as the shim logged it."""
        detail = self._marked(shim.CLOSED_MARK)
        if detail is None:
            return None, None
        error = detail.get("error")
        return str(detail.get("reason")), None if error is None else str(error)

    async def simulation_end_after_close(self, timeout: float) -> dict[str, Any] | None:
        """The verdict of ``on_simulation_end`` the shim ran after the session closed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (detail := self._marked(shim.FINALIZED_MARK)) is None:
            if loop.time() >= deadline or self.exit_code is not None:
                return None
            await asyncio.sleep(0.02)
        return detail


class _AcceptedTransport(TcpSessionTransport):
    """livekit's TCP framing over a connection the plugin accepted (the child dialed in).

    ``TcpSessionTransport`` only knows how to dial; its reader/writer/loop attributes are
    set here as its own ``start()`` would set them. The console's audio messages, which
    ``RemoteSession`` ignores, go to ``speaker`` (a flushed segment is answered with
    ``audio_playback_finished`` at once: instant playout, as in-process); ``on_eof`` runs
    when the child's side ends (its session closed, or it died).
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__("127.0.0.1", 0)
        self._reader = reader
        self._writer = writer
        self._loop = asyncio.get_running_loop()
        self.speaker: RemoteSpeaker | None = None
        self.on_eof: Callable[[], None] | None = None
        self.ended = False  # the child's side of the connection closed
        self.last_activity = time.monotonic()

    async def start(self) -> None:
        return None

    async def __anext__(self) -> Any:
        while True:
            try:
                msg = await super().__anext__()
            except StopAsyncIteration:
                self.ended = True
                if self.on_eof is not None:
                    self.on_eof()
                raise
            self.last_activity = time.monotonic()
            which = msg.WhichOneof("message")
            speaker = self.speaker
            if which == "audio_output":
                if speaker is not None:
                    speaker.audio_frame(msg.audio_output)
            elif which == "audio_playback_flush":
                if speaker is not None:
                    speaker.flush()
                # every flush is answered, even one of an empty or cleared segment: the
                # console may wait on it, and an early answer is harmless (it is reset
                # by the next flush that carries audio)
                await self._playback_finished()
            elif which == "audio_playback_clear":
                if speaker is not None:
                    speaker.clear()
            else:
                return msg

    async def _playback_finished(self) -> None:
        finished = agent_pb.AgentSessionMessage.ConsoleIO.AudioPlaybackFinished()
        with contextlib.suppress(RuntimeError, ConnectionError):
            await self.send_message(agent_pb.AgentSessionMessage(audio_playback_finished=finished))
