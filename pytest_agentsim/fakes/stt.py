"""A scripted ``livekit.agents.stt.STT``: queued final transcripts, heard when audio comes.

Streaming: each time the stream has received ``seconds_per_transcript`` of audio since
its last transcript, it takes the next scripted item: a transcript is emitted as
``START_OF_SPEECH``, ``FINAL_TRANSCRIPT``, ``END_OF_SPEECH``; a fault raises inside
livekit's ``RecognizeStream`` retry loop. With nothing queued, audio is silence (no
event, no error: rooms stream audio all the time). A flush finalizes: the next transcript
if some audio is pending, else an empty ``FINAL_TRANSCRIPT``, so livekit 1.8's
``commit_user_turn()`` and session close (which flush an STT with ``manual_flush``) never
wait on a timer. ``recognize()`` (non-streaming) takes one item per call and returns an
empty final transcript when nothing is queued.

**Voiced** (``FakeSTT(voice=...)``, spoken user turns): each stream hears the
:class:`~.voice.UserVoice` instead: start of speech, interim transcripts word by word, the
final transcript ``stt_delay`` after the user stops (a scripted transcript overrides what
was said: a mishearing; a scripted fault fails that recognition), end of speech.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from livekit.agents import APIConnectOptions, stt
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.utils import AudioBuffer

from ..answers import STTAnswer
from ..faults import CallScript, Fault, ScriptExhausted
from .events import FakeEvent, Observable
from .voice import UserVoice, Utterance

__all__ = ["MANUAL_FLUSH", "FakeSTT", "FakeSTTStream"]

MANUAL_FLUSH = "manual_flush" in {f.name for f in dataclasses.fields(stt.STTCapabilities)}
"""Whether the installed livekit-agents can flush an STT (1.8 has it; 1.6 and 2.0.0b1 do not)."""


class FakeSTT(stt.STT[Any], Observable):
    def __init__(
        self,
        *,
        streaming: bool = True,
        seconds_per_transcript: float = 0.1,
        model: str = "fake-stt",
        voice: UserVoice | None = None,
    ) -> None:
        caps = stt.STTCapabilities(streaming=streaming, interim_results=False)
        if MANUAL_FLUSH:
            caps.manual_flush = True  # 1.8+: livekit flushes us instead of timing out
        super().__init__(capabilities=caps)
        self._init_observers()
        self._model = model
        self.seconds_per_transcript = seconds_per_transcript
        self.voice: UserVoice | None = None
        if voice is not None:
            self.hear(voice)
        self.script: CallScript[STTAnswer] = CallScript()
        self.calls: list[float] = []
        """Seconds of audio behind each recognition call, in order (retries included)."""
        self.transcripts: list[str] = []
        """Final transcripts emitted, in order."""

    @property
    def model(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        return "agentsim"

    def hear(self, voice: UserVoice) -> None:
        """Streams hear ``voice`` from now on (spoken user turns), with interim results."""
        self.voice = voice
        self.capabilities.interim_results = True

    # -- scripting -------------------------------------------------------------------------
    def add_transcript(self, text: str, *, language: str = "en", confidence: float = 1.0) -> None:
        """Queue what the user is heard to say next."""
        self.script.add(STTAnswer(text=text, language=language, confidence=confidence))

    def add_answer(self, answer: STTAnswer) -> None:
        self.script.add(answer)

    def add_fault(self, fault: Fault) -> None:
        self.script.add_fault(fault)

    def unused(self) -> list[STTAnswer | Fault]:
        return self.script.unused()

    def reset(self) -> None:
        self.script = CallScript()
        self.calls.clear()
        self.transcripts.clear()

    # -- livekit API -----------------------------------------------------------------------
    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        frames = buffer if isinstance(buffer, list) else [buffer]
        answer = self._take(sum(f.duration for f in frames))
        return self._event(stt.SpeechEventType.FINAL_TRANSCRIPT, answer or STTAnswer(text=""))

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> FakeSTTStream:
        if not self.capabilities.streaming:
            return super().stream(language=language, conn_options=conn_options)  # type: ignore[return-value]
        return FakeSTTStream(stt=self, conn_options=conn_options)

    # -- used by the stream ----------------------------------------------------------------
    def _take(self, audio_seconds: float) -> STTAnswer | None:
        """One recognition: the next transcript, ``None`` if none, or raise its fault."""
        self.calls.append(audio_seconds)
        n = self.script.calls + 1
        self._notify(FakeEvent("stt", "call", n, f"{audio_seconds:.2f}s of audio"))
        try:
            item = self.script.next()
        except ScriptExhausted:
            return None
        if isinstance(item, Fault):
            self._notify(FakeEvent("stt", "fault", n, item.describe(), item))
            raise item.to_exception()
        self._notify(FakeEvent("stt", "answer", n, repr(item.text)))
        self.transcripts.append(item.text)
        return item

    @staticmethod
    def _event(kind: stt.SpeechEventType, answer: STTAnswer) -> stt.SpeechEvent:
        return stt.SpeechEvent(
            type=kind,
            alternatives=[
                stt.SpeechData(
                    language=answer.language,  # type: ignore[arg-type]  # LanguageCode on 1.8
                    text=answer.text,
                    confidence=answer.confidence,
                )
            ],
        )


class FakeSTTStream(stt.RecognizeStream):
    def __init__(self, *, stt: FakeSTT, conn_options: APIConnectOptions) -> None:
        super().__init__(stt=stt, conn_options=conn_options)
        self._fake = stt
        self._heard = 0.0  # audio since the last transcript

    async def _run(self) -> None:
        voice = self._fake.voice
        if voice is None:
            await self._listen()
            return
        heard: asyncio.Queue[Utterance] = asyncio.Queue()
        stop = voice.listen(heard.put_nowait)
        listening = asyncio.ensure_future(self._listen())
        try:
            while True:
                await self._transcribe(await heard.get())
        finally:
            stop()
            listening.cancel()

    async def _transcribe(self, u: Utterance) -> None:
        """One utterance as a streaming provider reports it, on the loop's clock."""
        loop, kinds, fake = asyncio.get_running_loop(), stt.SpeechEventType, self._fake
        self._event_ch.send_nowait(fake._event(kinds.START_OF_SPEECH, STTAnswer(text="")))
        words = u.text.split()
        for i in range(1, len(words)):
            await asyncio.sleep(max(u.start + u.duration * i / len(words) - loop.time(), 0.0))
            partial = STTAnswer(text=" ".join(words[:i]))
            self._event_ch.send_nowait(fake._event(kinds.INTERIM_TRANSCRIPT, partial))
        await asyncio.sleep(max(u.end + u.stt_delay - loop.time(), 0.0))
        answer = fake._take(u.duration) or STTAnswer(text=u.text)  # a fault raises here
        self._event_ch.send_nowait(fake._event(kinds.FINAL_TRANSCRIPT, answer))
        self._event_ch.send_nowait(fake._event(kinds.END_OF_SPEECH, answer))

    async def _listen(self) -> None:
        async for data in self._input_ch:
            if isinstance(data, self._FlushSentinel):
                self._finalize()
                continue
            self._heard += data.duration
            if (
                self._heard + 1e-9 >= self._fake.seconds_per_transcript
                and self._fake.script.has_next()
            ):
                self._recognize()

    def _recognize(self) -> None:
        heard, self._heard = self._heard, 0.0
        answer = self._fake._take(heard)
        if answer is None:
            return
        for kind in (
            stt.SpeechEventType.START_OF_SPEECH,
            stt.SpeechEventType.FINAL_TRANSCRIPT,
            stt.SpeechEventType.END_OF_SPEECH,
        ):
            self._event_ch.send_nowait(self._fake._event(kind, answer))

    def _finalize(self) -> None:
        if self._heard > 0 and self._fake.script.has_next():
            self._recognize()
            return
        self._heard = 0.0
        # what a provider answers to "finalize" with nothing pending; unscripted, not a call
        empty = STTAnswer(text="")
        self._event_ch.send_nowait(self._fake._event(stt.SpeechEventType.FINAL_TRANSCRIPT, empty))
