"""A clinic's phone line, as a LiveKit AgentServer: it lets callers cut it short, and it
does not wait forever on a caller who went quiet.

* Barge-in: the opening-hours answer is long; a caller who speaks over it is heard (the
  session's default `allow_interruptions=True`), and only what was played stays in the
  history. The privacy notice, though, is read in full (`allow_interruptions=False`), and
  livekit drops what a caller says over it: they have to ask again.
* Idle caller: after 10 s of silence livekit marks the user "away" (`user_away_timeout`);
  the agent asks whether they are still there, and hangs up if 10 s more pass in silence.

The caller's turns are speech (`mode: audio`: the session's STT hears them through
livekit's own turn handling), and the voice-time keys in scenarios.yaml (`interrupt:`,
`silence:`) drive both on the virtual clock: minutes of conversation run in milliseconds,
identically every time.
"""

from __future__ import annotations

import asyncio

from livekit.agents import Agent, AgentServer, JobContext, UserStateChangedEvent, inference

try:  # livekit-agents 2.x calls it LiveSession (AgentSession is a deprecated alias there)
    from livekit.agents import LiveSession as AgentSession
except ImportError:  # 1.x
    from livekit.agents import AgentSession  # type: ignore[assignment]

PRIVACY_NOTICE = (
    "Before we start: this call is recorded, and your data is handled under the clinic's "
    "privacy policy."
)


class Reception(Agent):
    def __init__(self) -> None:
        super().__init__(
            instructions=(
                "You answer the phone at the Riverside Clinic. Be brief; if the caller is "
                "quiet, check they are still there."
            )
        )

    async def on_enter(self) -> None:
        await self.session.say(PRIVACY_NOTICE, allow_interruptions=False)


server = AgentServer()


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    session = AgentSession(
        stt=inference.STT("deepgram/nova-3"),
        llm=inference.LLM("openai/gpt-4.1-mini"),
        tts=inference.TTS("cartesia/sonic-2"),
        user_away_timeout=10.0,
    )
    idle: asyncio.Task[None] | None = None

    async def check_in_then_hang_up() -> None:
        await session.generate_reply(instructions="Ask whether the caller is still there.")
        await asyncio.sleep(10)  # no answer to that either: hang up
        session.shutdown()

    @session.on("user_state_changed")
    def _on_user_state(ev: UserStateChangedEvent) -> None:
        nonlocal idle
        if ev.new_state == "away" and idle is None:
            idle = asyncio.create_task(check_in_then_hang_up())
        elif ev.new_state == "speaking" and idle is not None:
            idle.cancel()  # they are back
            idle = None

    await session.start(agent=Reception(), room=ctx.room)
