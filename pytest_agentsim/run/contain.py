"""Containment: an in-process agent that misbehaves fails its own item, and pytest goes on.

In-process, the agent shares pytest's process, main thread and (for the run) an event loop,
so what it does wrong would reach pytest itself. :func:`run_contained` runs the scenario's
coroutine on a fresh loop (like ``asyncio.run``, without making it the thread's current
loop) and turns each way out into this item's failure:

* a blocking call in async code stops the loop and every timeout with it: the
  :class:`~.watchdog.Watchdog` interrupts it after the timeout plus :data:`GRACE` real
  seconds, naming the line it was stuck on;
* ``SystemExit`` and ``KeyboardInterrupt`` raised by the agent, and ``os._exit()``, pass
  asyncio's guards and would end pytest; a real Ctrl-C still stops the run;
* a task that ignores cancellation would keep the loop from closing, a non-daemon thread
  would keep pytest from exiting after its summary: each is named and abandoned (the thread
  is stopped at its next Python instruction).

After an escape the scenario is cancelled, so its drivers close the session and the
transcript is complete up to that point. The turn player hands over how to build its
failure (:func:`on_failure`) so these read like any other, with the transcript and line.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Coroutine, Iterator
from contextvars import ContextVar
from typing import Any, NoReturn, TypeVar

from ..errors import ScenarioFailure
from ..observe.frames import code_location, innermost, user_frame
from .watchdog import AgentEscape, Hung, Watchdog, stop_thread

__all__ = ["GRACE", "on_failure", "run_contained"]

T = TypeVar("T")

GRACE = 2.0
"""Real seconds past the scenario's timeout before the watchdog takes the loop back."""

_TEARDOWN = 1.0
"""Loop seconds cancelled tasks get to finish."""

_THREAD_GRACE = 0.5
"""Real seconds a thread the agent started gets to end once the run is over."""

_MAX_ESCAPES = 100  # re-raises of escapes while the scenario winds down, before abandoning it


@dataclasses.dataclass
class _Run:
    problems: list[str] = dataclasses.field(default_factory=list)
    failure: Callable[[str], ScenarioFailure] | None = None
    seen: set[int] = dataclasses.field(default_factory=set)

    def note(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)

    def escaped(self, error: BaseException) -> None:
        if id(error) not in self.seen:  # one exception re-raised by every task awaiting it
            self.seen.add(id(error))
            self.note(_escape_message(error))


_CURRENT: ContextVar[_Run | None] = ContextVar("agentsim_contained_run", default=None)


def on_failure(build: Callable[[str], ScenarioFailure]) -> None:
    """How this run's containment problems become a failure (the turn player's, with the
    transcript and the current step's line)."""
    run = _CURRENT.get()
    if run is not None:
        run.failure = build


class _OsExit(AgentEscape):
    """``os._exit(status)`` called by the agent during an in-process run."""


def run_contained(
    coro: Coroutine[Any, Any, T],
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
    *,
    timeout: float,
    name: str,
) -> T:
    """Runs ``coro`` to the end on a new loop from ``loop_factory`` (see the module);
    ``timeout`` is the scenario's, ``name`` the item's (for the watchdog's last resort)."""
    run = _Run()
    token = _CURRENT.set(run)
    before = set(threading.enumerate())
    loop = loop_factory()
    try:
        main = loop.create_task(coro)  # the task's context carries `run`
        with (
            Watchdog(timeout + GRACE, describe=name) as dog,
            _CtrlC() as ctrl_c,
            _trapped_exits(run),
        ):
            stepper = _Stepper(loop, dog, ctrl_c, run)
            stepper.finish(main, timeout)
            stepper.teardown()
        if ctrl_c.pressed:
            # a library caught it on the way (aiohttp turns it into a payload error):
            # the user still pressed Ctrl-C, and pytest stops
            raise KeyboardInterrupt
    finally:
        _CURRENT.reset(token)
        loop.close()
    _stop_threads(before, run)
    return _outcome(main, run)


