"""Harbor Hotel front desk: a LiveKit ``AgentServer`` whose entrypoint books rooms in sqlite.

Written the way a LiveKit agent is deployed (``python agent.py dev`` / ``start``): an
``@server.rtc_session`` entrypoint builds its own ``AgentSession`` on LiveKit Inference
models and starts it in the job's room. Nothing here knows about pytest-agentsim.

Under a simulation (``lk agent simulate`` in the cloud, ``pytest --agentsim`` offline) the
scenario's ``userdata`` seeds a fresh in-memory database for the job (``today``, ``rooms``,
``reservations``), and ``on_simulation_end`` compares the final reservations with
``userdata.expected_state``, failing the run (``ctx.fail``) on any difference. Dates in
``userdata`` arrive as the CLI encodes YAML dates: ``2026-07-14`` becomes
``"2026-07-14T00:00:00Z"``; the tools speak plain ISO dates.
"""

from __future__ import annotations

import dataclasses
import datetime
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from livekit.agents import (
    Agent,
    AgentServer,
    JobContext,
    RunContext,
    ToolError,
    cli,
    function_tool,
    inference,
)
from livekit.agents.simulation import SimulationContext

try:  # livekit-agents 2.x calls it LiveSession (AgentSession is a deprecated alias there)
    from livekit.agents import LiveSession as AgentSession
except ImportError:  # 1.x
    from livekit.agents import AgentSession  # type: ignore[assignment]

SCHEMA = """
CREATE TABLE rooms (
    number TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    nightly_rate INTEGER NOT NULL
);
CREATE TABLE reservations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    guest TEXT NOT NULL,
    room TEXT NOT NULL REFERENCES rooms (number),
    check_in TEXT NOT NULL,
    check_out TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'confirmed'
);
"""

# What a production job starts from when it is not a simulation.
DEMO_INVENTORY: dict[str, Any] = {
    "rooms": [
        {"number": "101", "kind": "single", "rate": 120},
        {"number": "204", "kind": "double", "rate": 180},
        {"number": "310", "kind": "suite", "rate": 320},
    ],
}


def parse_date(value: Any) -> datetime.date:
    """A date from a guest (``2026-07-14``) or from scenario userdata (RFC 3339)."""
    try:
        return datetime.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ToolError(f"{value!r} is not a date; use YYYY-MM-DD") from None


class HotelDB:
    """The hotel's rooms and reservations (one in-memory database per job)."""

    def __init__(self) -> None:
        self.conn = sqlite3.connect(":memory:")
        self.conn.row_factory = sqlite3.Row
        self.conn.executescript(SCHEMA)

    @classmethod
    def seeded(cls, data: Mapping[str, Any]) -> HotelDB:
        db = cls()
        with db.conn:
            for room in data.get("rooms", []):
                db.conn.execute(
                    "INSERT INTO rooms (number, kind, nightly_rate) VALUES (?, ?, ?)",
                    (str(room["number"]), room["kind"], int(room["rate"])),
                )
            for r in data.get("reservations", []):
                db.conn.execute(
                    "INSERT INTO reservations (guest, room, check_in, check_out, status)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        r["guest"],
                        str(r["room"]),
                        parse_date(r["check_in"]).isoformat(),
                        parse_date(r["check_out"]).isoformat(),
                        r.get("status", "confirmed"),
                    ),
                )
        return db

    def free_rooms(
        self, check_in: datetime.date, check_out: datetime.date, kind: str | None
    ) -> list[sqlite3.Row]:
        # a room is free when no confirmed stay overlaps [check_in, check_out)
        return self.conn.execute(
            """
            SELECT number, kind, nightly_rate FROM rooms
            WHERE (:kind IS NULL OR kind = :kind)
              AND number NOT IN (
                SELECT room FROM reservations
                WHERE status = 'confirmed' AND check_in < :check_out AND check_out > :check_in
              )
            ORDER BY nightly_rate, number
            """,
            {"kind": kind, "check_in": check_in.isoformat(), "check_out": check_out.isoformat()},
        ).fetchall()

    def book(self, guest: str, room: str, check_in: datetime.date, check_out: datetime.date) -> int:
        if room not in {r["number"] for r in self.free_rooms(check_in, check_out, None)}:
            raise ToolError(f"room {room} is not free from {check_in} to {check_out}")
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO reservations (guest, room, check_in, check_out) VALUES (?, ?, ?, ?)",
                (guest, room, check_in.isoformat(), check_out.isoformat()),
            )
        return int(cur.lastrowid or 0)

    def find(self, guest: str) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT * FROM reservations WHERE lower(guest) = lower(?) AND status = 'confirmed'",
            (guest,),
        ).fetchall()

    def cancel(self, reservation_id: int) -> None:
        with self.conn:
            cur = self.conn.execute(
                "UPDATE reservations SET status = 'cancelled' "
                "WHERE id = ? AND status = 'confirmed'",
                (reservation_id,),
            )
        if cur.rowcount == 0:
            raise ToolError(f"no confirmed reservation #{reservation_id}")

    def reservations(self) -> list[dict[str, str]]:
        rows = self.conn.execute(
            "SELECT guest, room, check_in, check_out, status FROM reservations ORDER BY id"
        ).fetchall()
        return [dict(row) for row in rows]


