"""pytest-agentsim: LiveKit Agents scenarios as offline, deterministic pytest tests.

Heavy names (everything that imports livekit) load on first use, so that merely having
the plugin installed costs a pytest run nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import faults
from .errors import AgentsimWarning, ScenarioError
from .loader import Scenario, ScenarioFile, load_scenario_file

if TYPE_CHECKING:
    from .fakes import FakeLLM, FakeSTT, FakeTTS, RecordingAudioOutput, RecordingTextOutput
    from .harness import AgentSim, AgentSimAssertionError
    from .history import normalize_history
    from .judge import IntentJudge, Verdict
    from .runner import ScenarioFailure

__all__ = [
    "AgentSim",
    "AgentSimAssertionError",
    "AgentsimWarning",
    "FakeLLM",
    "FakeSTT",
    "FakeTTS",
    "IntentJudge",
    "RecordingAudioOutput",
    "RecordingTextOutput",
    "Scenario",
    "ScenarioError",
    "ScenarioFailure",
    "ScenarioFile",
    "Verdict",
    "faults",
    "load_scenario_file",
    "normalize_history",
]

_LAZY = {
    "FakeLLM": "fakes",
    "FakeSTT": "fakes",
    "FakeTTS": "fakes",
    "RecordingAudioOutput": "fakes",
    "RecordingTextOutput": "fakes",
    "AgentSim": "harness",
    "AgentSimAssertionError": "harness",
    "normalize_history": "history",
    "ScenarioFailure": "runner",
    "IntentJudge": "judge",
    "Verdict": "judge",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_agentsim' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
