"""The Python API: `agentsim`, `fake_llm` and friends in ordinary async tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import AGENTS_PY

Write = Callable[[str, str], Path]


def test_spec_example_shape(pytester: pytest.Pytester, write: Write) -> None:
    write("agents.py", AGENTS_PY)
    write(
        "test_agent.py",
        """
import pytest
from agents import EchoAgent

@pytest.mark.asyncio
async def test_weather(agentsim, fake_llm):
    fake_llm.add_response(tool_calls=[{"name": "lookup", "arguments": {"city": "Paris"}}])
    fake_llm.add_response(text="Sunny in Paris, 21 degrees.")
    await agentsim.start(EchoAgent(), mode="audio")
    result = await agentsim.run("Weather in Paris?")
    result.expect.next_event().is_function_call(name="lookup")
    result.expect.next_event().is_function_call_output()
    result.expect.next_event().is_message(role="assistant")
    result.expect.no_more_events()
    agentsim.assert_spoken("21 degrees")
    agentsim.assert_spoken(regex=r"Sunny in \\w+", source="tts")
    assert [s.text for s in agentsim.spoken] == ["Sunny in Paris, 21 degrees."]
    assert len(fake_llm.calls) == 2
    kinds = [e.kind for e in agentsim.timeline]
    # the session start is itself a handoff item (from nobody to the first agent)
    assert kinds[0] == "handoff" and kinds[1] == "user" and kinds.count("spoken") == 1
    assert kinds.index("tool_call") < kinds.index("tool_output") < kinds.index("agent")
    assert not agentsim.closed
""",
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_assert_spoken_failure_shows_transcript(pytester: pytest.Pytester, write: Write) -> None:
    write("agents.py", AGENTS_PY)
    write(
        "test_agent.py",
        """
import pytest
from agents import EchoAgent

@pytest.mark.asyncio
async def test_silent(agentsim, fake_llm):
    fake_llm.add_response(text="Something else entirely")
    await agentsim.start(EchoAgent())
    await agentsim.run("hello")
    agentsim.assert_spoken("temporarily unavailable")
""",
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*expected 'temporarily unavailable' to be spoken, but it never reached the user*",
            "*user | hello*",
            "*spoken | [[]text] Something else entirely*",
        ]
    )


def test_unused_responses_fail_at_teardown(pytester: pytest.Pytester, write: Write) -> None:
    write("agents.py", AGENTS_PY)
    write(
        "test_agent.py",
        """
import pytest
from agents import EchoAgent

@pytest.mark.asyncio
async def test_leftover(agentsim, fake_llm):
    fake_llm.add_response(text="used")
    fake_llm.add_response(text="left over")
    await agentsim.start(EchoAgent())
    await agentsim.run("hello")

@pytest.mark.agentsim_allow_unused
@pytest.mark.asyncio
async def test_opted_out(agentsim, fake_llm):
    fake_llm.add_response(text="used")
    fake_llm.add_response(text="left over")
    await agentsim.start(EchoAgent())
    await agentsim.run("hello")
""",
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*fake_llm: 1 scripted answer(s) were never used:", "*left over*"])


def test_closed_assertions(pytester: pytest.Pytester, write: Write) -> None:
    write("agents.py", AGENTS_PY)
    write(
        "test_agent.py",
        """
import pytest
from agents import EchoAgent

@pytest.mark.asyncio
async def test_never_closes(agentsim, fake_llm):
    fake_llm.add_response(text="hi")
    await agentsim.start(EchoAgent())
    await agentsim.run("hello")
    agentsim.assert_spoken_before_close("hi")
""",
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the session never closed (it was spoken)*"])


def test_scenario_marker_hands_over_the_scenario(pytester: pytest.Pytester, write: Write) -> None:
    write(
        "scenarios.yaml",
        """
name: x
scenarios:
  - label: Dated
    userdata:
      day: 2026-07-14
      at: 2026-06-12 09:00:00
      local: 2026-06-12T09:00:00
      flag: yes
      n: 0x1F
""",
    )
    write(
        "test_marker.py",
        """
import pytest

@pytest.mark.scenario("scenarios.yaml", label="Dated")
def test_it(agentsim_scenario):
    assert agentsim_scenario.label == "Dated"
    assert agentsim_scenario.userdata == {
        "day": "2026-07-14T00:00:00Z", "at": "2026-06-12T09:00:00Z",
        "local": "2026-06-12T09:00:00", "flag": "yes", "n": 31,
    }
    assert agentsim_scenario.to_proto().label == "Dated"

@pytest.mark.scenario("scenarios.yaml", label="Missing")
def test_missing(agentsim_scenario):
    pass
""",
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*scenarios.yaml: no scenario labelled 'Missing'", "*fix: pick one of: 'Dated'"]
    )
