"""The process driver: the agent file runs unchanged in its own process (SPEC §4).

``agentsim: {process: true}`` runs an ``AgentServer`` file as ``python -m livekit.agents
console`` starts it (:mod:`.child`; a fork of a warm server, :mod:`.warm`) and drives it
over LiveKit's session protocol as the cloud simulator does: ``update_io``, a
``run(user_input)`` per user turn, ``get_chat_history``, ``finalize_simulation``. Its
model clients point at a loopback :class:`~pytest_agentsim.transport.InferenceGateway`.

What the agent does is read from the session's events, as in-process. What the protocol
cannot carry goes over a control channel (:mod:`.control`): "answer when you are quiet"
(the exact turn boundary), agent-initiated turns (``say:``/``generate_reply:``) and a
turn's ``tools:`` mocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar, cast

from google.protobuf.json_format import MessageToDict
from livekit.agents.voice.remote_session import RemoteSession
from livekit.protocol.agent_pb import agent_session as agent_pb

from ...errors import ScenarioError, ScenarioFailure
from ...load.model import Scenario, ToolMock, Turn
from ...observe.events import proto_message_text, proto_role
from ...observe.history import history_from_proto
from ...observe.record import Recorder
from ...transport import InferenceGateway
from ..outcome import StepFailed
from ..scripts import Scripts, gateway_scripts
from ..settings import RunSettings
from . import shim
from .base import Driver
from .child import CONNECT_TIMEOUT, LOG_TAIL_LINES, AgentProcess, ChildFailed
from .control import ANSWER_KEY, TOOL_STARTED_KEY
from .dispatch import dispatch_json
from .process_end import (
    ProcessEnd,
    RemoteClose,
    error_text,
    indented,
    mock_json,
    served,
    strip_request,
    unsupported_in_process,
)
from .speaker import RemoteSpeaker
from .warm_pool import WARM_POOL, fork_supported

__all__ = ["CLOSE_WAIT", "ProcessDriver"]

_R = TypeVar("_R")

CLOSE_WAIT = 5.0
"""Seconds a turn waits for a close it still expects (bounded by the timeout)."""


class ProcessDriver(Driver):
    mode_name: ClassVar[str] = "process mode"
    ends_a_job: ClassVar[bool] = True
    # the session host forwards the agent's state: its metrics are on the wall clock

    def __init__(self, scenario: Scenario, agent_file: Path, settings: RunSettings) -> None:
        self.scenario = scenario
        self.agent_file = agent_file
        self.settings = settings
        self.timeout = settings.timeout
        self.rec = Recorder(timeout=settings.timeout)
        warm = WARM_POOL if settings.warm and fork_supported() else None
        self.child = AgentProcess(
            agent_file,
            dispatch=dispatch_json(scenario, mode=settings.mode),
            env={},
            real_timing=settings.real_timing,
            allow_network=settings.allow_network,
            mode=settings.mode,
            warm=warm,
        )
        # a warm server's jobs find the gateway at the same URL (see warm_pool)
        port = warm.port_for(self.child.warm_key()) if warm is not None else 0
        self.models_port = port
        self.gateway = InferenceGateway(set_env=False, http_context=False, port=port)
        self.scripts = gateway_scripts(self.gateway, self.rec)
        self.speaker = RemoteSpeaker(settings.mode, synthesized=lambda: self.gateway.synthesized)
        self.child.speaker = self.speaker
        self.rec.listen_to(self.speaker)
        self._remote: RemoteSession | None = None
        self._control_server: asyncio.Server | None = None
        self._control: asyncio.Future[asyncio.StreamWriter] | None = None
        self._answers: dict[int, asyncio.Future[str]] = {}
        self._token = 0
        self._mocks: tuple[ToolMock, ...] = ()
        # snapshots: the chat history as last read, plus the items added since (what a
        # session that closes takes with it is in those)
        self.history_items: list[Any] = []
        self.items_since: list[Any] = []
        self.user_inputs_seen = 0  # user messages the child's session took in (events)
        self.turn_seconds: list[float] = []
        self.blocked: list[str] = []
        self.log_tail = ""
        self.end = ProcessEnd(self.rec, self.child, self.timeout)

    @property
    def remote(self) -> RemoteSession:
        assert self._remote is not None, "the agent process is not connected"
        return self._remote

    def unsupported(self, scenario: Scenario) -> ScenarioError | None:
        return unsupported_in_process(scenario, self.settings.mode)

    # -- lifecycle -------------------------------------------------------------------------
    def bounded(self) -> bool:
        return False  # start-up has its own bound; each request is bounded by the timeout

    async def start(self) -> None:
        rec, child = self.rec, self.child
        child.extra_env.update(await self.serve_models())
        loop = asyncio.get_running_loop()
        self._control = loop.create_future()
        self._control_server = await asyncio.start_server(self._on_control, "127.0.0.1", 0)
        port = self._control_server.sockets[0].getsockname()[1]
        child.extra_env[shim.CONTROL_ENV] = f"127.0.0.1:{port}"
        what = f"{self.agent_file.name} in a child process"
        rec.note("note", f"process mode ({self.settings.mode}): {what}")
        try:
            self._remote = await child.start(max(self.timeout, CONNECT_TIMEOUT))
        except ChildFailed as e:
            raise StepFailed(
                f"{e}\n  agent process log (last lines):\n"
                + indented(child.log_tail(20) or "(empty)"),
                line=self.scenario.line,
                entry=rec.note("error", "the agent process failed to start"),
            ) from None
        how = (
            f" (forked from warm server {child.warm_server})"
            if child.warm_server is not None
            else f" (cold start: {child.cold_reason})"
            if child.cold_reason
            else ""
        )
        rec.note(
            "note",
            f"agent process {child.proc.pid if child.proc else '?'} connected "
            f"after {child.startup_seconds or 0:.2f}s{how}",
        )
        remote = self.remote
        remote.on("error", self._on_error)
        remote.on("agent_state_changed", self._on_state)
        remote.on("conversation_item_added", self._on_item)
        remote.on("function_tools_executed", self._on_tools)
        remote.on("tool_execution_updated", self._on_tool_update)
        # livekit's RemoteSession emits every event the session host forwards (its type
        # lists the common ones only): the control channel's answers ride on this one
        remote.on(cast(Any, "debug_message"), self._on_debug)
        if child.transport is not None:
            child.transport.on_eof = self._on_eof

    async def _on_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._control is not None and not self._control.done():
            self._control.set_result(writer)
        else:  # one job, one control connection
            writer.close()

    async def aclose(self, *, failed: bool) -> None:
        try:
            await self.child.aclose()
            self.blocked = self.child.blocked_network()
            self.log_tail = self.child.log_tail()
        finally:
            self.child.remove_log()  # its tail is in the report (or the run)
            control = self._control
            if control is not None and control.done() and not control.cancelled():
                control.result().close()
            if self._control_server is not None:
                self._control_server.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._control_server.wait_closed(), 1.0)
            await self.stop_models()

    async def serve_models(self) -> dict[str, str]:
        """Start what answers the child's model clients; the environment pointing at it."""
        await self.gateway.start()
        return self.gateway.child_env()

    async def stop_models(self) -> None:
        await self.gateway.aclose()

    def blocked_hosts(self) -> list[str]:
        return self.blocked

    def figures(self) -> dict[str, Any]:
        return {
            "startup_seconds": self.child.startup_seconds,
            "turn_seconds": list(self.turn_seconds),
            "log_tail": self.log_tail,
        }

    def session_end_scripts(self) -> Scripts | None:
        return self.scripts  # the child's models all talk to the gateway

    def annotate(self, failure: ScenarioFailure) -> ScenarioFailure:
        """The end of the agent's log under the transcript; blocked hosts in the reason."""
        blocked = self.child.blocked_network()
        reason = failure.reason
        if blocked:
            reason += "\n  the agent tried to reach the network (blocked in offline runs):\n" + (
                indented("\n".join(dict.fromkeys(blocked)))
            )
        transcript = (
            f"{failure.transcript}\n\nagent process log (last {LOG_TAIL_LINES} lines):\n"
            f"{indented(self.child.log_tail() or '(empty)')}"
        )
        return ScenarioFailure(
            reason, location=failure.location, transcript=transcript, timeline=failure.timeline
        )

    # -- the control channel -------------------------------------------------------------
    async def ask(self, op: str, **fields: Any) -> str | None:
        """Send a control request; returns when the child answered (None), the session
        closed, or the child is gone (a reason). Raises StepFailed on the child's error."""
        assert self._control is not None
        loop = asyncio.get_running_loop()
        try:
            writer = await asyncio.wait_for(asyncio.shield(self._control), self.timeout)
        except asyncio.TimeoutError:
            return "the agent process never opened its control channel"
        self._token += 1
        token = self._token
        answer: asyncio.Future[str] = loop.create_future()
        self._answers[token] = answer
        request = {"op": op, "token": token, "timeout": self.timeout, **fields}
        writer.write(json.dumps(request).encode() + b"\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        closed: asyncio.Future[Any] = asyncio.ensure_future(
            self.rec.wait_closed(timeout=self.timeout)
        )
        try:
            await asyncio.wait([answer, closed], return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            self._answers.pop(token, None)
        if not answer.done():
            return self.end.child_gone() or "the session closed"
        if answer.result():
            raise StepFailed(f"the agent process could not {op}: {answer.result()}")
        return None

    def _on_debug(self, ev: Any) -> None:
        payload = MessageToDict(ev.debug_message.payload)
        started = payload.get(TOOL_STARTED_KEY)
        if isinstance(started, dict):  # livekit 1.6 (control.report_tool_starts)
            call_id = str(started.get("call_id") or "") or None
            self.rec.record_call(str(started["name"]), str(started["arguments"]), call_id)
            return
        token = payload.get(ANSWER_KEY)
        for text in payload.get("crashes") or ():
            self.rec.record_crash(str(text))
        if isinstance(token, int | float):
            future = self._answers.get(int(token))
            if future is not None and not future.done():
                future.set_result(str(payload.get("error") or ""))

    # -- session events ------------------------------------------------------------------
    def _on_state(self, ev: Any) -> None:
        if ev.agent_state_changed.new_state == agent_pb.AS_SPEAKING:
            self.rec.speaking_at.append(asyncio.get_running_loop().time())
            self.rec.speaking.set()

    def _on_error(self, ev: Any) -> None:
        self.rec.note("error", f"agent session error: {error_text(ev.error.message)}")

    def _on_item(self, ev: Any) -> None:
        item = ev.conversation_item_added.item
        self.items_since.append(item)
        which = item.WhichOneof("item")
        if which == "message" and proto_role(item.message) == "user":
            self.user_inputs_seen += 1
        elif which == "message" and proto_role(item.message) == "assistant":
            msg = item.message
            text = proto_message_text(msg)
            self.rec.record_message(text, msg.interrupted)
            self.speaker.message(text, interrupted=msg.interrupted)
        elif which == "agent_handoff":
            handoff = item.agent_handoff
            self.rec.record_handoff(handoff.old_agent_id or None, handoff.new_agent_id)

    def _on_tools(self, ev: Any) -> None:
        done = ev.function_tools_executed
        for call, out in zip(done.function_calls, done.function_call_outputs, strict=False):
            self.rec.record_call(call.name, call.arguments, call.call_id or None)
            self.rec.record_output(out.name, out.output, out.is_error, call.call_id or None)

    def _on_tool_update(self, ev: Any) -> None:
        update = ev.tool_execution_updated
        if update.WhichOneof("update") == "started":
            fc = update.started.function_call
            self.rec.record_call(fc.name, fc.arguments, fc.call_id or None)

    def _on_eof(self) -> None:
        """The child's end of the session protocol closed: its session closed (or it died)."""
        rec = self.rec
        if self.end.finishing or rec.closed:
            return
        self.speaker.settle()
        reason, error = self.child.close_reason()
        if reason is None:
            code = self.child.exit_code
            reason = "unknown" if code is None else f"agent process exited (code {code})"
        rec.record_close(RemoteClose(reason, error))

    # -- steps ---------------------------------------------------------------------------
    async def greeting(self) -> None:
        await self.ask("quiet")
        self.speaker.settle()
        await self._greeting_from_history()

    async def _greeting_from_history(self) -> None:
        """What the agent did before its session host forwarded events (the session's
        first handoff, a greeting started in on_enter) is only in the history: turn 0 is
        read from there."""
        if self.rec.closed:
            return
        try:
            history = await self.request(self.remote.get_chat_history())
        except (RuntimeError, asyncio.TimeoutError):
            return
        rec = self.rec
        rec.timeline[:] = [
            e
            for e in rec.timeline
            if e.turn != 0 or e.kind not in ("agent", "handoff", "tool_call", "tool_output")
        ]
        for item in history.items:
            which = item.WhichOneof("item")
            if which == "message" and proto_role(item.message) == "assistant":
                rec.record_message(proto_message_text(item.message), item.message.interrupted)
            elif which == "agent_handoff":
                handoff = item.agent_handoff
                rec.record_handoff(handoff.old_agent_id or None, handoff.new_agent_id)
            elif which == "function_call":
                fc = item.function_call
                rec.record_call(fc.name, fc.arguments, fc.call_id or None)
            elif which == "function_call_output":
                fo = item.function_call_output
                rec.record_output(fo.name, fo.output, fo.is_error, fo.call_id or None)
        if self.settings.keep_history:
            self.history_items, self.items_since = list(history.items), []

    @contextlib.contextmanager
    def tool_mocks(self, mocks: tuple[ToolMock, ...]) -> Iterator[None]:
        self._mocks = mocks  # sent with the turn (the control channel is async)
        try:
            yield
        finally:
            self._mocks = ()

    async def play(self, turn: Turn) -> None:
        rec = self.rec
        mocks = self._mocks
        if mocks:
            await self.ask("mock", tools=[mock_json(m) for m in mocks])
        try:
            if turn.user is not None:
                await self._user_turn(turn)
            else:
                rec.turn += 1
                if turn.silence is not None:
                    # the child runs on the wall clock: this costs real seconds
                    rec.note("note", f"the user says nothing for {turn.silence:g} s")
                    await asyncio.sleep(turn.silence)
                    gone = await self.ask("quiet")
                elif turn.say is not None:
                    gone = await self.ask("say", text=turn.say)
                else:
                    gone = await self.ask("generate_reply", instructions=turn.generate_reply or "")
                if gone is not None and not rec.closed:
                    raise StepFailed(f"{turn.label}: {gone}", line=turn.line)
        finally:
            if mocks and not rec.closed:
                await self.ask("unmock")

    async def _user_turn(self, turn: Turn) -> None:
        rec = self.rec
        assert turn.user is not None
        rec.turn += 1
        rec.note("user", turn.user)
        faults_before = {id(e) for e in rec.timeline if e.kind == "fault"}
        started = time.monotonic()
        inputs_before = self.user_inputs_seen
        try:
            await self.request(self.remote.run(turn.user, timeout=self.timeout))
        except asyncio.TimeoutError:
            raise StepFailed(
                f"{turn.label}: the agent did not finish its reply within "
                f"{self.timeout:g}s (agentsim.timeout)",
                line=turn.line,
            ) from None
        except RuntimeError as e:
            transport = self.child.transport
            ended = transport is not None and transport.ended
            if ended or rec.closed or self.end.child_gone() is not None:
                await self._closed_during_turn(turn, inputs_before)
            elif self.user_inputs_seen == inputs_before and await rec.wait_closed(CLOSE_WAIT):
                # refused, and the input never reached the session: it was closing
                raise StepFailed(
                    f"{turn.label} ({turn.describe()}) cannot run: the session already "
                    f"closed ({strip_request(str(e))})",
                    line=turn.line,
                ) from None
            else:
                faults = [
                    e for e in rec.timeline if e.kind == "fault" and id(e) not in faults_before
                ]
                cause = f" (the gateway served {served(faults)})" if faults else ""
                rec.note("error", f"the turn failed: {strip_request(str(e))}{cause}")
        self.turn_seconds.append(time.monotonic() - started)

    async def settle(self, *, spoken: int, close: bool) -> None:
        rec = self.rec
        if not rec.closed:
            await self.ask("quiet")
        if close and not rec.closed:
            await rec.wait_closed(timeout=min(self.timeout, CLOSE_WAIT))
        self.speaker.settle()
        if self.settings.keep_history:
            await self.read_history()

    async def request(self, request: Coroutine[Any, Any, _R]) -> _R:
        """A ``RemoteSession`` request, ended by the session closing: livekit 1.6 leaves a
        request the closing session never answers pending until its timeout."""
        run = asyncio.ensure_future(request)
        closed = asyncio.ensure_future(self.rec.wait_closed(timeout=self.timeout))
        try:
            await asyncio.wait({run, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not run.done():
                # closed first: 1.7+ fails pending requests at once, 1.6 never answers
                await asyncio.wait({run}, timeout=0.15)
            if not run.done():
                raise RuntimeError("the session closed before it answered")
            return run.result()
        finally:
            for task in (run, closed):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _closed_during_turn(self, turn: Turn, inputs_before: int) -> None:
        """The connection ended mid-turn: a session the agent closed is a result (the
        turn's ``closed:`` judges it); a child that died is a failure."""
        rec = self.rec
        # the stream's end and the exit race (a dying process's socket closes first)
        await rec.wait_closed(timeout=0.15)
        close = rec.close_event
        if close is not None and str(close.reason) == "unknown":
            close = close if await self.child.exited(within=0.5) in (None, 0) else None
        if close is None or str(close.reason).startswith("agent process exited"):
            gone = self.end.child_gone() or "the agent closed its session connection"
            raise StepFailed(f"{turn.label}: {gone} during the turn", line=turn.line)
        if self.user_inputs_seen == inputs_before:
            # the session was already closing: the turn's input never reached it
            raise StepFailed(
                f"{turn.label} ({turn.describe()}) cannot run: the session already "
                "closed (it was closing when the turn began)",
                line=turn.line,
            )

    async def read_history(self) -> None:
        """Read the chat history (for the snapshot), while the session is open."""
        if self.rec.closed:
            return
        try:
            response = await self.request(self.remote.get_chat_history())
        except (RuntimeError, asyncio.TimeoutError):
            return  # it closed meanwhile: the items since the last read stand in
        self.history_items = list(response.items)
        self.items_since = []

    def history(self) -> list[dict[str, Any]] | None:
        return history_from_proto([*self.history_items, *self.items_since])

    async def finish(self) -> None:
        await self.end.finalize(self.remote)
