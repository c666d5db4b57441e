"""Drive a real ``AgentSession`` against the fakes and record everything observable.

:class:`AgentSim` is the engine behind the ``agentsim`` fixture and the in-process drivers:
it builds the session (text or audio), attaches recording outputs, runs turns, and keeps
the record (:class:`~pytest_agentsim.observe.record.Recorder`: timeline, what was spoken,
the close, and the spoken-fallback and close assertions). It never imports pytest, so it
can be used in any async test.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Literal

from livekit.agents import inference

from ..errors import AgentSimAssertionError
from ..fakes import FakeEvent, FakeLLM, FakeSTT, FakeTTS, attach_outputs, make_session
from ..fakes.session import TOOL_UPDATES, run_captures_on_enter
from ..faults import Fault
from ..observe.frames import describe_error
from ..observe.history import normalize_history
from ..observe.record import Recorder, listener
from ..transport import InferenceGateway
from .hooks import HookWatch
from .quiet import loop_idle, wait_quiet
from .scripts import Scripts, Served, gateway_scripts
from .spoken import SpokenTurns, false_interruption_wait
from .tool_errors import FaultLogFilter, ToolErrorLog, tool_failure

if TYPE_CHECKING:
    from livekit.agents import Agent, AgentSession
    from livekit.agents.voice.run_result import RunResult

__all__ = ["AgentSim", "AgentSimAssertionError", "Mode"]

Mode = Literal["text", "audio"]


class AgentSim(Recorder):
    """A session under test plus its record.

    ``AgentSim(llm=..., tts=..., stt=...)`` uses the given fakes (new ones by default).
    ``await sim.start(agent, mode="audio")`` builds and starts the session;
    ``await sim.run("hi")`` plays one user turn and returns the ``RunResult``.
    """

    def __init__(
        self,
        *,
        llm: FakeLLM | None = None,
        tts: FakeTTS | None = None,
        stt: FakeSTT | None = None,
        timeout: float = 30.0,
        gateway: InferenceGateway | None = None,
        llm_model: str = "openai/gpt-4.1-mini",
    ) -> None:
        super().__init__(timeout=timeout)
        self.fake_llm = llm if llm is not None else FakeLLM()
        self.fake_tts = tts if tts is not None else FakeTTS()
        self.fake_stt = stt if stt is not None else FakeSTT()
        # with a gateway, the session uses the real inference.LLM client, answered over
        # its real HTTP stack by the fake gateway from the same kind of script
        self.gateway = gateway
        self.llm_model = llm_model
        self.results: list[RunResult[Any]] = []
        self.run_errors: list[Exception] = []  # exceptions that ended a turn
        self.mode: Mode = "text"
        self.clocked_playout = False  # audio plays out in loop time (a user may barge in)
        self.greeting_run: RunResult[Any] | None = None  # what session.start() set going
        self._session: AgentSession[Any] | None = None
        self._tool_errors: ToolErrorLog | None = None
        self._fault_logs: FaultLogFilter | None = None
        self.hooks = HookWatch()
        self.voiced: SpokenTurns | None = None  # user turns are speech (speak_turns())
        for fake in (self.fake_llm, self.fake_tts, self.fake_stt):
            fake.add_observer(self._on_fake_event)
        if gateway is not None:
            # in-process, only the LLM is the real client; TTS/STT stay the fakes
            served = gateway_scripts(gateway, self)
            self.scripts = Scripts(
                llm=served.llm,
                tts=self.fake_tts.script,
                stt=self.fake_stt.script,
                unscripted=served.unscripted,
                served=served.served,
                set_tts_ttfb=self._set_tts_ttfb,
            )
        else:
            self.scripts = Scripts(
                llm=self.fake_llm.script,
                tts=self.fake_tts.script,
                stt=self.fake_stt.script,
                unscripted=self._fake_unscripted,
                served=self._fake_served,
                set_tts_ttfb=self._set_tts_ttfb,
            )

    def speak_turns(self) -> SpokenTurns:
        """User turns become speech the session hears (call before :meth:`start`)."""
        if self.voiced is None:
            self.voiced = SpokenTurns(self.fake_stt)
        return self.voiced

    def _set_tts_ttfb(self, seconds: float) -> None:
        self.fake_tts.ttfb = seconds

    def _fake_unscripted(self) -> list[str]:
        return [*self.fake_llm.unscripted, *self.fake_llm.misscripted]

    def _fake_served(self) -> list[Served]:
        return [
            (call.answer, frozenset(call.tools))
            for call in self.fake_llm.calls
            if call.answer is not None and not isinstance(call.answer, Fault)
        ]

    def unscripted_calls(self) -> list[str]:
        """Model calls that found nothing scripted (they fail the turn)."""
        return self.scripts.unscripted()

    # ------------------------------------------------------------------ lifecycle
    @property
    def session(self) -> AgentSession[Any]:
        if self._session is None:
            raise RuntimeError("no session yet: call `await agentsim.start(agent)` first")
        return self._session

    @property
    def started(self) -> bool:
        return self._session is not None

    async def start(
        self, agent: Agent, *, mode: Mode = "text", **session_kwargs: Any
    ) -> AgentSession[Any]:
        """Build an ``AgentSession`` on the fakes and start ``agent`` in it (no room).

        Returns when the agent is quiet: a greeting it speaks on its own (``on_enter``) has
        been played, and is in the timeline as turn 0 (:meth:`greeting_events`).
        """
        if self._session is not None:
            raise RuntimeError("agentsim.start() was already called in this test")
        if mode not in ("text", "audio"):
            raise ValueError(f"mode must be 'text' or 'audio', got {mode!r}")
        self.mode = mode
        kwargs: dict[str, Any] = {"llm": self.fake_llm}
        if self.gateway is not None:
            kwargs["llm"] = inference.LLM(model=self.llm_model)
        if mode == "audio":
            kwargs["tts"] = self.fake_tts
        kwargs.update(session_kwargs)
        if mode == "audio" and self.voiced is not None:
            replaced = self.voiced.session_kwargs(kwargs, add_stt=True)
            if "turn_detection" not in kwargs:  # not make_session's manual turns
                handling = dict(kwargs.get("turn_handling") or {})
                kwargs["turn_handling"] = {"turn_detection": "vad", **handling}
            if replaced:
                self.note("note", f"replaced for spoken user turns: {', '.join(replaced)}")
        session = make_session(**kwargs)
        self.attach(session)
        with run_captures_on_enter(session):
            self.greeting_run = await session.start(agent, capture_run=True)
        await self.wait_greeting()
        return session

    async def wait_greeting(self) -> None:
        """Wait for what ``session.start()`` set going (``on_enter``) and the agent to be
        quiet; a model failure there is recorded (as a failed turn is), not raised."""
        run = self.greeting_run
        if run is not None:
            try:
                await self._bounded(run, "the agent's greeting (on_enter) never finished")
            except AgentSimAssertionError:
                raise
            except Exception as e:
                self.run_errors.append(e)
                self.note("error", f"the greeting failed: {describe_error(e)}")
        await self.wait_quiet()

    def attach(self, session: AgentSession[Any]) -> None:
        """Record everything ``session`` does; call before ``session.start()``."""
        self._session = session
        self.listen_to(
            attach_outputs(session, audio=self.mode == "audio", clocked=self.clocked_playout)
        )
        session.on("conversation_item_added", listener(self.record_item))
        session.on("conversation_item_added", listener(self._saw_item))
        session.on("function_tools_executed", listener(self.record_tools))
        if TOOL_UPDATES:
            session.on("tool_execution_updated", listener(self.record_tool_update))
        else:
            session.on("speech_created", listener(self.record_speech_tools))
        session.on("error", listener(self.record_error))
        session.on("close", listener(self.record_close))
        session.on("agent_state_changed", listener(self.record_state))
        session.on("agent_false_interruption", listener(self.record_false_interruption))
        if self._tool_errors is None:
            self._tool_errors = ToolErrorLog(self.record_tool_error).__enter__()
            self._fault_logs = FaultLogFilter(lambda: self.fault_texts).__enter__()

    def _saw_item(self, ev: Any) -> None:
        if getattr(ev.item, "type", "") == "agent_handoff" and self._session is not None:
            self.hooks.saw_handoff(self._session)

    def record_tool_error(self, tool: str, exc: BaseException) -> None:
        """A tool raised (livekit answers the model "An internal error occurred")."""
        text, fix = tool_failure(exc)
        self.note("error", f"tool {tool} raised {text}", tool=tool, fix=fix)

    async def aclose(self, timeout: float = 5.0, *, keep_logs: bool = False) -> None:
        """Close the session (bounded: a hung tool must not hang the test run too).
        ``keep_logs``: still read livekit's logs (a job's on_session_end runs next)."""
        try:
            if self._session is not None and self.close_event is None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._session.aclose(), timeout=timeout)
        finally:
            if not keep_logs:
                self.release_logs()

    def release_logs(self) -> None:
        """Stop reading livekit's logs."""
        if self._tool_errors is not None:
            self._tool_errors.__exit__()
            self._tool_errors = None
        if self._fault_logs is not None:
            self._fault_logs.__exit__()
            self._fault_logs = None

    def pending_tool_calls(self) -> list[str]:
        """Tool calls the fake LLM asked for that never produced an output (still running)."""
        asked: list[str] = []
        for call in self.fake_llm.calls:
            for tc in getattr(call.answer, "tool_calls", ()) or ():
                asked.append(f"{tc.name}({tc.arguments_json})")
        done = [e.detail.get("name") for e in self.timeline if e.kind == "tool_output"]
        pending = []
        for item in asked:
            name = item.split("(", 1)[0]
            if name in done:
                done.remove(name)
            else:
                pending.append(item)
        return pending

    # ------------------------------------------------------------------ turns
    async def run(self, user_input: str, **kwargs: Any) -> RunResult[Any]:
        """One user turn: ``session.run(user_input=...)``, bounded by the timeout.

        A model failure that ends the turn (a fault the agent did not recover from) does
        not raise here: it is recorded in :attr:`run_errors` and the timeline, so the test
        can assert what the user heard and how the session closed.
        """
        self.turn += 1
        self.note("user", user_input)
        result = self.session.run(user_input=user_input, **kwargs)
        try:
            await self._bounded(result, f"the agent did not finish its reply to {user_input!r}")
        except AgentSimAssertionError:
            raise
        except Exception as e:
            self.run_errors.append(e)
            self.note("error", f"the turn failed: {describe_error(e)}")
        self.results.append(result)
        await self.wait_quiet()
        return result

    async def speak(self, text: str, duration: float, stt_delay: float) -> None:
        """One spoken user turn: the user says ``text`` for ``duration`` seconds; returns
        when livekit committed it and the agent is quiet again. Begun already when the
        user barged in with it (:meth:`barge_in_speaking`)."""
        spoken = self.voiced
        assert spoken is not None, "speak_turns() was not called"
        self.turn += 1
        self.note("user", text, spoken=round(duration, 3))
        utterance, over = spoken.take(self.session, text, duration, stt_delay)
        self.user_spoke = (utterance.start, utterance.end)
        if not await spoken.committed(self.session, utterance):
            why = (
                "it was spoken over speech that does not allow interruptions"
                if over is not None and not over.allow_interruptions
                else "no final transcript reached it"
            )
            self.note("note", f"livekit did not take the user's turn: {why}")
        await self.wait_quiet()

    async def noise(self, seconds: float) -> None:
        """A sound with no words for ``seconds`` (a cough, a door): livekit's VAD hears
        it, its STT no words. Over the agent's speech that is a false interruption: livekit
        pauses the agent, and resumes it when no words come (its false-interruption
        timeout), which this waits for. Begun already when it barged in."""
        spoken = self.voiced
        assert spoken is not None, "speak_turns() was not called"
        self.turn += 1
        self.note("note", f"the user makes a sound with no words for {seconds:g} s")
        utterance, _ = spoken.take(self.session, "", seconds, 0.0)
        loop = asyncio.get_running_loop()
        await asyncio.sleep(
            max(utterance.end - loop.time(), 0.0)
            + false_interruption_wait(self.session, spoken.vad)
        )
        await self.wait_quiet()

    def barge_in_speaking(self, text: str, duration: float, stt_delay: float) -> bool:
        """The user starts saying ``text`` over the agent: livekit interrupts it once it
        has heard ``min_interruption_duration`` of speech. False when the speech playing
        does not allow interruptions (it plays on)."""
        spoken = self.voiced
        assert spoken is not None, "speak_turns() was not called"
        session = self.session
        speech = session.current_speech
        warmup = getattr(session, "_aec_warmup_remaining", 0.0) or 0.0
        if warmup > 0 and getattr(session, "_aec_warmup_timer", None) is not None:
            self.note(
                "note",
                f"livekit does not hear barge-ins for {warmup:g} s more: the echo "
                "cancellation warm-up of the agent's first speech (aec_warmup_duration)",
            )
        spoken.talked_over = speech
        spoken.barging = spoken.begin(session, text, duration, stt_delay)
        return speech is None or bool(speech.allow_interruptions)

    def _talked_over(self) -> bool:
        """The user is talking over the agent and what it was saying is over: the rest
        (the user's turn, a reply to it) belongs to the user's next turn."""
        spoken = self.voiced
        if spoken is None or spoken.barging is None:
            return False
        return spoken.talked_over is None or bool(spoken.talked_over.done())

    async def barge_in(self) -> bool:
        """The user starts speaking over the agent, handled as livekit handles typed input
        (``await session.interrupt()``); False when the speech playing does not allow
        interruptions (it plays on)."""
        try:
            await self.session.interrupt()
        except RuntimeError:
            return False
        return True

    async def silence(self, seconds: float) -> None:
        """The user says nothing for ``seconds`` (on the virtual clock, an instant): the
        agent's timers run (``user_away_timeout``, idle prompts, hang-ups)."""
        self.turn += 1
        self.note("note", f"the user says nothing for {seconds:g} s")
        await asyncio.sleep(seconds)
        await self.wait_quiet()

    async def say(self, text: str, **kwargs: Any) -> None:
        """Agent-initiated speech (``session.say``), awaited until played out."""
        self.turn += 1
        handle = self.session.say(text, **kwargs)
        await self._bounded(handle.wait_for_playout(), f"session.say({text!r}) never finished")
        await self.wait_quiet()

    async def generate_reply(
        self, instructions: str | None = None, **kwargs: Any
    ) -> RunResult[Any] | None:
        """Agent-initiated reply (``session.generate_reply``), awaited until played out."""
        self.turn += 1
        if instructions:
            kwargs["instructions"] = instructions
        handle = self.session.generate_reply(**kwargs)
        await self._bounded(handle.wait_for_playout(), "generate_reply never finished")
        await self.wait_quiet()
        return None

    async def _bounded(self, aw: Any, what: str) -> Any:
        try:
            return await asyncio.wait_for(aw, timeout=self.timeout)
        except asyncio.TimeoutError:
            for call in self.pending_tool_calls():
                self.note("note", f"tool call still running: {call}")
            self.note("note", f"timed out after {self.timeout:g}s: {what}", failed=True)
            raise AgentSimAssertionError(
                f"{what} within {self.timeout:g}s\n\n{self.transcript()}"
            ) from None

    async def settle(self) -> None:
        """Let work the turn started (fallback tasks, closing) run to a quiet point; a
        pending close is awaited outright."""
        await loop_idle()
        session = self._session
        if session is not None and self.close_event is None and getattr(session, "_closing", False):
            await self.wait_closed()

    async def wait_quiet(self) -> None:
        """Wait until the agent is quiet (:mod:`.quiet`): what a step caused (a sub-task's
        ``on_enter`` after a handoff, a fallback spoken from an ``error`` handler) belongs
        to that step. Bounded by the timeout."""
        if self._session is not None and not self.closed:
            await wait_quiet(
                self._session,
                self.timeout,
                stop=lambda: self.hooks.crashed() or self._talked_over(),
            )
        for text in self.hooks.failures():
            self.record_crash(text)
        await self.settle()

    # ------------------------------------------------------------------ record
    def _on_fake_event(self, ev: FakeEvent) -> None:
        if ev.kind == "fault" and ev.fault is not None:
            self.record_fault(ev.resource, ev.call, ev.fault)
        elif ev.kind == "unscripted":
            self.note(
                "error",
                f"{ev.resource} call {ev.call}: {ev.detail}",
                resource=ev.resource,
                unscripted=True,
            )

    @property
    def history(self) -> list[dict[str, Any]]:
        """The session's chat history, normalized for snapshots (stable ids, no timings)."""
        return normalize_history(self.session.history)
