"""Process mode: the agent file runs unchanged in its own process (SPEC §4).

``agentsim: {process: true}`` (or ``--agentsim-process``) runs an ``AgentServer`` file the
way ``python -m livekit.agents console <file> --connect-addr 127.0.0.1:PORT`` starts it,
and drives it over LiveKit's session protocol exactly as the cloud simulator does:

* **The child.** ``python -m pytest_agentsim._process_shim <file> --connect-addr ...``
  (:mod:`pytest_agentsim._process_shim`): livekit's own CLI ``main()``, with
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
* **Verdicts.** Each turn's returned items become :class:`~pytest_agentsim.runner.ObservedEvent`
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
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livekit.agents.voice.remote_session import RemoteSession, TcpSessionTransport

from . import _process_shim as shim
from .errors import ScenarioError
from .runner import ObservedEvent, ScenarioFailure, ScenarioRun, _parse_args, _Run

if TYPE_CHECKING:
    from .loader import Scenario
    from .runner import RunSettings
    from .script import Turn

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
    ) -> None:
        self.agent_file = agent_file
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
        package_root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (env.get("PYTHONPATH", ""), package_root) if p
        )
        argv = [
            sys.executable,
            "-m",
            "pytest_agentsim._process_shim",
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
        self.remote = RemoteSession(_AcceptedTransport(reader, writer))
        try:
            await self.remote.start()
            await self.remote.wait_for_ready(timeout=max(5.0, connect_timeout / 2))
            # console mode attaches TCP audio I/O: text mode turns it off, as the simulator
            # does (else the replies of an agent without TTS never come back)
            await self.remote.update_io(input_audio_enabled=False, output_audio_enabled=False)
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
            if ln.strip() and not ln.startswith(shim.BLOCKED_MARK)
        ]
        return "\n".join(text[-lines:])

    def blocked_network(self) -> list[str]:
        """Non-loopback hosts the child tried to reach (reported by the shim on exit)."""
        return [
            ln[len(shim.BLOCKED_MARK) :]
            for ln in self.log_text().splitlines()
            if ln.startswith(shim.BLOCKED_MARK)
        ]

    def _job_crashed(self) -> bool:
        # the console job runs in a thread: an entrypoint that raises before
        # session.start() is logged, but the process stays up and never connects
        return "unhandled exception while running the job task" in self.log_text()


class _AcceptedTransport(TcpSessionTransport):
    """livekit's TCP framing over a connection the plugin accepted (the child dialed in).

    ``TcpSessionTransport`` only knows how to dial; its reader/writer/loop attributes are
    set here as its own ``start()`` would set them.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__("127.0.0.1", 0)
        self._reader = reader
        self._writer = writer
        self._loop = asyncio.get_running_loop()

    async def start(self) -> None:
        return None


# --------------------------------------------------------------------------- target
def locate_agent_file(
    spec: Any, *, origin: Path | None, rootdir: Path | None, where: str = "agentsim.agent"
) -> Path:
    """The ``.py`` file process mode runs for ``spec``, without importing it here."""
    import importlib.util
    import inspect

    from .binding import _candidate_files

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
    """Why ``scenario`` cannot run in process mode (None: it can)."""

    def err(what: str, line: int | None) -> ScenarioError:
        return ScenarioError(
            f"process mode cannot check {what}: the agent runs in another process, driven "
            "only through LiveKit's session protocol",
            path=scenario.path,
            line=line,
            fix="run this scenario in-process (without `process: true` and "
            "--agentsim-process), or remove the key",
        )

    cfg = scenario.config
    if mode != "text":
        return err("audio mode", cfg.line)
    if cfg.snapshot:
        return err("`snapshot:` (the chat history stays in the child)", cfg.line)
    for sf in cfg.faults:
        if sf.resource != "llm":
            return err(f"{sf.resource} faults (text mode has no STT/TTS)", sf.line)
    for turn in cfg.turns or ():
        if turn.user is None:
            return err("`say:`/`generate_reply:` turns", turn.line)
        if turn.tools:
            return err("`tools:` mocks", turn.line)
        if turn.spoken is not None:
            return err("`spoken:`", turn.line)
        if turn.closed is not None:
            return err("`closed:`", turn.line)
        if turn.tts:
            return err("`tts:` steps", turn.line)
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
            text = "\n".join(c.text for c in msg.content if c.WhichOneof("payload") == "text")
            out.append(ObservedEvent("message", role=role, text=text))
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
    """A :class:`~pytest_agentsim.runner.ScenarioRun` plus what the child did."""

    blocked: list[str] = dataclasses.field(default_factory=list)
    """Non-loopback hosts the agent process tried to reach."""
    stats: ProcessStats = dataclasses.field(default_factory=ProcessStats)
    log_tail: str = ""


