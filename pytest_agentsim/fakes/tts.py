"""A ``livekit.agents.tts.TTS`` that synthesizes silence sized to the text, instantly.

Audio duration is ``len(text.strip()) * seconds_per_char`` (or a scripted
:class:`TTSAnswer.duration`), so playout positions are deterministic. Nothing needs to be
scripted: with an empty script every synthesis just works; queued or scheduled faults
make the synthesis they hit raise what the real client raises, inside livekit's own retry
loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from livekit import rtc
from livekit.agents import APIConnectOptions, tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, USERDATA_TIMED_TRANSCRIPT

from ..answers import TTSAnswer
from ..faults import CallScript, Fault, ScriptExhausted
from .events import FakeEvent, Observable

__all__ = ["FAKE_TTS_FRAME_KEY", "FakeTTS", "is_tts_frame"]

FAKE_TTS_FRAME_KEY = "agentsim.fake_tts"
"""``frame.userdata`` key FakeTTS sets on every frame its streams yield."""

_FRAME_MS = 200  # livekit's AudioEmitter default frame size; used for mid-stream faults


def is_tts_frame(frame: rtc.AudioFrame) -> bool:
    """Whether ``frame`` came out of a TTS (ours or any livekit TTS).

    livekit's ``AudioEmitter`` re-frames all TTS audio and tags every frame it emits with
    ``USERDATA_TIMED_TRANSCRIPT`` (both 1.6 and 1.8), while frames handed to
    ``session.say(text, audio=...)`` reach the sink untouched, so the key tells them apart.
    """
    userdata = frame.userdata
    return FAKE_TTS_FRAME_KEY in userdata or USERDATA_TIMED_TRANSCRIPT in userdata


class FakeTTS(tts.TTS[Any], Observable):
    def __init__(
        self,
        *,
        streaming: bool = True,
        sample_rate: int = 24000,
        num_channels: int = 1,
        seconds_per_char: float = 0.05,
        model: str = "fake-tts",
    ) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=streaming),
            sample_rate=sample_rate,
            num_channels=num_channels,
        )
        self._init_observers()
        self._model = model
        self.seconds_per_char = seconds_per_char
        self.ttfb = 0.0
        """Seconds before each synthesis's first audio (voice time, SPEC §10 ``tts_ttfb``)."""
        self.script: CallScript[TTSAnswer] = CallScript()
        self.calls: list[str] = []
        """The text of every synthesis attempt, in order (retries included)."""
        self._segments = 0

    @property
    def model(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        return "agentsim"

    # -- scripting -------------------------------------------------------------------------
    def add_fault(self, fault: Fault) -> None:
        self.script.add_fault(fault)

    def add_answer(self, answer: TTSAnswer) -> None:
        """Queue an override for the next synthesis (e.g. a fixed ``duration``)."""
        self.script.add(answer)

    def add_response(self, *, duration: float | None = None) -> None:
        self.script.add(TTSAnswer(duration=duration))

    def unused(self) -> list[TTSAnswer | Fault]:
        return self.script.unused()

    def reset(self) -> None:
        self.script = CallScript()
        self.calls.clear()

    def duration_for(self, text: str) -> float:
        """Seconds of audio an unscripted synthesis of ``text`` produces."""
        return len(text.strip()) * self.seconds_per_char

    # -- livekit API -----------------------------------------------------------------------
    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> FakeChunkedStream:
        return FakeChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> FakeSynthesizeStream:
        if not self.capabilities.streaming:
            # what a real non-streaming TTS does; the framework wraps us in a StreamAdapter
            return super().stream(conn_options=conn_options)  # type: ignore[return-value]
        return FakeSynthesizeStream(tts=self, conn_options=conn_options)

    # -- used by the streams ---------------------------------------------------------------
    async def synthesize_into(
        self, text: str, emitter: tts.AudioEmitter, *, streaming: bool
    ) -> None:
        """One synthesis call: record it, take its scripted answer, wait its first byte
        (its own ``ttfb``, else :attr:`ttfb`), push the audio or raise."""
        self.calls.append(text)
        n = self.script.calls + 1
        self._notify(FakeEvent("tts", "call", n, repr(text)))
        try:
            item: TTSAnswer | Fault = self.script.next()
        except ScriptExhausted:
            item = TTSAnswer()
        ttfb = item.ttfb if isinstance(item, TTSAnswer) and item.ttfb is not None else self.ttfb
        if ttfb:
            await asyncio.sleep(ttfb)

        self._segments += 1
        segment_id = f"fake-tts-seg-{self._segments}"
        if isinstance(item, Fault):
            self._notify(FakeEvent("tts", "fault", n, item.describe(), item))
            if item.after_chunks:
                # the provider streamed some audio before the connection dropped
                if streaming:
                    emitter.start_segment(segment_id=segment_id)
                partial = min(self.duration_for(text), item.after_chunks * _FRAME_MS / 1000)
                emitter.push(self._pcm(partial))
            raise item.to_exception()

        duration = item.duration if item.duration is not None else self.duration_for(text)
        self._notify(FakeEvent("tts", "answer", n, f"{duration:.3f}s of audio"))
        if streaming:
            emitter.start_segment(segment_id=segment_id)
        if duration > 0:
            emitter.push(self._pcm(duration))
        if streaming:
            emitter.end_segment()

    def _pcm(self, seconds: float) -> bytes:
        # silence is the cheapest deterministic PCM: 10 s at 24 kHz is one 480 KB calloc
        samples = round(seconds * self.sample_rate)
        return bytes(samples * 2 * self.num_channels)


def _mark(ev: tts.SynthesizedAudio) -> tts.SynthesizedAudio:
    ev.frame.userdata[FAKE_TTS_FRAME_KEY] = True
    return ev


class FakeChunkedStream(tts.ChunkedStream):
    def __init__(self, *, tts: FakeTTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._fake = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=f"fake-tts-{self._fake.script.calls + 1}",
            sample_rate=self._fake.sample_rate,
            num_channels=self._fake.num_channels,
            mime_type="audio/pcm",
        )
        if self._input_text.strip():
            await self._fake.synthesize_into(self._input_text, output_emitter, streaming=False)

    async def __anext__(self) -> tts.SynthesizedAudio:
        return _mark(await super().__anext__())


class FakeSynthesizeStream(tts.SynthesizeStream):
    def __init__(self, *, tts: FakeTTS, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, conn_options=conn_options)
        self._fake = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=f"fake-tts-{self._fake.script.calls + 1}",
            sample_rate=self._fake.sample_rate,
            num_channels=self._fake.num_channels,
            mime_type="audio/pcm",
            stream=True,
        )
        text = ""
        async for data in self._input_ch:
            if isinstance(data, str):
                text += data
                continue
            # a flush ends a segment; blank segments get no audio (livekit only checks
            # pushed audio when the pushed text is not blank)
            if text.strip():
                self._mark_started()
                await self._fake.synthesize_into(text, output_emitter, streaming=True)
            text = ""
        if text.strip():
            self._mark_started()
            await self._fake.synthesize_into(text, output_emitter, streaming=True)

    async def __anext__(self) -> tts.SynthesizedAudio:
        return _mark(await super().__anext__())
