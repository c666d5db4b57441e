"""Record modes (issue 18, item 3): none, once, new_episodes, rewrite, all; a missing
cassette that fails in CI; recordings that fail keep the old cassette byte for byte; and
recorded requests a replay never made are reported.

Recordings run against the loopback model server of test_simulated; replays run with it
stopped (and the network blocked by the plugin).
"""

from __future__ import annotations

import io
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from pytest_agentsim.plugin.settings import RECORD_MODES
from pytest_agentsim.run.cassette import Cassette
from pytest_agentsim.run.recording import RECORD_MODES as ENGINE_RECORD_MODES

from .test_simulated import AGENT, AGENT_SAYS, PASS, SCENARIOS, USER, ModelServer, Write

BOOKED = "__cassettes__/scenarios/Books_a_room.yaml"
ROLES = ["user", "agent", "user", "agent", "judge"]


def run(pytester: pytest.Pytester, *args: str, server: ModelServer | None = None) -> Any:
    base = [f"--agentsim-model-base-url={server.base_url}"] if server is not None else []
    return pytester.runpytest("--agentsim", "-p", "no:cacheprovider", *base, *args)


@pytest.fixture
def project(write: Write) -> Path:
    write("agent.py", AGENT)
    return write("scenarios.yaml", SCENARIOS)


@pytest.fixture
def cassette(pytester: pytest.Pytester, project: Path) -> Path:
    """A first recording (rewrite), its server stopped."""
    with ModelServer(USER, AGENT_SAYS, [PASS]) as server:
        run(pytester, "--agentsim-record-mode=rewrite", server=server).assert_outcomes(passed=1)
        assert [role for role, _ in server.requests] == ROLES
    return pytester.path / BOOKED


def roles(path: Path) -> list[str]:
    return [i.role for i in Cassette.load(path).interactions]


def change_the_agent(write: Write) -> None:
    """The agent's requests change (its instructions); the user's and judge's do not."""
    write("agent.py", AGENT.replace("Book rooms.", "Book rooms and sell breakfast."))


def test_the_engine_and_the_plugin_know_the_same_modes() -> None:
    assert RECORD_MODES == ENGINE_RECORD_MODES == ("none", "once", "new_episodes", "rewrite", "all")


# -- none (the default) ------------------------------------------------------------------


@pytest.mark.parametrize("how", ["cli", "ini"])
def test_none_without_a_cassette_skips_or_fails_for_ci(
    pytester: pytest.Pytester, write: Write, project: Path, how: str
) -> None:
    run(pytester, "--agentsim-record-mode=none", "-rs").stdout.fnmatch_lines(
        ["*SKIPPED*without a cassette (__cassettes__/scenarios/Books_a_room.yaml)*"]
    )
    if how == "cli":
        result = run(pytester, "--agentsim-missing-cassette=fail")
    else:
        write("pytest.ini", "[pytest]\nagentsim_missing_cassette = fail\n")
        result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*simulated scenario (no agentsim.turns) without a cassette "
            "(__cassettes__/scenarios/Books_a_room.yaml)*--agentsim-record*"
            "(--agentsim-missing-cassette=fail)*"
        ]
    )
    assert not (pytester.path / "__cassettes__").exists()


