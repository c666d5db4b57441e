"""A turn's ``RunResult`` beyond its events (``output:``, ``input_required:``) and the
session state an ``Agent`` target is given (``session: {userdata | state | deps}``).

livekit-agents 2 adds ``RunResult.output``/``input_required`` and the ``state``/``deps``
session arguments; 1.x has neither. Each test asserts what the installed release does:
the same YAML passes on 2.x and fails with a clear reason on 1.x.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import pytest
from livekit.agents import AgentServer

from pytest_agentsim.fakes.session import SESSION_CLASS

Write = Callable[[str, str], Path]

LIVEKIT_2 = "state" in inspect.signature(SESSION_CLASS.__init__).parameters

AGENT_PY = """
from livekit.agents import Agent, RunContext, function_tool


class Desk(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a front desk.")

    @function_tool
    async def guest(self, context: RunContext) -> str:
        \"\"\"Who the guest is.\"\"\"
        data = context.userdata if {source!r} == "userdata" else context.{source}
        return f"guest {{data['name']}}"
"""


def scenarios(session_key: str, extra_turn_keys: str = "") -> str:
    return f"""
name: Run results
agentsim:
  agent: agent:Desk
  session: {{{session_key}: {{name: Maya}}}}
scenarios:
  - label: asks the tool
    instructions: x
    agentsim:
      turns:
        - user: Who am I?
          llm:
            - tool_calls: [{{name: guest}}]
            - say: You are Maya, welcome back.
          expect:
            - function_call: guest
            - function_call_output: {{contains: "guest Maya"}}
            - message: {{contains: Maya}}
          {extra_turn_keys}
"""


def test_output_is_the_turn_result(pytester: pytest.Pytester, write: Write) -> None:
    write("agent.py", AGENT_PY.format(source="userdata"))
    write("scenarios.yaml", scenarios("userdata", 'output: {contains: "welcome back"}'))
    pytester.runpytest("--agentsim", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    write("scenarios.yaml", scenarios("userdata", "output: {equals: Goodbye}"))
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "turn 1: the run's output does not match equals 'Goodbye': got 'You are Maya, "
            "welcome back.'",
            "  at scenarios.yaml:18",
        ]
    )


def test_state_and_deps_reach_the_tools_on_livekit_2(
    pytester: pytest.Pytester, write: Write
) -> None:
    write("agent.py", AGENT_PY.format(source="state"))
    write("scenarios.yaml", scenarios("state"))
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    if LIVEKIT_2:
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "*scenarios.yaml:4: this livekit-agents session takes no 'state' (state and "
                "deps are livekit-agents 2 session arguments)",
                "  fix: on livekit-agents 1.x give the tools their data as `session: "
                "{userdata: ...}` (ctx.userdata)",
            ]
        )


def test_a_turn_that_waits_on_no_question_fails_input_required(
    pytester: pytest.Pytester, write: Write
) -> None:
    write("agent.py", AGENT_PY.format(source="userdata"))
    write("scenarios.yaml", scenarios("userdata", 'input_required: "booking code"'))
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    if LIVEKIT_2:
        reason = (
            "turn 1: the run waits on no question (input_required is None), expected one "
            "matching contains 'booking code'"
        )
    else:
        reason = (
            "turn 1: `input_required` cannot be checked: this livekit-agents has no "
            "InputRequired (livekit 2 does)"
        )
    result.stdout.fnmatch_lines([reason, "  at scenarios.yaml:18"])


WAITING_AGENT_PY = """
from livekit.agents import Agent, AgentServer, JobContext, RunContext, function_tool, inference
from livekit.agents.llm import InputRequired
from pytest_agentsim.fakes.session import SESSION_CLASS as AgentSession


class Desk(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a front desk.")

    @function_tool
    async def cancel(self, context: RunContext) -> InputRequired:
        \"\"\"Cancel a booking.\"\"\"
        return InputRequired(question="What is your booking code?")


server = AgentServer()


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    session = AgentSession(llm=inference.LLM("openai/gpt-4.1-mini"))
    await session.start(agent=Desk(), room=ctx.room)
"""


@pytest.mark.skipif(not LIVEKIT_2, reason="InputRequired is a livekit-agents 2 tool result")
@pytest.mark.parametrize("agent", ["agent:Desk", "agent.py", "agent.py --process"])
def test_input_required_is_the_question_a_tool_left_waiting(
    pytester: pytest.Pytester, write: Write, agent: str
) -> None:
    target, _, process = agent.partition(" ")
    write("agent.py", WAITING_AGENT_PY)
    write(
        "scenarios.yaml",
        f"""
        name: Waits
        agentsim: {{agent: "{target}", process: {str(bool(process)).lower()}}}
        scenarios:
          - label: asks
            instructions: x
            agentsim:
              turns:
                - user: Cancel my booking.
                  llm:
                    - tool_calls: [{{name: cancel}}]
                    - say: Sure, what's your booking code?
                  input_required: {{equals: What is your booking code?}}
                  output: booking code
        """,
    )
    pytester.runpytest("--agentsim", "-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_output_belongs_to_user_turns(pytester: pytest.Pytester, write: Write) -> None:
    write("agent.py", AGENT_PY.format(source="userdata"))
    write(
        "scenarios.yaml",
        """
        name: Run results
        agentsim: {agent: "agent:Desk"}
        scenarios:
          - label: says
            instructions: x
            agentsim:
              turns:
                - say: Hello there.
                  output: Hello
        """,
    )
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "*scenarios.yaml:9: `output` checks the RunResult of a user turn; turn 1 has none",
            "  fix: move `output` to the `user:` turn it belongs to",
        ]
    )


SERVER_PY = """
from livekit.agents import Agent, AgentServer, JobContext, inference
from pytest_agentsim.fakes.session import SESSION_CLASS as AgentSession


class Desk(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a front desk.")


server = AgentServer()


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    session = AgentSession(llm=inference.LLM("openai/gpt-4.1-mini"))
    await session.start(agent=Desk(), room=ctx.room)
"""


def test_process_mode_reads_output_and_input_required_from_the_turn(
    pytester: pytest.Pytester, write: Write
) -> None:
    write("agent.py", SERVER_PY)
    write(
        "scenarios.yaml",
        """
        name: Run results
        agentsim: {agent: agent.py, process: true}
        scenarios:
          - label: output
            instructions: x
            agentsim:
              turns:
                - user: Hi
                  llm: [Welcome back.]
                  output: {equals: Welcome back.}
          - label: input_required
            instructions: x
            agentsim:
              turns:
                - user: Hi
                  llm: [Welcome back.]
                  input_required: code
        """,
    )
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    reason = (
        "turn 1: the run waits on no question*"
        if LIVEKIT_2
        else "turn 1: `input_required` cannot be checked: this livekit-agents has no InputRequired*"
    )
    result.stdout.fnmatch_lines([reason, "  at scenarios.yaml:17"])


A2A_ONLY_PY = """
from livekit.agents import AgentServer

server = AgentServer(storage=object())  # A2A doors need one


@server.a2a_session(endpoint="scheduling", description="Book an appointment.")
async def scheduling(ctx) -> str:
    return "booked"
"""

STORAGE_PY = """
from livekit.agents import Agent, AgentServer, JobContext
from pytest_agentsim.fakes.session import SESSION_CLASS as AgentSession


class Desk(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="desk")


server = AgentServer(storage=object())


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    await AgentSession().start(agent=Desk(), room=ctx.room)
"""


@pytest.mark.skipif(
    not hasattr(AgentServer, "a2a_session"), reason="A2A doors and storage are livekit-agents 2"
)
@pytest.mark.parametrize(
    ("source", "message"),
    [
        (A2A_ONLY_PY, "*this AgentServer has only A2A text doors (scheduling) and no rtc_session*"),
        (STORAGE_PY, "*this AgentServer has session storage (storage=...)*"),
    ],
)
def test_servers_the_plugin_cannot_run_as_the_cloud_say_so(
    pytester: pytest.Pytester, write: Write, source: str, message: str
) -> None:
    write("agent.py", source)
    write(
        "scenarios.yaml",
        """
        name: Doors
        agentsim: {agent: agent.py}
        scenarios:
          - label: hi
            instructions: x
            agentsim:
              turns: [{user: hi, llm: [Hello.]}]
        """,
    )
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([message, "  fix: *"])
