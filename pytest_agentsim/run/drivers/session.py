"""The in-process driver: an ``AgentSession`` built by the plugin around the user's agent.

Turns are played with ``session.run()`` (user turns) or ``session.say()``/
``generate_reply()`` (agent-initiated ones); the models are the fakes (or, with the
gateway transport, the real ``inference.LLM`` answered by the fake gateway).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from livekit.agents import Agent

from ...errors import AgentSimAssertionError, ScenarioError
from ...fakes.session import SESSION_CLASS
from ...load.model import Scenario, Timing, ToolMock, Turn
from ...observe.frames import describe_exception, user_traceback
from ..harness import AgentSim
from ..outcome import StepFailed, TurnOutcome
from ..settings import RunSettings
from .base import Driver
from .tools import shared_tool_mocks, turn_tool_mocks

__all__ = ["CLOSE_GRACE", "SessionDriver"]

CLOSE_GRACE = 1.0
"""How long after a turn a `closed:` expectation waits for the session to close (the fakes
are instant, so a close that is coming arrives within loop turns; the bound only costs
time when the agent never closes, which fails anyway)."""


class SessionDriver(Driver):
    """An ``Agent`` (built by ``make_agent``) in a session on ``sim``'s fakes."""

    mode_name: ClassVar[str] = "in-process"

    def __init__(
        self,
        sim: AgentSim,
        scenario: Scenario,
        settings: RunSettings,
        make_agent: Callable[[Scenario], tuple[Agent, dict[str, Any]]] | None = None,
    ) -> None:
        self.sim = sim
        self.rec = sim
        self.scripts = sim.scripts
        self.scenario = scenario
        self.settings = settings
        self.make_agent = make_agent
        # a turn that barges in needs the agent's audio to take time to play
        sim.clocked_playout = any(t.interrupt is not None for t in scenario.config.turns or ())
        self.timing = scenario.config.timing or Timing()
        self.held = contextlib.ExitStack()  # what lives as long as the session (aclose ends it)
        if settings.mode == "audio":
            sim.speak_turns()  # the user's turns are speech, where the session has an STT

    def hold_tool_mocks(self) -> None:
        """Spoken turns run in livekit's tasks, not the player's: so do their tool mocks
        (entered in the player's task, which :meth:`aclose` runs in too)."""
        if self.sim.voiced is not None:
            self.held.enter_context(shared_tool_mocks())

    async def start(self) -> None:
        self.hold_tool_mocks()
        assert self.make_agent is not None
        try:
            agent, session_kwargs = self.make_agent(self.scenario)
        except ScenarioError:
            raise
        except Exception as e:
            # a bug in the user's agent factory: show their frames, not the event loop's
            frames = user_traceback(e)
            raise StepFailed(
                f"building the agent failed: {describe_exception(e)}"
                + (f"\n{frames}" if frames else ""),
                line=self.scenario.config.agent_line or self.scenario.line,
            ) from None
        accepted = inspect.signature(SESSION_CLASS.__init__).parameters
        open_ended = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
        unknown = [] if open_ended else [k for k in session_kwargs if k not in accepted]
        if unknown:
            raise ScenarioError(
                f"this livekit-agents session takes no {', '.join(map(repr, unknown))} "
                "(state and deps are livekit-agents 2 session arguments)",
                path=self.scenario.path,
                line=self.scenario.config.session_line or self.scenario.line,
                fix="on livekit-agents 1.x give the tools their data as `session: {userdata: "
                "...}` (ctx.userdata)",
            )
        await self.sim.start(agent, mode=self.settings.mode, **session_kwargs)

    async def greeting(self) -> None:
        # sim.start() already waited for what the session's start set going (on_enter)
        await self.sim.wait_quiet()

    async def play(self, turn: Turn) -> None:
        sim = self.sim
        try:
            if turn.user is not None and self.speaks():
                await sim.speak(turn.user, *self.timing.speech(turn.user))
            elif turn.user is not None:
                await sim.run(turn.user)
            elif turn.silence is not None:
                await sim.silence(turn.silence)
            elif turn.noise is not None:
                if not self.speaks():
                    raise StepFailed(
                        f"{turn.label}: `noise` is heard by the session's VAD and STT, and "
                        "this session hears no audio (`mode: audio` and an STT are needed)",
                        line=turn.line,
                    )
                await sim.noise(turn.noise)
            elif turn.say is not None:
                await sim.say(turn.say)
            else:
                await sim.generate_reply(turn.generate_reply)
        except AgentSimAssertionError as e:
            raise StepFailed(str(e).split("\n\n", 1)[0], line=turn.line) from None

    def speaks(self) -> bool:
        """User turns are speech: audio mode, and the agent has an STT to hear them with
        (without one, as at the console, the user types)."""
        voiced = self.sim.voiced
        return voiced is not None and voiced.hears(self.sim.session)

    async def barge_in(self, by: Turn) -> bool:
        if by.noise is not None and self.speaks():
            return self.sim.barge_in_speaking("", by.noise, 0.0)
        if by.user is not None and self.speaks():
            return self.sim.barge_in_speaking(by.user, *self.timing.speech(by.user))
        return await self.sim.barge_in()

    @contextlib.contextmanager
    def tool_mocks(self, mocks: tuple[ToolMock, ...]) -> Iterator[None]:
        with turn_tool_mocks(self.sim.session, mocks):
            yield

    async def settle(self, *, spoken: int, close: bool) -> None:
        sim = self.sim
        if close and not sim.closed:
            await sim.wait_closed(timeout=min(sim.timeout, CLOSE_GRACE))

    async def aclose(self, *, failed: bool) -> None:
        # a failed or hung scenario is over: don't wait for livekit's graceful drain of
        # speech that may never finish
        try:
            await self.sim.aclose(timeout=0.2 if failed else 5.0)
        finally:
            self.held.close()

    def turn_outcome(self) -> TurnOutcome:
        derived = super().turn_outcome()
        result: Any = self.sim.results[-1] if self.sim.results else None
        if result is None or not hasattr(type(result), "input_required"):
            return derived  # livekit 1.x: the reply's text is the output
        try:
            output = result.output
        except RuntimeError:  # the run failed: no output
            output = None
        # livekit 2.0.0b1 sets RunResult.input_required for Agent.run() only; a live turn
        # that waits on a question shows it in the tool's output
        waiting = result.input_required or derived.input_required
        return TurnOutcome(output=output, input_required=waiting)

    def history(self) -> list[dict[str, Any]] | None:
        return self.sim.history if self.sim.started else None

    def pending(self) -> list[str]:
        return self.sim.pending_tool_calls()
