"""Repeats for live runs (issue 18, item 4): ``--agentsim-repeat N`` plays a simulated
scenario N times when recording and passes it on ``--agentsim-pass-rate``; the kept
recording replays to the same verdict. The judge of the loopback model server answers
pass, fail, pass, ... in turn."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_agentsim.run.cassette import Cassette

from .test_simulated import AGENT, AGENT_SAYS, JUDGED, PASS, SCENARIOS, USER, ModelServer, Write

FAIL = '{"verdict": "fail", "reason": "The agent never confirmed the dates."}'
BOOKED = "__cassettes__/scenarios/Books_a_room.yaml"


@pytest.fixture
def project(write: Write) -> Path:
    write("agent.py", AGENT)
    return write("scenarios.yaml", SCENARIOS)


def record(pytester: pytest.Pytester, server: ModelServer, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--agentsim",
        "-p",
        "no:cacheprovider",
        "--agentsim-record-mode=rewrite",
        f"--agentsim-model-base-url={server.base_url}",
        "--junitxml=out.xml",
        *args,
    )


def judged(path: Path) -> list[str]:
    """The judge's answers in a cassette."""
    items = Cassette.load(path).interactions
    return [str(i.response_body) for i in items if i.role == "judge"]


@pytest.mark.parametrize("rate", ["0.6", "60%"])
def test_enough_passing_attempts_pass_and_keep_a_passing_recording(
    pytester: pytest.Pytester, project: Path, rate: str
) -> None:
    with ModelServer(USER, AGENT_SAYS, [PASS, FAIL, PASS]) as server:
        result = record(pytester, server, "--agentsim-repeat=3", f"--agentsim-pass-rate={rate}")
        assert [role for role, _ in server.requests].count("judge") == 3
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*= agentsim: pass rates =*", "scenarios.yaml::Books a room: 2 of 3 attempts passed (67%)"]
    )
    assert 'name="pass_rate" value="2/3"' in (pytester.path / "out.xml").read_text("utf-8")
    (answer,) = judged(pytester.path / BOOKED)
    assert "booked the room for Friday" in answer
    pytester.runpytest("--agentsim", "-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_too_few_passing_attempts_fail_naming_each_attempt(
    pytester: pytest.Pytester, project: Path
) -> None:
    with ModelServer(USER, AGENT_SAYS, [PASS, FAIL, PASS]) as server:
        result = record(pytester, server, "--agentsim-repeat=3")  # default rate: all
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*passed 2 of 3 attempts (67%), below the pass rate 100% (--agentsim-pass-rate)",
            "*attempt 1: passed",
            "*attempt 2: the judge failed the conversation: The agent never confirmed the dates.",
            "*attempt 3: passed",
        ]
    )
    # the failing attempt's recording is kept: its replay fails the same way
    (answer,) = judged(pytester.path / BOOKED)
    assert "never confirmed" in answer
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the judge failed the conversation*"])


def test_replays_run_once(pytester: pytest.Pytester, project: Path) -> None:
    with ModelServer(USER, AGENT_SAYS, [PASS]) as server:
        record(pytester, server).assert_outcomes(passed=1)
    result = pytester.runpytest(
        "--agentsim", "-p", "no:cacheprovider", "--agentsim-repeat=5", "--junitxml=out.xml"
    )
    result.assert_outcomes(passed=1)
    assert "pass rates" not in result.stdout.str()
    assert "pass_rate" not in (pytester.path / "out.xml").read_text("utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agentsim-repeat=0"], "*agentsim_repeat must be a positive whole number, got '0'*"),
        (["--agentsim-repeat=two"], "*agentsim_repeat must be a positive whole number*'two'*"),
        (["--agentsim-pass-rate=1.5"], "*agentsim_pass_rate must be a share*got '1.5'*"),
        (["--agentsim-pass-rate=0"], "*agentsim_pass_rate must be a share*got '0'*"),
        (["--agentsim-pass-rate=most"], "*agentsim_pass_rate must be a share*(0.8, 80%)*"),
    ],
)
def test_bad_repeat_values_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    result = pytester.runpytest("--agentsim", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_judge_matchers_of_a_scripted_scenario_repeat_too(
    pytester: pytest.Pytester, write: Write
) -> None:
    """A scripted scenario is deterministic but its `judge` matcher is not: recording, it
    is played N times and passed on the rate; the kept cassette replays its verdict."""
    write("agent.py", AGENT)
    write("scenarios.yaml", JUDGED)
    yes = '{"verdict": "pass", "reason": "It offers a double room."}'
    no = '{"verdict": "fail", "reason": "No room is offered."}'
    with ModelServer(["unused"], ["unused"], [yes, no, yes]) as server:
        result = record(pytester, server, "--agentsim-repeat=3", "--agentsim-pass-rate=0.6")
        assert [role for role, _ in server.requests] == ["judge"] * 3
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*Offers a room: 2 of 3 attempts passed (67%)"])
    pytester.runpytest("--agentsim", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    with ModelServer(["unused"], ["unused"], [no, yes, no]) as server:
        result = record(pytester, server, "--agentsim-repeat=3", "--agentsim-pass-rate=0.6")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*passed 1 of 3 attempts (33%), below the pass rate 60%*", "*attempt 2: passed"]
    )
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*(the judge: No room is offered.)*"])
