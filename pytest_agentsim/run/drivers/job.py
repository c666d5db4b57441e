"""Entrypoint mode's job: an ``AgentServer``'s ``rtc_session`` entrypoint, unchanged, in a
fake job, the way LiveKit Cloud runs it for ``lk agent simulate``.

* **The job.** ``livekit.agents.testing.fake_job_context`` builds a real ``JobContext``
  (``is_fake_job()`` is true, as in console mode) whose job carries the scenario's
  ``SimulationDispatch`` (:mod:`.dispatch`), so ``ctx.simulation_context()``,
  ``sim.userdata()`` and ``mock_tools(..., session=session)`` are livekit's own code
  reading what the cloud sends. The server's ``setup_fnc`` runs first.
* **No room transport.** For sessions started inside *this* job (checked through livekit's
  job-context variable), ``AgentSession.start`` drops ``room``/``room_options`` and the
  harness's recording I/O is attached instead; turns are played in a copy of the context
  the entrypoint called ``start()`` in (where RoomIO's tasks would run), so context
  variables and context-manager ``mock_tools`` set there are seen.
* **Models** the entrypoint builds are swapped for the fakes (:mod:`.models`).
* **The end**, as the cloud's ``finalize_simulation``: the simulator verdict, then
  ``on_simulation_end(ctx)``; ``ctx.fail(reason)`` or an exception fails the scenario.
  Then the job shuts down as a worker's does: the entrypoint task is cancelled if still
  running, the session closes, ``on_session_end`` and shutdown callbacks run (their errors
  are reported as warnings and in the transcript, as the cloud only logs them).

Everything is undone when the job ends (patches, job context variable, environment).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import warnings
import weakref
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from livekit.agents import AgentServer, JobContext, get_job_context
from livekit.agents.simulation import SimulationContext
from livekit.agents.testing import fake_job_context

from ...env import dummy_credentials
from ...errors import AgentsimWarning, ScenarioError
from ...fakes.session import SESSION_CLASS, run_captures_on_enter
from ...load.model import Scenario
from ...observe.frames import describe_exception, user_traceback
from ...observe.timeline import TimelineEntry
from ..harness import AgentSim
from ..outcome import StepFailed, vetoed
from .dispatch import begin_finalize, dispatch_json, install_dispatch, simulation_ids
from .models import ModelSwap

if TYPE_CHECKING:
    from livekit.agents import AgentSession
from .room import FakeRoom, silent_background_audio

__all__ = ["FakeJob"]

T = TypeVar("T")

# start() keywords that only configure RoomIO: without a room there is nothing to configure
_ROOM_KWARGS = ("room", "room_options", "room_input_options", "room_output_options")


# Bound for each step of the job's shutdown, which runs after the verdict (or a failure)
# is known: a hung shutdown callback must not turn a finished scenario into a timeout.
_SHUTDOWN_STEP_TIMEOUT = 5.0


def _failed_run(error: Exception) -> asyncio.Future[None]:
    """An already failed greeting run (awaiting it raises ``error``)."""
    run: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    run.set_exception(error)
    return run


def _callable_name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))


class FakeJob:
    """One scenario's job, for the duration of ``async with``.

    ``await job.start()`` runs the entrypoint until its (first) ``AgentSession`` started,
    recorded by ``sim``; drive turns with ``sim``; ``await job.finalize()`` runs
    ``on_simulation_end`` and raises :class:`~pytest_agentsim.run.outcome.StepFailed` on a veto.
    """

    def __init__(
        self,
        server: AgentServer,
        scenario: Scenario,
        sim: AgentSim,
        *,
        mode: Literal["text", "audio"] = "text",
        description: str | None = None,
        substitute_llm: bool | None = None,
        kept_llm_note: str = "answered by the fake inference gateway",
    ) -> None:
        self.server = server
        self.scenario = scenario
        self.sim = sim
        self.mode: Literal["text", "audio"] = mode
        self.description = description or "AgentServer"
        self.models = ModelSwap(
            sim,
            # the gateway transport serves the entrypoint's own LLM client over HTTP
            substitute_llm=sim.gateway is None if substitute_llm is None else substitute_llm,
            kept_llm_note=kept_llm_note,
        )
        self.run_id, self.job_id = simulation_ids(scenario)
        self.session: AgentSession[Any] | None = None
        self.greeting_run: Any = None  # the RunResult of the primary session's start()
        self._ctx: JobContext | None = None
        self._stack = contextlib.ExitStack()
        self._sessions: weakref.WeakSet[Any] = weakref.WeakSet()
        self._started: asyncio.Future[None] | None = None
        self._entry_task: asyncio.Task[None] | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
        self._session_context: contextvars.Context | None = None
        self._entry_crash: TimelineEntry | None = None
        self._problems: list[str] = []

    @property
    def ctx(self) -> JobContext:
        if self._ctx is None:
            raise RuntimeError("the fake job is not running (use `async with FakeJob(...)`)")
        return self._ctx

    # -- lifecycle ---------------------------------------------------------------------
    async def __aenter__(self) -> FakeJob:

        self._started = asyncio.get_running_loop().create_future()
        try:
            self._stack.enter_context(dummy_credentials())
            # connected, like the console's room; named as a worker names the job's room
            self.room = FakeRoom(f"agentsim-{self.job_id}")
            room = self.room
            ctx = self._stack.enter_context(
                fake_job_context(room=room, job_id=f"AJ_{self.job_id}", agent_identity="agent")
            )
            self._ctx = ctx
            # the job runner hands on_simulation_end to the job context; the finalize
            # path reads it from there
            ctx._simulation_end_fnc = getattr(self.server, "_simulation_end_fnc", None)
            if hasattr(ctx, "_on_shutdown"):
                # ctx.shutdown() from the agent ends the job, as in a worker
                ctx._on_shutdown = self._on_ctx_shutdown
            where = install_dispatch(ctx, dispatch_json(self.scenario, mode=self.mode))
            self._stack.enter_context(self._patched_sessions())
            self._stack.enter_context(
                silent_background_audio(lambda text: self.sim.note("note", text))
            )
        except BaseException:
            self._stack.close()
            raise
        self.sim.note(
            "note",
            f"entrypoint mode: {self.description} in a fake job (simulation run "
            f"{self.run_id}, {self.mode} mode, dispatch in the {where})",
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close(failed=exc is not None)

    async def close(self, *, failed: bool) -> None:
        """End the job as a worker does (quickly when the scenario already failed)."""
        if self._ctx is None:
            return
        try:
            if self._shutdown_task is None:
                self._shutdown_task = asyncio.ensure_future(
                    self._shutdown_job("simulation completed", quick=failed)
                )
            with contextlib.suppress(Exception):
                await asyncio.shield(self._shutdown_task)
        finally:
            self._stack.close()
            self._ctx = None
        if not failed:
            for text in self._problems:
                warnings.warn_explicit(
                    f"{self.scenario.name}: {text}",
                    AgentsimWarning,
                    filename=str(self.scenario.path),
                    lineno=self.scenario.line,
                )

    # -- running -----------------------------------------------------------------------
    async def start(self) -> AgentSession[Any]:
        """Run ``setup_fnc`` and the entrypoint until its session started (or it failed)."""
        ctx = self.ctx
        entry = getattr(self.server, "_entrypoint_fnc", None)
        if entry is None:
            raise ScenarioError(
                f"{self.description} has no rtc_session entrypoint",
                fix="register one with @server.rtc_session() (or point agentsim.agent at "
                "the Agent class)",
            )
        setup = self.server.setup_fnc
        if setup is not None:
            try:
                setup(ctx.proc)
            except Exception as e:
                raise self._failure(
                    f"the server's setup_fnc ({_callable_name(setup)}) raised: "
                    f"{describe_exception(e)}",
                    event=f"setup_fnc raised {type(e).__name__}",
                    err=e,
                ) from None

        async def run_entrypoint() -> None:
            result = entry(ctx)
            if inspect.isawaitable(result):
                await result

        assert self._started is not None
        self._entry_task = asyncio.create_task(run_entrypoint(), name="agentsim_entrypoint")
        self._entry_task.add_done_callback(self._on_entry_done)
        waiting = self.sim.note(
            "note", f"running the entrypoint {_callable_name(entry)}(ctx) until session.start()"
        )
        await asyncio.wait({self._entry_task, self._started}, return_when=asyncio.FIRST_COMPLETED)
        if not self._started.done():
            task = self._entry_task
            err = task.exception() if not task.cancelled() else None
            if err is not None:
                raise self._failure(
                    f"the entrypoint raised before its AgentSession started: "
                    f"{describe_exception(err)}",
                    event=f"the entrypoint raised {type(err).__name__}",
                    err=err,
                )
            waiting.failed = True
            raise StepFailed(
                "the entrypoint returned without starting an AgentSession "
                "(session.start() was never called)",
                entry=waiting,
            )
        # what the entrypoint does after start() (a greeting, background tasks) is the
        # greeting step's to wait for and check
        self.check_entrypoint()
        assert self.session is not None
        return self.session

    async def in_session_context(self, coro: Awaitable[T]) -> T:
        """Await ``coro`` in (a copy of) the context the entrypoint started its session in."""
        context = self._session_context
        if context is None:  # pragma: no cover - start() sets it before returning
            return await coro
        # a task copies the context current at its creation; Task(context=) needs 3.11
        task: asyncio.Task[T] = context.run(asyncio.ensure_future, coro)
        return await task

    def check_entrypoint(self) -> None:
        """Fail if the entrypoint raised after its session started (the job crashed)."""
        task = self._entry_task
        if task is None or not task.done() or task.cancelled():
            return
        err = task.exception()
        if err is not None:
            raise self._failure(
                f"the entrypoint raised after session.start(): {describe_exception(err)}",
                event=f"the entrypoint raised {type(err).__name__}",
                err=err,
                entry=self._entry_crash,
            )

    async def finalize(self, verdict: tuple[bool, str] | None = None) -> None:
        """Run ``on_simulation_end`` as the cloud does; a veto raises EntrypointFailure.

        ``verdict``: the simulator's (success, reason), e.g. a judge's (simulated scenarios);
        scripted scenarios that got here passed every turn.
        """
        ctx = self.ctx
        sim_ctx = ctx.simulation_context()
        if sim_ctx is None:  # pragma: no cover - _install_dispatch guarantees it
            raise StepFailed("the job lost its simulation context")
        begin_finalize(sim_ctx, run_id=self.run_id, verdict=verdict)
        fnc = ctx._simulation_end_fnc
        error: Exception | None = None
        if fnc is not None:
            self.sim.note("note", f"on_simulation_end: {_callable_name(fnc)}(ctx)")
            try:
                result = fnc(sim_ctx)
                if inspect.isawaitable(result):
                    await result
            except Exception as e:
                error = e
        self._verdict(sim_ctx, fnc, error)

    def _verdict(self, sim_ctx: SimulationContext, fnc: Any, error: Exception | None) -> None:
        veto = sim_ctx.user_verdict
        failed = veto is not None and not veto.success
        veto_text = (veto.reason or "(no reason given)") if veto is not None else ""
        if error is not None:
            reason = f"on_simulation_end raised {describe_exception(error)}"
            if failed:
                reason += f"\n  it had already failed the run: ctx.fail({veto_text!r})"
            raise self._failure(
                reason, event=f"on_simulation_end raised {type(error).__name__}", err=error
            )
        if failed:
            raise vetoed(
                self.sim, veto_text, who="on_simulation_end" if fnc is not None else "the agent"
            )
        if fnc is not None:
            self.sim.note("note", "on_simulation_end: passed (no ctx.fail)")

    def _failure(
        self,
        reason: str,
        *,
        event: str,
        err: BaseException | None = None,
        entry: TimelineEntry | None = None,
    ) -> StepFailed:
        """A failure marked on the timeline (``entry``, or a new ``event`` entry), followed
        by the agent's own frames of ``err`` (the transcript is the report, not a traceback)."""
        if entry is None:
            entry = self.sim.note("error", event)
            if err is not None:
                for frame in user_traceback(err).splitlines():
                    self.sim.note("note", f"  at {frame}")
        entry.failed = True
        return StepFailed(reason, entry=entry)

    # -- job shutdown ------------------------------------------------------------------
    def _on_entry_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        err = task.exception()  # retrieved here, so asyncio never logs it as unhandled
        if err is not None and self._started is not None and self._started.done():
            # noted when it happens (the conversation may go on); check_entrypoint fails it
            self._entry_crash = self.sim.note(
                "error", f"the entrypoint raised {describe_exception(err)}"
            )
            for frame in user_traceback(err).splitlines():
                self.sim.note("note", f"  at {frame}")

    def _on_ctx_shutdown(self, reason: str = "") -> None:
        self.sim.note("note", f"ctx.shutdown({reason!r}): the job is ending")
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.ensure_future(
                self._shutdown_job(reason or "user requested", quick=False)
            )

    async def _shutdown_job(self, reason: str, *, quick: bool) -> None:
        """As a worker ends a job: entrypoint, session, on_session_end, shutdown callbacks."""
        ctx = self._ctx
        task = self._entry_task
        if task is not None and not task.done():
            # A worker gives the entrypoint 15 s to return, then cancels it. Everything here
            # is instant, so a few loop turns show whether it is about to return; one that
            # waits forever is cancelled without costing wall time.
            for _ in range(0 if quick else 20):
                if task.done():
                    break
                await asyncio.sleep(0)
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        step = 0.2 if quick else _SHUTDOWN_STEP_TIMEOUT
        await self.sim.aclose(timeout=step, keep_logs=True)  # on_session_end logs too
        if ctx is None:  # pragma: no cover - the job ended already
            return
        end_fnc = getattr(self.server, "_session_end_fnc", None)
        if end_fnc is not None:
            await self._callback("on_session_end", functools.partial(end_fnc, ctx), step)
        for cb in list(getattr(ctx, "_shutdown_callbacks", ())):
            if (getattr(cb, "__module__", "") or "").startswith("livekit.agents"):
                continue  # the session's own close (done above)
            await self._callback("shutdown callback", functools.partial(cb, reason), step)
        # The job's session directory; a worker removes it in JobContext._on_cleanup(),
        # which also tears down per-job telemetry this fake job never set up.
        tempdir = getattr(ctx, "_tempdir", None)
        if tempdir is not None:
            with contextlib.suppress(OSError):
                tempdir.cleanup()

    async def _callback(self, what: str, call: Callable[[], Any], timeout: float) -> None:
        name = _callable_name(getattr(call, "func", call))
        try:
            result = call()
            if inspect.isawaitable(result):
                await asyncio.wait_for(result, timeout)
        except asyncio.TimeoutError:
            self._callback_problem(f"{what} {name} did not finish within {timeout:g}s")
        except Exception as e:
            self._callback_problem(f"{what} {name} raised {describe_exception(e)}")

    def _callback_problem(self, text: str) -> None:
        # the cloud only logs these; a test run should not hide them either (warned once
        # the job is over, so a warnings-as-errors run cannot cut the shutdown short)
        self.sim.note("error", text)
        self._problems.append(text)

    # -- the AgentSession hooks ----------------------------------------------------------
    def _ours(self) -> bool:

        return self._ctx is not None and get_job_context(required=False) is self._ctx

    @contextlib.contextmanager
    def _patched_sessions(self) -> Iterator[None]:

        job = self
        orig_init = SESSION_CLASS.__init__
        orig_start = SESSION_CLASS.start
        orig_update = SESSION_CLASS._update_activity

        @functools.wraps(orig_init)
        def init(session: AgentSession[Any], *args: Any, **kwargs: Any) -> None:
            ours = job._ours()
            if ours:
                kwargs = job.models.session_kwargs(kwargs)
            orig_init(session, *args, **kwargs)
            if ours:
                job._sessions.add(session)

        @functools.wraps(orig_start)
        async def start(session: AgentSession[Any], *args: Any, **kwargs: Any) -> Any:
            if session not in job._sessions and not job._ours():
                return await orig_start(session, *args, **kwargs)
            return await job._start_session(orig_start, session, args, kwargs)

        @functools.wraps(orig_update)
        async def update_activity(
            session: AgentSession[Any], agent: Any, *args: Any, **kwargs: Any
        ) -> Any:
            if session in job._sessions:
                job.models.agent(agent)
            return await orig_update(session, agent, *args, **kwargs)

        # setattr: mypy rejects assigning to a method, and this is a deliberate, scoped patch
        setattr(SESSION_CLASS, "__init__", init)  # noqa: B010
        setattr(SESSION_CLASS, "start", start)  # noqa: B010
        setattr(SESSION_CLASS, "_update_activity", update_activity)  # noqa: B010
        try:
            yield
        finally:
            setattr(SESSION_CLASS, "__init__", orig_init)  # noqa: B010
            setattr(SESSION_CLASS, "start", orig_start)  # noqa: B010
            setattr(SESSION_CLASS, "_update_activity", orig_update)  # noqa: B010

    async def _start_session(
        self,
        orig_start: Callable[..., Any],
        session: AgentSession[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        dropped = [k for k in _ROOM_KWARGS if kwargs.pop(k, None) is not None]
        primary = self.session is None
        if primary:
            # In the cloud, user input reaches the session through RoomIO, whose tasks
            # start inside session.start(): everything the agent does runs in a copy of
            # the entrypoint's context as of this call (its context variables, a
            # context-manager mock_tools around start()). Turns are played in it too.
            self._session_context = contextvars.copy_context()
            self.sim.mode = self.mode
            self.sim.attach(session)  # recording I/O in place of RoomIO, before start()
            self.session = session
            self._sessions.add(session)
            how = f" ({', '.join(dropped)} dropped: no RoomIO)" if dropped else ""
            self.sim.note("note", f"session.start(){how}; recording its I/O")
        else:
            self.sim.note("note", "another AgentSession started in this job (not recorded)")
        # capture what start() sets going (on_enter: a greeting) as livekit's own tests do;
        # the entrypoint gets what it asked for
        wanted = bool(kwargs.get("capture_run", False))
        if primary:
            kwargs["capture_run"] = True
        capture = run_captures_on_enter(session) if primary else contextlib.nullcontext()
        try:
            with capture:
                result = await orig_start(session, *args, **kwargs)
        except Exception as e:
            # start(capture_run=True) awaits the greeting's run once the session is up: a
            # greeting that fails there is the greeting step's failure (without the
            # capture, the agent's start() returns and livekit only logs it)
            if wanted or not primary or not getattr(session, "_started", False):
                raise
            result = _failed_run(e)
        if primary:
            self.greeting_run = result
            if self._started is not None and not self._started.done():
                self._started.set_result(None)
        return result if wanted else None
