"""Voice-time steps of the turn player: barge-in (``interrupt:``), latency budgets
(``within:``) and the per-turn figures the metrics are made of (SPEC §10)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable

from ..answers import LLMAnswer, TTSAnswer
from ..load.model import Timing, Turn
from ..observe.record import Recorder
from .drivers.base import Driver
from .metrics import TurnTiming
from .outcome import StepFailed

__all__ = ["check_within", "play_barged", "turn_timing"]


async def play_barged(
    driver: Driver,
    rec: Recorder,
    mode: str,
    play_step: Awaitable[None],
    step: str,
    by: Turn,
    *,
    spoke: int | None = None,
) -> None:
    """Plays a step (``turn``, or the greeting) until the agent has spoken ``by.interrupt``
    seconds of it, then the user barges in (``by`` itself plays next, as a user turn).
    ``spoke``: how many times the agent had started speaking before the step began (the
    greeting begins while the session starts)."""
    if by.interrupt is None:
        raise ValueError("play_barged() needs a turn with `interrupt`")
    if mode != "audio":
        if asyncio.iscoroutine(play_step):
            play_step.close()  # never to be played
        raise StepFailed(
            f"{by.label}: `interrupt` needs the agent's speech to take time, which it "
            "does only in `mode: audio` (in text mode a reply arrives at once)",
            line=by.line,
        )
    loop = asyncio.get_running_loop()
    before = len(rec.speaking_at) if spoke is None else spoke
    interrupt = by.interrupt
    barged: list[bool] = []

    async def barge_when_due() -> None:
        while len(rec.speaking_at) == before:
            rec.speaking.clear()
            await rec.speaking.wait()
        await asyncio.sleep(max(rec.speaking_at[before] + interrupt - loop.time(), 0.0))
        rec.note("note", f"the user barges in, {interrupt:g} s into the agent's speech")
        if not await driver.barge_in(by):
            rec.note("note", "the agent's speech does not allow interruptions: it plays on")
        barged.append(True)

    # the step is played in this task (a driver may set context variables in it, as an
    # entrypoint's job context, that only this context can reset); the user waits beside it
    watcher = asyncio.ensure_future(barge_when_due())
    try:
        await play_step
    finally:
        if not watcher.done():
            watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    if barged:
        return
    if len(rec.speaking_at) == before:
        raise StepFailed(
            f"{by.label}: the user was to barge in {interrupt:g} s into the agent's "
            f"reply, but the agent did not speak in {step}",
            line=by.line,
        )
    raise StepFailed(
        f"{by.label}: the user was to barge in {interrupt:g} s into the agent's reply, but "
        f"it had finished speaking after {loop.time() - rec.speaking_at[before]:.3g} s",
        line=by.line,
    )


def turn_timing(
    rec: Recorder,
    timing: Timing | None,
    turn: Turn,
    asked: float,
    starts: list[float],
    *,
    began: float | None = None,
) -> TurnTiming:
    """The figures of one user turn, for the metrics (``began``: when a spoken turn's
    speech began; ``asked``: when the user finished)."""
    said = [
        e.detail.get("content", e.text)
        for e in rec.timeline
        if e.kind == "agent" and e.turn == rec.turn
    ]
    first = next((s.answer for s in turn.llm if isinstance(s.answer, LLMAnswer)), None)
    if first is not None and timing is not None:
        first = timing.delayed(first)
    speech = next((s.answer for s in turn.tts if isinstance(s.answer, TTSAnswer)), None)
    ttfb = speech.ttfb if speech is not None else None
    return TurnTiming(
        index=turn.index,
        user=turn.user or "",
        asked=asked,
        spoke=starts[0] if starts else None,
        done=asyncio.get_running_loop().time(),
        agent_text=" ".join(said),
        llm_ttft=first.ttft if first is not None else None,
        tts_ttfb=ttfb if ttfb is not None else timing.tts_ttfb if timing is not None else None,
        began=began,
    )


def check_within(
    rec: Recorder, turn: Turn, budget: float, starts: list[float], asked: float
) -> None:
    """``within:``: the agent's first audio (first text in text mode) came within
    ``budget`` seconds of the end of the user's turn, on the scenario's clock."""
    if not starts:
        raise StepFailed(
            f"{turn.label}: the agent never started speaking (within: {budget:g} s)",
            line=turn.line,
        )
    latency = starts[0] - asked
    entry = rec.note("note", f"the agent started speaking after {latency:.3g} s")
    if latency > budget + 1e-9:
        raise StepFailed(
            f"{turn.label}: the agent started speaking {latency:.3g} s after the user's "
            f"turn, over its latency budget (within: {budget:g} s)",
            line=turn.line,
            entry=entry,
        )
