"""The record of one conversation, whatever mode produced it: :class:`Recorder`.

Every driver reports what it sees here, through the same public methods (``note``,
``record_item``, ``record_tools``, ``record_error``, ``record_close``, ``record_spoken``),
so transcripts, reports, checks and assertions read one timeline. It reads livekit's
event objects (or the process driver's equivalents) by their attributes and never
imports livekit.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import AgentSimAssertionError
from ..faults import Fault
from .events import ObservedEvent, observe_timeline
from .frames import describe_error
from .timeline import TimelineEntry, render_transcript

__all__ = ["Recorder", "SpokenItem", "SpokenSource", "listener"]


class SpokenItem(Protocol):
    """One thing that reached the user (``fakes.Spoken`` and the process speaker's)."""

    @property
    def text(self) -> str: ...

    @property
    def source(self) -> str: ...

    @property
    def interrupted(self) -> bool: ...


class SpokenSource(Protocol):
    """Where spoken items come from: the in-process recording outputs or the process
    driver's speaker (both a ``SpokenLog``)."""

    @property
    def spoken(self) -> list[Any]: ...

    def on_spoken(self, fn: Callable[[Any], None]) -> None: ...


class Recorder:
    """The timeline of one conversation, what reached the user, errors and the close."""

    def __init__(self, *, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.timeline: list[TimelineEntry] = []
        self.errors: list[Any] = []  # livekit ErrorEvent objects (or equivalents)
        self.close_event: Any | None = None
        self.turn = 0  # 0: before the first scripted turn (a greeting)
        self.line: int | None = None  # YAML line of what is being played
        self._outputs: SpokenSource | None = None
        self._closed = asyncio.Event()
        self._close_index: int | None = None
        self._calls: set[str] = set()  # call ids already noted
        # the texts of injected faults (their messages, as livekit's logs quote them)
        self.fault_texts: set[str] = set()
        self.crashes: list[TimelineEntry] = []  # agent hooks that raised (on_enter)
        self.speaking_at: list[float] = []  # loop time of each "speaking" agent state
        self.speaking = asyncio.Event()  # set at each; cleared by whoever waits on it
        self.user_spoke: tuple[float, float] | None = None  # a spoken turn's (start, end)
        self.false_interruptions = 0  # livekit paused the agent for a sound with no words

    # -- writing ---------------------------------------------------------------------
    def set_line(self, line: int | None) -> None:
        """Tag subsequent timeline entries with a YAML line."""
        self.line = line

    def note(self, kind: str, text: str, *, failed: bool = False, **detail: Any) -> TimelineEntry:
        """Append one entry (``kind``: user, agent, tool_call, tool_output, handoff, fault,
        spoken, error, close, note, judge) to the timeline."""
        entry = TimelineEntry(
            kind=kind, text=text, detail=detail, failed=failed, yaml_line=self.line, turn=self.turn
        )
        self.timeline.append(entry)
        return entry

    def record_state(self, ev: Any) -> None:
        """The agent's state changed; when it starts speaking (its first audio, or its first
        text in text mode), the loop's time is kept for latency budgets (``within:``)."""
        if getattr(ev, "new_state", None) == "speaking":
            self.speaking_at.append(asyncio.get_running_loop().time())
            self.speaking.set()

    def record_false_interruption(self, ev: Any) -> None:
        """livekit paused the agent for speech that brought no words, and gave up on it."""
        self.false_interruptions += 1
        resumed = bool(getattr(ev, "resumed", False))
        self.note(
            "note",
            "livekit: a false interruption (no words came): "
            + ("the agent resumes" if resumed else "the agent does not resume"),
        )

    def record_fault(self, resource: str, call: int, fault: Fault, where: str = "") -> None:
        """A model call failed with a fault the scenario injected."""
        self.note(
            "fault",
            f"{resource} call {call}{where}: {fault.describe()}",
            resource=resource,
            fault=fault.kind,
        )
        self.fault_texts.update(fault.log_texts())

    def record_crash(self, text: str) -> None:
        """An agent hook raised where livekit only logs it (``on_enter``): the step fails."""
        self.crashes.append(self.note("error", text))

    def listen_to(self, outputs: SpokenSource) -> None:
        """Take what reached the user from ``outputs`` (recording outputs or a speaker)."""
        self._outputs = outputs
        outputs.on_spoken(self.record_spoken)

    def record_item(self, ev: Any) -> None:
        """A ``conversation_item_added`` event: assistant messages and handoffs."""
        item = ev.item
        itype = getattr(item, "type", "")
        if itype == "message" and item.role == "assistant":
            self.record_message(item.text_content or "", getattr(item, "interrupted", False))
        elif itype == "agent_handoff":
            self.record_handoff(item.old_agent_id, item.new_agent_id)

    def record_tool_update(self, ev: Any) -> None:
        """A ``tool_execution_updated`` event (livekit >= 1.8): a call, as it starts, so a
        tool still running when the turn ends (awaiting a sub-task) is seen in that turn."""
        update = ev.update
        if getattr(update, "type", "") == "tool_call_started":
            call = update.function_call
            self.record_call(call.name, call.arguments, call.call_id)

    def record_speech_tools(self, ev: Any) -> None:
        """A ``speech_created`` event, where livekit has no ``tool_execution_updated``
        (1.6): the speech handle reports each function call as its execution starts, which
        :meth:`record_tool_update` gets from that event on newer releases."""
        add = getattr(ev.speech_handle, "_add_item_added_callback", None)
        if add is None:
            return

        def added(item: Any) -> None:
            if getattr(item, "type", "") == "function_call":
                self.record_call(item.name, item.arguments, getattr(item, "call_id", None))

        add(added)

    def record_tools(self, ev: Any) -> None:
        """A ``function_tools_executed`` event: each call (unless seen starting), then its
        output."""
        for call, out in zip(ev.function_calls, ev.function_call_outputs, strict=False):
            call_id = getattr(call, "call_id", None)
            self.record_call(call.name, call.arguments, call_id)
            if out is not None:
                self.record_output(call.name, out.output, out.is_error, call_id)

    def record_message(self, text: str, interrupted: bool = False) -> None:
        extra = " (interrupted)" if interrupted else ""
        self.note("agent", text + extra, role="assistant", content=text, interrupted=interrupted)

    def record_handoff(self, old_agent_id: str | None, new_agent_id: str) -> None:
        self.note(
            "handoff", f"{old_agent_id or '(start)'} -> {new_agent_id}", new_agent_id=new_agent_id
        )

    def record_call(self, name: str, arguments: str, call_id: str | None) -> None:
        """A tool call, once (a started call is not noted again when it completes)."""
        if call_id:
            if call_id in self._calls:
                return
            self._calls.add(call_id)
        self.note(
            "tool_call", f"{name}({arguments})", name=name, arguments=arguments, call_id=call_id
        )

    def record_output(self, name: str, output: str, is_error: bool, call_id: str | None) -> None:
        flag = " [error]" if is_error else ""
        self.note(
            "tool_output",
            f"{name} -> {output}{flag}",
            name=name,
            output=output,
            is_error=is_error,
            call_id=call_id,
        )

    def record_error(self, ev: Any) -> None:
        """An ``error`` event (``ev.error`` is livekit's LLMError/TTSError/STTError)."""
        self.errors.append(ev)
        recoverable = getattr(ev.error, "recoverable", None)
        suffix = (
            "" if recoverable is None else (" [recoverable]" if recoverable else " [unrecoverable]")
        )
        self.note("error", describe_error(ev.error) + suffix)

    def record_close(self, ev: Any) -> None:
        """The session closed (``ev.reason``, ``ev.error``)."""
        self.close_event = ev
        reason = getattr(ev.reason, "value", ev.reason)
        err = f" ({describe_error(ev.error)})" if getattr(ev, "error", None) else ""
        entry = self.note("close", f"reason={reason}{err}", reason=str(reason))
        self._close_index = self.timeline.index(entry)
        self._closed.set()

    def record_spoken(self, item: SpokenItem) -> None:
        flag = " (interrupted)" if item.interrupted else ""
        self.note(
            "spoken",
            f"[{item.source}] {item.text}{flag}",
            source=item.source,
            index=len(self.spoken) - 1,
        )

    # -- reading ---------------------------------------------------------------------
    @property
    def spoken(self) -> list[Any]:
        """Everything that reached the user, in order (text output, or audio with its text)."""
        return list(self._outputs.spoken) if self._outputs is not None else []

    @property
    def closed(self) -> bool:
        return self.close_event is not None

    @property
    def close_index(self) -> int | None:
        """The close's position in the timeline (None while open)."""
        return self._close_index

    def close_reason(self) -> str | None:
        if self.close_event is None:
            return None
        return str(getattr(self.close_event.reason, "value", self.close_event.reason))

    async def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait for the session's close; False if it did not come in time."""
        try:
            await asyncio.wait_for(self._closed.wait(), timeout=timeout or self.timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def step_events(self) -> list[ObservedEvent]:
        """What the agent did in the current step (turn, or the greeting), in the order the
        session reported it: the same source in every mode."""
        return observe_timeline(self.timeline, self.turn)

    def transcript(self, *, failing: str | None = None, failing_line: str | None = None) -> str:
        return render_transcript(self.timeline, failing=failing, failing_line=failing_line)

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

    # -- the harness's assertions (they read only the record) ---------------------------
    def fail(self, message: str) -> AgentSimAssertionError:
        return AgentSimAssertionError(f"{message}\n\nTranscript:\n{self.transcript()}")

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
            raise self.fail(
                f"expected {what} to be spoken {count} time(s), it was spoken {len(hits)} time(s)"
            )
        if not hits:
            raise self.fail(f"expected {what} to be spoken, but it never reached the user")

    def assert_not_spoken(self, pattern: str | None = None, *, regex: str | None = None) -> None:
        __tracebackhide__ = True
        if self.find_spoken(pattern, regex=regex):
            raise self.fail(f"{_what(pattern, regex, None)} was spoken but must not be")

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
            raise self.fail(
                f"expected {what} to be spoken before the session closed, but the "
                f"session never closed ({state})"
            )
        if self.find_spoken(pattern, regex=regex, source=source, before=self._close_index):
            return
        if self.find_spoken(pattern, regex=regex, source=source):
            raise self.fail(
                f"{what} was spoken only after the session closed: the user never heard it"
            )
        raise self.fail(f"the agent went silent: {what} was never spoken before the session closed")

    def assert_closed(self, reason: str | None = None) -> None:
        __tracebackhide__ = True
        actual = self.close_reason()
        if actual is None:
            raise self.fail("expected the session to close, but it is still open")
        if reason is not None and actual != reason:
            raise self.fail(
                f"expected the session to close with reason={reason!r}, it closed "
                f"with reason={actual!r}"
            )

    def assert_not_closed(self) -> None:
        __tracebackhide__ = True
        actual = self.close_reason()
        if actual is not None:
            raise self.fail(f"expected the session to stay open, it closed (reason={actual})")


def listener(handler: Callable[[Any], None]) -> Callable[[Any], None]:
    """A plain function with its signature precomputed: livekit's EventEmitter inspects a
    listener's signature on every emit, which costs ~10x more for a bound method (per-turn
    overhead the benchmark measures)."""

    def call(ev: Any) -> None:
        handler(ev)

    call.__signature__ = inspect.signature(call)  # type: ignore[attr-defined]
    return call


def _what(pattern: str | None, regex: str | None, source: str | None) -> str:
    if regex is not None:
        what = f"speech matching /{regex}/"
    elif pattern is not None:
        what = f"{pattern!r}"
    else:
        what = "any speech"
    return what + (f" from {source}" if source else "")
