"""The simulation dispatch: what the cloud hands a job so that it knows it is a simulation.

``dispatch_json`` builds the protojson ``SimulationDispatch{simulation_run_id, job_id,
scenario, mode}`` the cloud sends; ``install_dispatch`` puts it where the installed
livekit reads it; ``begin_finalize`` does what the cloud's ``finalize_simulation`` does
before ``on_simulation_end``. Used in this process (entrypoint mode) and in the child of
process mode alike.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any, Literal

from google.protobuf import json_format
from livekit.agents import JobContext
from livekit.agents.simulation import SimulationContext, SimulationVerdict
from livekit.protocol import agent_simulation as sim_pb

from ...errors import ScenarioError
from ...load.model import Scenario

__all__ = [
    "SCRIPTED_PASS_REASON",
    "SIMULATOR_DISPATCH_ATTRIBUTE",
    "begin_finalize",
    "dispatch_json",
    "install_dispatch",
    "reads_job_attribute",
    "simulation_ids",
]

SIMULATOR_DISPATCH_ATTRIBUTE = "lk.simulator.dispatch"
"""Where the cloud puts the protojson ``SimulationDispatch`` (livekit's
``types.ATTRIBUTE_SIMULATOR_DISPATCH``)."""

SCRIPTED_PASS_REASON = "every scripted turn passed (pytest-agentsim)"
"""The simulator verdict's reason when the plugin, not a judge, decided (scripted turns)."""


def _short_hash(*parts: object) -> str:
    return hashlib.sha1("\0".join(map(str, parts)).encode()).hexdigest()[:12]


def simulation_ids(scenario: Scenario) -> tuple[str, str]:
    """Stable ``(simulation_run_id, job_id)`` for a scenario (same on every run and worker)."""
    file_key = _short_hash(scenario.path.name)
    return (
        f"agentsim_run_{file_key}",
        f"agentsim_job_{_short_hash(scenario.path.name, scenario.index, scenario.label)}",
    )


def dispatch_json(scenario: Scenario, *, mode: Literal["text", "audio"]) -> str:
    """The protojson ``SimulationDispatch`` the cloud sends for ``scenario``.

    Go's ``protojson.Marshal`` defaults (lowerCamelCase names, enum names, unset fields
    omitted) are ``json_format.MessageToJson``'s defaults too.
    """
    run_id, job_id = simulation_ids(scenario)
    dispatch = sim_pb.SimulationDispatch(
        simulation_run_id=run_id,
        job_id=job_id,
        scenario=scenario.to_proto(),
        mode=(
            sim_pb.SimulationMode.SIMULATION_MODE_AUDIO
            if mode == "audio"
            else sim_pb.SimulationMode.SIMULATION_MODE_TEXT
        ),
    )
    return json_format.MessageToJson(dispatch, indent=None)


def begin_finalize(
    sim_ctx: SimulationContext, *, run_id: str, verdict: tuple[bool, str] | None = None
) -> None:
    """``SimulationContext._begin_finalize`` as the cloud's ``finalize_simulation`` calls it
    before ``on_simulation_end``: the simulator's verdict (``verdict``, or passed for
    scripted turns) and a run carrying only its id (plus ``job=None`` on livekit 1.6).
    Also used by process mode's child (:mod:`pytest_agentsim.run.drivers.shim`)."""

    success, reason = verdict if verdict else (True, SCRIPTED_PASS_REASON)
    kwargs: dict[str, Any] = {
        "simulator_verdict": SimulationVerdict(success=success, reason=reason),
        "run": sim_pb.SimulationRun(id=run_id),
    }
    if "job" in inspect.signature(sim_ctx._begin_finalize).parameters:
        kwargs["job"] = None  # livekit 1.6 also takes the run job (the cloud sends None)
    sim_ctx._begin_finalize(**kwargs)


def reads_job_attribute() -> bool:
    """Whether the installed livekit reads the dispatch from the job attribute (>= 1.7, as
    the cloud sends it); 1.6.0 reads the simulator participant's attribute, then the job
    metadata."""
    return "job.attributes" in inspect.getsource(JobContext.simulation_context)


def install_dispatch(ctx: JobContext, payload: str) -> str:
    """Put the dispatch where the installed livekit reads it; returns where that was."""
    # set before the first simulation_context(): with the fake room connected, every
    # release caches a miss
    if reads_job_attribute():
        ctx.job.attributes[SIMULATOR_DISPATCH_ATTRIBUTE] = payload
        where = f"job attribute {SIMULATOR_DISPATCH_ATTRIBUTE}"
    else:
        ctx.job.metadata = payload
        where = "job metadata"
    if ctx.simulation_context() is not None:
        return where
    raise ScenarioError(
        "entrypoint mode: this livekit-agents release does not read the simulation "
        "dispatch from the job (JobContext.simulation_context() stays None)",
        fix="upgrade livekit-agents, or point agentsim.agent at the Agent class",
    )
