"""The wall clock as a virtual-clock run sees it (SPEC §10).

livekit's voice code mixes loop timers with ``time.time()`` (when the user last spoke,
how long the endpointing delay still has to run, when a chat item was created) and
``time.perf_counter()`` (its metrics). On the virtual clock loop time jumps; if the wall
clock did not jump with it, that arithmetic would see a turn that took seconds as a few
microseconds, and its results would depend on how fast the machine is.

So ``time.time``, ``time.monotonic`` and ``time.perf_counter`` (and their ``_ns`` forms)
are replaced, when this package is imported, by functions that read the running virtual
clock of the calling thread (:func:`virtual_time`), and the real clock anywhere else: in
other threads, outside a virtual-clock run, and with ``--agentsim-real-timing``. They are
installed before livekit is imported (the plugin loads before any conftest), so the
default factories livekit's models take their ``created_at`` from and its
``from time import time`` see them too. Never imports livekit or pytest.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

__all__ = ["REAL", "virtual_time"]


_clocks = time  # (the class body below has a `time` of its own)


class _Real:
    """The real clocks, as they were before this module replaced them."""

    time = _clocks.time
    monotonic = _clocks.monotonic
    perf_counter = _clocks.perf_counter
    time_ns = _clocks.time_ns
    monotonic_ns = _clocks.monotonic_ns
    perf_counter_ns = _clocks.perf_counter_ns


REAL = _Real
_local = threading.local()  # .elapsed: the virtual seconds of this thread's running clock


TICK = 1e-6
"""What a clock advances between two reads at the same virtual instant: real clocks never
read the same twice across real work (livekit divides by such durations), and chat items
created one after the other keep their order."""


class _Anchors:
    """Each clock's reading when a virtual run started; it then advances by ``elapsed()``."""

    def __init__(self, elapsed: Callable[[], float]) -> None:
        self.elapsed = elapsed
        self.base = {
            name: float(getattr(REAL, name)()) - elapsed()
            for name in ("time", "monotonic", "perf_counter")
        }
        self.last = dict.fromkeys(self.base, float("-inf"))

    def read(self, name: str) -> float:
        value = self.base[name] + self.elapsed()
        last = self.last[name]
        if value <= last:  # the same instant: a tick later, until the clock moves on
            value = last + TICK
        self.last[name] = value
        return value


def _clock(name: str) -> Callable[[], float]:
    real = getattr(REAL, name)

    def read() -> float:
        anchors: _Anchors | None = getattr(_local, "anchors", None)
        if anchors is None:
            return float(real())
        return anchors.read(name)

    read.__name__ = read.__qualname__ = name
    read.__doc__ = f"``time.{name}()``, virtual in a virtual-clock run (pytest_agentsim.clock)."
    return read


def _clock_ns(name: str) -> Callable[[], int]:
    seconds = _clock(name)
    real = getattr(REAL, f"{name}_ns")

    def read_ns() -> int:
        if getattr(_local, "anchors", None) is None:
            return int(real())
        return int(seconds() * 1e9)

    read_ns.__name__ = read_ns.__qualname__ = f"{name}_ns"
    return read_ns


@contextlib.contextmanager
def virtual_time(elapsed: Callable[[], float]) -> Iterator[None]:
    """In this thread, the clocks read their value at entry plus ``elapsed()`` (the virtual
    seconds since) until exit."""
    outer = getattr(_local, "anchors", None)
    _local.anchors = _Anchors(elapsed)
    try:
        yield
    finally:
        _local.anchors = outer


def _install() -> None:
    if getattr(time.time, "__module__", None) == __name__:
        return  # already installed (the module was reloaded)
    for name in ("time", "monotonic", "perf_counter"):
        setattr(time, name, _clock(name))
        setattr(time, f"{name}_ns", _clock_ns(name))


_install()
