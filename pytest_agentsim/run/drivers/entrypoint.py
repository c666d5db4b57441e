"""The entrypoint driver: an ``AgentServer``'s own entrypoint builds the session
(:class:`~.job.FakeJob`); turns are then played on it like the in-process driver does,
in the context the entrypoint started its session in.

Models the agent builds outside its session (an ``evals.JudgeGroup`` in
``on_session_end``) are real clients: a fake inference gateway answers them for the whole
job, from the scenario's ``session_end:`` answers.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import ClassVar, TypeVar

from livekit.agents import AgentServer

from ...load.model import Scenario
from ...transport import InferenceGateway
from ..harness import AgentSim
from ..scripts import Scripts, gateway_scripts
from ..settings import RunSettings
from .job import FakeJob
from .session import SessionDriver

__all__ = ["EntrypointDriver"]

T = TypeVar("T")


class EntrypointDriver(SessionDriver):
    mode_name: ClassVar[str] = "entrypoint mode"
    ends_a_job: ClassVar[bool] = True

    def __init__(
        self,
        sim: AgentSim,
        scenario: Scenario,
        settings: RunSettings,
        server: AgentServer,
        *,
        description: str,
    ) -> None:
        super().__init__(sim, scenario, settings)
        self.job = FakeJob(server, scenario, sim, mode=settings.mode, description=description)
        self._gateway: InferenceGateway | None = None
        self._end_scripts: Scripts | None = None

    async def start(self) -> None:
        self.hold_tool_mocks()
        gateway = self.sim.gateway
        if gateway is None:
            gateway = self._gateway = await InferenceGateway().start()
        self._end_scripts = gateway_scripts(gateway, self.sim)
        await self.job.__aenter__()
        await self.job.start()

    async def greeting(self) -> None:
        # the run session.start() set going (on_enter), then whatever the entrypoint does
        # after start() (a greeting of its own)
        self.sim.greeting_run = self.job.greeting_run
        await self.sim.wait_greeting()

    async def within(self, step: Awaitable[T]) -> T:
        return await self.job.in_session_context(step)

    async def finish(self) -> None:
        self.job.check_entrypoint()
        await self.job.finalize()

    def session_end_scripts(self) -> Scripts | None:
        return self._end_scripts

    async def aclose(self, *, failed: bool) -> None:
        try:
            await self.job.close(failed=failed)
            await super().aclose(failed=failed)
        finally:
            self.sim.release_logs()
            if self._gateway is not None:
                await self._gateway.aclose()
