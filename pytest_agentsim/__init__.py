"""pytest-agentsim: LiveKit Agents scenarios as offline, deterministic pytest tests.

Heavy names (everything that imports livekit) load on first use, so that merely having
the plugin installed costs a pytest run nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# first: the clocks a virtual-clock run moves are replaced before livekit is imported
from . import clock  # noqa: F401  (isort: skip)
from . import faults
from .errors import AgentSimAssertionError, AgentsimWarning, ScenarioError, ScenarioFailure
from .load.loader import load_scenario_file
from .load.model import Scenario, ScenarioFile
from .observe.history import normalize_history

if TYPE_CHECKING:
    from .fakes import FakeLLM, FakeSTT, FakeTTS, RecordingAudioOutput, RecordingTextOutput
    from .run.harness import AgentSim
    from .run.judge import IntentJudge, Verdict

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
    "AgentSim": "run.harness",
    "IntentJudge": "run.judge",
    "Verdict": "run.judge",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_agentsim' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