class _Stepper:
    """Runs the loop until a future is done, taking back what escapes the agent's tasks."""

    def __init__(self, loop: asyncio.AbstractEventLoop, dog: Watchdog, ctrl_c: _CtrlC, run: _Run):
        self.loop, self.dog, self.ctrl_c, self.run = loop, dog, ctrl_c, run

    def step(self, future: asyncio.Future[Any]) -> BaseException | None:
        self.dog.armed = True
        try:
            self.loop.run_until_complete(future)
        except BaseException as e:
            if self.ctrl_c.real(e):
                raise
            return e
        finally:
            self.dog.armed = False
        return None

    def until_done(self, future: asyncio.Future[Any], on_hung: Callable[[], bool]) -> None:
        """Steps until ``future`` is done; a :class:`Hung` asks ``on_hung`` whether to go on."""
        cancelled = False
        for _ in range(_MAX_ESCAPES):
            error = self.step(future)
            if isinstance(error, Hung):
                if not on_hung() or future.done():
                    return
                continue
            if isinstance(error, (SystemExit, KeyboardInterrupt)) or (
                error is not None and not future.done()
            ):
                self.run.escaped(error)
                if not (cancelled or future.done()):  # once: a second cancel would cut
                    future.cancel()  # its cleanup short; the scenario winds down
                    cancelled = True
            if future.done():
                return

    def finish(self, main: asyncio.Task[Any], timeout: float) -> None:
        hung = 0

        def on_hung() -> bool:
            nonlocal hung
            hung += 1
            if hung == 1:
                self.run.note(_blocked(self.dog, timeout))
                main.cancel()
                return True
            return False  # it did not wind down either: abandon it

        self.until_done(main, on_hung)

    def teardown(self) -> None:
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            waiter = self.loop.create_task(_wait(pending, _TEARDOWN))
            self.until_done(waiter, lambda: False)
            stubborn = [t for t in pending if not t.done()]
            if stubborn:
                self.run.note(_ignored_cancellation(stubborn))
            for task in stubborn:  # reported above: not again as "destroyed but pending"
                task._log_destroy_pending = False  # type: ignore[attr-defined]
        self.until_done(self.loop.create_task(self.loop.shutdown_asyncgens()), lambda: False)
        executor = self.loop.create_task(self.loop.shutdown_default_executor())
        self.until_done(executor, lambda: False)
        if not executor.done():  # the watchdog gave up waiting for the loop's threads
            busy = [t for t in threading.enumerate() if t.name.startswith("asyncio_")]
            self.run.note(_busy_threads(busy))


async def _wait(tasks: list[asyncio.Task[Any]], timeout: float) -> None:
    await asyncio.wait(tasks, timeout=timeout)


def _outcome(main: asyncio.Task[T], run: _Run) -> T:
    if not run.problems:
        return main.result()
    reason = "\n".join(run.problems)
    original = None if main.cancelled() or not main.done() else main.exception()
    if isinstance(original, ScenarioFailure):  # e.g. its timeout, then a task that lingered
        raise original.extended(reason) from None
    if run.failure is not None:
        raise run.failure(reason) from None
    raise ScenarioFailure(reason, location=None, transcript="")


# -- what escapes, in words --------------------------------------------------------------


def _at(where: str | None) -> str:
    return f" ({where})" if where else ""


def _escape_message(error: BaseException) -> str:
    where = _at(user_frame(innermost(error.__traceback__)))
    if isinstance(error, _OsExit):
        return str(error.code)
    if isinstance(error, KeyboardInterrupt):
        return (
            f"the agent raised KeyboardInterrupt{where}: in-process it would stop the whole "
            "pytest run, so it fails this scenario instead (a real Ctrl-C still stops pytest)"
        )
    if isinstance(error, SystemExit):
        return (
            f"the agent raised SystemExit({error.code!r}){where}: in-process it would end "
            "pytest, so it fails this scenario instead\n  fix: end the call with "
            "session.shutdown(); process mode (agentsim: {process: true}) runs the agent in "
            "a process it may exit"
        )
    return f"{type(error).__name__} escaped the agent's event loop{where}: {error}"


