"""LiveKit's own example agents, run unchanged (SPEC §9).

``tests/data/livekit_examples`` holds ``examples/frontdesk``, ``examples/hotel_receptionist``
and ``examples/data_capture_sim`` from livekit/agents, byte for byte (see its README). Each
test copies them into a pytester project next to scripted scenarios from
``tests/data/livekit_scenarios`` and runs ``pytest --agentsim`` the way a user would: no
conftest, no wrapper module, no monkeypatching. The agents greet from ``on_enter`` with a
model call, hand off to ``beta.workflows`` sub-tasks, mock their tools in the entrypoint,
grade the call in ``on_simulation_end`` and ``on_session_end`` (an ``evals.JudgeGroup``),
touch the room's local participant, read settings from the environment at import, and
import their helpers by bare name from their own folder.
"""

from __future__ import annotations

import inspect
import re
import shutil

import pytest
from livekit.agents import AgentTask, inference
from livekit.agents.voice.run_result import mock_tools

from .conftest import DATA, plugin_output

EXAMPLES = DATA / "livekit_examples"
SCENARIOS = DATA / "livekit_scenarios"

# scenarios per agent file in tests/data/livekit_scenarios/<agent>.yaml
PASSING = {"frontdesk": 3, "hotel_receptionist": 2, "data_capture_sim": 2}
PROCESS = ["--agentsim-process"]

# LiveKit's frontdesk and hotel examples are 1.x agents: their sub-tasks pass chat_ctx= to
# AgentTask, which livekit-agents 2.0 removed (the plugin reports the TypeError at the
# tool). data_capture_sim runs on both.
ONE_X_ONLY = pytest.mark.skipif(
    "chat_ctx" not in inspect.signature(AgentTask.__init__).parameters,
    reason="LiveKit's example is 1.x code: AgentTask(chat_ctx=...) is gone in livekit-agents 2",
)


# ...and code newer than livekit-agents 1.6.0 (the plugin reports the entrypoint's error at
# its line): frontdesk registers its tool mocks with mock_tools(..., session=), hotel builds
# an inference.VAD
NEEDS = {
    "frontdesk": pytest.mark.skipif(
        "session" not in inspect.signature(mock_tools).parameters,
        reason="LiveKit's frontdesk example calls mock_tools(..., session=), which "
        "livekit-agents 1.6.0 does not have",
    ),
    "hotel_receptionist": pytest.mark.skipif(
        not hasattr(inference, "VAD"),
        reason="LiveKit's hotel_receptionist example uses inference.VAD, which "
        "livekit-agents 1.6.0 does not have",
    ),
}


def agents(*names: str) -> list[object]:
    return [pytest.param(n, marks=[ONE_X_ONLY, NEEDS[n]]) if n in NEEDS else n for n in names]


def project(pytester: pytest.Pytester, *agents: str, wrong: bool = False) -> None:
    """The agents' folders, unchanged, each with a scenarios file beside its agent.py."""
    for agent in agents:
        folder = pytester.path / agent
        shutil.copytree(EXAMPLES / agent, folder)
        source = SCENARIOS / (f"{agent}_wrong.yaml" if wrong else f"{agent}.yaml")
        shutil.copyfile(source, folder / "scenarios.yaml")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--agentsim", "-p", "no:cacheprovider", *args)


@pytest.mark.parametrize("agent", agents(*sorted(PASSING)))
def test_example_agent_passes_unchanged_in_entrypoint_and_process_mode(
    pytester: pytest.Pytester, agent: str
) -> None:
    """One YAML, one verdict, one snapshot: entrypoint mode writes the snapshots and
    process mode (the agent file in its own process) must match them."""
    project(pytester, agent)
    (pytester.path / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nagentsim_snapshot = true\n",
        encoding="utf-8",
    )
    wanted = PASSING[agent]
    run(pytester, "--snapshot-update").assert_outcomes(passed=wanted)
    snapshots = pytester.path / agent / "__snapshots__" / "scenarios.agentsim"
    written = snapshots.read_text("utf-8")
    assert written.count("\n# name: ") == wanted
    # livekit's own workflow prompts are not snapshotted (they churn on upgrades)
    assert "You are only a single step in a broader system" not in written

    # a missing or different snapshot fails the scenario: passing is matching
    run(pytester, *PROCESS).assert_outcomes(passed=wanted)
    assert snapshots.read_text("utf-8") == written


def test_data_capture_agent_class_passes_the_same_yaml_in_agent_mode(
    pytester: pytest.Pytester,
) -> None:
    """The third mode: the Agent class alone, in a session the plugin builds; the same
    scenarios and snapshots as its AgentServer."""
    project(pytester, "data_capture_sim")
    run(pytester, "--snapshot-update", "-o", "agentsim_snapshot=true").assert_outcomes(passed=2)
    result = run(
        pytester,
        "-o",
        "agentsim_snapshot=true",
        "--agentsim-agent",
        "data_capture_sim/agent.py:DataCaptureAgent",
    )
    result.assert_outcomes(passed=2)


