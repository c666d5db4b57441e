"""Misbehaving agents fail their own item, readably and within the timeout, and the rest of
the run continues."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_agentsim.errors import ScenarioFailure
from pytest_agentsim.run.contain import run_contained

Write = Callable[[str, str], Path]

AGENTS = '''
import asyncio
from livekit.agents import Agent, RunContext, function_tool


class RaisingTool(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="x")

    @function_tool
    async def explode(self, context: RunContext) -> str:
        """Raises a plain exception (not a ToolError)."""
        raise RuntimeError("database on fire")


class NeverReplies(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="x")

    async def llm_node(self, chat_ctx, tools, model_settings):
        await asyncio.sleep(3600)
        yield "never"


class NeverCloses(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="x")


class Healthy(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="x")


def broken_factory():
    raise ValueError("factory blew up")
'''

SCENARIOS = """
name: Misbehaving
agentsim: {timeout: 1}
scenarios:
  - label: tool raises
    agentsim:
      agent: agents:RaisingTool
      turns:
        - user: go
          llm: [{tool_calls: [{name: explode}]}, "It failed."]
          expect:
            - function_call: explode
            - function_call_output: {is_error: true}
            - message: "It failed"
  - label: never replies
    agentsim:
      agent: agents:NeverReplies
      turns:
        - user: hello?
  - label: never closes
    agentsim:
      agent: agents:NeverCloses
      timeout: 3  # longer than the 1 s grace a turn gives a coming close
      turns:
        - user: bye
          llm: ["Bye!"]
          closed: true
  - label: factory raises
    agentsim:
      agent: agents:broken_factory
      turns:
        - user: hi
  - label: healthy
    agentsim:
      agent: agents:Healthy
      turns:
        - user: hi
          llm: ["Hello!"]
          expect: [{message: Hello}]
"""


def test_each_failure_stays_in_its_item(pytester: pytest.Pytester, write: Write) -> None:
    write("agents.py", AGENTS)
    write("scenarios.yaml", SCENARIOS)
    start = time.perf_counter()
    result = pytester.runpytest("--agentsim", "-v")
    elapsed = time.perf_counter() - start
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines_random(
        [
            "*scenarios.yaml::tool raises PASSED*",
            "*scenarios.yaml::healthy PASSED*",
            "*scenarios.yaml::never replies FAILED*",
            "*the scenario did not finish within 1s (agentsim.timeout)*",
            "*the session must close in this turn, but it is still open*",
            "*building the agent failed: ValueError: factory blew up (agents.py:* in broken_fac*",
        ]
    )
    assert (
        "Traceback"
        not in result.stdout.str().split("short test summary")[0].split("Captured log")[0]
    )
    # bounded by the 1 s scenario timeout and the close grace, not by the hang
    assert elapsed < 30, elapsed


# -- agents that take the loop, the process or the exit away (issue 17, items 14-16) -------

ROGUES = '''
import asyncio
import os
import signal
import threading
import time

from livekit.agents import Agent, RunContext, function_tool


class Base(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="x")


class Spins(Base):
    @function_tool
    async def lookup(self, context: RunContext) -> str:
        """A busy loop in async code: nothing else on the loop runs again."""
        while True:
            pass


class Sleeps(Base):
    @function_tool
    async def lookup(self, context: RunContext) -> str:
        """A blocking sleep in async code."""
        time.sleep(60)
        return "late"


class Exits(Base):
    @function_tool
    async def lookup(self, context: RunContext) -> str:
        """Hard exit, as some "end the call" tools do."""
        os._exit(3)


class Quits(Base):
    @function_tool
    async def lookup(self, context: RunContext) -> str:
        """sys.exit from a tool."""
        raise SystemExit(2)


class Interrupts(Base):
    @function_tool
    async def lookup(self, context: RunContext) -> str:
        """A KeyboardInterrupt that no keyboard sent."""
        raise KeyboardInterrupt


def poll() -> None:
    while True:
        time.sleep(0.05)


class LeaksThread(Base):
    @function_tool
    async def lookup(self, context: RunContext) -> str:
        """Starts a poller that never ends, and is not a daemon."""
        threading.Thread(target=poll, name="poller").start()
        return "polling"


class Stubborn(Base):
    async def on_enter(self) -> None:
        async def heartbeat() -> None:
            while True:
                try:
                    await asyncio.sleep(1)
                except asyncio.CancelledError:
                    pass  # swallowed: the task never ends

        self._beat = asyncio.get_running_loop().create_task(heartbeat(), name="heartbeat")


class CtrlC(Base):
    @function_tool
    async def lookup(self, context: RunContext) -> str:
        """What the user's Ctrl-C looks like to the process."""
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(1)
        return "x"
