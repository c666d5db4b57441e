"""Misbehaving agents fail their own item, readably and within the timeout, and the rest of
the run continues."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

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
