"""Process mode's child: ``python -m livekit.agents console <file> --connect-addr H:P``,
with the scenario's simulation dispatch on the console job (SPEC §4, process mode).

Run as ``python -m pytest_agentsim.run.drivers.shim <file> --connect-addr HOST:PORT``. The
agent file is untouched: ``AgentServer.simulate_job`` is wrapped so the job it launches
carries ``$AGENTSIM_DISPATCH`` (protojson ``SimulationDispatch``) where the installed
release reads it, then livekit's own CLI ``main()`` runs. Retry waits are instant unless
``$AGENTSIM_REAL_TIMING`` is set, the offline guard is on from before the agent file is
imported unless ``$AGENTSIM_ALLOW_NETWORK`` is set (each blocked attempt is written to the
log the moment it is refused), and the child ends itself if its parent (pytest) goes away.
Never imports pytest.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from livekit.agents import AgentServer
from livekit.agents.__main__ import main as livekit_main
from livekit.agents.job import get_job_context

from ...fakes.session import SESSION_CLASS, run_captures_on_enter
from ...fakes.timing import no_backoff
from ...observe.frames import describe_exception
from ...transport.offline import block_network, register_guarded_child
from ..hooks import HookWatch
from .control import report_tool_starts, serve
from .dispatch import begin_finalize, reads_job_attribute
from .reaper import TOKEN_ENV, reap
from .tools import shared_tool_mocks

DISPATCH_ENV = "AGENTSIM_DISPATCH"
PARENT_ENV = "AGENTSIM_PARENT_PID"
LOG_ENV = "AGENTSIM_CHILD_LOG"
REAL_TIMING_ENV = "AGENTSIM_REAL_TIMING"
ALLOW_NETWORK_ENV = "AGENTSIM_ALLOW_NETWORK"
CONTROL_ENV = "AGENTSIM_CONTROL"  # host:port of the parent's control channel (control.py)
BLOCKED_MARK = "agentsim-blocked-network: "  # one line per blocked host, read by the parent
CLOSED_MARK = "agentsim-session-closed: "  # the close reason, which the protocol does not carry
FINALIZED_MARK = "agentsim-simulation-end: "  # on_simulation_end's verdict after a close
ENTRY_FAILED_MARK = "agentsim-entrypoint-raised: "  # the entrypoint's exception
MARKS = (BLOCKED_MARK, CLOSED_MARK, FINALIZED_MARK, ENTRY_FAILED_MARK)  # for the parent

# this child guards itself (main() below), so a parent's guard lets it start (child.py runs
# `python -m` this module; __spec__.name is its dotted name, also when run as __main__)
register_guarded_child(__spec__.name, unless_env=ALLOW_NETWORK_ENV)


def install_dispatch(payload: str) -> None:
    by_attribute = reads_job_attribute()  # 1.7+; 1.6 falls back to the job metadata
    original = AgentServer.simulate_job

    async def simulate_job(self: Any, *args: Any, **kwargs: Any) -> None:
        pool = self._proc_pool
        launch = pool.launch_job

        async def launch_job(info: Any) -> Any:
            if by_attribute:
                info.job.attributes["lk.simulator.dispatch"] = payload
            else:
                info.job.metadata = payload
            return await launch(info)

        pool.launch_job = launch_job
        # the console job runs in a thread: an entrypoint that raises is only logged and
        # the process stays up, so the parent hears of it here (livekit's proc pool holds
        # the entrypoint it hands each job)
        entry = getattr(pool, "_job_entrypoint_fnc", None)
        if entry is not None:
            pool._job_entrypoint_fnc = _reporting(entry)
        try:
            await original(self, *args, **kwargs)
        finally:
            pool.launch_job = launch

    AgentServer.simulate_job = simulate_job  # type: ignore[method-assign]


def _report(mark: str, detail: dict[str, Any]) -> None:
    print(mark + json.dumps(detail), file=sys.stderr, flush=True)


def _reporting(entry: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    """``entry``, reporting an exception it raises on the parent's marker line."""

    async def run(ctx: Any) -> None:
        try:
            await entry(ctx)
        except Exception as e:
            _report(ENTRY_FAILED_MARK, {"error": describe_exception(e)})
            raise

    return run


async def _finalize_closed() -> None:
    """``on_simulation_end`` for a session that closed before the scenario ended.

    ``finalize_simulation`` needs the session host, which closes with the session; the
    same steps then run here (as in-process mode runs them), and the verdict goes to the
    log for the parent.
    """
    detail: dict[str, Any] = {"ran": False, "success": True, "reason": "", "error": None}
    try:
        jc = get_job_context(required=False)
        sim_ctx = jc.simulation_context() if jc is not None else None
        fnc = getattr(jc, "_simulation_end_fnc", None)
        if sim_ctx is not None and getattr(sim_ctx, "_simulator_verdict", None) is not None:
            return  # finalize_simulation already ran (the close is the parent's teardown)
        if sim_ctx is not None and fnc is not None:
            begin_finalize(sim_ctx, run_id=sim_ctx._dispatch.simulation_run_id)
            detail["ran"] = True
            result = fnc(sim_ctx)
            if inspect.isawaitable(result):
                await result
            verdict = sim_ctx.user_verdict
            if verdict is not None:
                detail["success"], detail["reason"] = verdict.success, verdict.reason
    except Exception as e:
        detail["error"] = f"{type(e).__name__}: {e}"
        traceback.print_exc()
    _report(FINALIZED_MARK, detail)


