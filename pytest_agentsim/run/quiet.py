"""When is the agent done with a step? When it is *quiet*: nothing playing, queued, being
generated or switching agents, and no callback ready to run. The same test in this
process and in process mode's child, so a turn ends at the same point in every mode."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

__all__ = ["busy", "loop_idle", "wait_quiet"]


async def loop_idle(rounds: int = 50) -> None:
    """Let everything ready to run, run (up to ``rounds`` loop iterations)."""
    loop = asyncio.get_running_loop()
    for _ in range(rounds):
        await asyncio.sleep(0)
        # nothing scheduled: more rounds would change nothing; loops without `_ready`
        # (uvloop) just run all the rounds
        if not getattr(loop, "_ready", True):
            return


def busy(session: Any) -> bool:
    """Speech playing or queued, a reply being generated, or an agent switch under way."""
    if session.current_speech is not None:
        return True
    activity = getattr(session, "_activity", None)
    if getattr(activity, "_speech_q", None):
        return True
    switching = getattr(session, "_update_activity_atask", None)
    if switching is not None and not switching.done():
        return True
    return str(getattr(session, "agent_state", "listening")) in ("thinking", "speaking")


async def wait_quiet(
    session: Any, timeout: float, *, stop: Callable[[], bool] | None = None
) -> bool:
    """Wait until ``session`` is quiet (or closing); False if it was still busy after
    ``timeout`` seconds. ``stop()`` true ends the wait early (an agent hook crashed: what
    waited on it never finishes)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await loop_idle()
        if getattr(session, "_closing", False) or not busy(session):
            return True
        if stop is not None and stop():
            return False
        if loop.time() >= deadline:
            return False
        speech = session.current_speech
        if speech is not None:
            await _playout(speech, deadline - loop.time(), stop)
            continue
        await asyncio.sleep(0.005)  # a timer the agent waits on (the loop is idle)


async def _playout(speech: Any, timeout: float, stop: Callable[[], bool] | None) -> None:
    """Wait for ``speech`` to play out, up to ``timeout``; with ``stop``, look at it every
    50 ms (a speech waiting on a crashed sub-task never plays out)."""
    waiter = asyncio.ensure_future(speech.wait_for_playout())
    loop = asyncio.get_running_loop()
    end = loop.time() + max(timeout, 0.0)
    try:
        while not waiter.done() and loop.time() < end:
            slice_ = end - loop.time() if stop is None else min(0.05, end - loop.time())
            await asyncio.wait({waiter}, timeout=max(slice_, 0.0))
            if stop is not None and stop():
                return
    finally:
        waiter.cancel()
        with contextlib.suppress(BaseException):
            await waiter
