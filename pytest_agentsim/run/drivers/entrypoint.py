"""Entrypoint mode: run an ``AgentServer``'s ``rtc_session`` entrypoint unchanged.

When a scenario's target is an ``AgentServer`` (or a module holding one), the scenario
runs the server's registered entrypoint in a fake job, the way LiveKit Cloud runs it for
``lk agent simulate``:

* **The job.** ``livekit.agents.testing.fake_job_context`` builds a real ``JobContext``
  (``is_fake_job()`` is true, so ``delete_room()`` and SIP calls are no-ops, as in
  console mode). Its job carries the protojson ``SimulationDispatch{simulation_run_id,
  job_id, scenario: Scenario.to_proto(), mode}`` where the installed release reads it:
  the job attribute ``lk.simulator.dispatch`` (1.8.x: the cloud sends it on the agent
  dispatch), else the job metadata (1.6.0 reads the simulator participant's attribute
  and falls back to the job metadata; there is no room, hence no participant, here).
  So ``ctx.simulation_context()``, ``current_simulation()``, ``sim.userdata()``,
  ``sim.scenario`` and ``mock_tools(..., session=session)`` are livekit's own code
  reading the same bytes the cloud would send. The server's ``setup_fnc`` runs on the
  job's ``JobProcess`` first, as a worker process would run it.
* **No room.** ``session.start(agent, room=ctx.room)`` would build a ``RoomIO`` on an
  unconnected ``rtc.Room`` (its local participant, data streams and audio tracks all need
  a LiveKit server). For the duration of the job, ``AgentSession.start`` is wrapped: for
  sessions started inside *this* job only (checked through livekit's job-context
  variable), ``room``/``room_options``/``room_input_options``/``room_output_options`` are
  dropped and the harness's recording I/O is attached first (``AgentSim._attach``), so
  livekit's ``start()`` runs unchanged, minus the transport the cloud simulator talks
  through; the harness drives ``session.run()`` in its place, in a copy of the context
  the entrypoint called ``start()`` in (where RoomIO's tasks, hence every turn, would
  run), so context variables and context-manager ``mock_tools`` set there are seen. A
  fake ``rtc.Room`` was the alternative: it would have to fake the local participant,
  text/byte streams, track publication and the session-host transport, all
  version-specific FFI surfaces. ``ctx.shutdown()`` ends the job as in a worker.
* **Models.** Default (``sim.gateway is None``): *substitution*. ``AgentSession.__init__``
  is wrapped the same way, replacing the ``llm``/``tts``/``stt`` the entrypoint passes
  (objects or model strings such as ``"openai/gpt-4.1-mini"``) with the harness's
  ``FakeLLM``/``FakeTTS``/``FakeSTT`` *before* livekit sees them, so the real client
  never prewarms a connection (the offline guard would fail the test) and the scenario's
  ``llm:`` steps and faults are exactly what the fakes raise in Agent mode. An omitted
  ``vad`` becomes ``None`` (livekit would load a local Silero model for audio the harness
  never sends). Agent-level models (``Agent(llm=...)``, handoff agents included) are
  swapped when each agent's activity starts. Dummy credentials are set where unset
  (``inference.LLM`` and ``openai.LLM`` refuse to construct without them). With a
  gateway (``sim.gateway``, the ``gateway`` transport), the LLM is left alone: the
  entrypoint's own ``inference.LLM``/``openai.LLM`` talks to the fake gateway over its
  real HTTP stack, fed from the same script (``sim.llm_script``).
* **The end.** After the scripted turns, as the cloud's ``finalize_simulation`` does:
  ``SimulationContext._begin_finalize(simulator_verdict=SimulationVerdict(True, ...),
  run=SimulationRun(id=...))`` (plus ``job=None`` on releases whose signature has it),
  then the registered ``on_simulation_end(ctx)`` (sync or async), then the user verdict:
  ``ctx.fail(reason)`` or an exception fails the scenario. Then the job shuts down as a
  worker's does: the entrypoint task is cancelled if still running, the session closes,
  ``on_session_end`` and the job's shutdown callbacks run (their errors are reported as
  warnings and in the transcript, as the cloud only logs them).

Everything is undone when the job ends (patches, job context variable, environment), so
one failing or crashing entrypoint never leaks into the next scenario. Never imports
pytest.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import hashlib
import inspect
import os
import sysconfig
import traceback
import warnings
import weakref
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from ...errors import AgentsimWarning, ScenarioError

if TYPE_CHECKING:
    from livekit.agents import AgentServer, AgentSession, JobContext
    from livekit.agents.simulation import SimulationContext

    from ...load.loader import Scenario
    from ...observe.timeline import TimelineEntry
    from ..harness import AgentSim, Mode
    from ..runner import RunSettings, _Run
    from ..target import AgentTarget

__all__ = [
    "SCRIPTED_PASS_REASON",
    "SIMULATOR_DISPATCH_ATTRIBUTE",
    "EntrypointFailure",
    "FakeJob",
    "begin_finalize",
    "context_tool_mocks",
    "dispatch_json",
    "play_entrypoint",
    "session_tool_mocks",
]

T = TypeVar("T")

SIMULATOR_DISPATCH_ATTRIBUTE = "lk.simulator.dispatch"

SCRIPTED_PASS_REASON = "every scripted turn passed (pytest-agentsim)"
"""The simulator verdict's reason when the plugin, not a judge, decided (scripted turns)."""
"""Where the cloud puts the protojson ``SimulationDispatch`` (livekit's
``types.ATTRIBUTE_SIMULATOR_DISPATCH``)."""

