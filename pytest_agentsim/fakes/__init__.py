"""Fake-but-faithful LiveKit models and outputs, usable without pytest.

``FakeLLM``/``FakeTTS``/``FakeSTT`` subclass livekit's own ``LLM``/``TTS``/``STT`` and run
inside livekit's real streams (retries, error events, metrics); ``attach_outputs`` records
what reached the user; ``no_backoff`` removes retry waits from wall time.
"""

from __future__ import annotations

from .audio import (
    Outputs,
    PlayedSegment,
    RecordingAudioOutput,
    RecordingTextOutput,
    Spoken,
    TextSegment,
    attach_outputs,
)
from .audio_input import FakeAudioInput
from .events import FakeEvent
from .llm import FakeLLM, LLMCall, partial_chunk_text
from .session import SESSION_ARGS, SESSION_CLASS, make_session
from .stt import MANUAL_FLUSH, FakeSTT
from .timing import NoBackoff, no_backoff
from .tts import FAKE_TTS_FRAME_KEY, FakeTTS, is_tts_frame
from .voice import FakeVAD, UserVoice, Utterance, heard_prefix

__all__ = [
    "FAKE_TTS_FRAME_KEY",
    "MANUAL_FLUSH",
    "SESSION_ARGS",
    "SESSION_CLASS",
    "FakeAudioInput",
    "FakeEvent",
    "FakeLLM",
    "FakeSTT",
    "FakeTTS",
    "FakeVAD",
    "LLMCall",
    "NoBackoff",
    "Outputs",
    "PlayedSegment",
    "RecordingAudioOutput",
    "RecordingTextOutput",
    "Spoken",
    "TextSegment",
    "UserVoice",
    "Utterance",
    "attach_outputs",
    "heard_prefix",
    "is_tts_frame",
    "make_session",
    "no_backoff",
    "partial_chunk_text",
]
