"""The user's voice: spoken user turns as the session's VAD and STT report them.

A spoken turn is an :class:`Utterance` on the loop's clock (text, start, duration).
:class:`UserVoice` hands it to every listening stream: :class:`FakeVAD`'s streams report
start of speech (after ``activation`` seconds of it), inference results every
``update_interval`` with the speech so far (livekit interrupts the agent on those, once
``min_interruption_duration`` is reached), and end of speech ``min_silence_duration``
after the user stops, as a local Silero VAD does. The :class:`~.stt.FakeSTT` streams of a
voiced ``FakeSTT`` report start of speech, interim transcripts word by word, and the final
transcript ``stt_delay`` after the user stops. Nothing is analysed: no audio need flow, so
a minute of speech costs a handful of timer wake-ups on the virtual clock.
:func:`heard_prefix` is the other way round: what the user heard of the agent's speech.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from livekit.agents import vad

__all__ = ["FakeVAD", "UserVoice", "Utterance", "heard_prefix"]


def heard_prefix(text: str, fraction: float) -> str:
    """The part of ``text`` heard after ``fraction`` of its audio, cut at a word boundary."""
    if fraction >= 1:
        return text
    n = max(0, int(len(text) * fraction))
    cut = text[:n]
    if n < len(text) and not text[n].isspace() and " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip()


@dataclasses.dataclass(frozen=True)
class Utterance:
    text: str
    start: float  # loop time the user starts speaking
    duration: float  # seconds of speech
    stt_delay: float = 0.2  # seconds from its end to the final transcript

    @property
    def end(self) -> float:
        return self.start + self.duration


class UserVoice:
    """The user's mouth: streams that hear the user listen here."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[Utterance], None]] = []

    def listen(self, listener: Callable[[Utterance], None]) -> Callable[[], None]:
        """Call ``listener`` with each utterance; returns the function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def speak(self, text: str, duration: float, *, stt_delay: float = 0.2) -> Utterance:
        """The user starts saying ``text`` now, for ``duration`` seconds."""
        utterance = Utterance(
            text=text,
            start=asyncio.get_running_loop().time(),
            duration=max(duration, 0.05),
            stt_delay=stt_delay,
        )
        for listener in list(self._listeners):
            listener(utterance)
        return utterance


class FakeVAD(vad.VAD):
    """A VAD that hears the :class:`UserVoice`, on the loop's clock."""

    def __init__(
        self,
        voice: UserVoice,
        *,
        activation: float = 0.05,
        min_silence_duration: float = 0.55,
        update_interval: float = 0.1,
    ) -> None:
        super().__init__(capabilities=vad.VADCapabilities(update_interval=update_interval))
        self.voice = voice
        self.activation = activation
        self.min_silence_duration = min_silence_duration

    @property
    def model(self) -> str:
        return "fake-vad"

    @property
    def provider(self) -> str:
        return "agentsim"

    def stream(self) -> FakeVADStream:
        return FakeVADStream(self)


class FakeVADStream(vad.VADStream):
    def __init__(self, fake: FakeVAD) -> None:
        self._fake = fake
        self._speeches: asyncio.Queue[Utterance] = asyncio.Queue()
        super().__init__(fake)

    async def _main_task(self) -> None:
        stop = self._fake.voice.listen(self._speeches.put_nowait)
        drain = asyncio.ensure_future(self._drain())
        try:
            while True:
                await self._hear(await self._speeches.get())
        finally:
            stop()
            drain.cancel()

    async def _drain(self) -> None:
        async for _ in self._input_ch:  # frames, if any audio flows: nothing to analyse
            pass

    async def _hear(self, u: Utterance) -> None:
        fake, loop = self._fake, asyncio.get_running_loop()
        interval = fake.capabilities.update_interval
        await asyncio.sleep(max(u.start + fake.activation - loop.time(), 0.0))
        self._send(vad.VADEventType.START_OF_SPEECH, u)
        while loop.time() + interval < u.end:
            await asyncio.sleep(interval)
            self._send(vad.VADEventType.INFERENCE_DONE, u)
        await asyncio.sleep(max(u.end + fake.min_silence_duration - loop.time(), 0.0))
        self._send(vad.VADEventType.END_OF_SPEECH, u)

    def _send(self, kind: vad.VADEventType, u: Utterance) -> None:
        now = asyncio.get_running_loop().time()
        speech = min(now, u.end) - u.start
        self._event_ch.send_nowait(
            vad.VADEvent(
                type=kind,
                samples_index=0,
                timestamp=now,
                speech_duration=speech,
                silence_duration=max(0.0, now - u.end),
                speaking=now < u.end,
                probability=1.0 if now < u.end else 0.0,
                raw_accumulated_speech=speech if now < u.end else 0.0,
                raw_accumulated_silence=max(0.0, now - u.end),
            )
        )
