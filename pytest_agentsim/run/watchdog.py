"""The wall-clock watchdog of in-process runs, and where in the agent's code things stood.

A blocking call in async code (``while True: pass``, ``time.sleep(60)``, blocking I/O)
stops the event loop, and with it every asyncio timeout, the scenario's own included: only
another thread can see it. :class:`Watchdog` waits on a thread of its own; once the run has
had its budget of real time it interrupts the loop's thread, then again every
:data:`RETRY` seconds until the run ends (each interrupt moves the run's teardown on).

How it interrupts: in the main thread, a signal (a blocked ``time.sleep``, ``select`` or
lock wait returns early for it, and the handler raises :class:`Hung`); in another thread,
an asynchronous exception (raised at the next Python instruction; a system call there is
not cut short). :class:`Hung` is a ``SystemExit`` because asyncio's task and callback
guards re-raise only that and ``KeyboardInterrupt``: anything else would be taken by the
agent's task as its result and the loop would carry on blocked.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import signal
import sys
import threading
import types
from typing import Any

from ..observe.frames import user_frame

__all__ = [
    "RETRY",
    "AgentEscape",
    "Hung",
    "ThreadStopped",
    "Watchdog",
    "stop_thread",
]

RETRY = 1.0
"""Real seconds between interrupts once the budget is spent."""

_LAST_RESORT = 10
"""Interrupts that did not end the run before the watchdog ends the process instead."""

_SIGNAL = getattr(signal, "SIGUSR2", None)
_EXIT = os._exit  # the real one: a run replaces ``os._exit`` while the agent runs


class AgentEscape(SystemExit):
    """Raised into the agent's run to take the loop back (asyncio lets ``SystemExit`` through)."""


class Hung(AgentEscape):
    """The run outlived its budget of real time; raised in the loop's thread."""


class Watchdog:
    """Interrupts ``thread`` (the loop's) once ``budget`` real seconds have passed, while
    :attr:`armed`; use as a context manager around the run."""

    def __init__(self, budget: float, *, describe: str) -> None:
        self.budget = budget
        self.describe = describe  # for the last-resort message: the item's name
        self.armed = False
        self.fired = 0
        self.where: str | None = None  # the loop thread's user frame at the first interrupt
        self._thread = threading.current_thread()
        self._done = threading.Event()
        self._watcher: threading.Thread | None = None
        self._by_signal = (
            _SIGNAL is not None
            and hasattr(signal, "pthread_kill")
            and self._thread is threading.main_thread()
        )
        self._previous: Any = None

    def __enter__(self) -> Watchdog:
        if self._by_signal:
            assert _SIGNAL is not None
            self._previous = signal.signal(_SIGNAL, self._on_signal)
        self._watcher = threading.Thread(target=self._watch, name="agentsim-watchdog", daemon=True)
        self._watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._watcher is not None:
            self._watcher.join()
        if self._by_signal:
            assert _SIGNAL is not None
            signal.signal(_SIGNAL, self._previous)

    def frames(self) -> types.FrameType | None:
        return sys._current_frames().get(self._thread.ident or 0)

    def _watch(self) -> None:
        if self._done.wait(self.budget):
            return
        while not self._done.is_set():
            self.fired += 1
            if self.where is None:
                self.where = user_frame(self.frames())
            if self.fired > _LAST_RESORT:
                self._give_up()
            if self.armed:
                self._interrupt()
            if self._done.wait(RETRY):
                return

    def _interrupt(self) -> None:
        ident = self._thread.ident
        if ident is None:
            return
        if self._by_signal:
            assert _SIGNAL is not None
            signal.pthread_kill(ident, _SIGNAL)
        else:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(ident), ctypes.py_object(Hung)
            )

    def _on_signal(self, signum: int, frame: types.FrameType | None) -> None:
        if self.armed:
            self.armed = False  # one Hung per arming: the runner re-arms for its next phase
            raise Hung()

    def _give_up(self) -> None:
        # the agent swallows every interrupt (or sits in a call that cannot be interrupted):
        # a hung pytest helps nobody, so end it, saying why
        err = sys.__stderr__
        if err is not None:
            where = self.where or "no code of yours on the stack"
            err.write(
                f"\npytest-agentsim: {self.describe}: the agent's code kept running after "
                f"{self.fired - 1} interrupts past its timeout ({where}); ending the test "
                "process. Run this scenario in process mode (agentsim: {process: true}) to "
                "contain it.\n"
            )
            err.flush()
            faulthandler.dump_traceback(err, all_threads=True)
        _EXIT(1)


class ThreadStopped(SystemExit):
    """Raised in a thread the agent left running, to end it."""


def stop_thread(thread: threading.Thread) -> None:
    """Stops ``thread`` at its next Python instruction, quietly: the failure that stops it
    is reported already, not again by pytest's unhandled-thread-exception warning."""
    if thread.ident is None:
        return
    report = getattr(thread, "_invoke_excepthook", None)
    if report is not None:  # per thread, private but in every CPython since 3.8

        def quiet(t: threading.Thread) -> None:
            if not isinstance(sys.exc_info()[1], ThreadStopped):
                report(t)

        thread._invoke_excepthook = quiet  # type: ignore[attr-defined]
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(ThreadStopped)
    )