def test_missing_cassette_fail_also_fails_a_judge_fixture_test(
    pytester: pytest.Pytester, write: Write
) -> None:
    write(
        "test_reply.py",
        """
        def test_reply(agentsim_judge):
            agentsim_judge.assert_intent("We have a double room free.", "offers a room")
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--agentsim-missing-cassette=fail")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*agentsim_judge has no cassette for this test*=fail)*"])


def test_none_never_records(pytester: pytest.Pytester, project: Path, cassette: Path) -> None:
    """A request the cassette lacks fails the test; nothing is sent, nothing written."""
    before = cassette.read_bytes()
    project.write_text(SCENARIOS.replace("two nights", "three nights"), encoding="utf-8")
    with ModelServer(USER, AGENT_SAYS, [PASS]) as server:
        result = run(pytester, "--agentsim-record-mode=none", server=server)
        assert server.requests == []
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*model request not in cassette Books_a_room.yaml*"])
    assert cassette.read_bytes() == before


# -- once ------------------------------------------------------------------------------


def test_once_records_a_missing_cassette_then_replays_it(
    pytester: pytest.Pytester, project: Path
) -> None:
    path = pytester.path / BOOKED
    with ModelServer(USER, AGENT_SAYS, [PASS]) as server:
        run(pytester, "--agentsim-record-mode=once", server=server).assert_outcomes(passed=1)
        assert [role for role, _ in server.requests] == ROLES
        recorded = path.read_bytes()
        # the cassette exists now: the same mode replays it, nothing reaches the server
        run(pytester, "--agentsim-record-mode=once", server=server).assert_outcomes(passed=1)
        assert len(server.requests) == len(ROLES)
    assert path.read_bytes() == recorded
    # and offline, with the server gone (the network guard is on: nothing is recorded)
    run(pytester, "--agentsim-record-mode=once").assert_outcomes(passed=1)


def test_once_fails_on_a_new_request_when_the_cassette_exists(
    pytester: pytest.Pytester, write: Write, cassette: Path
) -> None:
    before = cassette.read_bytes()
    change_the_agent(write)
    with ModelServer(USER, AGENT_SAYS, [PASS]) as server:
        result = run(pytester, "--agentsim-record-mode=once", server=server)
        assert server.requests == []
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*model request not in cassette*agent POST /chat/completions*"])
    assert cassette.read_bytes() == before


# -- new_episodes ------------------------------------------------------------------------


def test_new_episodes_replays_what_matches_and_appends_the_rest(
    pytester: pytest.Pytester, write: Write, cassette: Path
) -> None:
    old = Cassette.load(cassette).interactions
    change_the_agent(write)
    with ModelServer(USER, AGENT_SAYS, [PASS]) as server:
        result = run(pytester, "--agentsim-record-mode=new_episodes", "-rA", server=server)
        result.assert_outcomes(passed=1)
        # the user's and the judge's requests were replayed: only the agent's went out
        assert [role for role, _ in server.requests] == ["agent", "agent"]
    now = Cassette.load(cassette).interactions
    assert [i.to_yaml() for i in now[:5]] == [i.to_yaml() for i in old]  # kept, in order
    assert [i.role for i in now[5:]] == ["agent", "agent"]
    assert "sell breakfast" in json.dumps(now[5].body)
    # a replay finds every request; the old agent requests are reported as unused
    result = run(pytester, "--junitxml=out.xml")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*= agentsim: unused cassette requests =*",
            "scenarios.yaml::Books a room: 2 of 7 in "
            "__cassettes__/scenarios/Books_a_room.yaml recorded requests never replayed",
            "*re-record with --agentsim-record-mode=rewrite to drop them*",
        ]
    )
    xml = (pytester.path / "out.xml").read_text(encoding="utf-8")
    assert 'name="cassette_unused_requests" value="2 of 7 in ' in xml


def test_new_episodes_without_a_cassette_records_one(
    pytester: pytest.Pytester, project: Path
) -> None:
    with ModelServer(USER, AGENT_SAYS, [PASS]) as server:
        result = run(pytester, "--agentsim-record-mode=new_episodes", server=server)
        result.assert_outcomes(passed=1)
    assert roles(pytester.path / BOOKED) == ROLES
    run(pytester).assert_outcomes(passed=1)


def test_new_episodes_with_nothing_new_leaves_the_file_alone(
    pytester: pytest.Pytester, cassette: Path
) -> None:
    before, mtime = cassette.read_bytes(), cassette.stat().st_mtime_ns
    with ModelServer(USER, AGENT_SAYS, [PASS]) as server:
        run(pytester, "--agentsim-record-mode=new_episodes", server=server).assert_outcomes(
            passed=1
        )
        assert server.requests == []
    assert cassette.read_bytes() == before and cassette.stat().st_mtime_ns == mtime


# -- rewrite, all ------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--agentsim-record-mode=rewrite", "--agentsim-record"])
def test_rewrite_records_from_scratch(
    pytester: pytest.Pytester, write: Write, cassette: Path, flag: str
) -> None:
    change_the_agent(write)
    said = ["Booked it, breakfast included.", "Goodbye!"]
    with ModelServer(USER, said, [PASS]) as server:
        run(pytester, flag, server=server).assert_outcomes(passed=1)
        assert [role for role, _ in server.requests] == ROLES  # nothing replayed
    text = cassette.read_text(encoding="utf-8")
    assert roles(cassette) == ROLES  # the old exchanges are gone
    assert "breakfast included" in text and "Booked: two nights" not in text
    run(pytester).assert_outcomes(passed=1)
    assert not list(cassette.parent.glob(".*.tmp"))


def test_all_sends_every_request_and_keeps_earlier_exchanges(
    pytester: pytest.Pytester, write: Write, cassette: Path
) -> None:
    change_the_agent(write)
    with ModelServer(USER, AGENT_SAYS, [PASS]) as server:
        run(pytester, "--agentsim-record-mode=all", server=server).assert_outcomes(passed=1)
        # the user's first request is in the cassette, and is sent anyway
        assert [role for role, _ in server.requests] == ROLES
    # this run's five, then the two old agent requests it did not make again (the user's
    # and judge's it made again are not duplicated)
    assert roles(cassette) == [*ROLES, "agent", "agent"]
    result = run(pytester, "-n", "2")  # the report comes back from an xdist worker too
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*= agentsim: unused cassette requests =*", "*Books a room: 2 of 7 in*never replayed"]
    )


def test_bad_record_mode_values_are_usage_errors(pytester: pytest.Pytester, write: Write) -> None:
    result = pytester.runpytest("--agentsim", "--agentsim-record-mode=sometimes")
    result.stderr.fnmatch_lines(
        ["*--agentsim-record-mode: invalid choice: 'sometimes' (choose from*none*once*"]
    )
    result = pytester.runpytest("--agentsim", "--agentsim-missing-cassette=error")
    result.stderr.fnmatch_lines(["*--agentsim-missing-cassette: invalid choice: 'error'*"])
    result = pytester.runpytest("--agentsim-record", "--agentsim-record-mode=once")
    result.stderr.fnmatch_lines(
        ["*--agentsim-record means --agentsim-record-mode=rewrite; it contradicts*once*"]
    )
    write("pytest.ini", "[pytest]\nagentsim_record_mode = New_Episodes\n")
    result = pytester.runpytest("--agentsim")
    result.stderr.fnmatch_lines(
        [
            "*agentsim_record_mode must be one of none, once, new_episodes, rewrite, all, "
            "got 'New_Episodes'*"
        ]
    )
    write("pytest.ini", "[pytest]\nagentsim_missing_cassette = maybe\n")
    result = pytester.runpytest("--agentsim")
    result.stderr.fnmatch_lines(["*agentsim_missing_cassette must be skip or fail, got 'maybe'*"])


# -- a failed recording keeps the old cassette -------------------------------------------


class JudgeDown(ModelServer):
    """The model server, but the judge answers HTTP 500: the conversation is recorded,
    then the run fails before its end."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        base: Any = self.httpd.RequestHandlerClass
        owner = self

        class Handler(base):  # type: ignore[misc,valid-type]
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["content-length"]))
                if "grading a conversation" in raw.decode():
                    owner.requests.append(("judge", json.loads(raw)))
                    self._send(500, "application/json", b'{"error": {"message": "down"}}')
                    return
                self.rfile = io.BytesIO(raw)
                super().do_POST()

        self.httpd.RequestHandlerClass = Handler


