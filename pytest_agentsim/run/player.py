"""The turn player: a scripted scenario, step by step, the same in every mode.

For each turn the player queues the turn's model answers and faults (on the fakes or the
fake gateway, :class:`~pytest_agentsim.run.scripts.Scripts`), has the mode's driver play
the turn, lets the agent go quiet, then checks ``expect``, ``spoken`` and ``closed``
(:mod:`pytest_agentsim.run.checks`). Scripted answers left over fail the scenario. Any
failure is a :class:`~pytest_agentsim.errors.ScenarioFailure` with the transcript, the
failing step marked and its YAML line.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from ..errors import ScenarioError, ScenarioFailure
from ..faults import Fault
from ..load.model import Judge, Scenario, Turn
from ..observe.record import Recorder
from ..observe.timeline import TimelineEntry
from .checks import check_closed, check_expect, check_spoken
from .drivers.base import Driver
from .outcome import StepFailed, location, scenario_failure
from .settings import RunSettings

__all__ = ["ScenarioRun", "TurnPlayer"]


@dataclasses.dataclass
class ScenarioRun:
    """What happened, for reports and snapshots."""

    rec: Recorder
    timeline: list[TimelineEntry]
    history: list[dict[str, Any]] | None = None  # only kept when settings.keep_history
    blocked: list[str] = dataclasses.field(default_factory=list)  # hosts a child tried
    figures: dict[str, Any] = dataclasses.field(default_factory=dict)  # mode-specific


class TurnPlayer:
    """Plays ``scenario``'s turns through ``driver`` and checks each one."""

    def __init__(
        self,
        scenario: Scenario,
        driver: Driver,
        settings: RunSettings,
        *,
        judge: Judge | None = None,
    ) -> None:
        if scenario.config.turns is None:
            raise ScenarioError(
                "scenario has no agentsim.turns", path=scenario.path, line=scenario.line
            )
        self.scenario = scenario
        self.driver = driver
        self.settings = settings
        self.judge = judge
        self.rec = driver.rec
        self.answer_lines: dict[int, int | None] = {}  # id(answer or fault) -> YAML line
        self.unscripted_seen = 0

    # -- failures ----------------------------------------------------------------------
    def fail(
        self, reason: str, line: int | None, *, mark: TimelineEntry | None = None
    ) -> ScenarioFailure:
        return scenario_failure(self.rec, self.scenario, reason, line, mark=mark)

    # -- the run -------------------------------------------------------------------------
    async def run(self) -> ScenarioRun:
        """Play the scenario; raises ScenarioFailure (or ScenarioError) on failure."""
        try:
            try:
                if self.driver.bounded():
                    await self._bounded(self._play())
                else:
                    await self._play()
            except StepFailed as e:
                raise self.fail(e.reason, e.line or self.scenario.line, mark=e.entry) from None
        except ScenarioFailure as e:
            raise self.driver.annotate(e) from None
        history = self.driver.history() if self.settings.keep_history else None
        return ScenarioRun(
            rec=self.rec,
            timeline=self.rec.timeline,
            history=history,
            blocked=self.driver.blocked_hosts(),
            figures=self.driver.figures(),
        )

    async def _bounded(self, play: Any) -> None:
        timeout = self.settings.timeout
        try:
            await asyncio.wait_for(play, timeout=timeout)
        except asyncio.TimeoutError:
            for call in self.driver.pending():
                self.rec.note("note", f"tool call still running: {call}")
            raise self.fail(
                f"the scenario did not finish within {timeout:g}s (agentsim.timeout)",
                self.rec.line,
            ) from None

    async def _play(self) -> None:
        # one task from start to close: a driver may set context variables at start
        # (livekit's job context) that only the same context can reset
        failed = True
        try:
            problem = self.driver.unsupported(self.scenario)
            if problem is not None:
                raise problem
            self.queue_scenario_faults()
            await self.driver.start()
            await self.driver.within(self._turns())
            failed = False
        finally:
            await self.driver.aclose(failed=failed)

    async def _turns(self) -> None:
        for turn in self.scenario.config.turns or ():
            await self.play_turn(turn)
        if not self.settings.allow_unused:
            self.check_unused()
        await self.driver.finish()

    # -- scripting -----------------------------------------------------------------------
    def queue_scenario_faults(self) -> None:
        for sf in self.scenario.config.faults:
            self.driver.scripts.of(sf.resource).add_fault(sf.fault)
            self.answer_lines[id(sf.fault)] = sf.line

    def queue_turn(self, turn: Turn) -> None:
        scripts = self.driver.scripts
        for step in turn.llm:
            if step.fault is not None:
                scripts.llm.add_fault(step.fault)
                self.answer_lines[id(step.fault)] = step.line
            elif step.answer is not None:
                scripts.llm.add(step.answer)
                self.answer_lines[id(step.answer)] = step.line
        for step in turn.tts:
            if step.fault is not None:
                scripts.tts.add_fault(step.fault)
                self.answer_lines[id(step.fault)] = step.line

    # -- one turn ------------------------------------------------------------------------
    async def play_turn(self, turn: Turn) -> None:
        rec = self.rec
        rec.set_line(turn.line)
        label = f"turn {turn.index + 1}"
        if rec.closed:
            raise StepFailed(
                f"{label} ({turn.describe()}) cannot run: the session already closed",
                line=turn.line,
            )
        self.queue_turn(turn)
        start = len(rec.timeline)
        with self.driver.tool_mocks(turn.tools):
            observed = await self.driver.play(turn)
        must_close = turn.closed is not None and turn.closed.closed
        await self.driver.settle(spoken=len(turn.spoken or ()), close=must_close)
        self.check_unscripted(label, turn.line, start)
        if turn.expect is not None:
            check_expect(label, turn.expect, observed, rec, line=turn.line, judge=self.judge)
        if turn.spoken is not None:
            check_spoken(
                label, turn.spoken, rec, line=turn.line, must_close=must_close, judge=self.judge
            )
        if turn.closed is not None:
            check_closed(label, turn.closed, rec)

    def check_unscripted(self, label: str, line: int | None, start: int) -> None:
        """Model calls the script could not answer fail the step that made them."""
        unscripted = self.driver.scripts.unscripted()[self.unscripted_seen :]
        self.unscripted_seen += len(unscripted)
        if unscripted:
            entry = next(
                (
                    e
                    for e in self.rec.timeline[start:]
                    if e.kind == "error" and "no scripted" in e.text
                ),
                None,
            )
            raise StepFailed(
                f"{label}: the scripted model answers do not fit the calls the agent made: "
                f"{unscripted[0]}",
                line=line,
                entry=entry,
            )

    def check_unused(self) -> None:
        leftovers: list[tuple[str, int | None]] = []
        scripts = self.driver.scripts
        for resource in ("llm", "tts", "stt"):
            for item in scripts.of(resource).unused():
                what = item.describe() if isinstance(item, Fault) else _describe_answer(item)
                leftovers.append((f"{resource}: {what}", self.answer_lines.get(id(item))))
        if leftovers:
            listing = "\n".join(
                f"    {location(self.scenario, line)}: {what}" for what, line in leftovers
            )
            raise StepFailed(
                "scripted model answers were never used (the agent made fewer model calls than "
                f"scripted):\n{listing}\n"
                "  fix: remove them, or set `agentsim: {allow_unused: true}`",
                line=leftovers[0][1],
            )


def _describe_answer(answer: Any) -> str:
    parts = []
    if getattr(answer, "text", None):
        parts.append(f"say {answer.text!r}")
    for call in getattr(answer, "tool_calls", ()) or ():
        parts.append(f"tool_call {call.name}")
    return ", ".join(parts) or repr(answer)
