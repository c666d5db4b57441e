"""A clinic receptionist: finds free slots, books them, and hands billing questions over.

A realistic LiveKit agent for pytest-agentsim's examples: several tools, state that
changes (the calendar), and a handoff to a second agent. `make_agent(scenario)` seeds the
calendar from the scenario's `userdata`, exactly as the cloud run would see it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from livekit.agents import Agent, RunContext, ToolError, function_tool


@dataclasses.dataclass
class Calendar:
    free: list[str] = dataclasses.field(default_factory=list)  # ISO datetimes
    booked: dict[str, str] = dataclasses.field(default_factory=dict)  # slot -> email

    def slots_on(self, date: str) -> list[str]:
        return sorted(s for s in self.free if s.startswith(date))

    def book(self, slot: str, email: str) -> str:
        if slot in self.booked:
            raise ToolError(f"{slot} is already booked")
        if slot not in self.free:
            raise ToolError(f"{slot} is not an available slot")
        self.free.remove(slot)
        self.booked[slot] = email
        return f"BK-{len(self.booked):03d}"


class BillingAgent(Agent):
    def __init__(self, calendar: Calendar) -> None:
        super().__init__(
            instructions="You answer billing questions for the clinic. Visits cost $80; "
            "insurance claims are filed by the clinic after the visit."
        )
        self.calendar = calendar

    @function_tool
    async def visit_price(self, context: RunContext) -> str:
        """The price of a standard visit."""
        return "A standard visit costs $80."


class ClinicAgent(Agent):
    def __init__(self, calendar: Calendar | None = None) -> None:
        super().__init__(
            instructions="You are the receptionist of a small clinic. Offer free slots, "
            "collect an email address before booking, and hand billing questions to billing."
        )
        self.calendar = (
            calendar
            if calendar is not None
            else Calendar(free=["2026-06-15T09:00", "2026-06-15T14:30", "2026-06-16T10:00"])
        )

    @function_tool
    async def list_slots(self, context: RunContext, date: str) -> list[str]:
        """List the free appointment slots on a date (YYYY-MM-DD)."""
        return self.calendar.slots_on(date)

    @function_tool
    async def book_slot(self, context: RunContext, slot: str, email: str) -> str:
        """Book a slot (ISO datetime) for the caller, identified by email."""
        code = self.calendar.book(slot, email)
        return f"Booked {slot} for {email}, confirmation {code}."

    @function_tool
    async def transfer_to_billing(self, context: RunContext) -> tuple[Agent, str]:
        """Hand the caller over to billing for questions about prices and insurance."""
        return BillingAgent(self.calendar), "Transferring you to billing."


def make_agent(scenario: Any) -> ClinicAgent:
    """Factory used by the scenarios: seed the calendar from the scenario's userdata."""
    slots = [str(s) for s in scenario.userdata.get("available_slots", [])]
    return ClinicAgent(Calendar(free=slots) if slots else None)
