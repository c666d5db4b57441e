"""Scripted turns against real livekit-agents sessions, through `pytest --agentsim`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import AGENTS_PY, plugin_output

Write = Callable[[str, str], Path]


def project(write: Write, turns: str, *, extra: str = "", agent: str = "agents:EchoAgent") -> None:
    write("agents.py", AGENTS_PY)
    body = "\n".join("          " + line for line in turns.strip("\n").splitlines())
    write(
        "scenarios.yaml",
        f"""
name: Turns
agentsim:
  agent: "{agent}"
scenarios:
  - label: The scenario
    instructions: test
    userdata: {{name: from-userdata}}
    agentsim:
{extra}      turns:
{body}
""",
    )


def test_text_reply_and_tool_call_pass(pytester: pytest.Pytester, write: Write) -> None:
    project(
        write,
        """
- user: Weather in Paris for 2 days?
  llm:
    - tool_calls: [{name: lookup, arguments: {city: Paris, days: 2}}]
    - say: It is sunny in Paris.
  expect:
    - function_call: {name: lookup, arguments: {city: Paris}}
    - function_call_output: {contains: "sunny in Paris for 2 day(s)", is_error: false}
    - message: {regex: "^It is sunny"}
- user: Thanks!
  llm: ["You're welcome."]
  expect:
    - message: {equals: "You're welcome."}
""",
    )
    result = pytester.runpytest("--agentsim", "-v")
    result.assert_outcomes(passed=1)


def test_message_mismatch_points_at_yaml_line(pytester: pytest.Pytester, write: Write) -> None:
    project(
        write,
        """
- user: Hello
  llm: [{say: "Hi there"}]
  expect:
    - message: {contains: "Goodbye"}
""",
    )
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*turn 1, event 1: message text does not match contains 'Goodbye': got 'Hi there'*",
            "*at scenarios.yaml:13*",
            "*agentsim transcript*",
            "*user | Hello*",
            ">>*agent | Hi there*",
        ]
    )
    assert "Traceback" not in plugin_output(result)


def test_expect_is_exhaustive(pytester: pytest.Pytester, write: Write) -> None:
    project(
        write,
        """
- user: Weather?
  llm:
    - tool_calls: [{name: lookup, arguments: {city: Oslo}}]
    - say: Sunny.
  expect:
    - function_call: {name: lookup}
""",
    )
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*unexpected extra event 2: function_call_output*"])


def test_missing_event_and_wrong_arguments(pytester: pytest.Pytester, write: Write) -> None:
    project(
        write,
        """
- user: Weather?
  llm:
    - tool_calls: [{name: lookup, arguments: {city: Oslo}}]
    - say: Sunny.
  expect:
    - function_call: {name: lookup, arguments: {city: Bergen}}
""",
    )
    result = pytester.runpytest("--agentsim")
    result.stdout.fnmatch_lines(['*lookup arguments do not contain {"city": "Bergen"}*Oslo*'])


def test_tool_error_and_handoff(pytester: pytest.Pytester, write: Write) -> None:
    project(
        write,
        """
- user: break it
  llm:
    - tool_calls: [{name: broken}]
    - say: Sorry, that failed.
  expect:
    - function_call: broken
    - function_call_output: {contains: "backend down", is_error: true}
    - message: "that failed"
- user: support please
  llm:
    - tool_calls: [{name: to_support}]
    - say: Support here.
  expect:
    - function_call: to_support
    - function_call_output: {}
    - message: Support here
    - agent_handoff: {new_agent: SupportAgent}
""",
    )
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(passed=1)


def test_mocked_tools_per_turn(pytester: pytest.Pytester, write: Write) -> None:
    project(
        write,
        """
- user: Weather?
  tools:
    lookup: {forecast: rain, city: Paris}
  llm:
    - tool_calls: [{name: lookup, arguments: {city: Paris}}]
    - say: Rain.
  expect:
    - function_call: lookup
    - function_call_output: {contains: '"forecast": "rain"'}
    - message: Rain