class _ProcessPlay:
    def __init__(self, run: _Run, child: AgentProcess, remote: RemoteSession, timeout: float):
        self.run = run
        self.child = child
        self.remote = remote
        self.timeout = timeout
        self.stats = ProcessStats(startup_seconds=child.startup_seconds)
        remote.on("error", self._on_error)

    def _on_error(self, ev: Any) -> None:
        self.run.sim._note("error", f"agent session error: {_error_text(ev.error.message)}")

    def child_gone(self) -> str | None:
        code = self.child.exit_code
        return None if code is None else f"the agent process exited (code {code})"

    async def play_turn(self, turn: Turn) -> None:
        run, sim = self.run, self.run.sim
        assert turn.user is not None
        sim.set_line(turn.line)
        run.queue_turn(turn)
        sim.turn += 1
        sim._note("user", turn.user)
        faults_before = {id(e) for e in sim.timeline if e.kind == "fault"}
        started = time.monotonic()
        try:
            result = await self.remote.run(turn.user, timeout=self.timeout)
            observed = observe_items(result.items)
        except asyncio.TimeoutError:
            raise run.fail(
                f"turn {turn.index + 1}: the agent did not finish its reply within "
                f"{self.timeout:g}s (agentsim.timeout)",
                turn.line,
            ) from None
        except RuntimeError as e:
            gone = self.child_gone()
            if gone is not None or "transport closed" in str(e):
                raise run.fail(
                    f"turn {turn.index + 1}: {gone or 'the agent closed its session connection'}"
                    " during the turn",
                    turn.line,
                ) from None
            served = [e for e in sim.timeline if e.kind == "fault" and id(e) not in faults_before]
            cause = f" (the gateway served {_served(served)})" if served else ""
            sim._note("error", f"the turn failed: {_strip_request(str(e))}{cause}")
            observed = await self._events_after(turn.user)
        self.stats.turn_seconds.append(time.monotonic() - started)
        self._note_events(observed)
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

    async def _events_after(self, user_text: str) -> list[ObservedEvent]:
        """A failed turn returns no items: read what it added from the chat history."""
        try:
            history = await self.remote.get_chat_history()
        except Exception:
            return []
        items = list(history.items)
        start = 0
        for i, item in enumerate(items):
            if (
                item.WhichOneof("item") == "message"
                and _role_name(item.message) == "user"
                and "".join(c.text for c in item.message.content) == user_text
            ):
                start = i + 1
        return observe_items(items[start:])

    def _note_events(self, observed: list[ObservedEvent]) -> None:
        note = self.run.sim._note
        for ev in observed:
            if ev.type == "message":
                note("agent", ev.text or "", role=ev.role, content=ev.text or "")
            elif ev.type == "function_call":
                import json

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
        try:
            result = await self.remote.finalize_simulation(
                provisional_success=True,
                provisional_reason="every scripted turn passed (pytest-agentsim)",
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
            reason = result.user_verdict.reason or "(no reason given)"
            first = reason.splitlines()[0] if reason.strip() else reason
            entry = note("note", f"ctx.fail({first!r}{' …' if first != reason else ''})")
            raise run.fail(
                f"on_simulation_end failed the simulation (SimulationContext.fail): {reason}",
                run.scenario.line,
                mark=entry,
            )
        note("note", "on_simulation_end: passed (no ctx.fail)")


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
    from .entrypoint import dispatch_json
    from .harness import AgentSim
    from .transport import InferenceGateway

    if scenario.config.turns is None:
        raise ScenarioError(
            "scenario has no agentsim.turns", path=scenario.path, line=scenario.line
        )
    problem = unsupported(scenario, settings.mode)
    if problem is not None:
        raise problem
    async with InferenceGateway(set_env=False, http_context=False) as gateway:
        sim = AgentSim(timeout=settings.timeout, gateway=gateway)
        run = _Run(scenario, sim)
        child = AgentProcess(
            agent_file,
            dispatch=dispatch_json(scenario, mode="text"),
            env=gateway.child_env(),
            real_timing=settings.real_timing,
            allow_network=allow_network,
        )
        play: _ProcessPlay | None = None
        try:
            try:
                run.queue_scenario_faults()
                sim._note("note", f"process mode: {agent_file.name} in a child process")
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
                play = _ProcessPlay(run, child, remote, settings.timeout)
                for turn in scenario.config.turns:
                    await play.play_turn(turn)
                if not settings.allow_unused:
                    run.check_unused()
                await play.finalize()
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
