"""Spoken user turns (``mode: audio``, SPEC §10): the user's words reach the session as
speech, through its real turn handling.

The session hears a :class:`~pytest_agentsim.fakes.voice.UserVoice` through the fake VAD
and the (voiced) fake STT: start of speech, interim transcripts, the final transcript,
end of speech, each at its time on the loop's clock. livekit does the rest as it does
live: VAD endpointing commits the user's turn, a reply follows; the user speaking over the
agent interrupts it once ``min_interruption_duration`` of speech is heard (or not, when
the speech does not allow interruptions). Never imports pytest.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..fakes import FakeSTT, FakeVAD, UserVoice, Utterance
from ..observe.record import Recorder

__all__ = ["SpokenTurns", "commit_wait", "false_interruption_wait"]


def commit_wait(session: Any, vad: FakeVAD) -> float:
    """Seconds after the final transcript within which livekit commits a spoken turn, if it
    takes it at all: the VAD's silence, then its longest endpointing delay, and a margin.
    (No longer: a turn livekit drops must not run into idle timers, ``user_away_timeout``.)"""
    endpointing = getattr(getattr(session, "options", None), "endpointing", None)
    longest = endpointing.get("max_delay") if isinstance(endpointing, dict) else None
    return vad.min_silence_duration + (longest if isinstance(longest, int | float) else 3.0) + 0.5


def false_interruption_wait(session: Any) -> float:
    """Seconds after a sound ends within which livekit has decided it was no interruption
    (its VAD's end of speech, then ``false_interruption_timeout``) and resumed the agent."""
    options = getattr(session, "options", None)
    interruption = getattr(options, "interruption", None)
    timeout = (
        interruption.get("false_interruption_timeout")
        if isinstance(interruption, dict)
        else getattr(options, "false_interruption_timeout", None)
    )
    return 1.0 + (timeout if isinstance(timeout, int | float) else 2.0)


class SpokenTurns:
    """The user's voice in one session: what its models hear, and the turns it speaks."""

    def __init__(self, rec: Recorder, stt: FakeSTT) -> None:
        self.rec = rec
        self.voice = UserVoice()
        self.stt = stt
        stt.voice = self.voice
        stt.capabilities.interim_results = True
        self.speeches: list[tuple[float, float]] = []  # (start, end) of each spoken turn
        self.barging: Utterance | None = None  # spoken over the agent, its turn still to come
        self.talked_over: Any = None  # the speech handle it was spoken over
        self.vad = FakeVAD(self.voice)
        self._committed: asyncio.Event | None = None

    # -- the session -----------------------------------------------------------------------
    def session_kwargs(self, kwargs: dict[str, Any], *, add_stt: bool) -> list[str]:
        """Point an ``AgentSession(**kwargs)``'s hearing at the voice (in place): the fake
        VAD, the fake STT (``add_stt``: also when it has none), VAD end-of-turn detection
        where a turn-detector model would run. Returns what was replaced, for the record."""
        replaced = []
        vad = kwargs.get("vad")
        if vad is not None and not isinstance(vad, FakeVAD):
            replaced.append(f"vad {type(vad).__module__.split('.')[-2]}.{type(vad).__name__}")
        kwargs["vad"] = self.vad
        if add_stt:
            kwargs.setdefault("stt", self.stt)
        detector = kwargs.get("turn_detection")
        if detector is not None and not isinstance(detector, str):
            replaced.append(f"turn_detection {type(detector).__name__}")
            kwargs["turn_detection"] = "vad"
        handling = kwargs.get("turn_handling")
        if isinstance(handling, dict):
            detector = handling.get("turn_detection")
            if detector is not None and not isinstance(detector, str):
                replaced.append(f"turn_detection {type(detector).__name__}")
                kwargs["turn_handling"] = {**handling, "turn_detection": "vad"}
        return replaced

    @staticmethod
    def hears(session: Any) -> bool:
        """Whether the session's current agent has an STT to hear the user with."""
        activity = getattr(session, "_activity", None)
        stt = getattr(activity, "stt", None) if activity is not None else None
        return (stt if activity is not None else getattr(session, "stt", None)) is not None

    # -- turns -----------------------------------------------------------------------------
    def begin(self, session: Any, text: str, duration: float, stt_delay: float) -> Utterance:
        """The user starts saying ``text`` (``""``: a sound with no words); its turn is
        committed when livekit says so."""
        committed = self._committed = asyncio.Event()

        def on_item(ev: Any) -> None:
            if getattr(ev.item, "role", None) == "user":
                committed.set()
                session.off("conversation_item_added", on_item)

        if text:
            session.on("conversation_item_added", on_item)
        utterance = self.voice.speak(text, duration, stt_delay=stt_delay)
        self.speeches.append((utterance.start, utterance.end))
        return utterance

    async def committed(self, session: Any, utterance: Utterance) -> bool:
        """Wait until livekit committed the turn of ``utterance`` (False: it never did)."""
        committed = self._committed
        assert committed is not None
        loop = asyncio.get_running_loop()
        bound = max(utterance.end + utterance.stt_delay - loop.time(), 0.0)
        bound += commit_wait(session, self.vad)
        try:
            await asyncio.wait_for(committed.wait(), bound)
        except asyncio.TimeoutError:
            return False
        return True
