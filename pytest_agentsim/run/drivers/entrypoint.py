"""The entrypoint driver: an ``AgentServer``'s own entrypoint builds the session
(:class:`~.job.FakeJob`); turns are then played on it like the in-process driver does,
in the context the entrypoint started its session in."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from livekit.agents import AgentServer

from ...load.model import Scenario
from ..harness import AgentSim
from ..settings import RunSettings
from .job import FakeJob
from .session import SessionDriver

__all__ = ["EntrypointDriver"]

T = TypeVar("T")


class EntrypointDriver(SessionDriver):
    mode_name: ClassVar[str] = "entrypoint mode"

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

    async def start(self) -> None:
        await self.job.__aenter__()
        await self.job.start()

    async def within(self, step: Any) -> Any:
        return await self.job.in_session_context(step)

    async def finish(self) -> None:
        self.job.check_entrypoint()
        await self.job.finalize()

    async def aclose(self, *, failed: bool) -> None:
        await self.job.close(failed=failed)
        await super().aclose(failed=failed)
