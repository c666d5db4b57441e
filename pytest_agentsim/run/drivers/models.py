"""Models an agent builds itself, served by the fakes without editing the agent.

An entrypoint passes ``inference.LLM(...)``, ``openai.LLM(...)`` or a model string to its
``AgentSession`` (or to an ``Agent``): :class:`ModelSwap` replaces each with the harness's
``FakeLLM``/``FakeTTS``/``FakeSTT`` *before* livekit sees it, so the real client never
prewarms a connection and the scenario's ``llm:`` steps and faults are what the fakes
raise. A realtime model has no fake and is kept (and fails offline, naming the host).
"""

from __future__ import annotations

import contextlib
from typing import Any

from livekit.agents import llm, stt, tts
from livekit.agents.utils import is_given

from ...fakes import FakeLLM, FakeSTT, FakeTTS
from ..harness import AgentSim

__all__ = ["MODEL_SLOTS", "ModelSwap", "describe_model"]

MODEL_SLOTS = ("llm", "tts", "stt")


def describe_model(value: Any) -> str:
    """``inference.LLM('openai/gpt-4.1-mini')``, ``openai.LLM``, or a model string."""
    if isinstance(value, str):
        return repr(value)
    cls = type(value)
    parts = cls.__module__.split(".")
    # livekit.agents.inference.llm.LLM -> inference.LLM; livekit.plugins.openai.llm -> openai.LLM
    owner = (
        parts[-2] if len(parts) >= 2 and parts[-1] in ("llm", "tts", "stt", "vad") else parts[-1]
    )
    model = None
    with contextlib.suppress(Exception):
        model = getattr(value, "model", None)
    return f"{owner}.{cls.__qualname__}" + (f"({model!r})" if isinstance(model, str) else "")


def _given(value: Any) -> bool:
    return value is not None and bool(is_given(value))


class ModelSwap:
    """Replaces models by ``sim``'s fakes; ``substitute_llm=False`` keeps the agent's own
    LLM client (the gateway transport, or a recorded simulation), noting why."""

    def __init__(self, sim: AgentSim, *, substitute_llm: bool, kept_llm_note: str) -> None:
        self.sim = sim
        self.substitute_llm = substitute_llm
        self.kept_llm_note = kept_llm_note

    def session_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """An ``AgentSession(**kwargs)``'s arguments with its models swapped."""
        kwargs = dict(kwargs)
        kwargs.update(self.swap("session", {s: kwargs.get(s) for s in MODEL_SLOTS}))
        voiced = self.sim.voiced
        if voiced is not None:  # spoken user turns: the session hears the user's voice
            replaced = voiced.session_kwargs(kwargs, add_stt=False)
            if replaced:
                self.sim.note("note", f"replaced for spoken user turns: {', '.join(replaced)}")
        elif "vad" not in kwargs:
            kwargs["vad"] = None  # not livekit's default local Silero: no audio ever comes in
        return kwargs

    def agent(self, agent: Any) -> None:
        """Swap an agent's own models (on every activity start, handoffs included)."""
        values = {s: getattr(agent, f"_{s}", None) for s in MODEL_SLOTS}
        for slot, fake in self.swap(type(agent).__name__, values).items():
            setattr(agent, f"_{slot}", fake)

    def swap(self, owner: str, values: dict[str, Any]) -> dict[str, Any]:
        """The fakes replacing ``values`` (slot -> model); notes what is swapped or kept."""
        sim = self.sim
        fakes = {"llm": sim.fake_llm, "tts": sim.fake_tts, "stt": sim.fake_stt}
        kinds = {"llm": llm.LLM, "tts": tts.TTS, "stt": stt.STT}
        out: dict[str, Any] = {}
        swapped, kept = [], []
        for slot, value in values.items():
            if not _given(value) or isinstance(value, FakeLLM | FakeTTS | FakeSTT):
                continue
            what = f"{slot} {describe_model(value)}"
            if not isinstance(value, str | kinds[slot]):
                # a realtime model has no scripted equivalent: it stays (and fails offline)
                kept.append(f"{what} (no fake for it)")
            elif slot == "llm" and not self.substitute_llm:
                kept.append(f"{what} ({self.kept_llm_note})")
            else:
                swapped.append(what)
                out[slot] = fakes[slot]
        if swapped:
            sim.note("note", f"{owner} models served by the fakes: {', '.join(swapped)}")
        if kept:
            sim.note("note", f"{owner} models kept: {', '.join(kept)}")
        return out
