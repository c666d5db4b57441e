"""The virtual clock: loop time jumps to the next timer when everything waits, and does
not jump past work it cannot see finish (a thread, a socket)."""

from __future__ import annotations

import asyncio
import time

from pytest_agentsim.run.vclock import VirtualClockLoop


def run(coro_fn):  # type: ignore[no-untyped-def]
    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        return runner.run(coro_fn())


def test_timers_fire_in_order_at_their_virtual_times() -> None:
    fired: list[tuple[str, float]] = []

    async def main() -> float:
        loop = asyncio.get_running_loop()
        loop.call_later(30, lambda: fired.append(("b", loop.time())))
        loop.call_later(10, lambda: fired.append(("a", loop.time())))
        await asyncio.sleep(600)
        try:
            await asyncio.wait_for(asyncio.sleep(100), timeout=5)
        except asyncio.TimeoutError:
            fired.append(("timeout", loop.time()))
        return loop.time()

    assert run(main) == 605.0
    assert fired == [("a", 10.0), ("b", 30.0), ("timeout", 605.0)]


def test_a_thread_at_work_holds_the_clock() -> None:
    async def main() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        sleeper = asyncio.ensure_future(asyncio.sleep(1000))  # a far timer to jump to
        value = await asyncio.to_thread(lambda: (time.sleep(0.05), 42)[1])
        sleeper.cancel()
        return value, loop.time()

    value, virtual = run(main)
    assert value == 42
    assert virtual < 1.0  # it waited for the thread instead of jumping to the timer


def test_a_loopback_server_on_the_same_loop_answers_before_any_jump() -> None:
    """The fake gateway's shape: server and client on one loop, a far timer pending."""

    async def main() -> tuple[bytes, float]:
        loop = asyncio.get_running_loop()

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write((await reader.readline()).upper())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sleeper = asyncio.ensure_future(asyncio.sleep(1000))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hi\n")
        data = await reader.readline()
        writer.close()
        server.close()
        await server.wait_closed()
        sleeper.cancel()
        return data, loop.time()

    data, virtual = run(main)
    assert data == b"HI\n"
    assert virtual < 1.0


def test_the_wall_clocks_jump_with_it_in_its_thread_only() -> None:
    """livekit computes delays from time.time() against its loop timers: on the virtual
    clock both jump together; other threads and code outside the run read real time."""
    import threading

    from pytest_agentsim.clock import REAL, TICK

    async def main() -> dict[str, float]:
        start = {"time": time.time(), "monotonic": time.monotonic(), "perf": time.perf_counter()}
        await asyncio.sleep(90)
        seen: dict[str, float] = {}
        thread = threading.Thread(target=lambda: seen.update(thread=time.time()))
        thread.start()
        await asyncio.to_thread(thread.join)
        first, second = time.perf_counter(), time.perf_counter()
        return {
            "time": time.time() - start["time"],
            "monotonic": time.monotonic() - start["monotonic"],
            "perf": first - start["perf"],
            "same_instant": second - first,
            "thread_vs_real": seen["thread"] - REAL.time(),
            "ns": time.perf_counter_ns() / 1e9 - time.perf_counter(),
        }

    before = REAL.time()
    got = run(main)
    wall = REAL.time() - before
    assert wall < 5  # 90 s of virtual time cost no wall time
    for name in ("time", "monotonic", "perf"):
        assert 90 <= got[name] < 90.01, (name, got)
    assert abs(got["same_instant"] - TICK) < 1e-9  # two reads at one instant still differ
    assert abs(got["thread_vs_real"]) < 5  # another thread: the real clock
    assert abs(got["ns"]) < 0.01
    # outside a virtual run: the real clocks again
    assert abs(time.time() - REAL.time()) < 1
    assert time.time.__module__ == "pytest_agentsim.clock"
