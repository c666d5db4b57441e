"""Recording outputs: what reached the user, with playout that costs no wall time.

The voice pipeline waits for ``audio_output.wait_for_playout()``, which ends when the sink
reports ``on_playback_finished``; the sink owns playout time. :class:`RecordingAudioOutput`
either finishes each segment on ``flush()`` (instant) or on a virtual clock moved by
:meth:`RecordingAudioOutput.advance`, so interruptions land at exact positions.

:func:`attach_outputs` installs both recorders on a session and merges them into one
``spoken`` list: in text mode the transcription segments, in audio mode the played audio
segments, each paired with the text of the same speech (livekit forwards a generation's
text and audio concurrently, one flush each, while ``session.current_speech`` is that
speech, so the speech id pairs them).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

from livekit import rtc
from livekit.agents.voice import io

from .tts import is_tts_frame
from .voice import heard_prefix

if TYPE_CHECKING:
    from livekit.agents import AgentSession

__all__ = [
    "Outputs",
    "PlayedSegment",
    "RecordingAudioOutput",
    "RecordingTextOutput",
    "Spoken",
    "SpokenLog",
    "TextSegment",
    "attach_outputs",
]

AudioSource = Literal["tts", "audio"]
SpokenSource = Literal["tts", "audio", "text"]


class _Speech(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def interrupted(self) -> bool: ...


SpeechLookup = Callable[[], "_Speech | None"]
"""Returns the speech being played now (``session.current_speech``), if known."""


@dataclasses.dataclass
class PlayedSegment:
    """One audio segment (first frame to ``flush()``/``clear_buffer()``) the sink received."""

    index: int
    source: AudioSource
    speech_id: str | None
    frames: int = 0
    duration: float = 0.0
    """Seconds of audio captured."""
    played: float = 0.0
    """Seconds played out: ``duration`` unless interrupted."""
    interrupted: bool = False
    finished: bool = False
    full_text: str | None = None
    """The text of the same speech as the transcription output received it, if paired."""
    starts_at: float = 0.0
    """Loop time its playout starts (``clocked``: after the segments queued before it)."""

    @property
    def text(self) -> str | None:
        """What the user heard: ``full_text``, cut at the playout position if interrupted."""
        if self.full_text is None:
            return None
        if not self.interrupted:
            return self.full_text
        return heard_prefix(self.full_text, self.played / self.duration if self.duration else 0)


@dataclasses.dataclass
class TextSegment:
    """Text forwarded to the transcription output between two ``flush()`` calls."""

    index: int
    speech_id: str | None
    text: str = ""
    done: bool = False
    interrupted: bool = False


@dataclasses.dataclass(frozen=True)
class Spoken:
    """One thing that reached the user; ``at`` is its ordinal in ``Outputs.spoken``."""

    text: str
    source: SpokenSource
    interrupted: bool
    at: int
    speech_id: str | None = None


class RecordingAudioOutput(io.AudioOutput):
    """An audio sink that records segments and plays them instantly or on a virtual clock.

    ``instant=True``: each segment finishes (not interrupted) when the framework flushes it.
    ``instant=False``: nothing finishes until :meth:`advance` moves the clock past the end
    of a flushed segment; ``clear_buffer()`` then reports the exact virtual position.
    ``clocked=True``: segments play out in the event loop's time, one after the other, as a
    speaker does (on the virtual clock that costs nothing); an interruption (``clear_buffer``)
    stops each at the loop's time, so what the user heard is what played before it.
    """

    def __init__(
        self,
        *,
        instant: bool = True,
        label: str = "agentsim-audio",
        sample_rate: int | None = None,
        current_speech: SpeechLookup | None = None,
        clocked: bool = False,
    ) -> None:
        super().__init__(
            label=label,
            capabilities=io.AudioOutputCapabilities(pause=True),
            sample_rate=sample_rate,
        )
        self.instant = instant and not clocked
        self.clocked = clocked
        self._free_at = 0.0  # loop time the last queued segment ends (clocked)
        self._ends: dict[int, asyncio.TimerHandle] = {}
        self.segments: list[PlayedSegment] = []
        self.clock = 0.0
        """Virtual seconds advanced so far (``instant=False``)."""
        self._current_speech = current_speech
        self._capturing: PlayedSegment | None = None
        self._playing: deque[PlayedSegment] = deque()  # captured, not finished, in order
        self._text_for: Callable[[PlayedSegment], str | None] = lambda seg: seg.full_text
        self._listeners: list[Callable[[str, PlayedSegment], None]] = []
        self._paused = False
        self._paused_at: float | None = None  # loop time a clocked playout was paused
        self._flushed: asyncio.Event | None = None

    def add_listener(self, fn: Callable[[str, PlayedSegment], None]) -> None:
        """``fn(kind, segment)`` with kind ``"started"`` or ``"finished"``."""
        self._listeners.append(fn)

    @property
    def pending_seconds(self) -> float:
        """Audio captured but not yet played (``instant=False``)."""
        return sum(s.duration - s.played for s in self._playing)

    @property
    def paused(self) -> bool:
        return self._paused

    async def wait_for_captured(self) -> PlayedSegment:
        """Wait until a segment is fully captured (flushed) and still playing; return it.

        With ``instant=False`` this is the moment to :meth:`advance` and interrupt."""
        while True:
            for seg in self._playing:
                if seg is not self._capturing:
                    return seg
            if self._flushed is None:
                self._flushed = asyncio.Event()
            self._flushed.clear()
            await self._flushed.wait()

    def pause(self) -> None:
        # livekit pauses on a possible false interruption: the playout stands still
        if self.clocked and not self._paused:
            self._paused_at = self._now()
            for end in self._ends.values():
                end.cancel()
            self._ends.clear()
        self._paused = True
        super().pause()

    def resume(self) -> None:
        if self.clocked and self._paused_at is not None:
            # what was still to play plays on from here
            shift, self._paused_at = self._now() - self._paused_at, None
            self._free_at += shift
            loop = asyncio.get_running_loop()
            for seg in self._playing:
                seg.starts_at += shift
                if seg is not self._capturing:
                    end = seg.starts_at + seg.duration
                    self._ends[seg.index] = loop.call_at(end, self._played_out, seg)
        self._paused = False
        super().resume()

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        seg = self._capturing
        if seg is None:
            speech = self._current_speech() if self._current_speech else None
            seg = PlayedSegment(
                index=len(self.segments),
                source="tts" if is_tts_frame(frame) else "audio",
                speech_id=speech.id if speech is not None else None,
            )
            self._capturing = seg
            if self.clocked:
                seg.starts_at = max(self._now(), self._free_at)
            self.segments.append(seg)
            self._playing.append(seg)
            self.on_playback_started(created_at=time.time())
            self._emit("started", seg)
        if seg.finished:
            return  # cleared while capturing: the rest of this segment is never played
        seg.frames += 1
        seg.duration += frame.duration

    def flush(self) -> None:
        super().flush()
        seg, self._capturing = self._capturing, None
        if seg is None or seg.finished:
            return
        if self._flushed is not None:
            self._flushed.set()
        if self.instant:
            self._finish(seg, played=seg.duration, interrupted=False)
        elif self.clocked:
            self._free_at = seg.starts_at + seg.duration
            loop = asyncio.get_running_loop()
            self._ends[seg.index] = loop.call_at(self._free_at, self._played_out, seg)
        else:
            self._play(0.0)

    def clear_buffer(self) -> None:
        while self._playing:
            seg = self._playing[0]
            # instant playout has played everything it was given
            played = seg.duration if self.instant else seg.played
            if self.clocked:
                now = self._paused_at if self._paused_at is not None else self._now()
                played = min(max(now - seg.starts_at, 0.0), seg.duration)
            self._finish(seg, played=played, interrupted=True)
        self._free_at = self._paused_at if self._paused_at is not None else self._now()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _played_out(self, seg: PlayedSegment) -> None:
        self._ends.pop(seg.index, None)
        if seg in self._playing:
            self._finish(seg, played=seg.duration, interrupted=False)

    def advance(self, seconds: float) -> None:
        """Play ``seconds`` of virtual time (``instant=False``), finishing segments whose
        end is reached. Call ``await asyncio.sleep(0)`` after it to let the pipeline react."""
        if seconds < 0:
            raise ValueError("advance() needs a non-negative duration")
        if self._paused:
            return
        self.clock += seconds
        self._play(seconds)

    def _play(self, seconds: float) -> None:
        while self._playing:
            seg = self._playing[0]
            step = min(seconds, seg.duration - seg.played)
            seg.played += step
            seconds -= step
            if seg is self._capturing or seg.played < seg.duration:
                return  # still arriving, or the clock stops inside it
            self._finish(seg, played=seg.duration, interrupted=False)

    def _finish(self, seg: PlayedSegment, *, played: float, interrupted: bool) -> None:
        self._playing.remove(seg)
        end = self._ends.pop(seg.index, None)
        if end is not None:
            end.cancel()
        seg.played = played
        seg.interrupted = interrupted
        seg.finished = True
        synchronized: str | None = None
        if interrupted:
            text = self._text_for(seg)
            if text is not None:
                # without it livekit keeps the full text of an interrupted message
                synchronized = heard_prefix(text, played / seg.duration if seg.duration else 0)
        self.on_playback_finished(
            playback_position=played,
            interrupted=interrupted,
            synchronized_transcript=synchronized,
        )
        self._emit("finished", seg)

    def _emit(self, kind: str, seg: PlayedSegment) -> None:
        for fn in list(self._listeners):
            fn(kind, seg)


class RecordingTextOutput(io.TextOutput):
    """A transcription sink recording each flushed text segment."""

    def __init__(
        self,
        *,
        label: str = "agentsim-text",
        next_in_chain: io.TextOutput | None = None,
        current_speech: SpeechLookup | None = None,
    ) -> None:
        super().__init__(label=label, next_in_chain=next_in_chain)
        self.segments: list[TextSegment] = []
        self.attached = False
        self._current_speech = current_speech
        self._open: TextSegment | None = None
        self._listeners: list[Callable[[str, TextSegment], None]] = []

    def add_listener(self, fn: Callable[[str, TextSegment], None]) -> None:
        """``fn(kind, segment)`` with kind ``"started"`` or ``"done"``."""
        self._listeners.append(fn)

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.segments if s.done]

    async def capture_text(self, text: str) -> None:
        self._segment().text += text
        if self.next_in_chain is not None:
            await self.next_in_chain.capture_text(text)

    def flush(self) -> None:
        # livekit flushes once per forwarded generation, text or not; an empty segment
        # still marks that generation so audio pairs with the right text
        seg = self._segment()
        self._open = None
        speech = self._current_speech() if self._current_speech else None
        seg.interrupted = bool(speech is not None and speech.interrupted)
        seg.done = True
        self._emit("done", seg)
        if self.next_in_chain is not None:
            self.next_in_chain.flush()

    def on_attached(self) -> None:
        self.attached = True
        super().on_attached()

    def on_detached(self) -> None:
        self.attached = False
        super().on_detached()

    def _segment(self) -> TextSegment:
        if self._open is None:
            speech = self._current_speech() if self._current_speech else None
            self._open = TextSegment(
                index=len(self.segments), speech_id=speech.id if speech is not None else None
            )
            self.segments.append(self._open)
            self._emit("started", self._open)
        return self._open

    def _emit(self, kind: str, seg: TextSegment) -> None:
        for fn in list(self._listeners):
            fn(kind, seg)


class SpokenLog:
    """What reached the user, in order, and who is told when more does."""

    def __init__(self) -> None:
        self.spoken: list[Spoken] = []
        self._listeners: list[Callable[[Spoken], None]] = []

    def on_spoken(self, fn: Callable[[Spoken], None]) -> None:
        """Call ``fn(spoken)`` when an item reaches the user (text flushed / audio played)."""
        self._listeners.append(fn)

    def add(self, item: Spoken) -> None:
        """``item`` reached the user."""
        self.spoken.append(item)
        for fn in list(self._listeners):
            fn(item)


class Outputs(SpokenLog):
    """The recorders :func:`attach_outputs` installed, and the unified ``spoken`` list."""

    def __init__(self, text: RecordingTextOutput, audio: RecordingAudioOutput | None) -> None:
        super().__init__()
        self.text = text
        self.audio = audio
        # audio <-> text pairing, per speech id
        self._pair: dict[int, TextSegment] = {}  # audio segment index -> its text
        self._unclaimed: deque[TextSegment] = deque()
        self._waiting: deque[PlayedSegment] = deque()  # audio started, no text yet
        self._pending: list[PlayedSegment] = []  # audio finished, text not done yet
        text.add_listener(self._on_text)
        if audio is not None:
            audio._text_for = self._text_for
            audio.add_listener(self._on_audio)

    @property
    def mode(self) -> Literal["text", "audio"]:
        return "audio" if self.audio is not None else "text"

    def finalize(self) -> None:
        """Emit audio segments still waiting for their text (e.g. at session end)."""
        for seg in list(self._pending):
            self._emit_audio(seg)

    # -- pairing ---------------------------------------------------------------------------
    def _text_for(self, seg: PlayedSegment) -> str | None:
        pair = self._pair.get(seg.index)
        return pair.text if pair is not None else None

    def _on_text(self, kind: str, seg: TextSegment) -> None:
        if self.audio is None:
            if kind == "done" and seg.text:
                self.add(Spoken(seg.text, "text", seg.interrupted, len(self.spoken), seg.speech_id))
            return
        if kind == "started":
            audio_seg = next((a for a in self._waiting if a.speech_id == seg.speech_id), None)
            if audio_seg is not None:
                self._waiting.remove(audio_seg)
                self._pair[audio_seg.index] = seg
            else:
                self._unclaimed.append(seg)
            return
        for audio_seg in list(self._pending):
            if self._pair.get(audio_seg.index) is seg:
                self._emit_audio(audio_seg)

    def _on_audio(self, kind: str, seg: PlayedSegment) -> None:
        if kind == "started":
            # speeches play one at a time: whatever belongs to another speech is settled
            for stale in [t for t in self._unclaimed if t.speech_id != seg.speech_id and t.done]:
                self._unclaimed.remove(stale)
            for waiting in [a for a in self._pending if a.speech_id != seg.speech_id]:
                self._emit_audio(waiting)
            text_seg = next((t for t in self._unclaimed if t.speech_id == seg.speech_id), None)
            if text_seg is not None:
                self._unclaimed.remove(text_seg)
                self._pair[seg.index] = text_seg
            else:
                self._waiting.append(seg)
            return
        pair = self._pair.get(seg.index)
        if (pair is not None and pair.done) or not self.text.attached:
            self._emit_audio(seg)
        else:
            self._pending.append(seg)

    def _emit_audio(self, seg: PlayedSegment) -> None:
        if seg in self._pending:
            self._pending.remove(seg)
        if seg in self._waiting:
            self._waiting.remove(seg)
        seg.full_text = self._text_for(seg)
        self.add(
            Spoken(seg.text or "", seg.source, seg.interrupted, len(self.spoken), seg.speech_id)
        )


def attach_outputs(
    session: AgentSession[Any], *, audio: bool, instant: bool = True, clocked: bool = False
) -> Outputs:
    """Install recording outputs on ``session`` (before ``session.start()``).

    ``audio=False``: text mode, only a transcription recorder (no audio output, so the
    pipeline never synthesizes). ``audio=True``: a :class:`RecordingAudioOutput` too
    (``instant``/``clocked``: its playout, see the class).
    """
    if getattr(session, "_started", False):
        raise RuntimeError("attach_outputs() must run before session.start()")

    def current() -> _Speech | None:
        return session.current_speech

    text = RecordingTextOutput(current_speech=current)
    sink = (
        RecordingAudioOutput(instant=instant, clocked=clocked, current_speech=current)
        if audio
        else None
    )
    session.output.transcription = text
    session.output.audio = sink
    return Outputs(text, sink)
