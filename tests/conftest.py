from __future__ import annotations

import textwrap
from pathlib import Path

# In-process pytester restores sys.modules after every inner run, so a library an inner run
# imports first is imported again by the next one. Two cannot be: numpy (under livekit)
# refuses a second import, and httpx2 caches its exception map from the first httpcore2
# it sees. The plugin's engine loads at its one boundary (pytest_agentsim.run.api), once
# here: an inner run importing it itself recompiles it through pytest's assertion rewriter,
# which CPython 3.11.7 can fail with "AST constructor recursion depth mismatch".
import httpcore2  # noqa: F401
import livekit.agents  # noqa: F401
import pytest

import pytest_agentsim.run.api  # noqa: F401

pytest_plugins = ["pytester"]

DATA = Path(__file__).parent / "data"


# pytest-asyncio nags when this is unset; every inner project sets it, as users should
INI_BASE = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


@pytest.fixture(autouse=True)
def _inner_ini(request: pytest.FixtureRequest) -> None:
    if "pytester" in request.fixturenames:
        pytester: pytest.Pytester = request.getfixturevalue("pytester")
        (pytester.path / "pytest.ini").write_text(INI_BASE, encoding="utf-8")


@pytest.fixture
def write(pytester: pytest.Pytester):  # type: ignore[no-untyped-def]
    """write("path", "text"): a dedented file in the pytester project (pytest.ini keeps
    the base settings)."""

    def _write(name: str, text: str) -> Path:
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = textwrap.dedent(text).lstrip("\n")
        if name == "pytest.ini":
            text = INI_BASE + text.removeprefix("[pytest]\n")
        path.write_text(text, encoding="utf-8")
        return path

    return _write


AGENTS_PY = '''
from livekit.agents import Agent, RunContext, ToolError, function_tool


class EchoAgent(Agent):
    def __init__(self, name: str = "echo") -> None:
        super().__init__(instructions="You are a test agent.")
        self.name = name

    @function_tool
    async def whoami(self, context: RunContext) -> str:
        """Say which agent this is."""
        return f"I am {self.name}"

    @function_tool
    async def lookup(self, context: RunContext, city: str, days: int = 1) -> str:
        """Look up the weather."""
        return f"sunny in {city} for {days} day(s)"

    @function_tool
    async def broken(self, context: RunContext) -> str:
        """Always fails."""
        raise ToolError("backend down")

    @function_tool
    async def to_support(self, context: RunContext) -> tuple[Agent, str]:
        """Hand over to support."""
        return SupportAgent(), "Transferring."


class SupportAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are support.")


def agent_b() -> EchoAgent:
    return EchoAgent("B")


def agent_c() -> EchoAgent:
    return EchoAgent("C")


def agent_d() -> EchoAgent:
    return EchoAgent("D")


def from_scenario(scenario) -> EchoAgent:
    return EchoAgent(scenario.userdata.get("name", "nobody"))
'''


def plugin_output(result: pytest.RunResult) -> str:
    """An inner run's stdout without pytest's "Captured ..." sections: what the plugin and
    pytest report, not the logs and output captured from livekit and the agent, which may
    hold tracebacks livekit logged itself (an exception logged with exc_info). A captured
    section runs to the next section header (``---- agentsim transcript ----``), test
    header (``____ name ____``) or summary line (``==== ... ====``)."""
    import re

    kept: list[str] = []
    captured = False
    for line in result.stdout.lines:
        header = re.fullmatch(r"-+ (.+?) -+|_+ .+ _+|=+ .+ =+", line)
        if header:
            captured = (header.group(1) or "").startswith("Captured ")
        if not captured:
            kept.append(line)
    return "\n".join(kept)
