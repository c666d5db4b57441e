"""The engine's entry points, as the plugin (and Python users) call them.

``run_scenario`` picks the driver for a scripted scenario (an ``Agent`` target in a session
built here, an ``AgentServer``'s entrypoint in a fake job, or an agent file in a child
process) and has the one turn player play it; ``run_simulation`` runs a scenario without
turns (LLM user and judge, from its cassette). Importing this module imports livekit: the
plugin imports it lazily, at its edge, and nowhere else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from livekit.agents import Agent

from ..fakes import FakeLLM, FakeSTT, FakeTTS, no_backoff
from ..load.model import Judge, Scenario
from ..transport import InferenceGateway, NetworkGuard, block_network
from ..transport.offline import late_attempts
from .cassette import Cassette, cassette_path
from .contain import run_contained
from .drivers.base import Driver
from .drivers.entrypoint import EntrypointDriver
from .drivers.process import ProcessDriver
from .drivers.session import SessionDriver
from .harness import AgentSim
from .judge import IntentJudge, Verdict, open_intent_judge
from .player import ScenarioRun, TurnPlayer
from .recording import RECORD_MODES, RecordMode, open_cassette, record_plan, save_cassette
from .settings import RunSettings
from .simulate import SimulationSettings, run_simulation
from .target import AgentTarget, locate_agent_file, resolve_target
from .vclock import VirtualClockLoop

__all__ = [
    "RECORD_MODES",
    "AgentSim",
    "AgentTarget",
    "Cassette",
    "FakeLLM",
    "FakeSTT",
    "FakeTTS",
    "InferenceGateway",
    "IntentJudge",
    "NetworkGuard",
    "RecordMode",
    "RunSettings",
    "ScenarioRun",
    "SimulationSettings",
    "Verdict",
    "VirtualClockLoop",
    "block_network",
    "cassette_path",
    "late_attempts",
    "locate_agent_file",
    "no_backoff",
    "open_cassette",
    "open_intent_judge",
    "record_plan",
    "resolve_target",
    "run_contained",
    "run_scenario",
    "run_simulation",
    "save_cassette",
]


async def run_scenario(
    scenario: Scenario,
    target: AgentTarget | Callable[[Scenario], Agent | tuple[Agent, dict[str, Any]]] | Path,
    settings: RunSettings,
    *,
    judge: Judge | None = None,
    sim: AgentSim | None = None,
) -> ScenarioRun:
    """Play one scripted scenario; raises ScenarioFailure (or ScenarioError) on failure.

    ``target`` is an :class:`~.target.AgentTarget` (or a factory), or in process mode the
    agent file. With ``settings.transport == "gateway"`` the session's LLM is the real
    ``livekit.agents.inference.LLM``, served the same script over HTTP by the fake gateway.
    """
    if settings.process:
        if not isinstance(target, Path):
            raise TypeError("process mode runs an agent file: pass its Path")
        return await TurnPlayer(
            scenario, ProcessDriver(scenario, target, settings), settings, judge=judge
        ).run()
    async with contextlib.AsyncExitStack() as stack:
        if not settings.real_timing:
            stack.enter_context(no_backoff())
        if sim is None:
            gateway = None
            if settings.transport == "gateway":
                gateway = await stack.enter_async_context(InferenceGateway())
            sim = AgentSim(timeout=settings.timeout, gateway=gateway)
        driver = _in_process_driver(scenario, target, settings, sim)
        return await TurnPlayer(scenario, driver, settings, judge=judge).run()
    raise AssertionError("unreachable")  # pragma: no cover - the block returns


def _in_process_driver(
    scenario: Scenario,
    target: AgentTarget | Callable[[Scenario], Agent | tuple[Agent, dict[str, Any]]] | Path,
    settings: RunSettings,
    sim: AgentSim,
) -> Driver:
    if isinstance(target, Path):
        raise TypeError("an agent file runs in process mode (settings.process)")
    if isinstance(target, AgentTarget) and target.kind == "server":
        return EntrypointDriver(sim, scenario, settings, target.obj, description=target.description)
    if not isinstance(target, AgentTarget):
        target = AgentTarget("factory", target, getattr(target, "__qualname__", repr(target)))
    return SessionDriver(sim, scenario, settings, target.build)
