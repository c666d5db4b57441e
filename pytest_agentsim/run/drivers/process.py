"""Process mode: the agent file runs unchanged in its own process (SPEC §4).

``agentsim: {process: true}`` (or ``--agentsim-process``) runs an ``AgentServer`` file the
way ``python -m livekit.agents console <file> --connect-addr 127.0.0.1:PORT`` starts it,
and drives it over LiveKit's session protocol exactly as the cloud simulator does:

* **The child.** ``python -m pytest_agentsim.run.drivers.shim <file> --connect-addr ...``
  (:mod:`pytest_agentsim.run.drivers.shim`): livekit's own CLI ``main()``, with
  ``AgentServer.simulate_job`` wrapped so the console job carries the scenario's protojson
  ``SimulationDispatch`` (``lk.simulator.dispatch``; job metadata on 1.6), so
  ``ctx.simulation_context()``, ``userdata()`` and ``on_simulation_end`` behave as in the
  cloud. It runs in its own session/process group (``start_new_session=True``), its
  stdout and stderr go to a log file whose tail is attached to failing reports, and it
  ends itself if pytest goes away.
* **The session.** The plugin is the TCP server the child's ``TcpSessionTransport``
  connects to (when the entrypoint reaches ``session.start()``); the accepted connection
  is wrapped in a ``TcpSessionTransport`` (livekit's framing: 4-byte big-endian length +
  ``AgentSessionMessage``) and driven by the stock ``RemoteSession``: ``wait_for_ready``,
  ``update_io`` (audio off: text mode), one ``run(user_input)`` per turn,
  ``get_chat_history`` (events of a failed turn), ``finalize_simulation``.
* **Models.** The child's ``inference.*`` / ``openai`` clients point at a loopback
  :class:`~pytest_agentsim.transport.InferenceGateway` (``gw.child_env()``), which serves
  each turn's scripted ``llm:`` answers and faults, queued per turn as in the other modes.
  Retry waits in the child cost no wall time (as in-process) unless real timing is asked.
* **Verdicts.** Each turn's returned items become :class:`~pytest_agentsim.run.runner.ObservedEvent`
  and go through the same ``expect`` checks (``runner._Run.check_expect``). A failed turn
  comes back as a string; what the gateway served during it (a quota fault, say) is read
  from the gateway's own record. After the turns, ``finalize_simulation`` runs the agent's
  ``on_simulation_end``; a veto (``ctx.fail``) fails the test with its reason.
* **Limits.** Per-turn ``tools:`` mocks, ``say:``/``generate_reply:`` turns, ``spoken:``
  and ``closed:`` checks, audio mode and snapshots need in-process access to the session:
  such scenarios are reported as errors naming the key, not run half-checked.

Timeouts: the child must connect within ``max(scenario timeout, CONNECT_TIMEOUT)`` (a
child that exits first fails at once, with its log); each turn is bounded by the scenario
timeout. Teardown: SIGTERM to the child's pid, SIGKILL to its process group after 2 s.
Never imports pytest (imported only when a scenario runs in process mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from livekit.agents.voice.remote_session import RemoteSession, TcpSessionTransport

from ...errors import ScenarioError
from ...fakes.audio import PlayedSegment, Spoken, SpokenLog
from ..runner import ObservedEvent, ScenarioFailure, ScenarioRun, _parse_args, _Run
from . import shim
from .entrypoint import SCRIPTED_PASS_REASON, dispatch_json

if TYPE_CHECKING:
    from ...load.loader import Scenario
    from ...load.script import Turn
    from ..runner import RunSettings

__all__ = [
    "AgentProcess",
    "ChildFailed",
    "ProcessScenarioRun",
    "locate_agent_file",
    "run_process_scenario",
]

CONNECT_TIMEOUT = 30.0
"""Seconds the child gets to reach ``session.start()`` (start-up is import-bound, ~2-3 s)."""

KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL at teardown."""

LOG_TAIL_LINES = 40

_R = TypeVar("_R")

SETTLE_QUIET = 0.15
"""Seconds without session traffic after which the agent counts as done with a turn."""

CLOSE_WAIT = 5.0
"""Seconds a turn waits for speech or a close it still expects (bounded by the timeout)."""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class ChildFailed(Exception):
    """The agent process died or never connected (``str()`` says why, with its log)."""


