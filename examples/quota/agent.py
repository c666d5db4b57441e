"""Quota exhaustion handled right, and the naive handler that leaves callers in silence.

When LiveKit Inference credits run out, the gateway answers HTTP 429
``inference_quota_exceeded``. On livekit-agents 1.8.x the client treats every 429 as
retryable, so the turn fails after the retries and the session emits an ``error`` event.

* ``NaiveAgent`` does what most examples do: ``session.say(...)`` in the error handler. The
  speech is heard on early errors, but the session never closes (and on the error that
  does close it, the close interrupts the speech), so the caller is left hanging.
* ``ResilientAgent`` speaks the fallback, waits until it has played out, then shuts the
  session down (close reason ``user_initiated``), exactly once.
* ``server`` deploys ``ResilientAgent`` as LiveKit's examples do (an ``AgentServer`` whose
  entrypoint builds the session on LiveKit Inference): the scenario that runs it in its own
  process (``process: true``) checks the deployed agent, not just the class.
"""

from __future__ import annotations

import asyncio
from typing import Any

from livekit.agents import Agent, AgentServer, JobContext, cli, inference

try:  # livekit-agents 2.x calls it LiveSession (AgentSession is a deprecated alias there)
    from livekit.agents import LiveSession as AgentSession
except ImportError:  # 1.x
    from livekit.agents import AgentSession  # type: ignore[assignment]

FALLBACK = "Sorry, our assistant is temporarily unavailable. Please call back later."


def is_quota_exhausted(err: BaseException | None) -> bool:
    """True for the gateway's credit-exhaustion error, on old and new livekit-agents."""
    inner = getattr(err, "error", err)  # ErrorEvent.error wraps the API error
    if type(inner).__name__ == "InferenceQuotaExceededError":
        return True
    if getattr(inner, "status_code", None) != 429:
        return False
    # 1.8.x: the openai SDK unwraps the gateway's JSON to its "error" text, so the
    # structured category is gone; the text still says which limit was hit
    body = getattr(inner, "body", None)
    if isinstance(body, dict):
        return body.get("type") == "inference_quota_exceeded" and body.get("category") in (
            "MaxGatewayCredits",
            "MaxBargeInRequests",
            "MaxEotRequests",
        )
    return "quota exceeded" in str(body).lower()


class ResilientAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a helpful front desk assistant.")
        self._fallback_started = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_enter(self) -> None:
        self.session.on("error", self._on_error)

    def _on_error(self, ev: Any) -> None:
        if self._fallback_started or not is_quota_exhausted(ev.error):
            return
        self._fallback_started = True  # repeated errors must not repeat the fallback
        task = asyncio.create_task(self._speak_fallback_then_close(self.session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _speak_fallback_then_close(self, session: AgentSession[Any]) -> None:
        handle = session.say(FALLBACK, allow_interruptions=False, add_to_chat_ctx=False)
        await handle.wait_for_playout()
        session.shutdown(drain=True)


class NaiveAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a helpful front desk assistant.")

    async def on_enter(self) -> None:
        session = self.session

        def on_error(ev: Any) -> None:
            session.say(FALLBACK)

        session.on("error", on_error)


server = AgentServer()


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    session: AgentSession[None] = AgentSession(
        llm=inference.LLM("openai/gpt-4.1-mini"),
        tts=inference.TTS("cartesia/sonic-3"),
    )
    await session.start(agent=ResilientAgent(), room=ctx.room)


if __name__ == "__main__":
    cli.run_app(server)
