"""The user's microphone, for sessions whose STT hears pushed audio."""

from __future__ import annotations

import asyncio

from livekit import rtc
from livekit.agents.voice import io

__all__ = ["FakeAudioInput"]


class FakeAudioInput(io.AudioInput):
    """The user's microphone: frames you push are what the session's STT hears.

    Set it as ``session.input.audio`` before ``session.start()``; pair it with
    :class:`~pytest_agentsim.fakes.FakeSTT` transcripts (the audio itself is never
    analysed, only its duration counts).
    """

    def __init__(self, *, label: str = "agentsim-audio-in", sample_rate: int = 16000) -> None:
        super().__init__(label=label)
        self.sample_rate = sample_rate
        self._frames: asyncio.Queue[rtc.AudioFrame] = asyncio.Queue()
        self.pushed_seconds = 0.0

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        self.pushed_seconds += frame.duration
        self._frames.put_nowait(frame)

    def push_silence(self, seconds: float, *, frame_ms: int = 100) -> None:
        """Push ``seconds`` of silence as ``frame_ms`` frames (stands in for speech)."""
        per_frame = self.sample_rate * frame_ms // 1000
        for _ in range(max(1, round(seconds * 1000 / frame_ms))):
            self.push_frame(
                rtc.AudioFrame(
                    data=bytes(per_frame * 2),
                    sample_rate=self.sample_rate,
                    num_channels=1,
                    samples_per_channel=per_frame,
                )
            )

    async def __anext__(self) -> rtc.AudioFrame:
        return await self._frames.get()
