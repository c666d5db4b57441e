"""What reached the user of an agent in another process: process mode's ``spoken``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ...fakes.audio import PlayedSegment, Spoken, SpokenLog

__all__ = ["RemoteSpeaker"]


class RemoteSpeaker(SpokenLog):
    """What reached the user of an agent in another process: process mode's ``spoken``.

    * **Audio mode.** The console sends the agent's audio (``audio_output`` frames) and a
      ``audio_playback_flush`` at the end of each speech; the speaker "plays" it at once
      and the plugin answers ``audio_playback_finished``. livekit then adds the speech's
      assistant message (its text as heard, ``interrupted`` if an
      ``audio_playback_clear`` cut it), and that message names the segment. A segment no
      message claims (``say(..., add_to_chat_ctx=False)``) gets the text the gateway
      synthesized for it. A message with no audio was never heard (its TTS failed).
    * **Text mode.** Audio is off; each assistant message added is what the user read.

    ``spoken`` and ``on_spoken`` mirror :class:`~pytest_agentsim.fakes.Outputs`, so the
    harness's checks read either.
    """

    def __init__(self, mode: str, *, synthesized: Callable[[], Sequence[str]] | None = None):
        super().__init__()
        self.mode = mode
        self.segments: list[PlayedSegment] = []
        self._synthesized = synthesized or (lambda: ())
        self._synth_start: dict[int, int] = {}  # segment index -> synthesized[] index
        self._capturing: PlayedSegment | None = None
        self._unclaimed: list[PlayedSegment] = []  # played, waiting for their message

    # -- the console's audio ---------------------------------------------------------
    def audio_frame(self, frame: Any) -> None:
        seg = self._capturing
        if seg is None:
            seg = PlayedSegment(index=len(self.segments), source="tts", speech_id=None)
            self._synth_start[seg.index] = max(0, len(self._synthesized()) - 1)
            self.segments.append(seg)
            self._capturing = seg
        if frame.sample_rate:
            seg.frames += 1
            seg.duration += frame.samples_per_channel / frame.sample_rate

    def flush(self) -> None:
        """The end of a speech's audio: played out, at once."""
        seg, self._capturing = self._capturing, None
        if seg is not None:
            self._finish(seg, interrupted=False)

    def clear(self) -> None:
        # instant playout has played everything it was given (as the in-process sink)
        seg, self._capturing = self._capturing, None
        if seg is not None:
            self._finish(seg, interrupted=True)

    def _finish(self, seg: PlayedSegment, *, interrupted: bool) -> None:
        seg.played = seg.duration
        seg.interrupted = interrupted
        seg.finished = True
        synth = self._synthesized()
        start = self._synth_start.get(seg.index, len(synth))
        seg.full_text = " ".join(t for t in synth[start:] if t) or None
        self._unclaimed.append(seg)

    # -- the session's messages ------------------------------------------------------
    def message(self, text: str, *, interrupted: bool) -> None:
        """An assistant message was added to the agent's chat history."""
        if self.mode != "audio":
            self.add(Spoken(text, "text", interrupted, len(self.spoken)))
            return
        if not self._unclaimed:
            return  # no audio was played for it: the user never heard it
        *orphans, seg = self._unclaimed
        self._unclaimed.clear()
        for orphan in orphans:
            self._emit_orphan(orphan)
        seg.full_text = text
        self.add(Spoken(text, seg.source, interrupted or seg.interrupted, len(self.spoken)))

    def settle(self) -> None:
        """Audio no message claimed (the turn is over, or the session closed)."""
        unclaimed, self._unclaimed = self._unclaimed, []
        for seg in unclaimed:
            self._emit_orphan(seg)

    def _emit_orphan(self, seg: PlayedSegment) -> None:
        self.add(Spoken(seg.full_text or "", seg.source, seg.interrupted, len(self.spoken)))
