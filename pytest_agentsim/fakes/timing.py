"""Retry waits that cost no wall time, with livekit's retry policy left untouched.

livekit-agents sleeps between attempts in exactly these places (1.6.0 and 1.8.x alike):
``LLMStream._main_task`` (llm/llm.py), ``ChunkedStream._main_task`` and
``SynthesizeStream._main_task`` (tts/tts.py), ``STT.recognize`` and
``RecognizeStream._main_task`` (stt/stt.py), each as ``await asyncio.sleep(retry_interval)``
with ``retry_interval = conn_options._interval_for_retry(i)`` (0.1 s for the first retry,
``retry_interval`` after); and, on 1.8, the session's STT pump waits
``_STT_RECONNECT_INTERVAL`` (0.5 s) before recreating a failed stream
(voice/audio_recognition.py). Those modules call ``asyncio.sleep`` nowhere else, so
:func:`no_backoff` swaps *their* module-level ``asyncio`` name for a proxy whose ``sleep``
returns at once (after one event-loop turn) and records the wait; every other attribute is
the real ``asyncio``. Attempt counts, ``retryable`` checks and error events are unchanged,
and asyncio itself is never patched.

The openai SDK retries too where livekit leaves its ``max_retries`` on (``inference.LLM``
on 1.6.0 keeps the default 2), waiting with ``anyio.sleep`` in ``openai._base_client``,
its only ``anyio.sleep``: when openai is installed, that module's ``anyio`` name gets the
same kind of proxy.
"""

from __future__ import annotations

import asyncio
import importlib
import types
from typing import Any, TypeVar

__all__ = ["BACKOFF_MODULES", "NoBackoff", "no_backoff"]

BACKOFF_MODULES: tuple[str, ...] = (
    "livekit.agents.llm.llm",
    "livekit.agents.tts.tts",
    "livekit.agents.stt.stt",
    "livekit.agents.voice.audio_recognition",
)
"""Modules whose ``asyncio.sleep`` calls are all retry waits (checked on 1.6.0 and 1.8.9)."""

_T = TypeVar("_T")

_active: list[NoBackoff] = []
_saved: dict[str, Any] = {}


class _InstantSleepAsyncio(types.ModuleType):
    """Stands in for ``asyncio`` inside the patched modules: ``sleep`` is instant."""

    def __init__(self) -> None:
        super().__init__("asyncio")

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    async def sleep(delay: float, result: _T = None) -> _T:  # type: ignore[assignment]
        for nb in _active:
            nb.waits.append(float(delay))
        # one loop turn, like a real sleep, so other tasks still interleave
        return await asyncio.sleep(0, result)


_PROXY = _InstantSleepAsyncio()

SDK_BACKOFF_MODULE = "openai._base_client"
"""The openai SDK's retry wait (``await anyio.sleep(timeout)``), patched when importable."""


class _InstantSleepAnyio(types.ModuleType):
    """Stands in for ``anyio`` inside ``openai._base_client``: ``sleep`` is instant."""

    def __init__(self, real: types.ModuleType) -> None:
        super().__init__("anyio")
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    @staticmethod
    async def sleep(delay: float) -> None:
        for nb in _active:
            nb.waits.append(float(delay))
        await asyncio.sleep(0)


def _patch_sdk() -> None:
    try:
        module = importlib.import_module(SDK_BACKOFF_MODULE)
    except ImportError:
        return  # no openai SDK: nothing of it to patch
    real = getattr(module, "anyio", None)
    if not isinstance(real, types.ModuleType) or real.__name__ != "anyio":
        raise RuntimeError(
            f"no_backoff: {SDK_BACKOFF_MODULE}.anyio is not the anyio module; "
            "the openai SDK changed how it waits between retries"
        )
    _saved[SDK_BACKOFF_MODULE] = real
    module.anyio = _InstantSleepAnyio(real)  # type: ignore[attr-defined]


class NoBackoff:
    """Context manager returned by :func:`no_backoff`; ``waits`` lists the skipped sleeps."""

    def __init__(self, modules: tuple[str, ...] = BACKOFF_MODULES) -> None:
        self.modules = modules
        self.waits: list[float] = []

    @property
    def skipped_seconds(self) -> float:
        """Virtual time the retry waits would have cost."""
        return sum(self.waits)

    def __enter__(self) -> NoBackoff:
        if not _active:
            for name in self.modules:
                module = importlib.import_module(name)
                if getattr(module, "asyncio", None) is not asyncio:
                    raise RuntimeError(
                        f"no_backoff: {name}.asyncio is not the asyncio module; "
                        "livekit-agents changed how it waits between retries"
                    )
                _saved[name] = module.asyncio
                module.asyncio = _PROXY  # type: ignore[attr-defined]
            _patch_sdk()
        elif self.modules != _active[0].modules:
            raise RuntimeError("nested no_backoff() blocks must patch the same modules")
        _active.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _active.remove(self)
        if not _active:
            for name, original in _saved.items():
                attr = "anyio" if name == SDK_BACKOFF_MODULE else "asyncio"
                setattr(importlib.import_module(name), attr, original)
            _saved.clear()


def no_backoff(modules: tuple[str, ...] = BACKOFF_MODULES) -> NoBackoff:
    """Make livekit's retry waits instant inside the ``with`` block (sync context manager,
    fine around an async test body); attempts and retry decisions are unchanged."""
    return NoBackoff(modules)