'''


def _rogue_scenarios(*names: str) -> str:
    out = ["name: Rogues", "agentsim: {timeout: 1}", "scenarios:"]
    for name in names:
        out += [
            f"  - label: {name}",
            f"    agentsim: {{agent: 'rogues:{name}', turns: [{{user: go, llm: "
            f"[{{tool_calls: [{{name: lookup}}]}}, done]}}]}}",
            f"  - label: healthy after {name}",
            "    agentsim: {agent: 'rogues:Base', turns: [{user: hi, llm: [Hello]}]}",
        ]
    return "\n".join(out) + "\n"


def test_rogue_agents_fail_their_own_item_and_pytest_goes_on(
    pytester: pytest.Pytester, write: Write
) -> None:
    write("rogues.py", ROGUES)
    rogues = ["Spins", "Sleeps", "Exits", "Quits", "Interrupts", "LeaksThread"]
    write("scenarios.yaml", _rogue_scenarios(*rogues))
    start = time.perf_counter()
    # a subprocess: a regression here would end (os._exit) or hang (thread) the test run
    result = pytester.runpytest_subprocess(
        "--agentsim", "-v", "-p", "no:cacheprovider", timeout=120
    )
    elapsed = time.perf_counter() - start
    result.assert_outcomes(passed=len(rogues), failed=len(rogues))
    for name in rogues:
        result.stdout.fnmatch_lines([f"*scenarios.yaml::{name} FAILED*"])
    result.stdout.fnmatch_lines_random(
        [
            "*the event loop was blocked in rogues.py:19 in lookup*",
            "*the event loop was blocked in rogues.py:27 in lookup*",
            "*the agent called os._exit(3) (rogues.py:35 in lookup)*",
            "*the agent raised SystemExit(2) (rogues.py:42 in lookup)*",
            "*the agent raised KeyboardInterrupt (rogues.py:49 in lookup)*",
            "*the agent left a non-daemon thread running: 'poller' (rogues.py:52 in poll)*",
        ]
    )
    # the two hangs cost their timeout and the grace (not 60 s, not forever); pytest exited
    # although the poller never ends by itself, and stopping it is not reported twice
    assert elapsed < 60, elapsed
    assert "PytestUnhandledThreadExceptionWarning" not in result.stderr.str() + result.stdout.str()


def test_a_task_that_ignores_cancellation_is_named_not_waited_for(
    pytester: pytest.Pytester, write: Write
) -> None:
    write("rogues.py", ROGUES)
    write(
        "scenarios.yaml",
        """
        name: Stubborn
        scenarios:
          - label: stubborn
            agentsim:
              agent: rogues:Stubborn
              turns:
                - user: hi
                  llm: [Hello]
        """,
    )
    result = pytester.runpytest_subprocess("--agentsim", "-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*a task the agent started ignored cancellation and was still running when the "
            "scenario ended: heartbeat (rogues.py:70 in heartbeat); it was abandoned*",
            "*fix: let asyncio.CancelledError propagate*",
        ]
    )
    assert "Task was destroyed but it is pending" not in result.stderr.str()


def test_a_real_ctrl_c_still_stops_pytest(pytester: pytest.Pytester, write: Write) -> None:
    write("rogues.py", ROGUES)
    write("scenarios.yaml", _rogue_scenarios("CtrlC"))
    result = pytester.runpytest_subprocess("--agentsim", "-p", "no:cacheprovider", timeout=60)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
    assert "healthy after CtrlC" not in result.stdout.str()


async def _spin() -> None:
    while True:
        pass


def test_the_watchdog_reaches_a_loop_outside_the_main_thread() -> None:
    # outside the main thread no signal can be sent: an asynchronous exception is
    failures: list[ScenarioFailure] = []

    def run() -> None:
        try:
            run_contained(_spin(), asyncio.new_event_loop, timeout=0.2, name="spin")
        except ScenarioFailure as e:
            failures.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    assert len(failures) == 1
    assert "the event loop was blocked in tests/test_misbehaving.py" in failures[0].reason
    assert "in _spin" in failures[0].reason
