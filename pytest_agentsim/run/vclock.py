"""A virtual clock for in-process scenarios: loop time moves only when everything waits.

Voice agents live on timers (endpointing delays, ``user_away_timeout``, false-interruption
timeouts, retry backoff). On the wall clock a minute of conversation takes a minute and its
timing jitters. :class:`VirtualClockLoop` is an asyncio loop whose ``time()`` is virtual:
when no callback is ready and the next timer is due in N seconds, it jumps N seconds at
once instead of sleeping, so ``asyncio.sleep``, ``call_later`` and ``wait_for`` timeouts
fire in order, instantly, and every run fires them in the same order.

What could desynchronize it, and what it does instead of jumping:

* work in a thread (``run_in_executor``/``to_thread``): while an executor job is running,
  the loop waits for it on the wall clock (its result wakes the loop as usual);
* real I/O (a loopback server, a socket the agent opened): when sockets other than the
  loop's own wake-up pipe are registered, the loop first gives them a real millisecond to
  answer before it jumps.

While the loop runs, ``time.time()``/``monotonic()``/``perf_counter()`` in its thread
advance with it (:mod:`pytest_agentsim.clock`), so livekit's timestamp arithmetic
(endpointing, when the user last spoke, its metrics) agrees with its timers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import selectors
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from ..clock import virtual_time

__all__ = ["VirtualClockLoop"]

_T = TypeVar("_T")

_IO_GRACE = 0.001
"""Real seconds registered sockets get to answer before the clock jumps past them."""


class _JumpingSelector(selectors.BaseSelector):
    """Delegates to a real selector; where the loop would block until its next timer, the
    virtual clock jumps there instead (unless real work is pending, see the module)."""

    def __init__(self, loop: Callable[[], VirtualClockLoop | None]) -> None:
        self._real = selectors.DefaultSelector()
        self._loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_map(self) -> Any:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        loop = self._loop()
        if ready or timeout == 0 or loop is None:
            return ready
        if timeout is None or loop.threads_running:
            return self._real.select(timeout)  # nothing scheduled, or a thread at work
        if loop.sockets_registered():
            ready = self._real.select(min(timeout, _IO_GRACE))
            if ready:
                return ready
        loop.jump(timeout)
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop on a virtual clock (see the module docs)."""

    def __init__(self) -> None:
        self._virtual = 0.0
        self.threads_running = 0
        ref: weakref.ReferenceType[VirtualClockLoop]
        super().__init__(_JumpingSelector(lambda: ref()))
        ref = weakref.ref(self)
        self._wakeup_fds = {
            s.fileno() for s in (getattr(self, "_ssock", None), getattr(self, "_csock", None)) if s
        }

    def time(self) -> float:
        return self._virtual

    def run_forever(self) -> None:
        with virtual_time(self.elapsed):  # the wall clocks of this thread go with it
            super().run_forever()

    def elapsed(self) -> float:
        """Virtual seconds since the loop started."""
        return self._virtual

    def jump(self, seconds: float) -> None:
        if seconds > 0:
            self._virtual += seconds

    def sockets_registered(self) -> bool:
        fds = self._selector.get_map() or {}  # type: ignore[attr-defined]
        return any(key.fd not in self._wakeup_fds for key in fds.values())

    def run_in_executor(  # type: ignore[override]
        self, executor: concurrent.futures.Executor | None, func: Callable[..., _T], *args: Any
    ) -> asyncio.Future[_T]:
        future = super().run_in_executor(executor, func, *args)
        self.threads_running += 1

        def done(_: asyncio.Future[_T]) -> None:
            self.threads_running -= 1

        future.add_done_callback(done)
        return future