def _blocked(dog: Watchdog, timeout: float) -> str:
    head = f"the scenario did not finish within {timeout:g}s (agentsim.timeout)"
    if dog.where is None:
        return f"{head}, nor {GRACE:g}s of real time later; it was stopped"
    return (
        f"{head}: the event loop was blocked in {dog.where}\n  fix: a blocking call in "
        "async code (a busy loop, time.sleep, blocking I/O) stops every timer; await it, "
        "or run it in a thread (await asyncio.to_thread(...))"
    )


def _ignored_cancellation(tasks: list[asyncio.Task[Any]]) -> str:
    names = ", ".join(f"{t.get_name()}{_at(_task_where(t))}" for t in tasks)
    return (
        f"a task the agent started ignored cancellation and was still running when the "
        f"scenario ended: {names}; it was abandoned\n  fix: let asyncio.CancelledError "
        "propagate (re-raise it after cleaning up)"
    )


def _task_where(task: asyncio.Task[Any]) -> str | None:
    stack = task.get_stack(limit=1)
    return user_frame(stack[-1]) if stack else None


def _busy_threads(threads: list[threading.Thread]) -> str:
    frames = sys._current_frames()
    names = ", ".join(f"{t.name}{_at(user_frame(frames.get(t.ident or 0)))}" for t in threads)
    return (
        f"a function the agent ran in a thread (run_in_executor/to_thread) was still "
        f"running: {names}; it was left behind"
    )


# -- exits, Ctrl-C and threads -----------------------------------------------------------


@contextlib.contextmanager
def _trapped_exits(run: _Run) -> Iterator[None]:
    """``os._exit`` raises instead, in this process (a forked child still exits)."""
    real, pid = os._exit, os.getpid()

    def _exit(status: int) -> NoReturn:
        if os.getpid() != pid:
            real(status)
        where = _at(user_frame(sys._getframe(1)))
        message = (
            f"the agent called os._exit({status}){where}: in-process it would end pytest "
            "with no report, so it fails this scenario instead\n  fix: end the call with "
            "session.shutdown(); process mode (agentsim: {process: true}) runs the agent "
            "in a process it may exit"
        )
        run.note(message)  # also when called from a thread, where nothing reaches the loop
        raise _OsExit(message)

    os._exit = _exit
    try:
        yield
    finally:
        os._exit = real


class _CtrlC:
    """Tells a real Ctrl-C from a ``KeyboardInterrupt`` the agent raised."""

    def __init__(self) -> None:
        self.pressed = False
        self.watching = False

    def __enter__(self) -> _CtrlC:
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            signal.signal(signal.SIGINT, self._on_sigint)
            self.watching = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.watching:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def _on_sigint(self, signum: int, frame: types.FrameType | None) -> None:
        self.pressed = True
        raise KeyboardInterrupt

    def real(self, error: BaseException) -> bool:
        return isinstance(error, KeyboardInterrupt) and (self.pressed or not self.watching)


def _stop_threads(before: set[threading.Thread], run: _Run) -> None:
    """Non-daemon threads the agent left running would keep pytest from exiting."""
    deadline = time.monotonic() + _THREAD_GRACE
    leaked = []
    for thread in threading.enumerate():
        if thread in before or thread.daemon or _pool_worker(thread):
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            stop_thread(thread)
            leaked.append(thread)
    if leaked:
        names = ", ".join(f"{t.name!r}{_at(_started_at(t))}" for t in leaked)
        run.note(
            f"the agent left a non-daemon thread running: {names}; pytest would wait for it "
            "at exit, so it was stopped\n  fix: start it with daemon=True, or stop it when "
            "the session closes (ctx.add_shutdown_callback)"
        )


def _pool_worker(thread: threading.Thread) -> bool:
    # executor workers end at interpreter exit on their own (concurrent.futures' exit hook)
    target = getattr(thread, "_target", None)
    return getattr(target, "__module__", None) == "concurrent.futures.thread"


def _started_at(thread: threading.Thread) -> str | None:
    target = getattr(thread, "_target", None) or type(thread).run
    code = getattr(target, "__code__", None)
    return code_location(code) if code is not None else None
