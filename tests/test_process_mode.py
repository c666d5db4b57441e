"""Process mode: an AgentServer file runs unchanged in a child process, driven over
LiveKit's session protocol (``RemoteSession``) like the cloud simulator drives it.

Each test is a pytester project with a real scenarios YAML and a real AgentServer file. The
child is ``python -m pytest_agentsim._process_shim`` (livekit's console CLI plus the
simulation dispatch); its models are served by the loopback fake gateway.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

Write = Callable[[str, str], Path]

# An entrypoint as LiveKit's examples write one (LiveKit Inference LLM, session started in
# the job's room); on_simulation_end fails the run when the agent never said `must_say`.
SERVER_PY = '''
from livekit.agents import Agent, AgentServer, AgentSession, JobContext, RunContext
from livekit.agents import function_tool, inference
from livekit.agents.simulation import SimulationContext


class Desk(Agent):
    def __init__(self, city: str) -> None:
        super().__init__(instructions="You are a weather desk.")
        self.city = city

    @function_tool
    async def lookup(self, context: RunContext, city: str) -> str:
        """Look up the weather."""
        return f"sunny in {city}"


async def check(ctx: SimulationContext) -> None:
    want = ctx.userdata().get("must_say")
    if not want:
        return
    said = " ".join(
        item.text_content or ""
        for item in ctx.job_context.primary_session.history.items
        if item.type == "message" and item.role == "assistant"
    )
    if want not in said:
        ctx.fail(f"the agent never said {want!r}")


server = AgentServer()


@server.rtc_session(on_simulation_end=check)
async def entrypoint(ctx: JobContext) -> None:
    sim = ctx.simulation_context()
    city = sim.userdata().get("city", "Paris") if sim is not None else "Paris"
    session = AgentSession(llm=inference.LLM("openai/gpt-4.1-mini"))
    await session.start(agent=Desk(city), room=ctx.room)
'''

SCENARIOS = """
name: Weather desk
agentsim:
  agent: agent.py
  {process}
scenarios:
  - label: Looks up the weather
    userdata: {{must_say: sunny, city: Paris}}
    agentsim:
      turns:
        - user: What's the weather in Paris?
          llm:
            - tool_calls: [{{name: lookup, arguments: {{city: Paris}}}}]
            - say: It is sunny in Paris today.
          expect:
            - function_call: {{name: lookup, arguments: {{city: Paris}}}}
            - function_call_output: {{equals: sunny in Paris}}
            - message: {{contains: sunny}}
        - user: Thanks!
          llm: ["You're welcome."]
          expect:
            - message: {{regex: "welcome"}}

  - label: Vetoed by on_simulation_end
    userdata: {{must_say: raining}}
    agentsim:
      turns:
        - user: What's the weather in Oslo?
          llm: ["It is cold in Oslo."]
          expect:
            - message: {{contains: cold}}

  - label: Credits run out
    agentsim:
      turns:
        - user: Hello?
          llm:
            - {{fault: quota_exceeded, times: always}}
          expect: []

  - label: Wrong expectation
    agentsim:
      turns:
        - user: Hello?
          llm: ["Hi there."]
          expect:
            - function_call: {{name: lookup}}
