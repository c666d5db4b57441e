"""A hotel concierge on the phone: the room-availability API is slow, so the agent says a
short filler before it calls it, and the caller never waits in silence.

Voice time (README "Voice time"): the scenarios give the models realistic delays
(`timing:`) and a latency budget per turn (`within:`), checked on the virtual clock, so the
2.5 s API call costs no wall time and the figures are the same on every run.
"""

from __future__ import annotations

import asyncio

from livekit.agents import Agent, RunContext, function_tool

AVAILABILITY_API_SECONDS = 2.5  # what the booking system takes to answer, measured in prod


class Concierge(Agent):
    def __init__(self) -> None:
        super().__init__(
            instructions=(
                "You are the concierge of the Harbour Hotel, on the phone. Before you check "
                "availability, tell the caller you are checking: the lookup takes seconds."
            )
        )

    @function_tool
    async def check_availability(self, context: RunContext, night: str) -> str:
        """Check which rooms are free on a given night."""
        await asyncio.sleep(AVAILABILITY_API_SECONDS)  # stands in for the booking system
        return f"two sea-view rooms are free on {night}"