- user: And it raises?
  tools:
    lookup: {raise: "weather service down"}
  llm:
    - tool_calls: [{name: lookup, arguments: {city: Paris}}]
    - say: Down.
  expect:
    - function_call: lookup
    - function_call_output: {contains: "weather service down", is_error: true}
    - message: Down
- user: Real tool again?
  llm:
    - tool_calls: [{name: lookup, arguments: {city: Rome}}]
    - say: ok
  expect:
    - function_call: lookup
    - function_call_output: {contains: "sunny in Rome"}
    - message: ok
""",
    )
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(passed=1)


def test_unused_scripted_answers_fail_unless_allowed(
    pytester: pytest.Pytester, write: Write
) -> None:
    turns = """
- user: Hello
  llm:
    - say: Hi
    - say: never used
"""
    project(write, turns)
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*scripted model answers were never used*", "*scenarios.yaml:13: llm: say 'never used'*"]
    )
    project(write, turns, extra="      allow_unused: true\n")
    pytester.runpytest("--agentsim").assert_outcomes(passed=1)


def test_unscripted_model_call_fails(pytester: pytest.Pytester, write: Write) -> None:
    project(
        write,
        """
- user: Hello
  llm:
    - tool_calls: [{name: whoami}]
""",
    )
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "turn 1: the agent made model calls nothing scripted: llm call 2",
            "  at scenarios.yaml:*",
            "  fix: give this step's `llm:` one answer per model call (after tool calls, the "
            "model is called again for the reply)",
        ]
    )


def test_spoken_in_audio_mode(pytester: pytest.Pytester, write: Write) -> None:
    project(
        write,
        """
- user: Hello
  llm: [{say: "Hello from the agent"}]
  spoken:
    - {contains: "hello from", source: tts}
- user: Again
  llm: [{say: "Second answer"}]
  spoken: ["nothing like this"]
""",
        extra="      mode: audio\n",
    )
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*turn 2, spoken item 1: expected contains 'nothing like this'*[[]tts] 'Second answer'*"]
    )


def test_agent_binding_precedence(pytester: pytest.Pytester, write: Write) -> None:
    """CLI > scenario file > ini > conftest fixture."""
    turns = """
- user: who?
  llm:
    - tool_calls: [{name: whoami}]
    - say: done
  expect:
    - function_call: whoami
    - function_call_output: {contains: "I am EXPECTED"}
    - message: done
"""

    def check(expected: str, *args: str, yaml_agent: bool) -> None:
        project(
            write, turns.replace("EXPECTED", expected), agent="agents:agent_b" if yaml_agent else ""
        )
        if not yaml_agent:
            text = (pytester.path / "scenarios.yaml").read_text()
            (pytester.path / "scenarios.yaml").write_text(
                text.replace('agentsim:\n  agent: ""\n', "")
            )
        pytester.runpytest("--agentsim", *args).assert_outcomes(passed=1)

    write(
        "conftest.py",
        "import pytest\n\n@pytest.fixture\ndef agentsim_agent():\n"
        "    from agents import agent_d\n    return agent_d\n",
    )
    write("pytest.ini", "[pytest]\npythonpath = .\nagentsim_agent = agents:agent_c\n")
    check("echo", "--agentsim-agent", "agents:EchoAgent", yaml_agent=True)  # CLI wins
    check("B", yaml_agent=True)  # the file beats ini and fixture
    check("C", yaml_agent=False)  # ini beats the fixture
    write("pytest.ini", "[pytest]\npythonpath = .\n")
    check("D", yaml_agent=False)  # the fixture


def test_factory_receives_scenario(pytester: pytest.Pytester, write: Write) -> None:
    project(
        write,
        """
- user: who?
  llm:
    - tool_calls: [{name: whoami}]
    - say: done
  expect:
    - function_call: whoami
    - function_call_output: {contains: "I am from-userdata"}
    - message: done
