"""The turn player: a scripted scenario, step by step, the same in every mode.

The steps are the greeting (turn 0: what the agent does on its own after
``session.start()``), the scripted turns, and the end of the call (``on_simulation_end``,
then the job's shutdown, where ``on_session_end`` may build models of its own). For each
step the player queues its model answers and faults (on the fakes or the fake gateway,
:class:`~pytest_agentsim.run.scripts.Scripts`), has the mode's driver play it until the
agent is quiet, then checks it (:mod:`pytest_agentsim.run.checks`). Every failure is a
:class:`~pytest_agentsim.errors.ScenarioFailure` with the transcript, the failing step
marked and its YAML line.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from ..answers import LLMAnswer
from ..errors import ScenarioError, ScenarioFailure
from ..load.model import Judge, ModelStep, Scenario, Timing, Turn
from ..observe.record import Recorder
from ..observe.timeline import TimelineEntry
from . import contain
from .captures import MissingCapture, substitute
from .checks import (
    check_closed,
    check_expect,
    check_outcome,
    check_silent_failures,
    check_spoken,
)
from .drivers.base import Driver
from .metrics import TurnTiming, job_metrics
from .outcome import StepFailed, scenario_failure
from .scripts import Scripts
from .settings import RunSettings
from .unused import ScriptedLines, check_tool_names, unused_failure
from .voice import check_within, play_barged, turn_timing

__all__ = ["ScenarioRun", "TurnPlayer"]


@dataclasses.dataclass
class ScenarioRun:
    """What happened, for reports and snapshots."""

    rec: Recorder
    timeline: list[TimelineEntry]
    history: list[dict[str, Any]] | None = None  # only kept when settings.keep_history
    blocked: list[str] = dataclasses.field(default_factory=list)  # hosts a child tried
    figures: dict[str, Any] = dataclasses.field(default_factory=dict)  # mode-specific
    metrics: dict[str, Any] | None = None  # JobMetrics protojson (run/metrics.py)


class TurnPlayer:
    """Plays ``scenario``'s steps through ``driver`` and checks each one."""

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
        self.lines = ScriptedLines()  # YAML line of every queued answer and fault
        self.unscripted_seen = 0
        self.served_seen = 0
        self.greeting_used = 0  # answers of turn 1 the greeting took (no greeting block)
        self.captured: dict[str, str] = {}  # regex named groups, for ${name} in answers
        self.crashes_seen = 0
        self.timings: list[TurnTiming] = []  # per user turn, for the metrics
        self.t0 = 0.0
        self.agent_ended = False

    # -- failures ----------------------------------------------------------------------
    def fail(
        self, reason: str, line: int | None, *, mark: TimelineEntry | None = None
    ) -> ScenarioFailure:
        return scenario_failure(self.rec, self.scenario, reason, line, mark=mark)

    # -- the run -------------------------------------------------------------------------
    async def run(self) -> ScenarioRun:
        """Play the scenario; raises ScenarioFailure (or ScenarioError) on failure."""
        contain.on_failure(lambda reason: self.fail(reason, self.rec.line))
        self.t0 = asyncio.get_running_loop().time()
        try:
            try:
                if self.driver.bounded():
                    await self._bounded(self._play())
                else:
                    await self._play()
            except StepFailed as e:
                raise self.fail(e.reason, e.line or self.scenario.line, mark=e.entry) from None
        except ScenarioFailure as e:
            failure = self.driver.annotate(e)
            failure.metrics = self.metrics()
            raise failure from None
        history = self.driver.history() if self.settings.keep_history else None
        return ScenarioRun(
            rec=self.rec,
            timeline=self.rec.timeline,
            history=history,
            blocked=self.driver.blocked_hosts(),
            figures=self.driver.figures(),
            metrics=self.metrics(),
        )

    def metrics(self) -> dict[str, Any] | None:
        """The run's JobMetrics, where the mode sees when the agent speaks."""
        if not self.driver.sees_speech:
            return None
        timing = self.scenario.config.timing or Timing()
        return job_metrics(
            self.timings,
            t0=self.t0,
            audio=self.settings.mode == "audio",
            llm_ttft=timing.llm_ttft,
            tts_ttfb=timing.tts_ttfb,
            agent_ended=self.agent_ended,
            false_interruptions=self.rec.false_interruptions,
        )

    async def _bounded(self, play: Any) -> None:
        timeout = self.settings.timeout
        # the user's scripted silences and pauses are not the agent's time
        scripted = sum(
            (t.silence or 0) + (t.pause or 0) + (t.noise or 0)
            for t in self.scenario.config.turns or ()
        )
        try:
            await asyncio.wait_for(play, timeout=timeout + scripted)
        except asyncio.TimeoutError:
            for call in self.driver.pending():
                self.rec.note("note", f"tool call still running: {call}")
            plus = f", plus {scripted:g}s of the user's scripted silence" if scripted else ""
            raise self.fail(
                f"the scenario did not finish within {timeout:g}s (agentsim.timeout{plus})",
                self.rec.line,
            ) from None

    async def _play(self) -> None:
        # one task from start to close: a driver may set context variables at start
        # (livekit's job context) that only the same context can reset
        failed = True
        cfg = self.scenario.config
        turns = cfg.turns or ()
        try:
            problem = self.driver.unsupported(self.scenario)
            if problem is not None:
                raise problem
            self._check_session_end_applies()
            self.queue_scenario_faults()
            timing = cfg.timing
            if timing is not None and timing.tts_ttfb is not None:
                self.driver.scripts.set_tts_ttfb(timing.tts_ttfb)
            # the greeting's model calls come during start: its answers are queued first;
            # without a greeting block, turn 1's first answers serve them (SPEC §9)
            first = cfg.greeting or (turns[0] if turns else None)
            if first is not None:
                self.queue(first)
            self.rec.set_line(cfg.greeting.line if cfg.greeting else self.scenario.line)
            if turns and turns[0].interrupt is not None:  # the caller talks over the greeting
                await play_barged(
                    self.driver,
                    self.rec,
                    self.settings.mode,
                    self._start_and_greet(),
                    "the greeting",
                    turns[0],
                    spoke=0,
                )
            else:
                await self.driver.start()
            try:
                await self.driver.within(self._steps(first))
            except StepFailed as e:
                # mark what had happened when the step failed, not what the close adds
                if e.entry is None and self.rec.timeline:
                    e.entry = self.rec.timeline[-1]
                raise
            failed = False
        finally:
            # on_session_end runs as the job closes, whether or not the steps passed:
            # its models get their answers either way (no noise after a failed step)
            self.queue_session_end()
            await self.driver.aclose(failed=failed)
        self.check_session_end()

    async def _start_and_greet(self) -> None:
        # the greeting begins while the session starts (and start() may await it)
        await self.driver.start()
        await self.driver.within(self.driver.greeting())

    async def _steps(self, queued: Turn | None) -> None:
        cfg = self.scenario.config
        turns = cfg.turns or ()
        await self.play_greeting(cfg.greeting)
        for turn, after in zip(turns, [*turns[1:], None], strict=True):
            barge = after if after is not None and after.interrupt is not None else None
            await self.play_turn(turn, queue=turn is not queued, barged_by=barge)
        self.agent_ended = self.rec.closed
        if not self.settings.allow_unused:
            self.check_unused()
        await self.driver.finish()

    # -- scripting -----------------------------------------------------------------------
    def queue_scenario_faults(self) -> None:
        for sf in self.scenario.config.faults:
            self.driver.scripts.of(sf.resource).add_fault(sf.fault)
            self.lines.add(sf.fault, sf.line, "faults")

    def queue(self, turn: Turn) -> None:
        scripts = self.driver.scripts
        self._queue_steps(scripts, turn.llm, "llm", turn.label)
        self._queue_steps(scripts, turn.tts, "tts", turn.label)

    def _queue_steps(
        self, scripts: Scripts, steps: tuple[ModelStep, ...], resource: str, where: str
    ) -> None:
        script = scripts.of(resource)
        for step in steps:
            if step.fault is not None:
                script.add_fault(step.fault)
                self.lines.add(step.fault, step.line, where)
            elif step.answer is not None:
                try:
                    answer = substitute(step.answer, self.captured)
                except MissingCapture as e:
                    raise StepFailed(
                        f"{where}: ${{{e.name}}} names nothing captured so far\n  fix: capture "
                        f"it in an earlier step with a named group, e.g. "
                        f"`function_call_output: {{regex: 'code (?P<{e.name}>\\S+)'}}` (or "
                        f"write $${{{e.name}}} for the literal text)",
                        line=step.line,
                    ) from None
                timing = self.scenario.config.timing
                if timing is not None and isinstance(answer, LLMAnswer):
                    answer = timing.delayed(answer)
                script.add(answer)
                self.lines.add(answer, step.line, where)

    # -- steps ---------------------------------------------------------------------------
    async def play_greeting(self, greeting: Turn | None) -> None:
        await self.driver.greeting()
        must_close = greeting is not None and greeting.closed is not None and greeting.closed.closed
        await self.driver.settle(
            spoken=len(greeting.spoken or ()) if greeting else 0, close=must_close
        )
        if greeting is None:
            self.check_crashes("the greeting", self.scenario.line)
            self.check_unscripted(
                "before turn 1",
                self.scenario.line,
                fix="the agent speaks first (a greeting: generate_reply() in on_enter or in the "
                "entrypoint): script those model calls in `agentsim: {greeting: {llm: [...]}}` "
                "(or put their answers first in turn 1's llm:)",
            )
            self.check_tool_names()
            # turn 1's first answers served the greeting: say so if turn 1 runs short
            self.greeting_used = self.served_seen
            return
        self.check_step(greeting)

    async def play_turn(
        self, turn: Turn, *, queue: bool = True, barged_by: Turn | None = None
    ) -> None:
        rec = self.rec
        rec.set_line(turn.line)
        if rec.closed:
            raise StepFailed(
                f"{turn.label} ({turn.describe()}) cannot run: the session already closed",
                line=turn.line,
            )
        if queue:
            self.queue(turn)
        if turn.pause is not None:  # the caller takes a moment before answering
            rec.note("note", f"the user waits {turn.pause:g} s")
            await asyncio.sleep(turn.pause)
        asked_at, spoke = asyncio.get_running_loop().time(), len(rec.speaking_at)
        rec.user_spoke = None
        with self.driver.tool_mocks(turn.tools):
            if barged_by is None:
                await self.driver.play(turn)
            else:
                await play_barged(
                    self.driver,
                    rec,
                    self.settings.mode,
                    self.driver.play(turn),
                    turn.label,
                    barged_by,
                )
        must_close = turn.closed is not None and turn.closed.closed
        await self.driver.settle(spoken=len(turn.spoken or ()), close=must_close)
        began = asked_at
        if rec.user_spoke is not None:  # a spoken turn: the user's turn ends with its speech
            began, asked_at = rec.user_spoke
            spoke += sum(1 for t in rec.speaking_at[spoke:] if t < asked_at)
        if turn.user is not None:
            timing = self.scenario.config.timing
            self.timings.append(
                turn_timing(rec, timing, turn, asked_at, rec.speaking_at[spoke:], began=began)
            )
        if turn.within is not None:
            check_within(rec, turn, turn.within, rec.speaking_at[spoke:], asked_at)
        self.check_step(turn)

    def check_crashes(self, label: str, line: int | None) -> None:
        """An agent hook that raised during the step (livekit only logs it)."""
        crashes = self.rec.crashes[self.crashes_seen :]
        self.crashes_seen = len(self.rec.crashes)
        if crashes:
            raise StepFailed(
                f"{label}: the agent's {crashes[0].text}\n  (livekit only logs this: the "
                "agent never says what on_enter was to say)",
                line=line,
                entry=crashes[0],
            )

    def check_step(self, step: Turn) -> None:
        rec = self.rec
        self.check_crashes(step.label, step.line)
        fix = None
        if step.index == 0 and self.greeting_used:
            fix = (
                f"the agent's greeting (before turn 1) took the first {self.greeting_used} of "
                "turn 1's llm answers: script it in `agentsim: {greeting: {llm: [...]}}` and "
                "keep turn 1's answers for turn 1"
            )
        self.check_unscripted(step.label, step.line, fix=fix, step_is_greeting=step.is_greeting)
        self.check_tool_names()
        observed = rec.step_events()
        if step.expect is not None:
            self.captured.update(
                check_expect(
                    step.label, step.expect, observed, rec, line=step.line, judge=self.judge
                )
            )
        else:
            check_silent_failures(step.label, observed, rec, line=step.line)
        must_close = step.closed is not None and step.closed.closed
        if step.spoken is not None:
            check_spoken(
                step.label,
                step.spoken,
                rec,
                line=step.line,
                must_close=must_close,
                judge=self.judge,
            )
        if step.closed is not None:
            check_closed(step.label, step.closed, rec)
        if step.output is not None or step.input_required is not None:
            check_outcome(step, self.driver.turn_outcome(), rec)

    def check_unscripted(
        self,
        label: str,
        line: int | None,
        *,
        fix: str | None = None,
        step_is_greeting: bool = False,
    ) -> None:
        """Model calls the script could not answer fail the step that made them."""
        unscripted = self.driver.scripts.unscripted()[self.unscripted_seen :]
        self.unscripted_seen += len(unscripted)
        if not unscripted:
            return
        entry = next(
            (
                e
                for e in reversed(self.rec.timeline)
                if e.kind == "error" and "no scripted" in e.text
            ),
            None,
        )
        missing = [u for u in unscripted if u.startswith("llm call ")]
        if missing:
            reason = f"{label}: the agent made model calls nothing scripted: {', '.join(missing)}"
            fix = fix or (
                "script the greeting's model calls in `greeting: {llm: [...]}`, one answer per call"
                if step_is_greeting
                else "give this step's `llm:` one answer per model call (after tool calls, "
                "the model is called again for the reply)"
            )
        else:
            reason = (
                f"{label}: the scripted model answers do not fit the calls the agent made: "
                f"{unscripted[0]}"
            )
        raise StepFailed(reason + (f"\n  fix: {fix}" if fix else ""), line=line, entry=entry)

    def check_tool_names(self) -> None:
        """A scripted tool call the agent does not offer is a scripting error."""
        served = self.driver.scripts.served()[self.served_seen :]
        self.served_seen += len(served)
        check_tool_names(served, self.lines)

    def check_unused(self) -> None:
        failure = unused_failure(self.driver.scripts, self.lines, self.scenario)
        if failure is not None:
            raise failure

    # -- after the call ------------------------------------------------------------------
    def _check_session_end_applies(self) -> None:
        end = self.scenario.config.session_end
        if end is not None and end.llm and not self.driver.ends_a_job:
            raise ScenarioError(
                "`session_end` scripts the models an AgentServer builds after the call "
                "(on_session_end), but this scenario runs an Agent, which has no job to end",
                path=self.scenario.path,
                line=end.line,
                fix="remove session_end, or point agentsim.agent at the AgentServer",
            )

    def queue_session_end(self) -> None:
        scripts = self.driver.session_end_scripts()
        if scripts is None:
            return
        self.end_unscripted_seen = len(scripts.unscripted())
        llm, end_llm = self.driver.scripts.of("llm"), scripts.of("llm")
        fault = llm.persistent_fault() if end_llm is not llm else None
        if fault is not None:
            # credits gone for good are gone for the models built after the call too (in
            # process mode they share the session's gateway and so its script)
            end_llm.add_fault(dataclasses.replace(fault, on_call=None, times=None))
        end = self.scenario.config.session_end
        if end is not None:
            self._queue_steps(scripts, end.llm, "llm", "session_end")
        self.rec.set_line(end.line if end is not None else self.scenario.line)

    def check_session_end(self) -> None:
        """Models built after the call (``on_session_end``, shutdown callbacks) that found
        nothing scripted, or answers they left unused."""
        scripts = self.driver.session_end_scripts()
        if scripts is None or not hasattr(self, "end_unscripted_seen"):
            return
        end = self.scenario.config.session_end
        line = end.line if end is not None else self.scenario.line
        unscripted = scripts.unscripted()[self.end_unscripted_seen :]
        if unscripted:
            listing = "\n".join(f"    {u}" for u in unscripted)
            raise self.fail(
                f"after the call, on_session_end (or a shutdown callback) made {len(unscripted)} "
                f"model call(s) nothing scripted:\n{listing}\n"
                "  fix: script their answers in `agentsim: {session_end: {llm: [...]}}` (an "
                "evals.JudgeGroup asks each judge once: `- {tool_calls: [{name: submit_verdict, "
                "arguments: {verdict: pass, reasoning: ok}}], times: N}`)",
                line,
            )
        if not self.settings.allow_unused:
            failure = unused_failure(scripts, self.lines, self.scenario, after_call=True)
            if failure is not None:
                raise self.fail(failure.reason, failure.line or line)