"""


def project(write: Write, *, process: bool = True, agent: str = SERVER_PY) -> None:
    write("agent.py", agent)
    write("scenarios.yaml", SCENARIOS.format(process="process: true" if process else ""))


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """scenario label -> PASSED/FAILED/ERROR, from `-rA` short summary lines."""
    out = {}
    for line in result.outlines:
        m = re.match(r"^(PASSED|FAILED|ERROR) scenarios\.yaml::(.+?)(?: - .*)?$", line)
        if m:
            out[m.group(2)] = m.group(1)
    return out


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--agentsim", "-rA", "-p", "no:cacheprovider", *args)


def test_scripted_turns_with_a_tool_call_pass(pytester: pytest.Pytester, write: Write) -> None:
    project(write)
    result = run(pytester, "-k", "Looks")
    result.assert_outcomes(passed=1)


def test_on_simulation_end_veto_fails_with_its_reason(
    pytester: pytest.Pytester, write: Write
) -> None:
    project(write)
    result = run(pytester, "-k", "Vetoed")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "on_simulation_end failed the simulation (SimulationContext.fail): "
            "the agent never said 'raining'",
            "*ctx.fail(*the agent never said *raining*)*",
            "agent process log (last 40 lines):",
        ]
    )


def test_quota_fault_fails_the_turn_and_is_classified(
    pytester: pytest.Pytester, write: Write
) -> None:
    project(write)
    (pytester.path / "scenarios.yaml").write_text(
        (pytester.path / "scenarios.yaml")
        .read_text()
        .replace("          expect: []", "          expect:\n            - message: {}"),
        encoding="utf-8",
    )
    result = run(pytester, "-k", "Credits")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "turn 1: expected event 1 (message*) but the turn produced only 0 event(s):",
            "*the turn failed: *(the gateway served "
            "quota_exceeded(429 MaxGatewayCredits) on llm call 1 to *)",
        ]
    )
    # the agent's own retry policy ran against the gateway (attempts unchanged)
    assert result.stdout.str().count("(gateway): quota_exceeded") >= 2


def test_child_crashing_at_import_fails_with_its_log(
    pytester: pytest.Pytester, write: Write
) -> None:
    project(write, agent="raise RuntimeError('database unreachable at import')\n")
    started = time.monotonic()
    result = run(pytester, "-k", "Looks")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "the agent process exited with code * before its session connected*",
            "  agent process log (last lines):",
            "*RuntimeError: database unreachable at import*",
        ]
    )
    assert time.monotonic() - started < 20  # no connect timeout: the exit is noticed


def test_entrypoint_raising_before_start_fails_fast(
    pytester: pytest.Pytester, write: Write
) -> None:
    agent = SERVER_PY.replace(
        "    session = AgentSession(",
        "    raise ValueError('no config')\n    session = AgentSession(",
    )
    project(write, agent=agent)
    started = time.monotonic()
    result = run(pytester, "-k", "Looks")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["the agent's entrypoint raised before its session started*", "*ValueError: no config*"]
    )
    assert time.monotonic() - started < 20  # the process stays up: read from its log


def test_a_hung_turn_fails_at_the_scenario_timeout(pytester: pytest.Pytester, write: Write) -> None:
    hang = (
        "    @function_tool\n"
        "    async def lookup(self, context: RunContext, city: str) -> str:\n"
        '        """Look up the weather."""\n'
        "        await asyncio.sleep(3600)\n"
        '        return "never"\n'
    )
    start = SERVER_PY.index("    @function_tool")
    end = SERVER_PY.index("async def check")
    project(write, agent="import asyncio\n" + SERVER_PY[:start] + hang + "\n\n" + SERVER_PY[end:])
    (pytester.path / "scenarios.yaml").write_text(
        (pytester.path / "scenarios.yaml")
        .read_text()
        .replace("  process: true", "  process: true\n  timeout: 2"),
        encoding="utf-8",
    )
    result = run(pytester, "-k", "Looks")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["turn 1: the agent did not finish its reply within 2s (agentsim.timeout)"]
    )
    assert _agent_children(pytester.path) == set()


def test_parity_with_entrypoint_mode(pytester: pytest.Pytester, write: Write) -> None:
    """Same YAML, same verdicts in-process (entrypoint mode) and in process mode; the
    process-mode run uses two xdist workers and leaves no agent process behind."""
    project(write, process=False)
    in_process = outcomes(run(pytester))
    assert in_process == {
        "Looks up the weather": "PASSED",
        "Vetoed by on_simulation_end": "FAILED",
        "Credits run out": "PASSED",
        "Wrong expectation": "FAILED",
    }
    assert outcomes(run(pytester, "--agentsim-process", "-n", "2")) == in_process
    assert _agent_children(pytester.path) == set()


def test_unsupported_keys_are_errors_naming_the_line(
    pytester: pytest.Pytester, write: Write
) -> None:
    write("agent.py", SERVER_PY)
    write(
        "scenarios.yaml",
        """
        name: Desk
        agentsim: {agent: agent.py, process: true}
        scenarios:
          - label: Mocked
            agentsim:
              turns:
                - user: Hi
                  tools: {lookup: sunny}
                  llm: ["Hello."]
        """,
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["scenarios.yaml:7: process mode cannot check `tools:` mocks*"])


def _agent_children(project_dir: Path) -> set[int]:
    """pids of live process-mode children running a project's agent (their cwd)."""
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"pytest_agentsim._process_shim" in cmd and cwd == str(project_dir) and state != "Z":
            out.add(int(entry.name))
    return out


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX process groups")
def test_child_ends_itself_when_pytest_dies(pytester: pytest.Pytester, write: Write) -> None:
    """An xdist worker killed mid-scenario leaves no agent process behind."""
    hang = "    await asyncio.sleep(3600)\n    await session.start("
    agent = "import asyncio\n" + SERVER_PY.replace("    await session.start(", hang)
    project(write, agent=agent)
    proc = pytester.popen(
        [sys.executable, "-m", "pytest", "--agentsim", "-p", "no:cacheprovider", "-k", "Looks"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not _agent_children(pytester.path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _agent_children(pytester.path), "the agent process never started"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _agent_children(pytester.path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _agent_children(pytester.path) == set()
    finally:
        if proc.poll() is None:
            proc.kill()
