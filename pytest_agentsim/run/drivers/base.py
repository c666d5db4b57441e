"""The driver interface: how one mode gets a turn to the agent and its events back.

The turn player (:mod:`pytest_agentsim.run.player`) owns everything a scenario means:
queueing the scripted answers, the order of steps, the checks and their wording. A driver
owns only the mechanics of its mode (an ``AgentSession`` in this process, an entrypoint in
a fake job, an agent file in a child process over the session protocol).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Awaitable, Iterator
from typing import Any, ClassVar, TypeVar

from livekit.agents.llm import tool_context as _tool_context

from ...errors import ScenarioError, ScenarioFailure
from ...load.model import Scenario, ToolMock, Turn
from ...observe.record import Recorder
from ..outcome import TurnOutcome
from ..scripts import Scripts

__all__ = ["WAITING_PREFIX", "Driver"]

# livekit 2: a tool's InputRequired stands in the call output as this prefix + question
WAITING_PREFIX: str | None = getattr(_tool_context, "WAITING_PREFIX", None)

T = TypeVar("T")


class Driver(abc.ABC):
    """One mode's mechanics. ``rec`` is the conversation's record, ``scripts`` where the
    scenario's model answers go."""

    mode_name: ClassVar[str]
    ends_a_job: ClassVar[bool] = False  # an AgentServer job: on_session_end runs after the call
    sees_speech: ClassVar[bool] = True  # sees when the agent starts speaking (metrics)
    """How failures name the mode (``process mode``...)."""

    rec: Recorder
    scripts: Scripts

    def unsupported(self, scenario: Scenario) -> ScenarioError | None:
        """Why ``scenario`` cannot run in this mode (None: it can)."""
        return None

    @abc.abstractmethod
    async def start(self) -> None:
        """Start the agent; returns when its session is up (a greeting may be under way)."""

    async def within(self, step: Awaitable[T]) -> T:
        """Await ``step`` where the agent's turns run (an entrypoint's session context)."""
        return await step

    async def barge_in(self, by: Turn) -> bool:
        """The user starts speaking over the agent's reply (``interrupt:``, turn ``by``);
        False when the speech does not allow interruptions. Modes that cannot say so in
        ``unsupported``."""
        raise NotImplementedError(f"{self.mode_name} cannot interrupt the agent")

    @abc.abstractmethod
    async def greeting(self) -> None:
        """Wait until what the agent does on its own after ``session.start()`` is done and
        it is quiet (turn 0 of the record)."""

    @abc.abstractmethod
    async def play(self, turn: Turn) -> None:
        """Play one turn until the agent is quiet. The record advances to the turn
        (``rec.turn``), notes its input and everything the session reports."""

    @contextlib.contextmanager
    def tool_mocks(self, mocks: tuple[ToolMock, ...]) -> Iterator[None]:
        """Mock tools for the duration of one turn."""
        yield

    @abc.abstractmethod
    async def settle(self, *, spoken: int, close: bool) -> None:
        """Wait until the agent is quiet after a step (late speech, a close): up to a bound
        when ``spoken`` items or a ``close`` are still expected."""

    def turn_outcome(self) -> TurnOutcome:
        """The last user turn's outcome, from its events (the session protocol carries no
        ``RunResult``): the last assistant message, and the question a tool's
        ``InputRequired`` left the turn waiting on (its output says so: livekit 2)."""
        events = self.rec.step_events()
        said = [e.text for e in events if e.type == "message" and e.text]
        if WAITING_PREFIX is None:
            return TurnOutcome(
                output=said[-1] if said else None,
                no_input_required="this livekit-agents has no InputRequired (livekit 2 does)",
            )
        waiting = [
            e.text.removeprefix(WAITING_PREFIX)
            for e in events
            if e.type == "function_call_output" and e.text and e.text.startswith(WAITING_PREFIX)
        ]
        return TurnOutcome(
            output=said[-1] if said else None, input_required=waiting[-1] if waiting else None
        )

    def session_end_scripts(self) -> Scripts | None:
        """Where answers for models built after the call go (``on_session_end``), once
        started; None when the mode has no job to end (an ``Agent`` target)."""
        return None

    async def finish(self) -> None:
        """After the last turn, as the cloud ends a simulation (``on_simulation_end``)."""
        return None

    @abc.abstractmethod
    async def aclose(self, *, failed: bool) -> None:
        """End the session/job/process (quickly when the scenario already failed)."""

    def history(self) -> list[dict[str, Any]] | None:
        """The normalized chat history (snapshots), if the mode can read it."""
        return None

    def pending(self) -> list[str]:
        """Tool calls still running (named when the scenario times out)."""
        return []

    def bounded(self) -> bool:
        """True when the player bounds the whole run by the scenario timeout; False when
        the driver bounds each step itself (a child process that is slow to start)."""
        return True

    def blocked_hosts(self) -> list[str]:
        """Non-loopback hosts the agent tried to reach where this process's guard cannot
        see it (a child process reports its own)."""
        return []

    def figures(self) -> dict[str, Any]:
        """Mode-specific measurements (a child's start-up time...)."""
        return {}

    def annotate(self, failure: ScenarioFailure) -> ScenarioFailure:
        """Add what only this mode knows to a failure (a child's log)."""
        return failure
