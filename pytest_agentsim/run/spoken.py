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

__all__ = ["SpokenTurns", "commit_wait", "false_interruption_wait"]


def commit_wait(session: Any, vad: FakeVAD) -> float:
    """Seconds after the final transcript within which livekit commits a spoken turn, if it
    takes it at all: the VAD's silence, then its longest endpointing delay, and a margin.
    (No longer: a turn livekit drops must not run into idle timers, ``user_away_timeout``.)"""
    endpointing = getattr(getattr(session, "options", None), "endpointing", None)
    longest = endpointing.get("max_delay") if isinstance(endpointing, dict) else None
    return vad.min_silence_duration + (longest if isinstance(longest, int | float) else 3.0) + 0.5


def false_interruption_wait(session: Any, vad: FakeVAD) -> float:
    """Seconds after a sound ends within which livekit has decided it was no interruption
    (its VAD's end of speech, then ``false_interruption_timeout``) and resumed the agent."""
    interruption = getattr(getattr(session, "options", None), "interruption", None)
    timeout = (
        interruption.get("false_interruption_timeout") if isinstance(interruption, dict) else None
    )
    return vad.min_silence_duration + (timeout if isinstance(timeout, int | float) else 2.0) + 0.5


class SpokenTurns:
    """The user's voice in one session: what its models hear, and the turns it speaks."""

    def __init__(self, stt: FakeSTT) -> None:
        self.voice = UserVoice()
        self.stt = stt
        stt.hear(self.voice)
        self.vad = FakeVAD(self.voice)
        self.barging: Utterance | None = None  # spoken over the agent, its turn still to come
        self.talked_over: Any = None  # the speech handle it was spoken over
        self._committed = asyncio.Event()
        self._session: Any = None  # where the commit listener is

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
        return (activity.stt if activity is not None else session.stt) is not None

    # -- turns -----------------------------------------------------------------------------
    def begin(self, session: Any, text: str, duration: float, stt_delay: float) -> Utterance:
        """The user starts saying ``text`` (``""``: a sound with no words); its turn is
        committed when livekit adds the user's message to the history."""
        self._committed = asyncio.Event()
        if text and self._session is None:
            session.on("conversation_item_added", self._on_item)
            self._session = session
        return self.voice.speak(text, duration, stt_delay=stt_delay)

    def take(
        self, session: Any, text: str, duration: float, stt_delay: float
    ) -> tuple[Utterance, Any]:
        """This turn's utterance, and the agent's speech it was spoken over: the one the
        user barged in with, or a new one begun now (over nothing)."""
        utterance, self.barging = self.barging, None
        if utterance is not None and utterance.text == text:
            return utterance, self.talked_over
        return self.begin(session, text, duration, stt_delay), None

    def _on_item(self, ev: Any) -> None:
        if getattr(ev.item, "role", None) == "user":
            self._committed.set()

    async def committed(self, session: Any, utterance: Utterance) -> bool:
        """Wait until livekit committed the turn of ``utterance`` (False: it never did)."""
        committed = self._committed
        loop = asyncio.get_running_loop()
        bound = max(utterance.end + utterance.stt_delay - loop.time(), 0.0)
        bound += commit_wait(session, self.vad)
        try:
            await asyncio.wait_for(committed.wait(), bound)
        except asyncio.TimeoutError:
            return False
        return True
