"""Fake-but-faithful LiveKit models and outputs, usable without pytest.

``FakeLLM``/``FakeTTS``/``FakeSTT`` subclass livekit's own ``LLM``/``TTS``/``STT`` and run
inside livekit's real streams (retries, error events, metrics); ``attach_outputs`` records
what reached the user; ``no_backoff`` removes retry waits from wall time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .audio import (
    FakeAudioInput,
    Outputs,
    PlayedSegment,
    RecordingAudioOutput,
    RecordingTextOutput,
    Spoken,
    TextSegment,
    attach_outputs,
    heard_prefix,
)
from .events import FakeEvent
from .llm import FakeLLM, LLMCall, partial_chunk_text
from .stt import MANUAL_FLUSH, FakeSTT
from .timing import NoBackoff, no_backoff
from .tts import FAKE_TTS_FRAME_KEY, FakeTTS, is_tts_frame

if TYPE_CHECKING:
    from livekit.agents import AgentSession

__all__ = [
    "FAKE_TTS_FRAME_KEY",
    "MANUAL_FLUSH",
    "FakeAudioInput",
    "FakeEvent",
    "FakeLLM",
    "FakeSTT",
    "FakeTTS",
    "LLMCall",
    "NoBackoff",
    "Outputs",
    "PlayedSegment",
    "RecordingAudioOutput",
    "RecordingTextOutput",
    "Spoken",
    "TextSegment",
    "attach_outputs",
    "heard_prefix",
    "is_tts_frame",
    "make_session",
    "no_backoff",
    "partial_chunk_text",
]


def make_session(**kwargs: Any) -> AgentSession[Any]:
    """``AgentSession(**kwargs)`` with offline defaults, for 1.6.0 and 1.8.x alike.

    Defaults (each only when the kwarg is absent): ``vad=None`` (otherwise livekit builds a
    Silero VAD) and ``turn_handling={"turn_detection": "manual", "endpointing":
    {"min_delay": 0.0}}``; both releases take ``turn_handling``. The zero endpointing delay
    only matters for audio turns (``commit_user_turn()`` otherwise waits 0.5 s of wall time
    before the reply); text turns never wait. On 1.6 only, with an ``stt``,
    ``session_close_transcript_timeout=0.0`` too (see the comment). Call it inside the
    running event loop.
    """
    from livekit.agents import AgentSession

    kwargs.setdefault("vad", None)
    if kwargs.get("stt") is not None and not MANUAL_FLUSH:
        # 1.6 cannot flush an STT, so closing waits this long for a final transcript the
        # fake already delivered when the audio arrived
        kwargs.setdefault("session_close_transcript_timeout", 0.0)
    kwargs.setdefault(
        "turn_handling", {"turn_detection": "manual", "endpointing": {"min_delay": 0.0}}
    )
    return AgentSession(**kwargs)
