"""The checks of a scripted step, with their wording: one set for every mode.

A step is a scripted turn or the greeting. Its ``expect`` is matched against the step's
:class:`~pytest_agentsim.observe.events.ObservedEvent` list, ``spoken`` against what
reached the user during the step, ``closed`` against the session's close. A mismatch
raises :class:`~pytest_agentsim.run.outcome.StepFailed` naming the expectation's line and
marking the timeline entry that shows it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from livekit.agents.utils.misc import camel_to_snake_case

from ..load.model import CloseExpectation, EventExpectation, Judge, SpokenExpectation, Turn
from ..observe.events import EVENT_KINDS, ObservedEvent
from ..observe.record import Recorder
from ..observe.timeline import TimelineEntry
from .outcome import StepFailed, TurnOutcome

__all__ = [
    "check_closed",
    "check_expect",
    "check_outcome",
    "check_silent_failures",
    "check_spoken",
    "event_mismatch",
    "handoff_matches",
    "is_subset",
]


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


def handoff_matches(expected: str, got: ObservedEvent) -> bool:
    """``new_agent: X`` names the agent by class name or by id; livekit derives a default
    id from the class name (``GetDOBTask`` -> ``get_dob_task``), so either matches."""
    if expected in (got.new_agent, got.new_agent_id):
        return True
    return got.new_agent_id is not None and camel_to_snake_case(expected) == got.new_agent_id


def event_mismatch(
    exp: EventExpectation, got: ObservedEvent, judge: Judge | None = None
) -> str | None:
    """Why ``got`` does not satisfy ``exp`` (None if it does)."""
    if exp.type != got.type:
        return f"expected {exp.describe()}, got {got.describe()}"
    if exp.type == "message":
        if exp.role and got.role != exp.role:
            return f"expected a {exp.role} message, got {got.describe()}"
        if exp.text and not exp.text.matches(got.text, judge):
            return f"message text does not match {exp.text.describe(judge)}: got {got.text!r}"
        if exp.interrupted is not None and bool(got.interrupted) != exp.interrupted:
            was = "was interrupted" if got.interrupted else "was not interrupted"
            return f"expected interrupted={exp.interrupted}, but the message {was}: {got.text!r}"
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
        if exp.text and not exp.text.matches(got.text, judge):
            return f"tool output does not match {exp.text.describe(judge)}: got {got.text!r}"
    elif exp.type == "agent_handoff" and exp.new_agent and not handoff_matches(exp.new_agent, got):
        return (
            f"expected a handoff to {exp.new_agent}, got a handoff to "
            f"{got.new_agent or got.new_agent_id}"
        )
    return None


def _entry_for(rec: Recorder, ev: ObservedEvent) -> TimelineEntry | None:
    kind = next(k for k, t in EVENT_KINDS.items() if t == ev.type)
    for e in rec.timeline:
        same_turn = e.turn == rec.turn and e.kind == kind
        if same_turn and (ev.name is None or e.detail.get("name") == ev.name):
            return e
    return None


def check_expect(
    label: str,
    expect: Sequence[EventExpectation],
    observed: Sequence[ObservedEvent],
    rec: Recorder,
    *,
    line: int | None,
    judge: Judge | None = None,
) -> dict[str, str]:
    """``expect`` is ordered and exhaustive: every event, in order, nothing more. Returns
    what its ``regex`` matchers' named groups captured."""
    got = "\n".join(f"    {i + 1}. {o.describe()}" for i, o in enumerate(observed)) or "    (none)"
    captured: dict[str, str] = {}
    for i, exp in enumerate(expect):
        if i >= len(observed):
            raise StepFailed(
                f"{label}: expected event {i + 1} ({exp.describe()}) "
                f"but the turn produced only {len(observed)} event(s):\n{got}",
                line=exp.line,
            )
        why = event_mismatch(exp, observed[i], judge)
        if why:
            raise StepFailed(
                f"{label}, event {i + 1}: {why}\n  events were:\n{got}",
                line=exp.line,
                entry=_entry_for(rec, observed[i]),
            )
        if exp.text is not None:
            captured.update(exp.text.captures(observed[i].text))
    if len(observed) > len(expect):
        extra = observed[len(expect)]
        raise StepFailed(
            f"{label}: unexpected extra event {len(expect) + 1}: "
            f"{extra.describe()} (expect lists every event, in order)\n"
            f"  events were:\n{got}",
            line=line,
            entry=_entry_for(rec, extra),
        )
    return captured


def check_silent_failures(
    label: str, observed: Sequence[ObservedEvent], rec: Recorder, *, line: int | None
) -> None:
    """A step without ``expect`` still fails when a tool failed: nothing said it may."""
    for ev in observed:
        if ev.type == "function_call_output" and ev.is_error:
            cause = next(
                (
                    e
                    for e in reversed(rec.timeline)
                    if e.turn == rec.turn and e.kind == "error" and e.detail.get("tool") == ev.name
                ),
                None,
            )
            why = f"\n  {cause.text}" if cause is not None else ""
            fix = (
                cause.detail.get("fix")
                if cause is not None and cause.detail.get("fix")
                else "list the step's events in `expect` (a failing tool is "
                "`function_call_output: {is_error: true}`), or fix the tool"
            )
            raise StepFailed(
                f"{label}: the tool {ev.name!r} failed ({ev.text!r}) and the step has no "
                f"`expect` saying it may{why}\n  fix: {fix}",
                line=line,
                entry=_entry_for(rec, ev),
            )