""",
        agent="agents:from_scenario",
    )
    pytester.runpytest("--agentsim").assert_outcomes(passed=1)


def test_no_agent_is_a_clear_error(pytester: pytest.Pytester, write: Write) -> None:
    write(
        "scenarios.yaml",
        "name: x\nscenarios:\n  - label: a\n    agentsim:\n      turns: [{user: hi}]\n",
    )
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*scenarios.yaml:3: no agent to run for this scenario*", "*fix:*"])
    assert "Traceback" not in plugin_output(result)


def test_bad_agent_reference(pytester: pytest.Pytester, write: Write) -> None:
    project(write, "- user: hi\n  llm: [ok]\n", agent="agents:EchoAgnet")
    result = pytester.runpytest("--agentsim")
    result.stdout.fnmatch_lines(
        [
            "*scenarios.yaml:3: agentsim.agent: module * has no attribute 'EchoAgnet'*",
            "*did you mean 'EchoAgent'?*",
        ]
    )


def test_hanging_tool_times_out_with_transcript(pytester: pytest.Pytester, write: Write) -> None:
    write(
        "slow.py",
        """
import asyncio
from livekit.agents import Agent, RunContext, function_tool

class SlowAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="slow")

    @function_tool
    async def hang(self, context: RunContext) -> str:
        \"\"\"Never returns.\"\"\"
        await asyncio.sleep(3600)
        return "never"
""",
    )
    write(
        "scenarios.yaml",
        """
name: slow
agentsim: {agent: "slow:SlowAgent", timeout: 0.5}
scenarios:
  - label: hangs
    agentsim:
      turns:
        - user: go
          llm: [{tool_calls: [{name: hang}]}, {say: never}]
  - label: still runs
    agentsim:
      turns:
        - user: hi
          llm: [hello]
""",
    )
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*did not finish within 0.5s*",
            "*agentsim transcript*",
            "*tool call still running: hang({})*",
        ]
    )


def test_tool_calls_scripted_after_a_handoff_are_reported(
    pytester: pytest.Pytester, write: Write
) -> None:
    """livekit answers a handoff with tool_choice='none' and silently drops tool calls."""
    project(
        write,
        """
- user: support please
  llm:
    - tool_calls: [{name: to_support}]
    - tool_calls: [{name: whoami}]
""",
        extra="      allow_unused: true\n",
    )
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*model call 2 was made with tool_choice='none'*scripted tool calls (whoami)*"]
    )


def test_a_captured_value_is_reused_in_a_later_tool_call(
    pytester: pytest.Pytester, write: Write
) -> None:
    """A regex's named group captures what the agent got back (an id, a code) and a later
    answer repeats it with ${name}, as a model would; $${...} stays literal."""
    project(
        write,
        """
- user: Weather in Paris?
  llm:
    - tool_calls: [{name: lookup, arguments: {city: Paris}}]
    - say: Sunny.
  expect:
    - function_call: lookup
    - function_call_output: {regex: 'sunny in (?P<city>\\w+) for (?P<days>\\d+)'}
    - message: Sunny
- user: And for the same city, twice as long?
  llm:
    - tool_calls: [{name: lookup, arguments: {city: "${city}", days: "${days}${days}"}}]
    - say: Still sunny in ${city} ($${not_a_capture}).
  expect:
    - function_call: {name: lookup, arguments: {city: Paris, days: "11"}}
    - function_call_output: {contains: "sunny in Paris for 11 day(s)"}
    - message: {equals: "Still sunny in Paris (${not_a_capture})."}
""",
    )
    pytester.runpytest("--agentsim").assert_outcomes(passed=1)


def test_a_reference_to_nothing_captured_names_its_line(
    pytester: pytest.Pytester, write: Write
) -> None:
    project(
        write,
        """
- user: Weather?
  llm:
    - tool_calls: [{name: lookup, arguments: {city: "${city}"}}]
    - say: Sunny.
""",
    )
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "turn 1: ${city} names nothing captured so far",
            "  at scenarios.yaml:12",
            "  fix: capture it in an earlier step with a named group*",
        ]
    )
