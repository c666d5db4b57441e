"""Faults from YAML and Python, the spoken-fallback checks, the gateway transport and the
offline guard, run the way users run them."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_agentsim import faults
from pytest_agentsim.errors import AgentSimAssertionError
from pytest_agentsim.run.harness import AgentSim

from .conftest import AGENTS_PY

Write = Callable[[str, str], Path]
EXAMPLES = Path(__file__).parent.parent / "examples"


def quota_project(pytester: pytest.Pytester) -> None:
    shutil.copy(EXAMPLES / "quota" / "agent.py", pytester.path / "agent.py")


def scenario(write: Write, agent: str, turns: str, extra: str = "") -> None:
    body = "\n".join("        " + line for line in turns.strip("\n").splitlines())
    write(
        "scenarios.yaml",
        f"name: Faults\nagentsim: {{agent: '{agent}'}}\nscenarios:\n  - label: s\n"
        f"    agentsim:\n{extra}      turns:\n{body}\n",
    )


FALLBACK_TURN = """
- user: Book me in
  llm:
    - fault: quota_exceeded
  spoken: ["temporarily unavailable"]
  closed: {reason: user_initiated}
"""


def test_resilient_agent_speaks_before_closing(pytester: pytest.Pytester, write: Write) -> None:
    quota_project(pytester)
    scenario(write, "agent:ResilientAgent", FALLBACK_TURN)
    result = pytester.runpytest("--agentsim", "-rA")
    result.assert_outcomes(passed=1)


def test_naive_handler_is_caught(pytester: pytest.Pytester, write: Write) -> None:
    quota_project(pytester)
    scenario(write, "agent:NaiveAgent", FALLBACK_TURN)
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    # livekit emits an error event per attempt: the naive handler apologizes 4 times
    result.stdout.fnmatch_lines(["*the user heard more than `spoken` lists*"])
    assert result.stdout.str().count("llm call 4: quota_exceeded(429 MaxGatewayCredits)") == 1


def test_silent_agent_fails_the_fallback_check(pytester: pytest.Pytester, write: Write) -> None:
    write("agents.py", AGENTS_PY)
    scenario(write, "agents:EchoAgent", FALLBACK_TURN)
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*expected contains 'temporarily unavailable' to be spoken (spoken item 1)*"]
    )


def test_session_that_never_closes_fails(pytester: pytest.Pytester, write: Write) -> None:
    write("agents.py", AGENTS_PY)
    scenario(
        write,
        "agents:EchoAgent",
        """
- user: Hello
  llm: ["Hi"]
  closed: {reason: user_initiated}
""",
    )
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the session must close in this turn, but it is still open*"])


@pytest.mark.parametrize(
    ("times", "outcome"),
    [(2, "passed"), (3, "passed"), (4, "failed")],  # 1 call + 3 retries by default
)
def test_retry_policy_is_kept(
    pytester: pytest.Pytester, write: Write, times: int, outcome: str
) -> None:
    write("agents.py", AGENTS_PY)
    scenario(
        write,
        "agents:EchoAgent",
        f"""
- user: Hello
  llm:
    - {{fault: server_error, status: 502, times: {times}}}
    - Hi there
  expect: [{{message: "Hi there"}}]
""",
        extra="      allow_unused: true\n",
    )
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(**{outcome: 1})
    if outcome == "failed":
        result.stdout.fnmatch_lines(["*llm call 4: server_error(502)*", "*turn failed*"])


@pytest.mark.parametrize(
    ("fault", "shown"),
    [
        ("{fault: timeout}", "*APITimeoutError*"),
        ("{fault: connection_error}", "*APIConnectionError*"),
        ("{fault: terminal, message: boom}", "*boom (not retryable*"),
        ("{fault: disconnect_mid_stream, after_chunks: 1}", "*Partial response 1.*"),
        ("{fault: rate_limited}", "*APIStatusError 429*rate limit exceeded: MaxConcurrent*"),
        ("{fault: quota_exceeded, category: MaxEotRequests}", "*MaxEotRequests*"),
    ],
)
def test_every_fault_kind_from_yaml(
    pytester: pytest.Pytester, write: Write, fault: str, shown: str
) -> None:
    write("agents.py", AGENTS_PY)
    scenario(
        write,
        "agents:EchoAgent",
        f"""
- user: Hello
  llm: [{fault}]
  expect: [{{message: never}}]
""",
        extra="      allow_unused: true\n",
    )
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([shown])


def test_scheduled_faults_and_recovery(pytester: pytest.Pytester, write: Write) -> None:
    write("agents.py", AGENTS_PY)
    scenario(
        write,
        "agents:EchoAgent",
        """
- user: one
  llm: ["first"]
  expect: [{message: first}]
- user: two
  llm: ["second"]
  expect: [{message: second}]
""",
        # call 2 fails twice (retried), then the queue resumes with "second"
        extra="      faults: [{fault: server_error, on_call: 2, times: 2}]\n",
    )
    result = pytester.runpytest("--agentsim", "-rA")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(("spoken", "outcome"), [("[]", "passed"), ('["Hi there"]', "failed")])
def test_tts_fault_in_audio_mode_silences_the_reply(
    pytester: pytest.Pytester, write: Write, spoken: str, outcome: str
) -> None:
    write("agents.py", AGENTS_PY)
    scenario(
        write,
        "agents:EchoAgent",
        f"""
