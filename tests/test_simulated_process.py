"""Simulated scenarios in process mode: the whole ``lk agent simulate`` loop locally. The
agent file runs in its own process; the simulated user (an LLM) talks to it over LiveKit's
session protocol, the judge grades the transcript and its verdict reaches the agent's
``on_simulation_end`` through ``finalize_simulation``. The models are recorded against a
loopback server the test starts, then replayed offline, with one cassette for every mode."""

from __future__ import annotations

import json
import os

import pytest

from pytest_agentsim.run.cassette import Cassette

from .test_simulated import (
    AGENT_SAYS,
    PASS,
    SCENARIOS,
    SERVER,
    USER,
    ModelServer,
    Write,
    cassette_file,
    record,
)

PROCESS_SCENARIOS = SCENARIOS.replace(
    'agentsim: {agent: "agent:Receptionist"}',
    'agentsim: {agent: "server.py", process: true}',
)


# where the agent module was imported: never in the test's (pytest's) own process
IMPORTED_IN = """
import os
with Path(__file__).with_name("pids.txt").open("a") as _pids:
    _pids.write(f"{os.getpid()}\\n")
"""


def imported_elsewhere(pytester: pytest.Pytester) -> bool:
    pids = (pytester.path / "pids.txt").read_text(encoding="utf-8").split()
    return bool(pids) and str(os.getpid()) not in pids


def replay(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--agentsim", "-p", "no:cacheprovider", *args)


def verdict_seen(pytester: pytest.Pytester) -> list[object]:
    path = pytester.path / "verdict.json"
    seen: list[object] = json.loads(path.read_text(encoding="utf-8"))
    path.unlink()
    return seen


@pytest.mark.parametrize("must_fail", [False, True])
def test_records_and_replays_over_the_session_protocol(
    pytester: pytest.Pytester, write: Write, must_fail: bool
) -> None:
    write("server.py", f"MUST_FAIL = {must_fail}\n" + SERVER + IMPORTED_IN)
    project = write("scenarios.yaml", PROCESS_SCENARIOS)
    with ModelServer(USER, AGENT_SAYS, [PASS]) as server:
        result = record(pytester, server, "--junitxml=rec.xml")
        roles = [role for role, _ in server.requests]
    assert roles == ["user", "agent", "user", "agent", "judge"]
    # the child's on_simulation_end got the judge's verdict, as the cloud hands it over
    assert verdict_seen(pytester) == [True, "The agent booked the room for Friday."]
    cassette = Cassette.load(cassette_file(project))
    assert [i.role for i in cassette.interactions] == roles
    replayed = replay(pytester, "--junitxml=replay.xml")
    for run, xml in ((result, "rec.xml"), (replayed, "replay.xml")):
        if must_fail:
            run.assert_outcomes(failed=1)
            run.stdout.fnmatch_lines(
                [
                    "*process mode (text): server.py in a child process*",
                    "*user*Hi, I need a room for two nights from Friday.*",
                    "*agent*Booked: two nights from Friday.*",
                    "*grader: no booking row in the database*",
                    "*agent process log (last * lines)*",
                ]
            )
        else:
            run.assert_outcomes(passed=1)
            report = (pytester.path / xml).read_text(encoding="utf-8")
            assert 'name="judge_verdict" value="pass"' in report
    assert verdict_seen(pytester) == [True, "The agent booked the room for Friday."]
    assert imported_elsewhere(pytester)


def test_one_cassette_serves_entrypoint_and_process_mode(
    pytester: pytest.Pytester, write: Write
) -> None:
    """Recorded in-process (entrypoint mode), replayed against the agent in its own
    process: the agent's requests are the same bytes, so the verdict is the same."""
    write("server.py", "MUST_FAIL = False\n" + SERVER + IMPORTED_IN)
    project = write("scenarios.yaml", SCENARIOS.replace("agent:Receptionist", "server:server"))
    with ModelServer(USER, AGENT_SAYS, [PASS]) as server:
        record(pytester, server).assert_outcomes(passed=1)
    recorded = cassette_file(project).read_text(encoding="utf-8")
    (pytester.path / "pids.txt").unlink()  # entrypoint mode imported it here
    (pytester.path / "verdict.json").unlink()
    result = replay(pytester, "--agentsim-process", "--agentsim-agent=server.py")
    result.assert_outcomes(passed=1)
    assert imported_elsewhere(pytester)
    assert "were not replayed" not in result.stdout.str()
    assert verdict_seen(pytester) == [True, "The agent booked the room for Friday."]
    assert cassette_file(project).read_text(encoding="utf-8") == recorded


def test_judge_fail_and_changed_agent_fail_in_process_mode(
    pytester: pytest.Pytester, write: Write
) -> None:
    write("server.py", "MUST_FAIL = False\n" + SERVER)
    project = write("scenarios.yaml", PROCESS_SCENARIOS)
    fail = '{"verdict": "fail", "reason": "The agent never confirmed the dates."}'
    with ModelServer(USER, AGENT_SAYS, [fail]) as server:
        record(pytester, server).assert_outcomes(failed=1)
    result = replay(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the judge failed the conversation: The agent never confirmed the dates.*",
            "*agent process log (last * lines)*",
        ]
    )
    # the on_simulation_end of the child saw the judge's fail as the simulator's verdict
    assert verdict_seen(pytester) == [False, "The agent never confirmed the dates."]
    # an agent whose prompt changed asks the models something the cassette does not hold
    server_py = pytester.path / "server.py"
    server_py.write_text(
        server_py.read_text(encoding="utf-8").replace("hotel receptionist", "hotel concierge"),
        encoding="utf-8",
    )
    result = replay(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*model request not in cassette Books_a_room.yaml: agent POST /chat/completions*",
            "*fix: re-record with*",
        ]
    )
    assert project.is_file()


HANGS_UP = """
import json
from pathlib import Path

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, inference

server = AgentServer()


def on_end(ctx):
    verdict = ctx.simulator_verdict
    Path(__file__).with_name("verdict.json").write_text(
        json.dumps([verdict.success, verdict.reason])
    )


@server.rtc_session(on_simulation_end=on_end)
async def entrypoint(ctx: JobContext) -> None:
    session = AgentSession(llm=inference.LLM("openai/gpt-4.1-mini"))

    @session.on("conversation_item_added")
    def _hang_up(ev) -> None:
        if ev.item.role == "assistant":  # one answer, then the agent ends the call
            session.shutdown()

    await session.start(Agent(instructions="You are a hotel receptionist."), room=ctx.room)
"""


@pytest.mark.parametrize("process", [False, True], ids=["entrypoint", "process"])
def test_the_agent_ending_the_call_ends_the_simulation(
    pytester: pytest.Pytester, write: Write, process: bool
) -> None:
    write("server.py", HANGS_UP)
    in_process = SCENARIOS.replace("agent:Receptionist", "server:server")
    write("scenarios.yaml", PROCESS_SCENARIOS if process else in_process)
    with ModelServer(USER, AGENT_SAYS, [PASS]) as server:
        record(pytester, server).assert_outcomes(passed=1)
        roles = [role for role, _ in server.requests]
    # the user never got a second turn: the agent had closed the session
    assert roles == ["user", "agent", "judge"]
    replay(pytester).assert_outcomes(passed=1)
    # on_simulation_end ran at the close, before the judge: a provisional pass
    assert verdict_seen(pytester)[0] is True