def report_close() -> None:
    """Print the session's close reason (and error) to the log the parent reads, then
    run ``on_simulation_end`` there (see :func:`_finalize_closed`).

    The session protocol ends with the connection and carries no reason; the close
    event fires before livekit closes its session host, so the line is in the log by
    the time the parent sees the connection end.
    """
    original = SESSION_CLASS.start
    pending: set[asyncio.Task[None]] = set()
    started: list[Any] = []  # sessions started in this process (the first is the job's)

    async def start(self: Any, *args: Any, **kwargs: Any) -> Any:
        def on_close(ev: Any) -> None:
            reason = getattr(ev.reason, "value", ev.reason)
            error = getattr(ev, "error", None)
            if error is not None:  # livekit's LLMError/TTSError wrap the cause
                error = getattr(error, "error", None) or error
                error = f"{type(error).__name__}: {error}"
            _report(CLOSED_MARK, {"reason": str(reason), "error": error})
            task = asyncio.ensure_future(_finalize_closed())
            pending.add(task)
            task.add_done_callback(pending.discard)

        self.on("close", on_close)
        primary = not started
        started.append(self)
        hooks = HookWatch()
        if primary:  # on_enter crashes, reported with the control answers
            self.on(
                "conversation_item_added",
                lambda ev: hooks.saw_handoff(self) if ev.item.type == "agent_handoff" else None,
            )
        # capture what start() sets going (on_enter: a greeting), as livekit's tests do
        wanted = bool(kwargs.get("capture_run", False))
        if primary:
            kwargs["capture_run"] = True
            _console_text_mode()
            report_tool_starts(self)
        capture = run_captures_on_enter(self) if primary else contextlib.nullcontext()
        mocks = shared_tool_mocks(keep=True) if primary else contextlib.nullcontext()
        try:
            with capture, mocks:
                result = await original(self, *args, **kwargs)
        except Exception:
            # start(capture_run=True) awaits the greeting once the session is up; its
            # failure is the parent's to report (as livekit would only log it), not a crash
            if wanted or not primary or not getattr(self, "_started", False):
                raise
            result = None
        control = os.environ.get(CONTROL_ENV)
        if primary and control:
            task = asyncio.ensure_future(serve(self, result, control, hooks))
            pending.add(task)
            task.add_done_callback(pending.discard)
        return result if wanted else None

    SESSION_CLASS.start = start  # type: ignore[method-assign]


def _console_text_mode() -> None:
    """A text-mode scenario: the console session starts without audio I/O, as the
    simulator's text mode does. Turning audio off later over the session protocol would
    come after a greeting started in ``on_enter``, whose words then go to an audio sink
    the parent never plays (and never reach the chat history)."""
    payload = os.environ.get(DISPATCH_ENV)
    if not payload or json.loads(payload).get("mode") == "SIMULATION_MODE_AUDIO":
        return
    from livekit.agents import cli

    console = cli.AgentsConsole.get_instance()
    if hasattr(console, "console_mode"):
        console.console_mode = "text"


def _watch_parent(pid: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != pid:  # reparented: pytest is gone, take the job down with it
            log = os.environ.get(LOG_ENV)
            if log:  # nobody is left to report it
                with contextlib.suppress(OSError):
                    os.unlink(log)
            token = os.environ.get(TOKEN_ENV)
            if token:  # what the agent started outside this group
                reap(token)
            os.killpg(os.getpgid(0), signal.SIGKILL)


def prepare_process() -> None:
    """What the child sets up before the agent file is imported: instant retry waits (the
    offline guard is :func:`guard_network`'s). A warm server (:mod:`.warm`) runs this
    once, before its import."""
    if not os.environ.get(REAL_TIMING_ENV):
        no_backoff().__enter__()


def guard_network() -> None:
    """The offline guard, unless ``$AGENTSIM_ALLOW_NETWORK`` (each blocked attempt goes to
    the log as it happens: a child SIGKILLed at teardown never runs an exit handler)."""
    if not os.environ.get(ALLOW_NETWORK_ENV):
        block_network(on_blocked=report_blocked).__enter__()


def prepare_job() -> None:
    """What the child sets up for its one job: the dispatch, the close report, and the
    parent watch (also run in each job a warm server forks)."""
    payload = os.environ.get(DISPATCH_ENV)
    if payload:
        install_dispatch(payload)
    report_close()
    parent = os.environ.get(PARENT_ENV)
    if parent:
        threading.Thread(target=_watch_parent, args=(int(parent),), daemon=True).start()


def main(argv: list[str]) -> int:
    prepare_job()
    prepare_process()
    guard_network()
    return livekit_main(["console", *argv])


def report_blocked(entry: str) -> None:
    # one write(2) of a whole line, from whichever thread was blocked; the leading newline
    # ends a partial line another writer (stdout shares the log) may have left
    os.write(2, f"\n{BLOCKED_MARK}{entry}\n".encode(errors="replace"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