@dataclasses.dataclass
class HotelState:
    db: HotelDB
    today: datetime.date


class FrontDesk(Agent):
    def __init__(self, today: datetime.date) -> None:
        super().__init__(
            instructions=(
                "You are the front desk of the Harbor Hotel, on the phone. "
                f"Today is {today.isoformat()}. Check availability before offering a room, "
                "quote the nightly rate, and get the guest's full name before booking. "
                "Never book dates in the past. Keep answers short: this is a voice call."
            )
        )

    @function_tool
    async def check_availability(
        self,
        context: RunContext[HotelState],
        check_in: str,
        check_out: str,
        room_type: str | None = None,
    ) -> str:
        """Free rooms for a stay.

        Args:
            check_in: arrival date, YYYY-MM-DD
            check_out: departure date, YYYY-MM-DD
            room_type: single, double or suite (optional)
        """
        state = context.userdata
        start, end = parse_date(check_in), parse_date(check_out)
        if start < state.today:
            raise ToolError(f"{start} is in the past (today is {state.today})")
        if end <= start:
            raise ToolError("check-out must be after check-in")
        rooms = state.db.free_rooms(start, end, room_type)
        if not rooms:
            return f"No {room_type or ''} rooms are free from {start} to {end}.".replace("  ", " ")
        return "; ".join(
            f"room {r['number']} ({r['kind']}) at ${r['nightly_rate']} per night" for r in rooms
        )

    @function_tool
    async def book_room(
        self,
        context: RunContext[HotelState],
        guest_name: str,
        room_number: str,
        check_in: str,
        check_out: str,
    ) -> str:
        """Book a free room for a guest.

        Args:
            guest_name: the guest's full name
            room_number: a room offered by check_availability
            check_in: arrival date, YYYY-MM-DD
            check_out: departure date, YYYY-MM-DD
        """
        state = context.userdata
        start, end = parse_date(check_in), parse_date(check_out)
        if start < state.today:
            raise ToolError(f"{start} is in the past (today is {state.today})")
        reservation = state.db.book(guest_name, room_number, start, end)
        return f"Booked room {room_number} for {guest_name}, confirmation #{reservation}."

    @function_tool
    async def find_reservation(self, context: RunContext[HotelState], guest_name: str) -> str:
        """A guest's confirmed reservations.

        Args:
            guest_name: the guest's full name
        """
        rows = context.userdata.db.find(guest_name)
        if not rows:
            return f"No confirmed reservation for {guest_name}."
        return "; ".join(
            f"#{r['id']}: room {r['room']}, {r['check_in']} to {r['check_out']}" for r in rows
        )

    @function_tool
    async def cancel_reservation(self, context: RunContext[HotelState], reservation_id: int) -> str:
        """Cancel a confirmed reservation.

        Args:
            reservation_id: the number find_reservation returned
        """
        context.userdata.db.cancel(reservation_id)
        return f"Reservation #{reservation_id} is cancelled."


def _normalize(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Rows in a comparable form: dates as YYYY-MM-DD, every value a string."""
    out = []
    for row in rows:
        item = {k: str(v) for k, v in row.items()}
        for key in ("check_in", "check_out"):
            if key in item:
                item[key] = parse_date(item[key]).isoformat()
        item.setdefault("status", "confirmed")
        out.append(item)
    return out


async def check_final_state(ctx: SimulationContext) -> None:
    """``on_simulation_end``: the reservations must end as ``expected_state`` says."""
    expected: dict[str, Any] | None = ctx.userdata().get("expected_state")
    if expected is None:
        return
    state: HotelState = ctx.job_context.primary_session.userdata
    want = _normalize(expected.get("reservations", []))
    got = _normalize(state.db.reservations())
    if got != want:
        ctx.fail(
            "reservations differ from expected_state\n"
            f"  expected:\n{_listing(want)}\n  got:\n{_listing(got)}"
        )


def _listing(rows: list[dict[str, str]]) -> str:
    return (
        "\n".join(
            f"    - {r.get('guest')}: room {r.get('room')}, {r.get('check_in')} to "
            f"{r.get('check_out')}, {r.get('status')}"
            for r in rows
        )
        or "    (none)"
    )


server = AgentServer()


@server.rtc_session(on_simulation_end=check_final_state)
async def entrypoint(ctx: JobContext) -> None:
    sim = ctx.simulation_context()
    data = sim.userdata() if sim is not None else DEMO_INVENTORY
    today = parse_date(data["today"]) if "today" in data else datetime.date.today()
    state = HotelState(db=HotelDB.seeded(data), today=today)

    session = AgentSession[HotelState](
        llm=inference.LLM("openai/gpt-4.1-mini"),
        stt=inference.STT("deepgram/nova-3"),
        tts=inference.TTS("cartesia/sonic-3"),
        userdata=state,
    )
    await session.start(agent=FrontDesk(today), room=ctx.room)


if __name__ == "__main__":
    cli.run_app(server)