@pytest.mark.parametrize("mode", ["rewrite", "all", "new_episodes", "once"])
@pytest.mark.parametrize("had_one", [True, False])
def test_a_recording_that_fails_midway_writes_nothing(
    pytester: pytest.Pytester, write: Write, project: Path, mode: str, had_one: bool
) -> None:
    path = pytester.path / BOOKED
    if had_one:
        with ModelServer(USER, AGENT_SAYS, [PASS]) as server:
            run(pytester, "--agentsim-record", server=server).assert_outcomes(passed=1)
        # new_episodes and all have something to record, up to the judge
        change_the_agent(write)
        project.write_text(SCENARIOS.replace("confirms", "repeats"), encoding="utf-8")
        before = path.read_bytes()
        if mode == "once":
            path.unlink()  # once records only what is missing
    with JudgeDown(USER, AGENT_SAYS, [PASS]) as server:
        result = run(pytester, f"--agentsim-record-mode={mode}", server=server)
        assert [role for role, _ in server.requests][-1:] == ["judge"]  # it got that far
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the judge model request failed (500)*"])
    if had_one and mode != "once":
        assert path.read_bytes() == before
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file
    else:
        assert not path.exists()
        assert not path.parent.exists() or list(path.parent.iterdir()) == []


class Interrupting(ModelServer):
    """The model server, but the second time the simulated user is asked it presses
    Ctrl-C in the pytest process under test (its pid: the agent module wrote it)."""

    def __init__(self, pid_file: Path, *args: Any) -> None:
        super().__init__(*args)
        base: Any = self.httpd.RequestHandlerClass
        owner = self

        pressed: list[bool] = []

        class Handler(base):  # type: ignore[misc,valid-type]
            def do_POST(self) -> None:
                super().do_POST()
                # once: a request already in flight would press it again, during the exit
                if [role for role, _ in owner.requests].count("user") == 2 and not pressed:
                    pressed.append(True)
                    os.kill(int(pid_file.read_text(encoding="utf-8")), signal.SIGINT)

        self.httpd.RequestHandlerClass = Handler


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_an_interrupted_recording_keeps_the_old_cassette(
    pytester: pytest.Pytester, write: Write, cassette: Path
) -> None:
    before = cassette.read_bytes()
    write(
        "agent.py",
        "import os, pathlib\n"
        "pathlib.Path(__file__).with_name('pid').write_text(str(os.getpid()))\n" + AGENT,
    )
    with Interrupting(pytester.path / "pid", USER, AGENT_SAYS, [PASS]) as server:
        result = pytester.runpytest_subprocess(
            "--agentsim",
            "-p",
            "no:cacheprovider",
            "--agentsim-record-mode=rewrite",
            f"--agentsim-model-base-url={server.base_url}",
        )
        assert [role for role, _ in server.requests][:3] == ["user", "agent", "user"]
        assert "judge" not in [role for role, _ in server.requests]
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
    assert cassette.read_bytes() == before
    assert sorted(p.name for p in cassette.parent.iterdir()) == [cassette.name]