_MODEL_SLOTS = ("llm", "tts", "stt")

# start() keywords that only configure RoomIO: without a room there is nothing to configure
_ROOM_KWARGS = ("room", "room_options", "room_input_options", "room_output_options")

# The clients refuse to construct without credentials; the values are never sent anywhere
# (the fakes replace the clients; the gateway transport accepts any key). The secret is
# 40 bytes because PyJWT warns below 32 and the inference clients sign a JWT with it.
_DUMMY_CREDENTIALS = {
    "LIVEKIT_API_KEY": "agentsim-dummy-key",
    "LIVEKIT_API_SECRET": "agentsim-dummy-secret-0123456789abcdefghij",
    "OPENAI_API_KEY": "sk-agentsim-dummy",
}

# Bound for each step of the job's shutdown, which runs after the verdict (or a failure)
# is known: a hung shutdown callback must not turn a finished scenario into a timeout.
_SHUTDOWN_STEP_TIMEOUT = 5.0


class EntrypointFailure(Exception):
    """The entrypoint or ``on_simulation_end`` failed the scenario (a readable reason)."""

    def __init__(self, reason: str, *, entry: TimelineEntry | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.entry = entry


# --------------------------------------------------------------------------- dispatch
def _short_hash(*parts: object) -> str:
    return hashlib.sha1("\0".join(map(str, parts)).encode()).hexdigest()[:12]


def simulation_ids(scenario: Scenario) -> tuple[str, str]:
    """Stable ``(simulation_run_id, job_id)`` for a scenario (same on every run and worker)."""
    file_key = _short_hash(scenario.path.name)
    return (
        f"agentsim_run_{file_key}",
        f"agentsim_job_{_short_hash(scenario.path.name, scenario.index, scenario.label)}",
    )


def dispatch_json(scenario: Scenario, *, mode: Mode) -> str:
    """The protojson ``SimulationDispatch`` the cloud sends for ``scenario``.

    Go's ``protojson.Marshal`` defaults (lowerCamelCase names, enum names, unset fields
    omitted) are ``json_format.MessageToJson``'s defaults too.
    """
    from google.protobuf import json_format
    from livekit.protocol import agent_simulation as sim_pb

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
    from livekit.agents.simulation import SimulationVerdict
    from livekit.protocol import agent_simulation as sim_pb

    success, reason = verdict if verdict else (True, SCRIPTED_PASS_REASON)
    kwargs: dict[str, Any] = {
        "simulator_verdict": SimulationVerdict(success=success, reason=reason),
        "run": sim_pb.SimulationRun(id=run_id),
    }
    if "job" in inspect.signature(sim_ctx._begin_finalize).parameters:
        kwargs["job"] = None  # livekit 1.6 also takes the run job (the cloud sends None)
    sim_ctx._begin_finalize(**kwargs)


def _install_dispatch(ctx: JobContext, payload: str) -> str:
    """Put the dispatch where the installed livekit reads it; returns where that was."""
    # livekit >= 1.7 reads the job attribute (what the cloud sends with the dispatch)
    ctx.job.attributes[SIMULATOR_DISPATCH_ATTRIBUTE] = payload
    if ctx.simulation_context() is not None:
        return f"job attribute {SIMULATOR_DISPATCH_ATTRIBUTE}"
    # 1.6.0 reads the simulator participant's attribute, falling back to the job
    # metadata; with no room there is no participant. A miss before the room connects is
    # not cached there, so asking again after setting the metadata resolves it.
    ctx.job.metadata = payload
    if ctx.simulation_context() is not None:
        return "job metadata"
    raise ScenarioError(
        "entrypoint mode: this livekit-agents release does not read the simulation "
        "dispatch from the job (JobContext.simulation_context() stays None)",
        fix="upgrade livekit-agents, or point agentsim.agent at the Agent class",
    )


# --------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _dummy_credentials() -> Iterator[None]:
    saved: dict[str, str | None] = {}
    for key, value in _DUMMY_CREDENTIALS.items():
        if not os.environ.get(key):
            saved[key] = os.environ.get(key)
            os.environ[key] = value
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


_LIBRARY_DIRS = tuple(
    {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    | {str(Path(__file__).resolve().parents[2])}
)


def _is_user_frame(filename: str) -> bool:
    try:
        path = str(Path(filename).resolve())
    except OSError:  # pragma: no cover - odd frame filenames
        return False
    return not path.startswith(_LIBRARY_DIRS) and not filename.startswith("<")


def _display_path(filename: str) -> str:
    with contextlib.suppress(ValueError):
        return str(Path(filename).resolve().relative_to(Path.cwd()))
    return filename


def describe_exception(exc: BaseException) -> str:
    """``Type: message (file.py:12 in func)``, naming the innermost frame of the agent's code."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_user_frame(f.filename)]
    if frames:
        f = frames[-1]
        text += f" ({_display_path(f.filename)}:{f.lineno} in {f.name})"
    return text


def user_traceback(exc: BaseException) -> str:
    """The agent's own frames of ``exc``'s traceback (library frames left out)."""
    lines = []
    for f in traceback.extract_tb(exc.__traceback__):
        if _is_user_frame(f.filename):
            lines.append(f"{_display_path(f.filename)}:{f.lineno} in {f.name}: {f.line or ''}")
    return "\n".join(lines)


def _room_hint(err: BaseException) -> str:
    if isinstance(err, RuntimeError) and "not connected" in str(err):
        return (
            "\n  entrypoint mode has no room (no LiveKit server): the simulated user talks "
            "to the session directly, so ctx.wait_for_participant() and other rtc.Room calls "
            "cannot succeed\n  fix: skip them under a simulation "
            "(`if ctx.simulation_context() is None: ...`)"
        )
    return ""


def _callable_name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))


def _describe_model(value: Any) -> str:
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
    from livekit.agents.utils import is_given

    return value is not None and bool(is_given(value))


# --------------------------------------------------------------------------- tool mocks
ToolMocks = dict[type, dict[str, Callable[..., Any]]]


def session_tool_mocks(session: Any) -> ToolMocks:
    """The ``mock_tools(..., session=session)`` sets in force on ``session`` (a copy).

    livekit has no getter; the store is ``voice.run_result._SessionMockTools`` (1.7+).
    The runner layers a turn's ``tools:`` mocks over these and restores them afterwards,
    so an entrypoint's own simulation mocks survive the turn.
    """
    from livekit.agents.voice import run_result

    store = getattr(run_result, "_SessionMockTools", None)
    current = store.get(session, {}) if store is not None else {}
    return {cls: dict(m) for cls, m in current.items()}


def context_tool_mocks() -> ToolMocks:
    """The context-manager ``mock_tools`` sets in force in the current context (a copy)."""
    from livekit.agents.voice import run_result

    var = getattr(run_result, "_MockToolsContextVar", None)
    current = var.get({}) if var is not None else {}
    return {cls: dict(m) for cls, m in current.items()}


# --------------------------------------------------------------------------- the job
class FakeJob:
    """One scenario's job, for the duration of ``async with``.

    ``await job.start()`` runs the entrypoint until its (first) ``AgentSession`` started,
    recorded by ``sim``; drive turns with ``sim``; ``await job.finalize()`` runs
    ``on_simulation_end`` and raises :class:`EntrypointFailure` on a veto.
    """

    def __init__(
        self,
        server: AgentServer,
        scenario: Scenario,
        sim: AgentSim,
        *,
        mode: Mode = "text",
        description: str | None = None,
    ) -> None:
        self.server = server
        self.scenario = scenario
        self.sim = sim
        self.mode: Mode = mode
        self.description = description or "AgentServer"
        # the gateway transport serves the entrypoint's own LLM client over HTTP
        self.substitute_llm = getattr(sim, "gateway", None) is None
        self.kept_llm_note = "answered by the fake inference gateway"
        self.run_id, self.job_id = simulation_ids(scenario)
        self.session: AgentSession[Any] | None = None
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
        from livekit import rtc
        from livekit.agents.testing import fake_job_context

        self._started = asyncio.get_running_loop().create_future()
        try:
            self._stack.enter_context(_dummy_credentials())
            room = rtc.Room()
            # as the worker's job runner does, so ctx.room.name is the job's room name
            info = getattr(room, "_info", None)
            if info is not None and hasattr(info, "name"):
                info.name = f"agentsim-{self.job_id}"
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
            where = _install_dispatch(ctx, dispatch_json(self.scenario, mode=self.mode))
            self._stack.enter_context(self._patched_sessions())
        except BaseException:
            self._stack.close()
            raise
        self.sim._note(
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
        try:
            if self._shutdown_task is None:
                self._shutdown_task = asyncio.ensure_future(
                    self._shutdown_job("simulation completed", quick=exc is not None)
                )
            with contextlib.suppress(Exception):
                await asyncio.shield(self._shutdown_task)
        finally:
            self._stack.close()
            self._ctx = None
        if exc is None:
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
        waiting = self.sim._note(
            "note", f"running the entrypoint {_callable_name(entry)}(ctx) until session.start()"
        )
        await asyncio.wait({self._entry_task, self._started}, return_when=asyncio.FIRST_COMPLETED)
        if not self._started.done():
            task = self._entry_task
            err = task.exception() if not task.cancelled() else None
            if err is not None:
                raise self._failure(
                    f"the entrypoint raised before its AgentSession started: "
                    f"{describe_exception(err)}{_room_hint(err)}",
                    event=f"the entrypoint raised {type(err).__name__}",
                    err=err,
                )
            waiting.failed = True
            raise EntrypointFailure(
                "the entrypoint returned without starting an AgentSession "
                "(session.start() was never called)",
                entry=waiting,
            )
        # let the entrypoint run on past start() (a greeting, background tasks) to a quiet
        # point, so nothing it does races the first scripted turn
        await self.sim.settle()
        self.check_entrypoint()
        if self.sim.unscripted_calls():
            raise self._failure(
                "the agent made a model call right after session.start(), before the first "
                "scripted turn (a greeting: session.generate_reply() in the entrypoint or in "
                "on_enter?); scenario turns cannot script it\n"
                "  fix: greet with session.say(...), or start the conversation with the user",
                event="unscripted model call before the first turn",
            )
        assert self.session is not None
        return self.session

    async def in_session_context(self, coro: Coroutine[Any, Any, T]) -> T:
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
                f"the entrypoint raised after session.start(): {describe_exception(err)}"
                f"{_room_hint(err)}",
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
            raise EntrypointFailure("the job lost its simulation context")
        begin_finalize(sim_ctx, run_id=self.run_id, verdict=verdict)
        fnc = ctx._simulation_end_fnc
        error: Exception | None = None
        if fnc is not None:
            self.sim._note("note", f"on_simulation_end: {_callable_name(fnc)}(ctx)")
            try:
                result = fnc(sim_ctx)
                if inspect.isawaitable(result):
                    await result
            except Exception as e:
                error = e
        self._verdict(sim_ctx, fnc, error)

    def _verdict(self, sim_ctx: SimulationContext, fnc: Any, error: Exception | None) -> None:
        veto = sim_ctx.user_verdict
        vetoed = veto is not None and not veto.success
        veto_text = (veto.reason or "(no reason given)") if veto is not None else ""
        if error is not None:
            reason = f"on_simulation_end raised {describe_exception(error)}"
            if vetoed:
                reason += f"\n  it had already failed the run: ctx.fail({veto_text!r})"
            raise self._failure(
                reason, event=f"on_simulation_end raised {type(error).__name__}", err=error
            )
        if vetoed:
            who = "on_simulation_end" if fnc is not None else "the agent"
            first = veto_text.splitlines()[0] if veto_text.strip() else veto_text
            more = " …" if first != veto_text else ""
            entry = self.sim._note("note", f"ctx.fail({first!r}{more})", failed=True)
            raise EntrypointFailure(
                f"{who} failed the simulation (SimulationContext.fail): {veto_text}", entry=entry
            )
        if fnc is not None:
            self.sim._note("note", "on_simulation_end: passed (no ctx.fail)")

    def _failure(
        self,
        reason: str,
        *,
        event: str,
        err: BaseException | None = None,
        entry: TimelineEntry | None = None,
    ) -> EntrypointFailure:
        """A failure marked on the timeline (``entry``, or a new ``event`` entry), followed
        by the agent's own frames of ``err`` (the transcript is the report, not a traceback)."""
        if entry is None:
            entry = self.sim._note("error", event)
            if err is not None:
                for frame in user_traceback(err).splitlines():
                    self.sim._note("note", f"  at {frame}")
        entry.failed = True
        return EntrypointFailure(reason, entry=entry)

    # -- job shutdown ------------------------------------------------------------------
    def _on_entry_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        err = task.exception()  # retrieved here, so asyncio never logs it as unhandled
        if err is not None and self._started is not None and self._started.done():
            # noted when it happens (the conversation may go on); check_entrypoint fails it
            self._entry_crash = self.sim._note(
                "error", f"the entrypoint raised {describe_exception(err)}"
            )
            for frame in user_traceback(err).splitlines():
                self.sim._note("note", f"  at {frame}")

    def _on_ctx_shutdown(self, reason: str = "") -> None:
        self.sim._note("note", f"ctx.shutdown({reason!r}): the job is ending")
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
        await self.sim.aclose(timeout=step)
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
        self.sim._note("error", text)
        self._problems.append(text)

    # -- the AgentSession hooks ----------------------------------------------------------
    def _ours(self) -> bool:
        from livekit.agents import get_job_context

        return self._ctx is not None and get_job_context(required=False) is self._ctx

    @contextlib.contextmanager
    def _patched_sessions(self) -> Iterator[None]:
        from livekit.agents import AgentSession

        job = self
        orig_init = AgentSession.__init__
        orig_start = AgentSession.start
        orig_update = AgentSession._update_activity

        @functools.wraps(orig_init)
        def init(session: AgentSession[Any], *args: Any, **kwargs: Any) -> None:
            ours = job._ours()
            if ours:
                kwargs = job._session_models(kwargs)
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
                job._agent_models(agent)
            return await orig_update(session, agent, *args, **kwargs)

        # setattr: mypy rejects assigning to a method, and this is a deliberate, scoped patch
        setattr(AgentSession, "__init__", init)  # noqa: B010
        setattr(AgentSession, "start", start)  # noqa: B010
        setattr(AgentSession, "_update_activity", update_activity)  # noqa: B010
        try:
            yield
        finally:
            setattr(AgentSession, "__init__", orig_init)  # noqa: B010
            setattr(AgentSession, "start", orig_start)  # noqa: B010
            setattr(AgentSession, "_update_activity", orig_update)  # noqa: B010

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
            self.sim._attach(session)  # recording I/O in place of RoomIO, before start()
            self.session = session
            self._sessions.add(session)
            how = f" ({', '.join(dropped)} dropped: no RoomIO)" if dropped else ""
            self.sim._note("note", f"session.start(){how}; recording its I/O")
        else:
            self.sim._note("note", "another AgentSession started in this job (not recorded)")
        result = await orig_start(session, *args, **kwargs)
        if primary and self._started is not None and not self._started.done():
            self._started.set_result(None)
        return result

    def _session_models(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs = dict(kwargs)
        kwargs.update(self._swap_models("session", {s: kwargs.get(s) for s in _MODEL_SLOTS}))
        if "vad" not in kwargs:
            kwargs["vad"] = None  # not livekit's default local Silero: no audio ever comes in
        return kwargs

    def _agent_models(self, agent: Any) -> None:
        # runs on every activity start, handoffs included; swapped models are fakes after
        values = {s: getattr(agent, f"_{s}", None) for s in _MODEL_SLOTS}
        for slot, fake in self._swap_models(type(agent).__name__, values).items():
            setattr(agent, f"_{slot}", fake)

    def _swap_models(self, owner: str, values: dict[str, Any]) -> dict[str, Any]:
        """The fakes replacing ``values`` (slot -> model); notes what is swapped or kept."""
        from livekit.agents import llm, stt, tts

        from ...fakes import FakeLLM, FakeSTT, FakeTTS

        fakes = {"llm": self.sim.fake_llm, "tts": self.sim.fake_tts, "stt": self.sim.fake_stt}
        kinds = {"llm": llm.LLM, "tts": tts.TTS, "stt": stt.STT}
        out: dict[str, Any] = {}
        swapped, kept = [], []
        for slot, value in values.items():
            if not _given(value) or isinstance(value, FakeLLM | FakeTTS | FakeSTT):
                continue
            what = f"{slot} {_describe_model(value)}"
            if not isinstance(value, str | kinds[slot]):
                # a realtime model has no scripted equivalent: it stays (and fails offline)
                kept.append(f"{what} (no fake for it)")
            elif slot == "llm" and not self.substitute_llm:
                kept.append(f"{what} ({self.kept_llm_note})")
            else:
                swapped.append(what)
                out[slot] = fakes[slot]
        if swapped:
            self.sim._note("note", f"{owner} models served by the fakes: {', '.join(swapped)}")
        if kept:
            self.sim._note("note", f"{owner} models kept: {', '.join(kept)}")
        return out


# --------------------------------------------------------------------------- runner hook
async def play_entrypoint(run: _Run, target: AgentTarget, settings: RunSettings) -> None:
    """Play a scripted scenario against ``target``'s entrypoint (``runner.run_scenario``)."""
    from livekit.agents import AgentServer

    server = target.obj
    if not isinstance(server, AgentServer):  # pragma: no cover - binding guarantees it
        raise TypeError(f"{target.description} is not an AgentServer")
    mode: Mode = "audio" if settings.mode == "audio" else "text"
    run.queue_scenario_faults()
    try:
        async with FakeJob(
            server, run.scenario, run.sim, mode=mode, description=target.description
        ) as job:
            await job.start()
            await job.in_session_context(run.play_turns(settings))
            job.check_entrypoint()
            await job.in_session_context(job.finalize())
    except EntrypointFailure as e:
        raise run.fail(e.reason, run.scenario.line, mark=e.entry) from None
