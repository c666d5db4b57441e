"""Repeated simulated scenarios, passed on a pass rate.

Against the real models an LLM user and an LLM judge vary from run to run, so in runs
that record, ``--agentsim-repeat N`` plays a simulated scenario (or a scripted one with
``judge`` matchers) N times and passes it when at least ``--agentsim-pass-rate`` of the
attempts passed (replays are deterministic: they run once). One attempt's recording is
kept: the first that passed when the scenario passes, else the last failing one that got
to its end, so its replay gives the same verdict. The rate is a junitxml property
(``pass_rate``: ``"4/5"``) and a terminal summary section.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from ..errors import ScenarioFailure
from .reporting import reported_property

if TYPE_CHECKING:
    from ..run.api import Cassette, ScenarioRun, Verdict

__all__ = ["PASS_RATE_PROPERTY", "Attempt", "pass_rate_summary", "play_repeated"]

PASS_RATE_PROPERTY = "pass_rate"


@dataclasses.dataclass
class Attempt:
    cassette: Cassette
    run: ScenarioRun | None = None
    verdict: Verdict | None = None
    failure: ScenarioFailure | None = None


def play_repeated(
    item: pytest.Item,
    times: int,
    required: float,
    open_cassette: Callable[[], Cassette],
    play: Callable[[Cassette], tuple[ScenarioRun, Verdict | None]],
) -> Attempt:
    """Play ``times`` attempts (each with a fresh cassette, not saved by ``play``); the
    attempt that stands for the scenario, or ScenarioFailure when too few passed."""
    __tracebackhide__ = True
    from ..run.api import save_cassette

    attempts = []
    for _ in range(times):
        attempt = Attempt(open_cassette())
        try:
            attempt.run, attempt.verdict = play(attempt.cassette)
        except ScenarioFailure as e:
            attempt.failure = e
        attempts.append(attempt)
    passed = [a for a in attempts if a.failure is None]
    item.user_properties.append((PASS_RATE_PROPERTY, f"{len(passed)}/{times}"))
    if passed and len(passed) >= required * times - 1e-9:
        save_cassette(passed[0].cassette)
        return passed[0]
    failed = [a for a in attempts if a.failure is not None]
    complete = [a for a in failed if a.cassette.complete]
    if complete:
        save_cassette(complete[-1].cassette)
    lines = [
        f"  attempt {i}: "
        + ("passed" if a.failure is None else a.failure.reason.partition("\n")[0])
        for i, a in enumerate(attempts, 1)
    ]
    last = failed[-1].failure
    assert last is not None
    raise ScenarioFailure(
        f"passed {len(passed)} of {times} attempts ({len(passed) / times:.0%}), below the "
        f"pass rate {required:.0%} (--agentsim-pass-rate)\n" + "\n".join(lines),
        location=last.location,
        transcript=last.transcript,
        timeline=last.timeline,
    )


def pass_rate_summary(terminalreporter: Any) -> None:
    """The terminal summary section of repeated scenarios' pass rates."""
    lines = []
    for nodeid, value in reported_property(terminalreporter, PASS_RATE_PROPERTY):
        k, n = (int(x) for x in str(value).split("/"))
        lines.append(f"{nodeid}: {k} of {n} attempts passed ({k / n:.0%})")
    if lines:
        terminalreporter.write_sep("=", "agentsim: pass rates")
        for line in lines:
            terminalreporter.write_line(line)