# --------------------------------------------------------------------------- the child
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
    ) -> None:
        self.agent_file = agent_file
        self.mode = mode
        self.speaker = speaker
        self.transport: _AcceptedTransport | None = None
        self.dispatch = dispatch
        self.extra_env = dict(env)
        self.cwd = cwd or agent_file.parent
        self.real_timing = real_timing
        self.allow_network = allow_network
        self.proc: subprocess.Popen[bytes] | None = None
        self.remote: RemoteSession | None = None
        self.started_at = 0.0
        self.startup_seconds: float | None = None
        self._server: asyncio.Server | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in aclose()
            prefix="agentsim-child-", suffix=".log", delete=False
        )
        self.log_path = Path(self._log.name)

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
        env = {**os.environ, **self.extra_env}
        env[shim.DISPATCH_ENV] = self.dispatch
        env[shim.PARENT_ENV] = str(os.getpid())
        env[shim.LOG_ENV] = str(self.log_path)
        env.pop(shim.REAL_TIMING_ENV, None)
        env.pop(shim.ALLOW_NETWORK_ENV, None)
        if self.real_timing:
            env[shim.REAL_TIMING_ENV] = "1"
        if self.allow_network:
            env[shim.ALLOW_NETWORK_ENV] = "1"
        # the child imports pytest_agentsim (the shim) however the parent found it; the
        # user's own PYTHONPATH keeps precedence
        package_root = str(Path(__file__).resolve().parents[3])
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (env.get("PYTHONPATH", ""), package_root) if p
        )
        argv = [
            sys.executable,
            "-m",
            "pytest_agentsim.run.drivers.shim",
            str(self.agent_file),
            "--connect-addr",
            f"127.0.0.1:{port}",
        ]
        self.started_at = time.monotonic()
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
            if self._job_crashed():
                raise ChildFailed(
                    "the agent's entrypoint raised before its session started "
                    "(session.start() was never reached)"
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
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
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
        """Non-loopback hosts the child tried to reach (reported by the shim on exit)."""
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

    def _job_crashed(self) -> bool:
        # the console job runs in a thread: an entrypoint that raises before
        # session.start() is logged, but the process stays up and never connects
        return "unhandled exception while running the job task" in self.log_text()


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
        self.last_activity = time.monotonic()

    async def start(self) -> None:
        return None

    async def __anext__(self) -> Any:
        while True:
            try:
                msg = await super().__anext__()
            except StopAsyncIteration:
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
        from livekit.protocol.agent_pb import agent_session as agent_pb

        finished = agent_pb.AgentSessionMessage.ConsoleIO.AudioPlaybackFinished()
        with contextlib.suppress(RuntimeError, ConnectionError):
            await self.send_message(agent_pb.AgentSessionMessage(audio_playback_finished=finished))


class RemoteSpeaker(SpokenLog):
    """What reached the user of an agent in another process: process mode's ``spoken``.

    * **Audio mode.** The console sends the agent's audio (``audio_output`` frames) and a
      ``audio_playback_flush`` at the end of each speech; the speaker "plays" it at once
      and the plugin answers ``audio_playback_finished``. livekit then adds the speech's
      assistant message (its text as heard, ``interrupted`` if an
      ``audio_playback_clear`` cut it), and that message names the segment. A segment no
      message claims (``say(..., add_to_chat_ctx=False)``) gets the text the gateway
      synthesized for it. A message with no audio was never heard (its TTS failed).
    * **Text mode.** Audio is off; each assistant message added is what the user read.

    ``spoken`` and ``on_spoken`` mirror :class:`~pytest_agentsim.fakes.Outputs`, so the
    harness's checks read either.
    """

    def __init__(self, mode: str, *, synthesized: Callable[[], Sequence[str]] | None = None):
        super().__init__()
        self.mode = mode
        self.segments: list[PlayedSegment] = []
        self._synthesized = synthesized or (lambda: ())
        self._synth_start: dict[int, int] = {}  # segment index -> synthesized[] index
        self._capturing: PlayedSegment | None = None
        self._unclaimed: list[PlayedSegment] = []  # played, waiting for their message

    # -- the console's audio ---------------------------------------------------------
    def audio_frame(self, frame: Any) -> None:
        seg = self._capturing
        if seg is None:
            seg = PlayedSegment(index=len(self.segments), source="tts", speech_id=None)
            self._synth_start[seg.index] = max(0, len(self._synthesized()) - 1)
            self.segments.append(seg)
            self._capturing = seg
        if frame.sample_rate:
            seg.frames += 1
            seg.duration += frame.samples_per_channel / frame.sample_rate

    def flush(self) -> None:
        """The end of a speech's audio: played out, at once."""
        seg, self._capturing = self._capturing, None
        if seg is not None:
            self._finish(seg, interrupted=False)

    def clear(self) -> None:
        # instant playout has played everything it was given (as the in-process sink)
        seg, self._capturing = self._capturing, None
        if seg is not None:
            self._finish(seg, interrupted=True)

    def _finish(self, seg: PlayedSegment, *, interrupted: bool) -> None:
        seg.played = seg.duration
        seg.interrupted = interrupted
        seg.finished = True
        synth = self._synthesized()
        start = self._synth_start.get(seg.index, len(synth))
        seg.full_text = " ".join(t for t in synth[start:] if t) or None
        self._unclaimed.append(seg)

    # -- the session's messages ------------------------------------------------------
    def message(self, text: str, *, interrupted: bool) -> None:
        """An assistant message was added to the agent's chat history."""
        if self.mode != "audio":
            self._add(Spoken(text, "text", interrupted, len(self.spoken)))
            return
        if not self._unclaimed:
            return  # no audio was played for it: the user never heard it
        *orphans, seg = self._unclaimed
        self._unclaimed.clear()
        for orphan in orphans:
            self._emit_orphan(orphan)
        seg.full_text = text
        self._add(Spoken(text, seg.source, interrupted or seg.interrupted, len(self.spoken)))

    def settle(self) -> None:
        """Audio no message claimed (the turn is over, or the session closed)."""
        unclaimed, self._unclaimed = self._unclaimed, []
        for seg in unclaimed:
            self._emit_orphan(seg)

    def _emit_orphan(self, seg: PlayedSegment) -> None:
        self._add(Spoken(seg.full_text or "", seg.source, seg.interrupted, len(self.spoken)))


# --------------------------------------------------------------------------- target
def locate_agent_file(
    spec: Any, *, origin: Path | None, rootdir: Path | None, where: str = "agentsim.agent"
) -> Path:
    """The ``.py`` file process mode runs for ``spec``, without importing it here."""
    import importlib.util
    import inspect

    from ..target import _candidate_files

    if isinstance(spec, str):
        module_part = spec.partition(":")[0]
        module_part = module_part.strip()
        for candidate in _candidate_files(module_part, origin, rootdir):
            if candidate.is_file():
                return candidate.resolve()
        if module_part and not module_part.endswith(".py") and "/" not in module_part:
            found = None
            with contextlib.suppress(ImportError, ValueError):
                found = importlib.util.find_spec(module_part)
            if found is not None and found.origin and found.origin.endswith(".py"):
                return Path(found.origin).resolve()
        raise ScenarioError(
            f"{where}: process mode runs an AgentServer file, and {spec!r} names no file "
            "it can find",
            fix="give the path of the agent file relative to the scenario file (`agent: agent.py`)",
        )
    module = inspect.getmodule(spec) if not hasattr(spec, "__file__") else spec
    if module is None:
        module = next(
            (
                m
                for m in list(sys.modules.values())
                if getattr(m, "__file__", None) and any(v is spec for v in vars(m).values())
            ),
            None,
        )
    path = getattr(module, "__file__", None)
    if not path:
        raise ScenarioError(
            f"{where}: process mode needs the file that defines the AgentServer; cannot tell "
            f"which file {spec!r} comes from",
            fix="name the agent file in `agentsim: {agent: agent.py}`",
        )
    return Path(path).resolve()


# --------------------------------------------------------------------------- scenarios
def unsupported(scenario: Scenario, mode: str) -> ScenarioError | None:
    """Why ``scenario`` cannot run in process mode (None: it can).

    The session protocol carries user text (``run_input``), the chat history and events,
    and the console's audio; it cannot make the agent ``say`` something, start a reply,
    or mock a tool inside the other process.
    """

    def err(what: str, line: int | None, why: str = "") -> ScenarioError:
        return ScenarioError(
            f"process mode cannot {what}: the agent runs in another process, driven only "
            f"through LiveKit's session protocol{why}",
            path=scenario.path,
            line=line,
            fix="run this scenario in-process (without `process: true` and "
            "--agentsim-process), or remove the key",
        )

    cfg = scenario.config
    if mode != "audio":
        for sf in cfg.faults:
            if sf.resource != "llm":
                return err(
                    f"inject {sf.resource} faults in text mode",
                    sf.line,
                    " (text mode has no STT/TTS: use `mode: audio`)",
                )
    for turn in cfg.turns or ():
        if turn.user is None:
            return err("play `say:`/`generate_reply:` turns", turn.line, " (it carries user text)")
        if turn.tools:
            return err("mock tools (`tools:`)", turn.line)
        if turn.tts and mode != "audio":
            return err("script `tts:` steps in text mode", turn.line, " (use `mode: audio`)")
    return None


def observe_items(items: Sequence[Any]) -> list[ObservedEvent]:
    """``ChatContext.ChatItem`` protos (a run's items) as the events ``expect`` checks."""
    out: list[ObservedEvent] = []
    for item in items:
        which = item.WhichOneof("item")
        if which == "message":
            msg = item.message
            role = _role_name(msg)
            if role in ("user", "system", "developer"):
                continue  # run() results carry the agent's side only
            out.append(ObservedEvent("message", role=role, text=_message_text(msg)))
        elif which == "function_call":
            fc = item.function_call
            out.append(
                ObservedEvent("function_call", name=fc.name, arguments=_parse_args(fc.arguments))
            )
        elif which == "function_call_output":
            fo = item.function_call_output
            out.append(
                ObservedEvent(
                    "function_call_output", text=fo.output, is_error=fo.is_error, name=fo.name
                )
            )
        elif which == "agent_handoff":
            out.append(ObservedEvent("agent_handoff", new_agent=item.agent_handoff.new_agent_id))
    return out


def _message_text(message: Any) -> str:
    """A ``ChatMessage`` proto's text parts, joined as ``ChatMessage.text_content`` joins them."""
    return "\n".join(c.text for c in message.content if c.WhichOneof("payload") == "text")


def _role_name(message: Any) -> str:
    """``ASSISTANT`` -> ``assistant`` (the proto's own enum names, on every release)."""
    enum = message.DESCRIPTOR.fields_by_name["role"].enum_type
    value = enum.values_by_number.get(int(message.role))
    return str(value.name).lower() if value is not None else str(message.role)


def _agent_id(class_name: str) -> str:
    """livekit's default ``Agent.id``: the class name in snake case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()


def _align_handoffs(turn: Turn, observed: list[ObservedEvent]) -> list[ObservedEvent]:
    """Handoffs arrive as agent ids; ``expect`` names classes: match the default ids."""
    out = list(observed)
    for i, exp in enumerate(turn.expect or ()):
        if (
            i < len(out)
            and exp.type == "agent_handoff"
            and out[i].type == "agent_handoff"
            and exp.new_agent
            and out[i].new_agent == _agent_id(exp.new_agent)
        ):
            out[i] = dataclasses.replace(out[i], new_agent=exp.new_agent)
    return out


@dataclasses.dataclass
class ProcessStats:
    startup_seconds: float | None = None
    turn_seconds: list[float] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ProcessScenarioRun(ScenarioRun):
    """A :class:`~pytest_agentsim.run.runner.ScenarioRun` plus what the child did."""

    blocked: list[str] = dataclasses.field(default_factory=list)
    """Non-loopback hosts the agent process tried to reach."""
    stats: ProcessStats = dataclasses.field(default_factory=ProcessStats)
    log_tail: str = ""


class _ProcessPlay:
    def __init__(
        self,
        run: _Run,
        child: AgentProcess,
        remote: RemoteSession,
        timeout: float,
        *,
        settle: bool,
        keep_history: bool = False,
    ):
        self.run = run
        self.child = child
        self.remote = remote
        self.timeout = timeout
        # wait for the agent to go quiet after each turn: only scenarios that check what
        # was heard or that the session closed need it (it costs SETTLE_QUIET per turn)
        self.settle_turns = settle
        self.stats = ProcessStats(startup_seconds=child.startup_seconds)
        self.turn_events: list[ObservedEvent] = []  # this turn's, from session events
        # snapshots: the chat history as last read, plus the items added since (what a
        # session that closes takes with it is in those)
        self.keep_history = keep_history
        self.history_items: list[Any] = []
        self.items_since: list[Any] = []
        self.finishing = False
        self.user_inputs_seen = 0  # user messages the child's session took in (events)
        remote.on("error", self._on_error)
        remote.on("conversation_item_added", self._on_item)
        remote.on("function_tools_executed", self._on_tools)
        transport = child.transport
        if transport is not None:
            transport.on_eof = self._on_eof

    # -- session events ------------------------------------------------------------------
    def _on_error(self, ev: Any) -> None:
        self.run.sim._note("error", f"agent session error: {_error_text(ev.error.message)}")

    def _on_item(self, ev: Any) -> None:
        item = ev.conversation_item_added.item
        self.items_since.append(item)
        which = item.WhichOneof("item")
        if which == "message" and _role_name(item.message) == "user":
            self.user_inputs_seen += 1
        elif which == "message" and _role_name(item.message) == "assistant":
            msg = item.message
            text = _message_text(msg)
            self.turn_events.append(ObservedEvent("message", role="assistant", text=text))
            if self.child.speaker is not None:
                self.child.speaker.message(text, interrupted=msg.interrupted)
        elif which == "agent_handoff":
            handoff = item.agent_handoff.new_agent_id
            self.turn_events.append(ObservedEvent("agent_handoff", new_agent=handoff))

    def _on_tools(self, ev: Any) -> None:
        done = ev.function_tools_executed
        for call, out in zip(done.function_calls, done.function_call_outputs, strict=False):
            self.turn_events.append(
                ObservedEvent(
                    "function_call", name=call.name, arguments=_parse_args(call.arguments)
                )
            )
            self.turn_events.append(
                ObservedEvent(
                    "function_call_output", text=out.output, is_error=out.is_error, name=out.name
                )
            )

    def _on_eof(self) -> None:
        """The child's end of the session protocol closed: its session closed (or it died)."""
        sim = self.run.sim
        if self.finishing or sim.closed:
            return
        if self.child.speaker is not None:
            self.child.speaker.settle()
        reason, error = self.child.close_reason()
        if reason is None:
            code = self.child.exit_code
            reason = "unknown" if code is None else f"agent process exited (code {code})"
        sim._on_close(_RemoteClose(reason, error))

    def child_gone(self) -> str | None:
        code = self.child.exit_code
        return None if code is None else f"the agent process exited (code {code})"

    # -- turns -------------------------------------------------------------------------
    async def play_turn(self, turn: Turn) -> None:
        run, sim = self.run, self.run.sim
        assert turn.user is not None
        sim.set_line(turn.line)
        run.ensure_open(turn)
        run.queue_turn(turn)
        sim.turn += 1
        sim._note("user", turn.user)
        self.turn_events = []
        faults_before = {id(e) for e in sim.timeline if e.kind == "fault"}
        started = time.monotonic()
        inputs_before = self.user_inputs_seen
        try:
            result = await self._request(self.remote.run(turn.user, timeout=self.timeout))
            observed = observe_items(result.items)
        except asyncio.TimeoutError:
            raise run.fail(
                f"turn {turn.index + 1}: the agent did not finish its reply within "
                f"{self.timeout:g}s (agentsim.timeout)",
                turn.line,
            ) from None
        except RuntimeError as e:
            if "transport closed" in str(e) or self.child_gone() is not None:
                observed = await self._closed_during_turn(turn, inputs_before)
            elif "is closing" in str(e):  # livekit: "AgentSession is closing, cannot use ..."
                await sim.wait_closed(timeout=CLOSE_WAIT)
                raise run.fail(
                    f"turn {turn.index + 1} ({turn.describe()}) cannot run: the session already "
                    f"closed ({_strip_request(str(e))})",
                    turn.line,
                ) from None
            else:
                served = [
                    e for e in sim.timeline if e.kind == "fault" and id(e) not in faults_before
                ]
                cause = f" (the gateway served {_served(served)})" if served else ""
                sim._note("error", f"the turn failed: {_strip_request(str(e))}{cause}")
                observed = await self._events_after(turn.user)
        self.stats.turn_seconds.append(time.monotonic() - started)
        self._note_events(observed)
        if self.settle_turns:
            await self._settle(turn)
        if self.keep_history:
            await self.read_history()
        unscripted = sim.unscripted_calls()[run.unscripted_seen :]
        run.unscripted_seen += len(unscripted)
        if unscripted:
            raise run.fail(
                f"turn {turn.index + 1}: the agent made a model call the scenario did not script "
                f"({unscripted[0]})",
                turn.line,
            )
        if turn.expect is not None:
            run.check_expect(turn, _align_handoffs(turn, observed))
        if turn.spoken is not None:
            run.check_spoken(turn, turn.spoken)
        if turn.closed is not None:
            run.check_closed(turn)

    async def _request(self, request: Coroutine[Any, Any, _R]) -> _R:
        """A ``RemoteSession`` request, ended by the session closing: livekit 1.6 leaves a
        request the closing session never answers pending until its timeout."""
        sim = self.run.sim
        run = asyncio.ensure_future(request)
        closed = asyncio.ensure_future(sim.wait_closed(timeout=self.timeout))
        try:
            await asyncio.wait({run, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not run.done():
                # closed first: 1.7+ fails pending requests at once, 1.6 never answers
                await asyncio.wait({run}, timeout=SETTLE_QUIET)
            if not run.done():
                raise RuntimeError("remote session transport closed (session closed)")
            return run.result()
        finally:
            for task in (run, closed):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _closed_during_turn(self, turn: Turn, inputs_before: int) -> list[ObservedEvent]:
        """The connection ended mid-turn: a session the agent closed is a result (the
        turn's ``closed:`` judges it); a child that died is a failure."""
        sim = self.run.sim
        # the end of the stream and the process exit race; give the EOF a moment
        await sim.wait_closed(timeout=SETTLE_QUIET)
        close = sim.close_event
        if close is None or str(close.reason).startswith("agent process exited"):
            gone = self.child_gone() or "the agent closed its session connection"
            raise self.run.fail(
                f"turn {turn.index + 1}: {gone} during the turn", turn.line
            ) from None
        if self.user_inputs_seen == inputs_before:
            # the session was already closing: the turn's input never reached it
            raise self.run.fail(
                f"turn {turn.index + 1} ({turn.describe()}) cannot run: the session already "
                "closed (it was closing when the turn began)",
                turn.line,
            )
        return list(self.turn_events)

    async def _settle(self, turn: Turn) -> None:
        """Wait until the agent is quiet: what it says after the turn's reply (an error
        handler's fallback) or its session closing arrive as events, not in the reply.

        Quiet means no protocol traffic for ``SETTLE_QUIET`` seconds; while the turn still
        expects more speech, or a close, waiting goes on up to ``CLOSE_WAIT`` seconds.
        """
        sim = self.run.sim
        transport = self.child.transport
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(self.timeout, CLOSE_WAIT)
        want_spoken = len(turn.spoken) if turn.spoken else 0
        want_close = turn.closed is not None and turn.closed.closed
        while not sim.closed and transport is not None:
            quiet = time.monotonic() - transport.last_activity >= SETTLE_QUIET
            heard = sum(1 for e in sim.timeline if e.kind == "spoken" and e.turn == sim.turn)
            if quiet and heard >= want_spoken and not want_close:
                break
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.02)
        if self.child.speaker is not None:
            self.child.speaker.settle()

    async def read_history(self) -> None:
        """Read the chat history (for the snapshot), while the session is open."""
        if self.run.sim.closed:
            return
        try:
            response = await self._request(self.remote.get_chat_history())
        except (RuntimeError, asyncio.TimeoutError):
            return  # it closed meanwhile: the items since the last read stand in
        self.history_items = list(response.items)
        self.items_since = []

    def history(self) -> list[dict[str, Any]]:
        from ...observe.history import history_from_proto

        return history_from_proto([*self.history_items, *self.items_since])

    async def _events_after(self, user_text: str) -> list[ObservedEvent]:
        """A failed turn returns no items: read what it added from the chat history."""
        try:
            history = await self._request(self.remote.get_chat_history())
        except Exception:
            return []
        items = list(history.items)
        start = len(items)  # the turn's input never reached the history: it added nothing
        for i, item in enumerate(items):
            if (
                item.WhichOneof("item") == "message"
                and _role_name(item.message) == "user"
                and _message_text(item.message) == user_text
            ):
                start = i + 1
        return observe_items(items[start:])

    def _note_events(self, observed: list[ObservedEvent]) -> None:
        note = self.run.sim._note
        for ev in observed:
            if ev.type == "message":
                note("agent", ev.text or "", role=ev.role, content=ev.text or "")
            elif ev.type == "function_call":
                args = json.dumps(ev.arguments, ensure_ascii=False)
                note("tool_call", f"{ev.name}({args})", name=ev.name, arguments=args)
            elif ev.type == "function_call_output":
                flag = " [error]" if ev.is_error else ""
                note(
                    "tool_output",
                    f"{ev.name} -> {ev.text}{flag}",
                    name=ev.name,
                    output=ev.text,
                    is_error=ev.is_error,
                )
            else:
                note("handoff", f"-> {ev.new_agent}", new_agent=ev.new_agent)

    async def finalize(self) -> None:
        """``finalize_simulation``: the agent's ``on_simulation_end`` and its verdict."""
        run = self.run
        note = run.sim._note
        if run.sim.closed:
            await self._finalized_after_close()
            return
        self.finishing = True
        try:
            result = await self.remote.finalize_simulation(
                provisional_success=True,
                provisional_reason=SCRIPTED_PASS_REASON,
                timeout=self.timeout,
            )
        except asyncio.TimeoutError:
            raise run.fail(
                f"on_simulation_end did not finish within {self.timeout:g}s",
                run.scenario.line,
            ) from None
        except RuntimeError as e:
            gone = self.child_gone()
            text = gone or _strip_request(str(e))
            raise run.fail(
                f"on_simulation_end failed: {text}",
                run.scenario.line,
                mark=note("error", f"finalize_simulation: {text}"),
            ) from None
        if result.HasField("user_verdict") and not result.user_verdict.success:
            self._vetoed(result.user_verdict.reason)
        note("note", "on_simulation_end: passed (no ctx.fail)")

    async def _finalized_after_close(self) -> None:
        """The session closed first, so its host is gone and ``finalize_simulation``
        cannot reach it: the shim ran ``on_simulation_end`` in the child at the close."""
        run = self.run
        note = run.sim._note
        detail = await self.child.simulation_end_after_close(self.timeout)
        if detail is None:
            raise run.fail(
                "on_simulation_end did not report a verdict after the session closed "
                f"(within {self.timeout:g}s, or the agent process exited)",
                run.scenario.line,
                mark=note("error", "on_simulation_end: no verdict"),
            )
        if detail.get("error"):
            text = str(detail["error"])
            raise run.fail(
                f"on_simulation_end failed: {text}",
                run.scenario.line,
                mark=note("error", f"on_simulation_end (after the close): {text}"),
            )
        if not detail.get("ran"):
            note("note", "on_simulation_end: none registered (the session had closed)")
            return
        if not detail.get("success", True):
            self._vetoed(str(detail.get("reason") or ""))
        note("note", "on_simulation_end (run at the close): passed (no ctx.fail)")

    def _vetoed(self, reason: str) -> NoReturn:
        run = self.run
        reason = reason or "(no reason given)"
        first = reason.splitlines()[0] if reason.strip() else reason
        entry = run.sim._note("note", f"ctx.fail({first!r}{' …' if first != reason else ''})")
        raise run.fail(
            f"on_simulation_end failed the simulation (SimulationContext.fail): {reason}",
            run.scenario.line,
            mark=entry,
        )


@dataclasses.dataclass(frozen=True)
class _RemoteClose:
    """The child session's ``close``, as its log reported it (shaped like ``CloseEvent``)."""

    reason: str
    error: str | None = None


def _error_text(text: str) -> str:
    """The remote ``ErrorEvent``'s repr, reduced to its error and whether it is recoverable."""
    m = re.search(r"\berror=(?P<err>.+) recoverable=(?P<rec>True|False)\s*$", text)
    if m is None:
        return text
    flag = "recoverable" if m["rec"] == "True" else "unrecoverable"
    return f"{m['err']} [{flag}]"


def _served(entries: Sequence[Any]) -> str:
    """``quota_exceeded(429 MaxGatewayCredits) on llm calls 1-4``, from the gateway's record."""
    groups: dict[str, list[str]] = {}
    for e in entries:
        head, _, what = e.text.partition(": ")
        groups.setdefault(what, []).append(head.replace(" (gateway)", ""))
    parts = []
    for what, calls in groups.items():
        where = calls[0] if len(calls) == 1 else f"{calls[0]} to {calls[-1].split()[-1]}"
        parts.append(f"{what} on {where}")
    return "; ".join(parts)


def _strip_request(text: str) -> str:
    return re.sub(r"^session request \w+ failed: ", "", text)


async def run_process_scenario(
    scenario: Scenario, agent_file: Path, settings: RunSettings, *, allow_network: bool = False
) -> ScenarioRun:
    """Run one scripted scenario against ``agent_file`` in a child process.

    Returns a :class:`ProcessScenarioRun`; raises ``ScenarioFailure`` (with the child's
    log tail) or ``ScenarioError``.
    """
    from ...transport import InferenceGateway
    from ..harness import AgentSim

    if scenario.config.turns is None:
        raise ScenarioError(
            "scenario has no agentsim.turns", path=scenario.path, line=scenario.line
        )
    problem = unsupported(scenario, settings.mode)
    if problem is not None:
        raise problem
    async with InferenceGateway(set_env=False, http_context=False) as gateway:
        sim = AgentSim(timeout=settings.timeout, gateway=gateway, gateway_serves_all=True)
        sim.mode = "audio" if settings.mode == "audio" else "text"
        run = _Run(scenario, sim)
        speaker = RemoteSpeaker(sim.mode, synthesized=lambda: gateway.synthesized)
        sim._outputs = speaker
        speaker.on_spoken(sim._on_spoken)
        child = AgentProcess(
            agent_file,
            dispatch=dispatch_json(scenario, mode=sim.mode),
            env=gateway.child_env(),
            real_timing=settings.real_timing,
            allow_network=allow_network,
            mode=sim.mode,
            speaker=speaker,
        )
        play: _ProcessPlay | None = None
        try:
            try:
                run.queue_scenario_faults()
                sim._note(
                    "note", f"process mode ({sim.mode}): {agent_file.name} in a child process"
                )
                try:
                    remote = await child.start(max(settings.timeout, CONNECT_TIMEOUT))
                except ChildFailed as e:
                    raise run.fail(
                        f"{e}\n  agent process log (last lines):\n"
                        + _indent(child.log_tail(20) or "(empty)"),
                        scenario.line,
                        mark=sim._note("error", "the agent process failed to start"),
                    ) from None
                sim._note(
                    "note",
                    f"agent process {child.proc.pid if child.proc else '?'} connected "
                    f"after {child.startup_seconds or 0:.2f}s",
                )
                # late output (an error handler's fallback) must land in its own turn, and
                # in the history a snapshot reads
                checks_output = any(
                    t.spoken is not None or t.closed is not None for t in scenario.config.turns
                )
                play = _ProcessPlay(
                    run,
                    child,
                    remote,
                    settings.timeout,
                    settle=checks_output or settings.keep_history,
                    keep_history=settings.keep_history,
                )
                for turn in scenario.config.turns:
                    await play.play_turn(turn)
                if not settings.allow_unused:
                    run.check_unused()
                await play.finalize()
                history = play.history() if settings.keep_history else None
            finally:
                await child.aclose()
            blocked = child.blocked_network()
            tail = child.log_tail()
        except ScenarioFailure as e:
            raise _with_log(e, child) from None
        finally:
            child.remove_log()  # its tail is in the report (or the run)
        return ProcessScenarioRun(
            sim=sim,
            timeline=sim.timeline,
            history=history,
            blocked=blocked,
            stats=play.stats if play is not None else ProcessStats(),
            log_tail=tail,
        )


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + ln for ln in text.splitlines())


def _with_log(failure: ScenarioFailure, child: AgentProcess) -> ScenarioFailure:
    blocked = child.blocked_network()
    reason = failure.reason
    if blocked:
        reason += "\n  the agent tried to reach the network (blocked in offline runs):\n" + (
            _indent("\n".join(dict.fromkeys(blocked)))
        )
    transcript = (
        f"{failure.transcript}\n\nagent process log (last {LOG_TAIL_LINES} lines):\n"
        f"{_indent(child.log_tail() or '(empty)')}"
    )
    return ScenarioFailure(
        reason, location=failure.location, transcript=transcript, timeline=failure.timeline
    )
