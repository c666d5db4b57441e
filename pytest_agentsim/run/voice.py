"""Voice-time steps of the turn player: barge-in (``interrupt:``), latency budgets
(``within:``) and the per-turn figures the metrics are made of (SPEC §10)."""

from __future__ import annotations

import asyncio

from ..answers import LLMAnswer
from ..load.model import Timing, Turn
from ..observe.record import Recorder
from .drivers.base import Driver
from .metrics import TurnTiming
from .outcome import StepFailed

__all__ = ["check_within", "play_barged", "turn_timing"]


async def play_barged(driver: Driver, rec: Recorder, mode: str, turn: Turn, by: Turn) -> None:
    """Plays ``turn`` until the agent has spoken ``by.interrupt`` seconds of its reply,
    then the user barges in (``by`` itself plays next, as a user turn)."""
    assert by.interrupt is not None
    if mode != "audio":
        raise StepFailed(
            f"{by.label}: `interrupt` needs the agent's speech to take time, which it "
            "does only in `mode: audio` (in text mode a reply arrives at once)",
            line=by.line,
        )
    loop = asyncio.get_running_loop()
    spoke = len(rec.speaking_at)
    play = asyncio.ensure_future(driver.play(turn))
    while len(rec.speaking_at) == spoke and not play.done():
        rec.speaking.clear()
        heard = asyncio.ensure_future(rec.speaking.wait())
        await asyncio.wait({play, heard}, return_when=asyncio.FIRST_COMPLETED)
        heard.cancel()
    if len(rec.speaking_at) == spoke:
        await play  # its own failure first, if it had one
        raise StepFailed(
            f"{by.label}: the user was to barge in {by.interrupt:g} s into the agent's "
            f"reply, but the agent did not speak in {turn.label}",
            line=by.line,
        )
    at = rec.speaking_at[spoke] + by.interrupt
    await asyncio.wait({play}, timeout=max(at - loop.time(), 0.0))
    if play.done():
        await play
        raise StepFailed(
            f"{by.label}: the user was to barge in {by.interrupt:g} s into the agent's "
            f"reply, but it had finished speaking after "
            f"{loop.time() - rec.speaking_at[spoke]:.3g} s",
            line=by.line,
        )
    rec.note("note", f"the user barges in, {by.interrupt:g} s into the agent's speech")
    if not await driver.barge_in():
        rec.note("note", "the agent's speech does not allow interruptions: it plays on")
    await play


def turn_timing(
    rec: Recorder, timing: Timing | None, turn: Turn, asked: float, starts: list[float]
) -> TurnTiming:
    """The figures of one user turn, for the metrics."""
    said = [
        e.detail.get("content", e.text)
        for e in rec.timeline
        if e.kind == "agent" and e.turn == rec.turn
    ]
    first = next((s.answer for s in turn.llm if isinstance(s.answer, LLMAnswer)), None)
    ttft = first.ttft if first is not None and first.ttft is not None else None
    if ttft is None and first is not None and timing is not None:
        ttft = timing.llm_ttft
    return TurnTiming(
        index=turn.index,
        user=turn.user or "",
        asked=asked,
        spoke=starts[0] if starts else None,
        done=asyncio.get_running_loop().time(),
        agent_text=" ".join(said),
        llm_ttft=ttft,
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
