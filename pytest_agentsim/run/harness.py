"""Drive a real ``AgentSession`` against the fakes and record everything observable.

:class:`AgentSim` is the engine behind both the ``agentsim`` fixture and YAML scenarios:
it builds the session (text or audio), attaches recording outputs, runs turns, keeps the
:class:`~pytest_agentsim.observe.timeline.TimelineEntry` record, and offers the spoken-fallback
and close assertions. It never imports pytest, so it can be used in any async test.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from ..fakes import FakeEvent, FakeLLM, FakeSTT, FakeTTS, Spoken, attach_outputs, make_session
from ..faults import CallScript, Fault
from ..observe.timeline import TimelineEntry, render_transcript

if TYPE_CHECKING:
    from livekit.agents import Agent, AgentSession
    from livekit.agents.voice.run_result import RunResult

    from ..transport import InferenceGateway

__all__ = ["AgentSim", "AgentSimAssertionError", "describe_error"]

Mode = Literal["text", "audio"]


class AgentSimAssertionError(AssertionError):
    """An assertion about the conversation failed; carries the transcript."""


def describe_error(err: BaseException | str | None) -> str:
    """One line for an error, looking through livekit's LLMError/TTSError wrappers
    (a string is an error already described, e.g. by an agent in another process)."""
    if err is None:
        return "unknown error"
    if isinstance(err, str):
        return err
    inner = getattr(err, "error", None)
    if isinstance(inner, BaseException):
        err = inner
    name = type(err).__name__
    status = getattr(err, "status_code", None)
    body = getattr(err, "body", None)
    msg = getattr(err, "message", None) or str(err)
    parts = [name]
    if isinstance(status, int) and status > 0:
        parts.append(str(status))
    if isinstance(body, dict) and body.get("type"):
        parts.append(str(body["type"]))
    text = " ".join(parts) + f": {msg}"
    if isinstance(body, str) and body and body not in msg:
        text += f" ({body})"
    flags = []
    if getattr(err, "retryable", None) is False:
        flags.append("not retryable")
    if getattr(err, "terminal", None):
        flags.append("terminal")
    return text + (f" ({', '.join(flags)})" if flags else "")


class AgentSim:
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
        gateway_serves_all: bool = False,
    ) -> None:
        self.fake_llm = llm if llm is not None else FakeLLM()
        self.fake_tts = tts if tts is not None else FakeTTS()
        self.fake_stt = stt if stt is not None else FakeSTT()
        self.timeout = timeout
        # with a gateway, the session uses the real inference.LLM client, answered over
        # its real HTTP stack by the fake gateway from the same kind of script
        self.gateway = gateway
        # process mode: the child's TTS and STT go to the gateway too, so their scripts
        # (and faults) are the gateway's; in-process, only the LLM is the real client
        self.gateway_serves_all = gateway is not None and gateway_serves_all
        self.llm_model = llm_model
        self.timeline: list[TimelineEntry] = []
        self.results: list[RunResult[Any]] = []
        self.errors: list[Any] = []  # livekit ErrorEvent objects
        self.run_errors: list[Exception] = []  # exceptions that ended a turn
        self.close_event: Any | None = None
        self.mode: Mode = "text"
        self.turn = 0
        self._session: AgentSession[Any] | None = None
        self._outputs: Any = None
        self._closed = asyncio.Event()
        self._close_index: int | None = None
        self._current_line: int | None = None
        for fake in (self.fake_llm, self.fake_tts, self.fake_stt):
            fake.add_observer(self._on_fake_event)
        if gateway is not None:
            for resource, script in (
                ("llm", gateway.llm),
                ("tts", gateway.tts),
                ("stt", gateway.stt),
            ):
                script.fault_observers.append(self._gateway_fault_observer(resource))

    def _gateway_fault_observer(self, resource: str) -> Callable[[int, Fault], None]:
        def observe(call: int, fault: Fault) -> None:
            self._note(
                "fault",
                f"{resource} call {call} (gateway): {fault.describe()}",
                resource=resource,
                fault=fault.kind,
            )

        return observe

    @property
    def llm_script(self) -> CallScript[Any]:
        """Where the LLM's scripted answers and faults go (the fake or the gateway)."""
        return self.gateway.llm if self.gateway is not None else self.fake_llm.script

    @property
    def tts_script(self) -> CallScript[Any]:
        if self.gateway is not None and self.gateway_serves_all:
            return self.gateway.tts
        return self.fake_tts.script

    @property
    def stt_script(self) -> CallScript[Any]:
        if self.gateway is not None and self.gateway_serves_all:
            return self.gateway.stt
        return self.fake_stt.script

    def unscripted_calls(self) -> list[str]:
        """Model calls that found nothing scripted (they fail the turn)."""
        if self.gateway is not None:
            return list(self.gateway.unscripted)
        return [str(e) for e in self.fake_llm.errors] + list(self.fake_llm.misscripted)

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
        """Build an ``AgentSession`` on the fakes and start ``agent`` in it (no room)."""
        if self._session is not None:
            raise RuntimeError("agentsim.start() was already called in this test")
        if mode not in ("text", "audio"):
            raise ValueError(f"mode must be 'text' or 'audio', got {mode!r}")
        self.mode = mode
        kwargs: dict[str, Any] = {"llm": self.fake_llm}
        if self.gateway is not None:
            from livekit.agents import inference

            kwargs["llm"] = inference.LLM(model=self.llm_model)
        if mode == "audio":
            kwargs["tts"] = self.fake_tts
        kwargs.update(session_kwargs)
        session = make_session(**kwargs)
        self._attach(session)
        await session.start(agent)
        return session

    def _attach(self, session: AgentSession[Any]) -> None:
        """Record everything a session does; call before ``session.start()``."""
        self._session = session
        self._outputs = attach_outputs(session, audio=self.mode == "audio")
        self._outputs.on_spoken(self._on_spoken)
        session.on("conversation_item_added", _listener(self._on_item))
        session.on("function_tools_executed", _listener(self._on_tools))
        session.on("error", _listener(self._on_error))
        session.on("close", _listener(self._on_close))

    async def aclose(self, timeout: float = 5.0) -> None:
        """Close the session (bounded: a hung tool must not hang the test run too)."""
        if self._session is not None and self.close_event is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._session.aclose(), timeout=timeout)

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
        self._note("user", user_input)
        result = self.session.run(user_input=user_input, **kwargs)
        try:
            await self._bounded(result, f"the agent did not finish its reply to {user_input!r}")
        except AgentSimAssertionError:
            raise
        except Exception as e:
            self.run_errors.append(e)
            self._note("error", f"the turn failed: {describe_error(e)}")
        self.results.append(result)
        await self.settle()
        return result

    async def say(self, text: str, **kwargs: Any) -> None:
        """Agent-initiated speech (``session.say``), awaited until played out."""
        self.turn += 1
        handle = self.session.say(text, **kwargs)
        await self._bounded(handle.wait_for_playout(), f"session.say({text!r}) never finished")
        await self.settle()

    async def generate_reply(
        self, instructions: str | None = None, **kwargs: Any
    ) -> RunResult[Any] | None:
        """Agent-initiated reply (``session.generate_reply``), awaited until played out."""
        self.turn += 1
        if instructions:
            kwargs["instructions"] = instructions
        handle = self.session.generate_reply(**kwargs)
        await self._bounded(handle.wait_for_playout(), "generate_reply never finished")
        await self.settle()
        return None

    async def _bounded(self, aw: Any, what: str) -> Any:
        try:
            return await asyncio.wait_for(aw, timeout=self.timeout)
        except asyncio.TimeoutError:
            for call in self.pending_tool_calls():
                self._note("note", f"tool call still running: {call}")
            self._note("note", f"timed out after {self.timeout:g}s: {what}", failed=True)
            raise AgentSimAssertionError(
                f"{what} within {self.timeout:g}s\n\n{self.transcript()}"
            ) from None

    async def settle(self, rounds: int = 50) -> None:
        """Let work the turn started (fallback tasks, closing) run to a quiet point.

        The fakes never sleep, so a bounded number of loop iterations is enough and
        deterministic; a pending close is awaited outright.
        """
        loop = asyncio.get_running_loop()
        for _ in range(rounds):
            await asyncio.sleep(0)
            # nothing scheduled: more rounds would change nothing (the fakes never wait on
            # timers); loops without `_ready` (uvloop) just run all the rounds
            if not getattr(loop, "_ready", True):
                break
        session = self._session
        if session is not None and self.close_event is None and getattr(session, "_closing", False):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._closed.wait(), timeout=self.timeout)

    async def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait for the session's ``close`` event; False if it did not come in time."""
        try:
            await asyncio.wait_for(self._closed.wait(), timeout=timeout or self.timeout)
        except asyncio.TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ record
    def _note(self, kind: str, text: str, *, failed: bool = False, **detail: Any) -> TimelineEntry:
        entry = TimelineEntry(
            kind=kind,
            text=text,
            detail=detail,
            failed=failed,
            yaml_line=self._current_line,
            turn=self.turn,
        )
        self.timeline.append(entry)
        return entry

    def _on_fake_event(self, ev: FakeEvent) -> None:
        if ev.kind == "fault" and ev.fault is not None:
            self._note(
                "fault",
                f"{ev.resource} call {ev.call}: {ev.fault.describe()}",
                resource=ev.resource,
                fault=ev.fault.kind,
            )
        elif ev.kind == "unscripted":
            self._note("error", f"{ev.resource} call {ev.call}: {ev.detail}", resource=ev.resource)

    def _on_item(self, ev: Any) -> None:
        item = ev.item
        itype = getattr(item, "type", "")
        if itype == "message" and item.role == "assistant":
            text = item.text_content or ""
            extra = " (interrupted)" if getattr(item, "interrupted", False) else ""
            self._note("agent", text + extra, role="assistant", content=text)
        elif itype == "agent_handoff":
            self._note(
                "handoff",
                f"{item.old_agent_id or '(start)'} -> {item.new_agent_id}",
                new_agent=item.new_agent_id,
            )

    def _on_tools(self, ev: Any) -> None:
        for call, out in zip(ev.function_calls, ev.function_call_outputs, strict=False):
            self._note(
                "tool_call",
                f"{call.name}({call.arguments})",
                name=call.name,
                arguments=call.arguments,
            )
            if out is not None:
                flag = " [error]" if out.is_error else ""
                self._note(
                    "tool_output",
                    f"{call.name} -> {out.output}{flag}",
                    name=call.name,
                    output=out.output,
                    is_error=out.is_error,
                )

    def _on_error(self, ev: Any) -> None:
        self.errors.append(ev)
        recoverable = getattr(ev.error, "recoverable", None)
        suffix = (
            "" if recoverable is None else (" [recoverable]" if recoverable else " [unrecoverable]")
        )
        self._note("error", describe_error(ev.error) + suffix)

    def _on_close(self, ev: Any) -> None:
        self.close_event = ev
        reason = getattr(ev.reason, "value", ev.reason)
        err = f" ({describe_error(ev.error)})" if getattr(ev, "error", None) else ""
        entry = self._note("close", f"reason={reason}{err}", reason=str(reason))
        self._close_index = self.timeline.index(entry)
        self._closed.set()

    def _on_spoken(self, item: Spoken) -> None:
        flag = " (interrupted)" if item.interrupted else ""
        self._note(
            "spoken",
            f"[{item.source}] {item.text}{flag}",
            source=item.source,
            index=len(self.spoken) - 1,
        )

    # ------------------------------------------------------------------ reading
    @property
    def spoken(self) -> list[Spoken]:
        """Everything that reached the user, in order (text output, or audio with its text)."""
        return list(self._outputs.spoken) if self._outputs is not None else []

    @property
    def closed(self) -> bool:
        return self.close_event is not None

    @property
    def history(self) -> list[dict[str, Any]]:
        """The session's chat history, normalized for snapshots (stable ids, no timings)."""
        from ..observe.history import normalize_history

        return normalize_history(self.session.history)

    def transcript(self, *, failing: str | None = None, failing_line: str | None = None) -> str:
        return render_transcript(self.timeline, failing=failing, failing_line=failing_line)

    # ------------------------------------------------------------------ assertions
    def _fail(self, message: str) -> AgentSimAssertionError:
        return AgentSimAssertionError(f"{message}\n\nTranscript:\n{self.transcript()}")

    def find_spoken(
        self,
        pattern: str | None = None,
        *,
        regex: str | None = None,
        source: str | None = None,
        before: int | None = None,
    ) -> list[int]:
        """Timeline indexes of spoken entries matching (substring is case-insensitive)."""
        hits = []
        for i, e in enumerate(self.timeline):
            if e.kind != "spoken" or (before is not None and i >= before):
                continue
            if source is not None and e.detail.get("source") != source:
                continue
            text = self.spoken[e.detail["index"]].text
            if pattern is not None and pattern.casefold() not in text.casefold():
                continue
            if regex is not None and re.search(regex, text) is None:
                continue
            hits.append(i)
        return hits

    def assert_spoken(
        self,
        pattern: str | None = None,
        *,
        regex: str | None = None,
        source: str | None = None,
        count: int | None = None,
    ) -> None:
        """Something matching reached the user (``count=``: exactly that many times)."""
        __tracebackhide__ = True
        hits = self.find_spoken(pattern, regex=regex, source=source)
        what = _what(pattern, regex, source)
        if count is not None and len(hits) != count:
            raise self._fail(
                f"expected {what} to be spoken {count} time(s), it was spoken {len(hits)} time(s)"
            )
        if not hits:
            raise self._fail(f"expected {what} to be spoken, but it never reached the user")

    def assert_not_spoken(self, pattern: str | None = None, *, regex: str | None = None) -> None:
        __tracebackhide__ = True
        if self.find_spoken(pattern, regex=regex):
            raise self._fail(f"{_what(pattern, regex, None)} was spoken but must not be")

    def assert_spoken_before_close(
        self,
        pattern: str | None = None,
        *,
        regex: str | None = None,
        source: str | None = None,
    ) -> None:
        """The fallback check: the session closed, and the match was spoken before it did."""
        __tracebackhide__ = True
        what = _what(pattern, regex, source)
        if self.close_event is None or self._close_index is None:
            hits = self.find_spoken(pattern, regex=regex, source=source)
            state = "it was spoken" if hits else "it was never spoken either"
            raise self._fail(
                f"expected {what} to be spoken before the session closed, but the "
                f"session never closed ({state})"
            )
        before = self.find_spoken(pattern, regex=regex, source=source, before=self._close_index)
        if before:
            return
        after = self.find_spoken(pattern, regex=regex, source=source)
        if after:
            raise self._fail(
                f"{what} was spoken only after the session closed: the user never heard it"
            )
        raise self._fail(
            f"the agent went silent: {what} was never spoken before the session closed"
        )

    def assert_closed(self, reason: str | None = None) -> None:
        __tracebackhide__ = True
        if self.close_event is None:
            raise self._fail("expected the session to close, but it is still open")
        actual = str(getattr(self.close_event.reason, "value", self.close_event.reason))
        if reason is not None and actual != reason:
            raise self._fail(
                f"expected the session to close with reason={reason!r}, it closed "
                f"with reason={actual!r}"
            )

    def assert_not_closed(self) -> None:
        __tracebackhide__ = True
        if self.close_event is not None:
            reason = getattr(self.close_event.reason, "value", self.close_event.reason)
            raise self._fail(f"expected the session to stay open, it closed (reason={reason})")

    def set_line(self, line: int | None) -> None:
        """Tag subsequent timeline entries with a YAML line (used by the scenario runner)."""
        self._current_line = line


def _listener(handler: Callable[[Any], None]) -> Callable[[Any], None]:
    """A plain function with its signature precomputed: livekit's EventEmitter inspects a
    listener's signature on every emit, which costs ~10x more for a bound method (per-turn
    overhead the benchmark measures)."""

    def listener(ev: Any) -> None:
        handler(ev)

    listener.__signature__ = inspect.signature(listener)  # type: ignore[attr-defined]
    return listener


def _what(pattern: str | None, regex: str | None, source: str | None) -> str:
    if regex is not None:
        what = f"speech matching /{regex}/"
    elif pattern is not None:
        what = f"{pattern!r}"
    else:
        what = "any speech"
    return what + (f" from {source}" if source else "")
