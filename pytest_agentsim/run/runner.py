"""Play a scripted scenario (``agentsim.turns``) against a real agent and check it.

For each turn the runner queues the turn's model answers and faults on the fakes, mocks
the turn's tools, plays the user input (or agent-initiated speech), then checks
``expect`` (ordered, exhaustive ``RunResult`` events), ``spoken`` and ``closed``. Any
failure raises :class:`ScenarioFailure` carrying the transcript with the failing step
marked and its YAML line. Never imports pytest.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import ScenarioError
from ..fakes import no_backoff
from ..faults import CallScript, Fault
from ..load.script import EventExpectation, SpokenExpectation, ToolMock, Turn
from ..observe.timeline import TimelineEntry, render_transcript
from .harness import AgentSim, AgentSimAssertionError
from .target import AgentTarget

if TYPE_CHECKING:
    from livekit.agents import Agent, AgentSession

    from ..load.loader import Scenario

__all__ = ["ObservedEvent", "RunSettings", "ScenarioFailure", "ScenarioRun", "run_scenario"]


# How long after a turn a `closed:` expectation waits for the session to close.
CLOSE_GRACE = 1.0


class ScenarioFailure(AssertionError):
    """A scenario did not behave as scripted; ``str()`` is the readable report."""

    def __init__(
        self,
        reason: str,
        *,
        location: str | None,
        transcript: str,
        timeline: list[TimelineEntry] | None = None,
    ) -> None:
        self.reason = reason
        self.location = location
        self.transcript = transcript
        self.timeline = timeline or []
        super().__init__(f"{self.headline()}\n\nTranscript:\n{transcript}")

    def headline(self) -> str:
        """The reason with the YAML location under its first line."""
        first, _, rest = self.reason.partition("\n")
        where = f"\n  at {self.location}" if self.location else ""
        return f"{first}{where}" + (f"\n{rest}" if rest else "")


@dataclasses.dataclass(frozen=True)
class RunSettings:
    mode: str = "text"
    timeout: float = 30.0
    allow_unused: bool = False
    real_timing: bool = False
    transport: str = "fake"  # "gateway": the real inference.LLM against the fake gateway
    keep_history: bool = True  # normalize the chat history at the end (snapshots need it)


@dataclasses.dataclass
class ScenarioRun:
    """What happened, for reports and snapshots."""

    sim: AgentSim
    timeline: list[TimelineEntry]
    history: list[dict[str, Any]] | None = None  # only kept when settings.keep_history


@dataclasses.dataclass(frozen=True)
class ObservedEvent:
    """A ``RunResult`` event reduced to what expectations look at."""

    type: str
    role: str | None = None
    text: str | None = None
    name: str | None = None
    arguments: Any = None
    is_error: bool | None = None
    new_agent: str | None = None

    def describe(self) -> str:
        if self.type == "message":
            return f"message {self.role}: {self.text!r}"
        if self.type == "function_call":
            return f"function_call {self.name}({json.dumps(self.arguments, ensure_ascii=False)})"
        if self.type == "function_call_output":
            err = " [error]" if self.is_error else ""
            return f"function_call_output {self.text!r}{err}"
        return f"agent_handoff -> {self.new_agent}"


def observe_run_events(events: list[Any]) -> list[ObservedEvent]:
    out: list[ObservedEvent] = []
    for ev in events:
        t = ev.type
        if t == "message":
            out.append(ObservedEvent("message", role=ev.item.role, text=ev.item.text_content or ""))
        elif t == "function_call":
            out.append(
                ObservedEvent(
                    "function_call", name=ev.item.name, arguments=_parse_args(ev.item.arguments)
                )
            )
        elif t == "function_call_output":
            out.append(
                ObservedEvent(
                    "function_call_output",
                    text=ev.item.output,
                    is_error=ev.item.is_error,
                    name=ev.item.name,
                )
            )
        elif t == "agent_handoff":
            out.append(ObservedEvent("agent_handoff", new_agent=type(ev.new_agent).__name__))
    return out


def _observe_timeline(entries: list[TimelineEntry], turn: int) -> list[ObservedEvent]:
    """Events of an agent-initiated turn (say/generate_reply have no RunResult)."""
    out: list[ObservedEvent] = []
    for e in entries:
        if e.turn != turn:
            continue
        d = e.detail
        if e.kind == "agent":
            out.append(ObservedEvent("message", role="assistant", text=d.get("content", e.text)))
        elif e.kind == "tool_call":
            out.append(
                ObservedEvent(
                    "function_call",
                    name=d.get("name"),
                    arguments=_parse_args(d.get("arguments", "{}")),
                )
            )
        elif e.kind == "tool_output":
            out.append(
                ObservedEvent(
                    "function_call_output",
                    text=d.get("output"),
                    is_error=d.get("is_error"),
                    name=d.get("name"),
                )
            )
        elif e.kind == "handoff":
            out.append(ObservedEvent("agent_handoff", new_agent=d.get("new_agent")))
    return out


def _parse_args(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            return raw
    return raw


def is_subset(expected: Any, actual: Any) -> bool:
    """``expected`` is contained in ``actual`` (mappings recursively; other values equal)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and is_subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(is_subset(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, float) or isinstance(actual, float):
        return (
            isinstance(actual, int | float)
            and not isinstance(actual, bool)
            and float(expected) == float(actual)
        )
    return bool(expected == actual)


def event_mismatch(exp: EventExpectation, got: ObservedEvent) -> str | None:
    """Why ``got`` does not satisfy ``exp`` (None if it does)."""
    if exp.type != got.type:
        return f"expected {exp.describe()}, got {got.describe()}"
    if exp.type == "message":
        if exp.role and got.role != exp.role:
            return f"expected a {exp.role} message, got {got.describe()}"
        if exp.text and not exp.text.matches(got.text):
            return f"message text does not match {exp.text.describe()}: got {got.text!r}"
    elif exp.type == "function_call":
        if exp.name and got.name != exp.name:
            return f"expected a call to {exp.name!r}, got {got.describe()}"
        if exp.arguments is not None and not is_subset(exp.arguments, got.arguments):
            return (
                f"{got.name} arguments do not contain {json.dumps(exp.arguments)}: got "
                f"{json.dumps(got.arguments, ensure_ascii=False)}"
            )
    elif exp.type == "function_call_output":
        if exp.is_error is not None and bool(got.is_error) != exp.is_error:
            return f"expected is_error={exp.is_error}, got {got.describe()}"
        if exp.text and not exp.text.matches(got.text):
            return f"tool output does not match {exp.text.describe()}: got {got.text!r}"
    elif exp.type == "agent_handoff" and exp.new_agent and got.new_agent != exp.new_agent:
        return f"expected a handoff to {exp.new_agent}, got a handoff to {got.new_agent}"
    return None


class _Run:
    def __init__(self, scenario: Scenario, sim: AgentSim) -> None:
        self.scenario = scenario
        self.sim = sim
        self.answer_lines: dict[int, int | None] = {}
        self.unscripted_seen = 0

    def loc(self, line: int | None) -> str:
        return f"{self.scenario.path.name}:{line}" if line else self.scenario.path.name

    def fail(
        self, reason: str, line: int | None, *, mark: TimelineEntry | None = None
    ) -> ScenarioFailure:
        if mark is not None:
            mark.failed = True
        elif self.sim.timeline:
            # mark the last thing that happened in the current turn
            self.sim.timeline[-1].failed = True
        return ScenarioFailure(
            reason,
            location=self.loc(line),
            transcript=render_transcript(
                self.sim.timeline, failing=reason, failing_line=self.loc(line)
            ),
            timeline=self.sim.timeline,
        )

    def queue_turn(self, turn: Turn) -> None:
        for step in turn.llm:
            if step.fault is not None:
                self.sim.llm_script.add_fault(step.fault)
                self.answer_lines[id(step.fault)] = step.line
            elif step.answer is not None:
                self.sim.llm_script.add(step.answer)
                self.answer_lines[id(step.answer)] = step.line
        for step in turn.tts:
            if step.fault is not None:
                self.sim.tts_script.add_fault(step.fault)
                self.answer_lines[id(step.fault)] = step.line

    @contextlib.contextmanager
    def tool_mocks(self, session: AgentSession[Any], mocks: tuple[ToolMock, ...]) -> Iterator[None]:
        """Mock tools for one turn, on every Agent class (a handoff mid-turn must see them)."""
        if not mocks:
            yield
            return
        from livekit.agents import Agent
        from livekit.agents.voice.run_result import mock_tools

        from .drivers.entrypoint import context_tool_mocks, session_tool_mocks

        table = {m.name: _mock_fn(m) for m in mocks}
        classes = _agent_classes(Agent)
        if "session" in inspect.signature(mock_tools).parameters:
            # mocks the agent set itself (entrypoint mode) stay, under the turn's
            own = session_tool_mocks(session)
            for cls in classes:
                mock_tools(cls, {**own.get(cls, {}), **table}, session=session)
            try:
                yield
            finally:
                for cls in classes:
                    mock_tools(cls, own.get(cls, {}), session=session)
            return
        # livekit < 1.7 only has the context-var form; the turn's tasks inherit the
        # context because session.run() creates them from this task
        own = context_tool_mocks()
        with contextlib.ExitStack() as stack:
            for cls in classes:
                stack.enter_context(mock_tools(cls, {**own.get(cls, {}), **table}))
            yield

    def scripts(self) -> dict[str, CallScript[Any]]:
        sim = self.sim
        return {"llm": sim.llm_script, "tts": sim.tts_script, "stt": sim.stt_script}

    async def play(self, agent: Agent, settings: RunSettings) -> None:
        self.queue_scenario_faults()
        await self.sim.start(agent, mode="audio" if settings.mode == "audio" else "text")
        await self.play_turns(settings)

    # queue_scenario_faults/play_turns: also the steps of entrypoint mode
    # (pytest_agentsim.run.drivers.entrypoint.play_entrypoint), which starts the session its own way
    def queue_scenario_faults(self) -> None:
        for sf in self.scenario.config.faults:
            self.scripts()[sf.resource].add_fault(sf.fault)
            self.answer_lines[id(sf.fault)] = sf.line

    async def play_turns(self, settings: RunSettings) -> None:
        for turn in self.scenario.config.turns or ():
            await self.play_turn(turn)
        if not settings.allow_unused:
            self.check_unused()

    def ensure_open(self, turn: Turn) -> None:
        """A turn cannot be played into a closed session: fail it, naming the turn."""
        if self.sim.closed:
            raise self.fail(
                f"turn {turn.index + 1} ({turn.describe()}) cannot run: the session already closed",
                turn.line,
            )

    async def play_turn(self, turn: Turn) -> None:
        sim = self.sim
        sim.set_line(turn.line)
        self.ensure_open(turn)
        self.queue_turn(turn)
        start = len(sim.timeline)
        try:
            with self.tool_mocks(sim.session, turn.tools):
                if turn.user is not None:
                    result = await sim.run(turn.user)
                    observed = observe_run_events(result.events)
                elif turn.say is not None:
                    await sim.say(turn.say)
                    observed = _observe_timeline(sim.timeline, sim.turn)
                else:
                    await sim.generate_reply(turn.generate_reply)
                    observed = _observe_timeline(sim.timeline, sim.turn)
        except AgentSimAssertionError as e:
            raise self.fail(str(e).split("\n\n", 1)[0], turn.line) from None
        unscripted = sim.unscripted_calls()[self.unscripted_seen :]
        self.unscripted_seen += len(unscripted)
        if unscripted:
            entry = next(
                (e for e in sim.timeline[start:] if e.kind == "error" and "no scripted" in e.text),
                None,
            )
            raise self.fail(
                f"turn {turn.index + 1}: the scripted model answers do not fit the calls the "
                f"agent made: {unscripted[0]}",
                turn.line,
                mark=entry,
            )
        if turn.closed is not None and turn.closed.closed and not sim.closed:
            # fakes are instant: a close that is coming arrives within loop turns, so a
            # short bound only costs time when the agent never closes (a failure)
            await sim.wait_closed(timeout=min(sim.timeout, CLOSE_GRACE))
        if turn.expect is not None:
            self.check_expect(turn, observed)
        if turn.spoken is not None:
            self.check_spoken(turn, turn.spoken)
        if turn.closed is not None:
            self.check_closed(turn)

    def check_expect(self, turn: Turn, observed: list[ObservedEvent]) -> None:
        assert turn.expect is not None
        got = (
            "\n".join(f"    {i + 1}. {o.describe()}" for i, o in enumerate(observed))
            or "    (none)"
        )
        for i, exp in enumerate(turn.expect):
            if i >= len(observed):
                raise self.fail(
                    f"turn {turn.index + 1}: expected event {i + 1} ({exp.describe()}) "
                    f"but the turn produced only {len(observed)} event(s):\n{got}",
                    exp.line,
                )
            why = event_mismatch(exp, observed[i])
            if why:
                raise self.fail(
                    f"turn {turn.index + 1}, event {i + 1}: {why}\n  events were:\n{got}",
                    exp.line,
                    mark=self._entry_for(turn, observed[i]),
                )
        if len(observed) > len(turn.expect):
            extra = observed[len(turn.expect)]
            raise self.fail(
                f"turn {turn.index + 1}: unexpected extra event {len(turn.expect) + 1}: "
                f"{extra.describe()} (expect lists every event, in order)\n"
                f"  events were:\n{got}",
                turn.line,
                mark=self._entry_for(turn, extra),
            )

    def _entry_for(self, turn: Turn, ev: ObservedEvent) -> TimelineEntry | None:
        kind = {
            "message": "agent",
            "function_call": "tool_call",
            "function_call_output": "tool_output",
            "agent_handoff": "handoff",
        }[ev.type]
        for e in self.sim.timeline:
            same_turn = e.turn == self.sim.turn and e.kind == kind
            if same_turn and (ev.name is None or e.detail.get("name") == ev.name):
                return e
        return None

    def check_spoken(self, turn: Turn, expected: tuple[SpokenExpectation, ...]) -> None:
        sim = self.sim
        entries = [e for e in sim.timeline if e.kind == "spoken" and e.turn == sim.turn]
        texts = [sim.spoken[e.detail["index"]] for e in entries]
        listing = (
            "\n".join(f"    {i + 1}. [{s.source}] {s.text!r}" for i, s in enumerate(texts))
            or "    (nothing)"
        )
        if not expected and texts:
            raise self.fail(
                f"turn {turn.index + 1}: expected silence, but the user heard:\n{listing}",
                turn.line,
                mark=entries[0],
            )
        for i, exp in enumerate(expected):
            if i >= len(texts):
                raise self.fail(
                    f"turn {turn.index + 1}: expected {exp.text.describe()} to be spoken "
                    f"(spoken item {i + 1}), the user heard only:\n{listing}",
                    exp.line,
                )
            s = texts[i]
            if not exp.text.matches(s.text) or (exp.source and s.source != exp.source):
                src = f" from {exp.source}" if exp.source else ""
                raise self.fail(
                    f"turn {turn.index + 1}, spoken item {i + 1}: expected "
                    f"{exp.text.describe()}{src}, got [{s.source}] {s.text!r}\n"
                    f"  the user heard:\n{listing}",
                    exp.line,
                    mark=entries[i],
                )
        if len(texts) > len(expected) and expected:
            raise self.fail(
                f"turn {turn.index + 1}: the user heard more than `spoken` lists "
                f"(it lists every item, in order):\n{listing}",
                turn.line,
                mark=entries[len(expected)],
            )
        if expected and turn.closed is not None and turn.closed.closed:
            # the fallback check: speech the turn expects must reach the user before the
            # session closes, or the caller never hears it
            close_at = next(
                (i for i, e in enumerate(sim.timeline) if e.kind == "close"), len(sim.timeline)
            )
            for exp, entry in zip(expected, entries, strict=False):
                if sim.timeline.index(entry) > close_at:
                    raise self.fail(
                        f"turn {turn.index + 1}: {exp.text.describe()} was spoken only after "
                        "the session closed: the user never heard it",
                        exp.line,
                        mark=entry,
                    )

    def check_closed(self, turn: Turn) -> None:
        exp = turn.closed
        assert exp is not None
        sim = self.sim
        if not exp.closed:
            if sim.closed:
                raise self.fail(
                    f"turn {turn.index + 1}: the session closed but must stay open", exp.line
                )
            return
        if not sim.closed:
            raise self.fail(
                f"turn {turn.index + 1}: the session must close in this turn, but it is still open",
                exp.line,
            )
        reason = sim.close_event.reason if sim.close_event is not None else None
        actual = str(getattr(reason, "value", reason))
        if exp.reason and actual != exp.reason:
            close_entry = next((e for e in reversed(sim.timeline) if e.kind == "close"), None)
            raise self.fail(
                f"turn {turn.index + 1}: the session closed with reason={actual!r}, "
                f"expected reason={exp.reason!r}",
                exp.line,
                mark=close_entry,
            )

    def check_unused(self) -> None:
        leftovers: list[tuple[str, int | None]] = []
        for resource, script in self.scripts().items():
            for item in script.unused():
                what = item.describe() if isinstance(item, Fault) else _describe_answer(item)
                leftovers.append((f"{resource}: {what}", self.answer_lines.get(id(item))))
        if leftovers:
            listing = "\n".join(f"    {self.loc(line)}: {what}" for what, line in leftovers)
            raise self.fail(
                "scripted model answers were never used (the agent made fewer model calls than "
                f"scripted):\n{listing}\n"
                "  fix: remove them, or set `agentsim: {allow_unused: true}`",
                leftovers[0][1],
            )


def _describe_answer(answer: Any) -> str:
    parts = []
    if getattr(answer, "text", None):
        parts.append(f"say {answer.text!r}")
    for call in getattr(answer, "tool_calls", ()) or ():
        parts.append(f"tool_call {call.name}")
    return ", ".join(parts) or repr(answer)


def _mock_fn(mock: ToolMock) -> Callable[[], Any]:
    if mock.raise_message is not None:
        message = mock.raise_message

        def _raise() -> Any:
            from livekit.agents import ToolError

            raise ToolError(message)

        return _raise
    value = mock.value

    def _return() -> Any:
        # tools return strings or JSON-able values; the framework serializes either
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    return _return


def _agent_classes(base: type) -> list[type]:
    out, todo = [], [base]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return out


async def run_scenario(
    scenario: Scenario,
    make_agent: Callable[[Scenario], Agent] | AgentTarget,
    settings: RunSettings,
    *,
    sim: AgentSim | None = None,
) -> ScenarioRun:
    """Run one scripted scenario; raises ScenarioFailure (or ScenarioError) on failure.

    With ``settings.transport == "gateway"`` the session's LLM is the real
    ``livekit.agents.inference.LLM``, served the same script over HTTP by the fake gateway.
    ``make_agent`` is a factory or an :class:`~pytest_agentsim.run.target.AgentTarget`; a
    server target runs in entrypoint mode (:mod:`pytest_agentsim.run.drivers.entrypoint`).
    """
    if settings.transport == "gateway" and sim is None:
        from ..transport import InferenceGateway

        async with InferenceGateway() as gateway:
            sim = AgentSim(timeout=settings.timeout, gateway=gateway)
            return await _run_scenario(scenario, make_agent, settings, sim=sim)
    return await _run_scenario(scenario, make_agent, settings, sim=sim)


async def _run_scenario(
    scenario: Scenario,
    make_agent: Callable[[Scenario], Agent] | AgentTarget,
    settings: RunSettings,
    *,
    sim: AgentSim | None = None,
) -> ScenarioRun:
    if scenario.config.turns is None:
        raise ScenarioError(
            "scenario has no agentsim.turns", path=scenario.path, line=scenario.line
        )
    sim = sim if sim is not None else AgentSim(timeout=settings.timeout)
    run = _Run(scenario, sim)
    # -- entrypoint mode hook: an AgentServer target runs its own rtc_session entrypoint
    # in a fake job (the logic lives in pytest_agentsim/entrypoint.py)
    if isinstance(make_agent, AgentTarget) and make_agent.kind == "server":
        from .drivers.entrypoint import play_entrypoint

        play = play_entrypoint(run, make_agent, settings)
    else:
        build = make_agent.build if isinstance(make_agent, AgentTarget) else make_agent
        try:
            agent = build(scenario)
        except ScenarioError:
            raise
        except Exception as e:
            # a bug in the user's agent factory: show their frames, not the event loop's
            from .drivers.entrypoint import describe_exception, user_traceback

            frames = user_traceback(e)
            raise run.fail(
                f"building the agent failed: {describe_exception(e)}"
                + (f"\n{frames}" if frames else ""),
                scenario.config.agent_line or scenario.line,
            ) from None
        play = run.play(agent, settings)
    # -- end of entrypoint mode hook
    backoff = no_backoff() if not settings.real_timing else _null_context()
    failed = True
    try:
        with backoff:
            try:
                await asyncio.wait_for(play, timeout=settings.timeout)
            except asyncio.TimeoutError:
                for call in sim.pending_tool_calls():
                    sim._note("note", f"tool call still running: {call}")
                raise run.fail(
                    f"the scenario did not finish within {settings.timeout:g}s (agentsim.timeout)",
                    sim._current_line,
                ) from None
            failed = False
    finally:
        # a failed or hung scenario is over: don't wait for livekit's graceful drain of
        # speech that may never finish
        await sim.aclose(timeout=0.2 if failed else 5.0)
    history = sim.history if settings.keep_history and sim.started else None
    return ScenarioRun(sim=sim, timeline=sim.timeline, history=history)


class _null_context:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