def check_spoken(
    label: str,
    expected: Sequence[SpokenExpectation],
    rec: Recorder,
    *,
    line: int | None,
    must_close: bool,
    judge: Judge | None = None,
) -> None:
    """What reached the user during the step: ordered and exhaustive; ``[]`` is silence.
    When the step must also close the session, what it expects must be heard before."""
    entries = [e for e in rec.timeline if e.kind == "spoken" and e.turn == rec.turn]
    texts = [rec.spoken[e.detail["index"]] for e in entries]
    listing = (
        "\n".join(f"    {i + 1}. [{s.source}] {s.text!r}" for i, s in enumerate(texts))
        or "    (nothing)"
    )
    if not expected and texts:
        raise StepFailed(
            f"{label}: expected silence, but the user heard:\n{listing}",
            line=line,
            entry=entries[0],
        )
    for i, exp in enumerate(expected):
        if i >= len(texts):
            raise StepFailed(
                f"{label}: expected {exp.text.describe(judge)} to be spoken "
                f"(spoken item {i + 1}), the user heard only:\n{listing}",
                line=exp.line,
            )
        s = texts[i]
        if (
            not exp.text.matches(s.text, judge)
            or (exp.source and s.source != exp.source)
            or (exp.interrupted is not None and s.interrupted != exp.interrupted)
        ):
            src = f" from {exp.source}" if exp.source else ""
            if exp.interrupted is not None:
                src += " (interrupted)" if exp.interrupted else " (heard in full)"
            raise StepFailed(
                f"{label}, spoken item {i + 1}: expected "
                f"{exp.text.describe(judge)}{src}, got [{s.source}] {s.text!r}\n"
                f"  the user heard:\n{listing}",
                line=exp.line,
                entry=entries[i],
            )
    if len(texts) > len(expected) and expected:
        raise StepFailed(
            f"{label}: the user heard more than `spoken` lists "
            f"(it lists every item, in order):\n{listing}",
            line=line,
            entry=entries[len(expected)],
        )
    if expected and must_close:
        # the fallback check: speech the step expects must reach the user before the
        # session closes, or the caller never hears it
        close_at = rec.close_index if rec.close_index is not None else len(rec.timeline)
        for exp, entry in zip(expected, entries, strict=False):
            if rec.timeline.index(entry) > close_at:
                raise StepFailed(
                    f"{label}: {exp.text.describe(judge)} was spoken only after "
                    "the session closed: the user never heard it",
                    line=exp.line,
                    entry=entry,
                )


def check_closed(label: str, exp: CloseExpectation, rec: Recorder) -> None:
    """``closed: true/{reason}`` (closed during the step) or ``closed: false`` (still open)."""
    actual = rec.close_reason()
    if not exp.closed:
        if actual is not None:
            raise StepFailed(f"{label}: the session closed but must stay open", line=exp.line)
        return
    if actual is None:
        raise StepFailed(
            f"{label}: the session must close in this turn, but it is still open", line=exp.line
        )
    if exp.reason and actual != exp.reason:
        close_entry = next((e for e in reversed(rec.timeline) if e.kind == "close"), None)
        raise StepFailed(
            f"{label}: the session closed with reason={actual!r}, expected reason={exp.reason!r}",
            line=exp.line,
            entry=close_entry,
        )


def check_outcome(step: Turn, outcome: TurnOutcome, rec: Recorder) -> None:
    """``output:`` and ``input_required:`` against the turn's ``RunResult``."""
    if step.output is not None:
        value = outcome.output
        text = value if isinstance(value, str) or value is None else _shown(value)
        if not step.output.matches(text):
            raise StepFailed(
                f"{step.label}: the run's output does not match {step.output.describe()}: "
                f"got {text!r}",
                line=step.output.line,
            )
    exp = step.input_required
    if exp is None:
        return
    if outcome.no_input_required is not None:
        raise StepFailed(
            f"{step.label}: `input_required` cannot be checked: {outcome.no_input_required}\n"
            "  fix: remove `input_required` (a tool's InputRequired is livekit-agents 2)",
            line=exp.line,
        )
    if outcome.input_required is None:
        raise StepFailed(
            f"{step.label}: the run waits on no question (input_required is None), expected "
            f"one matching {exp.describe()}",
            line=exp.line,
        )
    if not exp.matches(outcome.input_required):
        raise StepFailed(
            f"{step.label}: the question the run waits on does not match {exp.describe()}: "
            f"got {outcome.input_required!r}",
            line=exp.line,
        )


def _shown(value: Any) -> str:
    """A typed output as the model would have written it (JSON where it can be)."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        value = dump(mode="json")
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)