@ONE_X_ONLY
@NEEDS["frontdesk"]
@NEEDS["hotel_receptionist"]
@pytest.mark.parametrize(
    "order",
    [
        ("frontdesk", "hotel_receptionist", "data_capture_sim"),
        ("hotel_receptionist", "frontdesk", "data_capture_sim"),
    ],
)
def test_agents_with_same_named_helpers_run_in_one_session(
    pytester: pytest.Pytester, order: tuple[str, ...]
) -> None:
    """frontdesk and the hotel both `from ui_view import ...` their own ui_view.py: each
    gets its own, whichever is imported first."""
    project(pytester, *order)
    result = run(pytester, "--snapshot-update", *order)
    result.assert_outcomes(passed=sum(PASSING.values()))


def _failing_lines(agent: str) -> dict[str, int]:
    """label -> the line marked `# <- fails here` inside that scenario."""
    out: dict[str, int] = {}
    label = ""
    for number, line in enumerate(
        (SCENARIOS / f"{agent}_wrong.yaml").read_text("utf-8").splitlines(), 1
    ):
        found = re.match(r"\s*- label: (.+?)(\s+#.*)?$", line)
        if found:
            label = found[1]
        if "# <- fails here" in line:
            out[label] = number
    return out


WRONG = {
    "frontdesk": {
        "expects a slot the calendar does not have": "tool output does not match contains",
        "scripts a tool the agent does not have": "*'book_slot' names a tool the agent does "
        "not offer*",
        "books a different slot than on_simulation_end expects": "on_simulation_end failed "
        "the simulation*expected a single booking*",
        "leaves the greeting unscripted": "the greeting: the agent made model calls nothing "
        "scripted*",
    },
    "hotel_receptionist": {
        "forgets the judges on_session_end asks": "after the call, on_session_end*nothing "
        "scripted*",
        "cancels the wrong booking": "on_simulation_end failed the simulation*final DB diverges*",
    },
    "data_capture_sim": {
        "expects the wrong sub-task": "*expected a handoff to GetEmailTask, got a handoff to "
        "get_phone_number_task*",
    },
}


@pytest.mark.parametrize("mode", ["entrypoint", "process"])
@pytest.mark.parametrize("agent", agents(*sorted(WRONG)))
def test_wrong_scenarios_fail_at_their_yaml_line(
    pytester: pytest.Pytester, agent: str, mode: str
) -> None:
    project(pytester, agent, wrong=True)
    result = run(pytester, *(PROCESS if mode == "process" else ()))
    expected = WRONG[agent]
    result.assert_outcomes(failed=len(expected))
    lines = _failing_lines(agent)
    assert set(lines) == set(expected)
    output = plugin_output(result)
    for label, message in expected.items():
        block = output.split(f"scenario: {label} ", 1)[1]
        head = "\n".join(block.splitlines()[1:6])
        assert re.search(rf"^  at scenarios\.yaml:{lines[label]}$", head, re.M), (label, head)
        pattern = message if message.startswith("*") else f"*{message}*"
        assert any(
            re.fullmatch(pattern.replace("*", ".*"), ln, re.S) for ln in head.splitlines()
        ), (label, head)
    assert "Traceback" not in output.split("agentsim transcript")[0]


def test_a_yaml_file_named_on_the_command_line_is_collected_whatever_its_name(
    pytester: pytest.Pytester,
) -> None:
    project(pytester, "data_capture_sim")
    named = pytester.path / "data_capture_sim" / "regressions.yml"
    (pytester.path / "data_capture_sim" / "scenarios.yaml").rename(named)
    run(pytester, str(named)).assert_outcomes(passed=2)
    # and without --agentsim, it says how to run it (not pytest's bare "not found")
    plain = pytester.runpytest("-p", "no:cacheprovider", str(named))
    plain.stdout.fnmatch_lines(["*regressions.yml is collected as scenarios only with --agentsim*"])


def test_missing_dependency_of_the_agent_is_named_at_its_import_line(
    pytester: pytest.Pytester,
) -> None:
    project(pytester, "data_capture_sim")
    agent = pytester.path / "data_capture_sim" / "agent.py"
    source = agent.read_text("utf-8")
    agent.write_text(source.replace("from dotenv import", "from dotenv_missing import"), "utf-8")
    line = next(
        n for n, text in enumerate(source.splitlines(), 1) if text.startswith("from dotenv")
    )
    result = run(pytester)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            f"data_capture_sim/agent.py:{line}: the agent imports 'dotenv_missing', which "
            "is not installed*",
            "  fix: install the package that provides 'dotenv_missing'*",
        ]
    )


@ONE_X_ONLY
@NEEDS["frontdesk"]
def test_frontdesk_idle_nudges_run_on_the_virtual_clock(pytester: pytest.Pytester) -> None:
    """`silence:` turns: frontdesk's user_away_timeout and its 10-second nudge loop run on
    the virtual clock (25 s of silence in an instant); a nudge that the YAML does not
    expect (too long a silence) fails the turn."""
    shutil.copytree(EXAMPLES / "frontdesk", pytester.path / "frontdesk")
    idle = (SCENARIOS / "frontdesk_idle.yaml").read_text("utf-8")
    (pytester.path / "frontdesk" / "scenarios.yaml").write_text(idle, "utf-8")
    run(pytester).assert_outcomes(passed=2)
    longer = idle.replace("- silence: 15", "- silence: 21")  # a second nudge at 20 s
    (pytester.path / "frontdesk" / "scenarios.yaml").write_text(longer, "utf-8")
    result = run(pytester, "-k", "shorter")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["turn 1: the agent made model calls nothing scripted: llm call 3"])