- user: Hello
  llm: ["Hi there"]
  tts: [{{fault: quota_exceeded, quota_type: tts}}]
  spoken: {spoken}
""",
        extra="      mode: audio\n",
    )
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(**{outcome: 1})
    if outcome == "failed":
        result.stdout.fnmatch_lines(
            ["*tts call 1: quota_exceeded(429 MaxGatewayCredits)*", "*the user heard only*"]
        )


def test_gateway_transport_serves_the_real_client(pytester: pytest.Pytester, write: Write) -> None:
    write("agents.py", AGENTS_PY)
    scenario(
        write,
        "agents:EchoAgent",
        """
- user: Weather?
  llm:
    - tool_calls: [{name: lookup, arguments: {city: Oslo}}]
    - Sunny in Oslo.
  expect:
    - function_call: {name: lookup, arguments: {city: Oslo}}
    - function_call_output: {contains: "sunny in Oslo"}
    - message: Sunny in Oslo
""",
        extra="      transport: gateway\n",
    )
    pytester.runpytest("--agentsim").assert_outcomes(passed=1)


def test_cli_switches_the_quota_example_to_the_gateway(pytester: pytest.Pytester) -> None:
    for f in ("agent.py", "scenarios.yaml"):
        shutil.copy(EXAMPLES / "quota" / f, pytester.path / f)
    result = pytester.runpytest("--agentsim", "--agentsim-transport", "gateway", "-v")
    result.assert_outcomes(passed=4)
    # the faults were served over HTTP by the gateway, not raised by a fake
    assert "(gateway): quota_exceeded" not in result.stdout.str()  # passing: no transcript
    result = pytester.runpytest(
        "--agentsim", "--agentsim-transport", "gateway", "-k", "Credits", "-rA"
    )
    result.assert_outcomes(passed=1)


def test_offline_guard_names_the_url(pytester: pytest.Pytester, write: Write) -> None:
    write(
        "net.py",
        """
from livekit.agents import Agent, RunContext, function_tool
import socket

class NetAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="net")

    @function_tool
    async def fetch(self, context: RunContext) -> str:
        \"\"\"Fetch something.\"\"\"
        socket.create_connection(("api.example.com", 443), timeout=1)
        return "fetched"
""",
    )
    scenario(
        write,
        "net:NetAgent",
        """
- user: go
  llm: [{tool_calls: [{name: fetch}]}, "done"]
""",
    )
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*the agent tried to reach the network*", "*api.example.com*443*", "*fix:*"]
    )


# -- the Python fallback assertions, on a real session ---------------------------------


@pytest.mark.asyncio
async def test_python_api_fallback_passes_and_fails() -> None:
    import sys

    sys.path.insert(0, str(EXAMPLES / "quota"))
    try:
        from agent import NaiveAgent, ResilientAgent  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)

    from pytest_agentsim.fakes import no_backoff

    with no_backoff():
        good = AgentSim()
        good.fake_llm.add_response(text="Hi")
        good.fake_llm.add_fault(faults.quota_exceeded())
        await good.start(ResilientAgent())
        await good.run("hello")
        await good.run("book")
        good.assert_spoken_before_close("temporarily unavailable")
        good.assert_spoken("temporarily unavailable", count=1)
        good.assert_closed(reason="user_initiated")
        with pytest.raises(AgentSimAssertionError, match="reason='user_initiated'"):
            good.assert_closed(reason="error")

        naive = AgentSim()
        naive.fake_llm.add_fault(faults.quota_exceeded())
        await naive.start(NaiveAgent())
        await naive.run("book")
        with pytest.raises(AgentSimAssertionError, match="never closed"):
            naive.assert_spoken_before_close("temporarily unavailable")
        await naive.aclose()


def test_fallback_after_close_is_not_heard() -> None:
    from pytest_agentsim.fakes import Spoken
    from pytest_agentsim.fakes.audio import SpokenLog

    class Closed:
        reason = "error"
        error = None

    sim = AgentSim()
    heard = SpokenLog()
    sim.listen_to(heard)
    sim.record_close(Closed())
    heard.add(Spoken("Sorry, temporarily unavailable", "text", False, 0, None))
    with pytest.raises(AgentSimAssertionError, match="only after the session closed"):
        sim.assert_spoken_before_close("temporarily unavailable")
    silent = AgentSim()
    silent.listen_to(SpokenLog())
    silent.record_close(Closed())
    with pytest.raises(AgentSimAssertionError, match="went silent"):
        silent.assert_spoken_before_close("temporarily unavailable")


def test_a_failing_fault_scenario_shows_the_transcript_not_livekits_retry_logs(
    pytester: pytest.Pytester, write: Write
) -> None:
    """livekit logs every retry of an injected fault and the traceback of the turn it ends;
    the transcript already shows each one, so they stay out of the captured log."""
    write("agents.py", AGENTS_PY)
    scenario(
        write,
        "agents:EchoAgent",
        """
- user: Hi
  llm:
    - fault: quota_exceeded
  spoken: ["sorry"]
""",
    )
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*fault | llm call 1: quota_exceeded(429 MaxGatewayCredits)*", "*the turn failed*"]
    )
    output = result.stdout.str()
    assert "retrying in" not in output
    assert "Traceback" not in output
