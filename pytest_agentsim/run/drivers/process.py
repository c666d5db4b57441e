"""The process driver: the agent file runs unchanged in its own process (SPEC §4).

``agentsim: {process: true}`` (or ``--agentsim-process``) runs an ``AgentServer`` file as
``python -m livekit.agents console`` starts it (:mod:`.child`) and drives it over
LiveKit's session protocol as the cloud simulator does: ``update_io``, one
``run(user_input)`` per turn, ``get_chat_history``, ``finalize_simulation``. The child's
``inference.*``/``openai`` clients point at a loopback
:class:`~pytest_agentsim.transport.InferenceGateway` that serves each turn's scripted
answers and faults. A turn's events come from the session's events (so a tool call still
running when the turn ends is seen, as in-process), a failed turn's from the history.

The protocol carries user text, not commands: ``say:``/``generate_reply:`` turns and
``tools:`` mocks cannot reach into the other process (:meth:`ProcessDriver.unsupported`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from livekit.agents.voice.remote_session import RemoteSession
from livekit.protocol.agent_pb import agent_session as agent_pb

from ...errors import ScenarioError, ScenarioFailure
from ...load.model import Scenario, Turn
from ...observe.events import ObservedEvent, observe_proto_items, proto_message_text, proto_role
from ...observe.history import history_from_proto
from ...observe.record import Recorder
from ...transport import InferenceGateway
from ..outcome import StepFailed
from ..scripts import gateway_scripts
from ..settings import RunSettings
from .base import Driver
from .child import CONNECT_TIMEOUT, LOG_TAIL_LINES, AgentProcess, ChildFailed
from .dispatch import dispatch_json
from .process_end import ProcessEnd, RemoteClose, error_text, served, strip_request
from .speaker import RemoteSpeaker

__all__ = ["CLOSE_WAIT", "SETTLE_QUIET", "ProcessDriver"]

_R = TypeVar("_R")

SETTLE_QUIET = 0.15
"""Seconds without session traffic after which the agent counts as done with a turn."""

CLOSE_WAIT = 5.0
"""Seconds a turn waits for speech or a close it still expects (bounded by the timeout)."""


class ProcessDriver(Driver):
    mode_name: ClassVar[str] = "process mode"

    def __init__(self, scenario: Scenario, agent_file: Path, settings: RunSettings) -> None:
        self.scenario = scenario
        self.agent_file = agent_file
        self.settings = settings
        self.timeout = settings.timeout
        self.rec = Recorder(timeout=settings.timeout)
        self.gateway = InferenceGateway(set_env=False, http_context=False)
        self.scripts = gateway_scripts(self.gateway, self.rec)
        self.speaker = RemoteSpeaker(settings.mode, synthesized=lambda: self.gateway.synthesized)
        self.rec.listen_to(self.speaker)
        self.child = AgentProcess(
            agent_file,
            dispatch=dispatch_json(scenario, mode=settings.mode),
            env={},
            real_timing=settings.real_timing,
            allow_network=settings.allow_network,
            mode=settings.mode,
            speaker=self.speaker,
        )
        turns = scenario.config.turns or ()
        # wait for the agent to go quiet after each turn: only scenarios that check what
        # was heard or that the session closed need it (it costs SETTLE_QUIET per turn),
        # and snapshots (late output lands in the history they read)
        self.settle_turns = settings.keep_history or any(
            t.spoken is not None or t.closed is not None for t in turns
        )
        self._remote: RemoteSession | None = None
        self.turn_events: list[ObservedEvent] = []  # this turn's, from session events
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
        """The session protocol carries user text (``run_input``), the chat history and
        events, and the console's audio; it cannot make the agent ``say`` something, start
        a reply, or mock a tool inside the other process."""

        def err(what: str, line: int | None, why: str = "") -> ScenarioError:
            return ScenarioError(
                f"process mode cannot {what}: the agent runs in another process, driven "
                f"only through LiveKit's session protocol{why}",
                path=scenario.path,
                line=line,
                fix="run this scenario in-process (without `process: true` and "
                "--agentsim-process), or remove the key",
            )

        cfg = scenario.config
        audio = self.settings.mode == "audio"
        if not audio:
            for sf in cfg.faults:
                if sf.resource != "llm":
                    return err(
                        f"inject {sf.resource} faults in text mode",
                        sf.line,
                        " (text mode has no STT/TTS: use `mode: audio`)",
                    )
        for turn in cfg.turns or ():
            if turn.user is None:
                return err(
                    "play `say:`/`generate_reply:` turns", turn.line, " (it carries user text)"
                )
            if turn.tools:
                return err("mock tools (`tools:`)", turn.line)
            if turn.tts and not audio:
                return err("script `tts:` steps in text mode", turn.line, " (use `mode: audio`)")
        return None

    # -- lifecycle -------------------------------------------------------------------------
    def bounded(self) -> bool:
        return False  # start-up has its own bound; each request is bounded by the timeout

    async def start(self) -> None:
        rec, child = self.rec, self.child
        await self.gateway.start()
        child.extra_env.update(self.gateway.child_env())
        what = f"{self.agent_file.name} in a child process"
        rec.note("note", f"process mode ({self.settings.mode}): {what}")
        try:
            self._remote = await child.start(max(self.timeout, CONNECT_TIMEOUT))
        except ChildFailed as e:
            raise StepFailed(
                f"{e}\n  agent process log (last lines):\n"
                + _indent(child.log_tail(20) or "(empty)"),
                line=self.scenario.line,
                entry=rec.note("error", "the agent process failed to start"),
            ) from None
        rec.note(
            "note",
            f"agent process {child.proc.pid if child.proc else '?'} connected "
            f"after {child.startup_seconds or 0:.2f}s",
        )
        remote = self.remote
        remote.on("error", self._on_error)
        remote.on("conversation_item_added", self._on_item)
        remote.on("function_tools_executed", self._on_tools)
        if child.transport is not None:
            child.transport.on_eof = self._on_eof

    async def aclose(self, *, failed: bool) -> None:
        try:
            await self.child.aclose()
            self.blocked = self.child.blocked_network()
            self.log_tail = self.child.log_tail()
        finally:
            self.child.remove_log()  # its tail is in the report (or the run)
            await self.gateway.aclose()

    def blocked_hosts(self) -> list[str]:
        return self.blocked

    def figures(self) -> dict[str, Any]:
        return {
            "startup_seconds": self.child.startup_seconds,
            "turn_seconds": list(self.turn_seconds),
            "log_tail": self.log_tail,
        }

    def annotate(self, failure: ScenarioFailure) -> ScenarioFailure:
        """The end of the agent's log under the transcript; blocked hosts in the reason."""
        blocked = self.child.blocked_network()
        reason = failure.reason
        if blocked:
            reason += "\n  the agent tried to reach the network (blocked in offline runs):\n" + (
                _indent("\n".join(dict.fromkeys(blocked)))
            )
        transcript = (
            f"{failure.transcript}\n\nagent process log (last {LOG_TAIL_LINES} lines):\n"
            f"{_indent(self.child.log_tail() or '(empty)')}"
        )
        return ScenarioFailure(
            reason, location=failure.location, transcript=transcript, timeline=failure.timeline
        )

    # -- session events ------------------------------------------------------------------
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
            self.turn_events.append(ObservedEvent("message", role="assistant", text=text))
            self.speaker.message(text, interrupted=msg.interrupted)
        elif which == "agent_handoff":
            self.turn_events.extend(observe_proto_items([item]))

    def _on_tools(self, ev: Any) -> None:
        done = ev.function_tools_executed
        for call, out in zip(done.function_calls, done.function_call_outputs, strict=False):
            self.turn_events.extend(observe_proto_items([_as_item("function_call", call)]))
            self.turn_events.extend(observe_proto_items([_as_item("function_call_output", out)]))

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

    def child_gone(self) -> str | None:
        return self.end.child_gone()

    # -- turns -------------------------------------------------------------------------
    async def play(self, turn: Turn) -> list[ObservedEvent]:
        rec = self.rec
        assert turn.user is not None
        label = f"turn {turn.index + 1}"
        rec.turn += 1
        rec.note("user", turn.user)
        self.turn_events = []
        faults_before = {id(e) for e in rec.timeline if e.kind == "fault"}
        started = time.monotonic()
        inputs_before = self.user_inputs_seen
        try:
            result = await self.request(self.remote.run(turn.user, timeout=self.timeout))
            observed = observe_proto_items(result.items)
        except asyncio.TimeoutError:
            raise StepFailed(
                f"{label}: the agent did not finish its reply within "
                f"{self.timeout:g}s (agentsim.timeout)",
                line=turn.line,
            ) from None
        except RuntimeError as e:
            if "transport closed" in str(e) or self.child_gone() is not None:
                observed = await self._closed_during_turn(turn, inputs_before)
            elif "is closing" in str(e):  # livekit: "AgentSession is closing, cannot use ..."
                await rec.wait_closed(timeout=CLOSE_WAIT)
                raise StepFailed(
                    f"{label} ({turn.describe()}) cannot run: the session already "
                    f"closed ({strip_request(str(e))})",
                    line=turn.line,
                ) from None
            else:
                faults = [
                    e for e in rec.timeline if e.kind == "fault" and id(e) not in faults_before
                ]
                cause = f" (the gateway served {served(faults)})" if faults else ""
                rec.note("error", f"the turn failed: {strip_request(str(e))}{cause}")
                observed = await self._events_after(turn.user)
        self.turn_seconds.append(time.monotonic() - started)
        self._note_events(observed)
        return observed

    async def settle(self, *, spoken: int, close: bool) -> None:
        if self.settle_turns:
            await self._wait_quiet(spoken=spoken, close=close)
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
        rec = self.rec
        # the end of the stream and the process exit race; give the EOF a moment
        await rec.wait_closed(timeout=SETTLE_QUIET)
        close = rec.close_event
        if close is None or str(close.reason).startswith("agent process exited"):
            gone = self.child_gone() or "the agent closed its session connection"
            raise StepFailed(f"turn {turn.index + 1}: {gone} during the turn", line=turn.line)
        if self.user_inputs_seen == inputs_before:
            # the session was already closing: the turn's input never reached it
            raise StepFailed(
                f"turn {turn.index + 1} ({turn.describe()}) cannot run: the session already "
                "closed (it was closing when the turn began)",
                line=turn.line,
            )
        return list(self.turn_events)

    async def _wait_quiet(self, *, spoken: int, close: bool) -> None:
        """Wait until the agent is quiet: what it says after the turn's reply (an error
        handler's fallback) or its session closing arrive as events, not in the reply.

        Quiet means no protocol traffic for ``SETTLE_QUIET`` seconds; while the turn still
        expects more speech, or a close, waiting goes on up to ``CLOSE_WAIT`` seconds.
        """
        rec = self.rec
        transport = self.child.transport
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(self.timeout, CLOSE_WAIT)
        while not rec.closed and transport is not None:
            quiet = time.monotonic() - transport.last_activity >= SETTLE_QUIET
            heard = sum(1 for e in rec.timeline if e.kind == "spoken" and e.turn == rec.turn)
            if quiet and heard >= spoken and not close:
                break
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.02)
        self.speaker.settle()

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

    async def _events_after(self, user_text: str) -> list[ObservedEvent]:
        """A failed turn returns no items: read what it added from the chat history."""
        try:
            history = await self.request(self.remote.get_chat_history())
        except Exception:
            return []
        items = list(history.items)
        start = len(items)  # the turn's input never reached the history: it added nothing
        for i, item in enumerate(items):
            if (
                item.WhichOneof("item") == "message"
                and proto_role(item.message) == "user"
                and proto_message_text(item.message) == user_text
            ):
                start = i + 1
        return observe_proto_items(items[start:])

    def _note_events(self, observed: list[ObservedEvent]) -> None:
        note = self.rec.note
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
                note("handoff", f"-> {ev.new_agent_id}", new_agent_id=ev.new_agent_id)

    async def finish(self) -> None:
        await self.end.finalize(self.remote)


def _as_item(which: str, value: Any) -> Any:
    """A ``function_tools_executed`` call/output proto wrapped as the ``ChatItem`` the
    history would carry, so one reader (:func:`observe_proto_items`) serves both."""
    item = agent_pb.ChatContext.ChatItem()
    getattr(item, which).CopyFrom(value)
    return item


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + ln for ln in text.splitlines())
