"""How a scenario fails: a step says why (:class:`StepFailed`), the scenario reports it.

Drivers and checks raise :class:`StepFailed` with the reason and, when they know it, the
YAML line and the timeline entry to mark; :func:`scenario_failure` turns that into the
:class:`~pytest_agentsim.errors.ScenarioFailure` users read (reason, ``file:line``, the
transcript with the failing step marked).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import ScenarioFailure
from ..load.model import Scenario
from ..observe.record import Recorder
from ..observe.timeline import TimelineEntry, render_transcript

__all__ = ["StepFailed", "TurnOutcome", "location", "scenario_failure", "vetoed"]


class StepFailed(Exception):
    """A step of a scenario failed: ``reason`` (readable), where (``line``), and which
    timeline entry shows it (``entry``; default: the last thing that happened)."""

    def __init__(
        self, reason: str, *, line: int | None = None, entry: TimelineEntry | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.entry = entry


@dataclasses.dataclass(frozen=True)
class TurnOutcome:
    """What a user turn's ``RunResult`` says beyond its events: ``output`` (livekit 2's
    ``RunResult.output``; the last assistant message's text on 1.x, as 2.x derives it for
    a live run) and the question it waits on (``input_required``). ``no_input_required``
    says why the latter cannot be read here (a 1.x run has none)."""

    output: Any
    input_required: str | None = None
    no_input_required: str | None = None


def location(scenario: Scenario, line: int | None) -> str:
    return f"{scenario.path.name}:{line}" if line else scenario.path.name


def scenario_failure(
    rec: Recorder,
    scenario: Scenario,
    reason: str,
    line: int | None,
    *,
    mark: TimelineEntry | None = None,
) -> ScenarioFailure:
    """The failure users read, with ``mark`` (or the last entry) marked in the transcript."""
    if mark is not None:
        mark.failed = True
    elif rec.timeline:
        rec.timeline[-1].failed = True
    where = location(scenario, line)
    return ScenarioFailure(
        reason,
        location=where,
        transcript=render_transcript(rec.timeline, failing=reason, failing_line=where),
        timeline=rec.timeline,
    )


def vetoed(rec: Recorder, reason: str, *, who: str = "on_simulation_end") -> StepFailed:
    """``ctx.fail(reason)`` in ``on_simulation_end`` (or elsewhere in the agent): the
    scenario fails with that reason, in every mode alike."""
    reason = reason or "(no reason given)"
    first = reason.splitlines()[0] if reason.strip() else reason
    more = " …" if first != reason else ""
    entry = rec.note("note", f"ctx.fail({first!r}{more})", failed=True)
    return StepFailed(
        f"{who} failed the simulation (SimulationContext.fail): {reason}", entry=entry
    )