def test_judge_fixture_modes_and_unused_verdicts(pytester: pytest.Pytester, write: Write) -> None:
    """The agentsim_judge fixture follows the record mode too, and reports verdicts
    its test no longer asks for."""
    test = """
        def test_reply(agentsim_judge):
            agentsim_judge.assert_intent("We have a double room free.", "offers a room")
            agentsim_judge.assert_intent("Breakfast is at eight.", "gives a time")
        """
    write("test_reply.py", test)
    with ModelServer(["unused"], ["unused"], [PASS]) as server:
        result = pytester.runpytest(
            "-p",
            "no:cacheprovider",
            "--agentsim-record-mode=once",
            f"--agentsim-model-base-url={server.base_url}",
        )
        result.assert_outcomes(passed=1)
        assert [role for role, _ in server.requests] == ["judge", "judge"]
    path = pytester.path / "__cassettes__" / "test_reply" / "test_reply.yaml"
    assert roles(path) == ["judge", "judge"]
    write("test_reply.py", test.rsplit("\n", 2)[0] + "\n")  # the second check is gone
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*= agentsim: unused cassette requests =*",
            "test_reply.py::test_reply: 1 of 2 in __cassettes__/test_reply/test_reply.yaml "
            "recorded requests never replayed",
        ]
    )
