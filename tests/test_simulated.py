"""Simulated scenarios (no turns): record against a loopback OpenAI-compatible server the
test starts (scripted simulated-user, agent and judge replies), then replay offline with
that server stopped."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_agentsim.run.cassette import Cassette, redact
from pytest_agentsim.run.judge import parse_verdict

Write = Callable[[str, str], Path]

AGENT = """
from livekit.agents import Agent


class Receptionist(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a hotel receptionist. Book rooms.")
"""

SCENARIOS = """
name: Hotel
agentsim: {agent: "agent:Receptionist"}
scenarios:
  - label: Books a room
    instructions: You want a room for two nights from Friday.
    agent_expectations: The agent books the room and confirms the dates.
"""


class ModelServer:
    """An OpenAI-compatible chat-completions server on 127.0.0.1 with scripted replies.

    The simulated user's and the judge's requests are told apart by their system prompt;
    every other request is the agent's (streamed, as livekit's LLM client asks).
    """

    def __init__(self, user: list[str], agent: list[str], judge: list[str]) -> None:
        self.replies = {"user": list(user), "agent": list(agent), "judge": list(judge)}
        self.auth: list[str] = []
        self.requests: list[tuple[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                self._send(200, "application/json", b'{"object": "list", "data": []}')

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                server.auth.append(self.headers.get("authorization", ""))
                system = body["messages"][0].get("content", "")
                role = (
                    "user"
                    if "role-playing a user" in system
                    else "judge"
                    if "grading a conversation" in system or "checking one message" in system
                    else "agent"
                )
                server.requests.append((role, body))
                queue = server.replies[role]
                text = queue.pop(0) if len(queue) > 1 else queue[0]
                if body.get("stream"):
                    chunks = [
                        {"delta": {"role": "assistant", "content": text}, "finish_reason": None},
                        {"delta": {}, "finish_reason": "stop"},
                    ]
                    out = "".join(
                        "data: "
                        + json.dumps(
                            {
                                "id": "chatcmpl-1",
                                "object": "chat.completion.chunk",
                                "created": 1,
                                "model": body["model"],
                                "choices": [{"index": 0, **c}],
                            }
                        )
                        + "\n\n"
                        for c in chunks
                    )
                    self._send(200, "text/event-stream", (out + "data: [DONE]\n\n").encode())
                    return
                answer = {
                    "id": "chatcmpl-2",
                    "object": "chat.completion",
                    "created": 1,
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                }
                self._send(200, "application/json", json.dumps(answer).encode())

            def _send(self, status: int, ctype: str, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ModelServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


PASS = '{"verdict": "pass", "reason": "The agent booked the room for Friday."}'
USER = ["Hi, I need a room for two nights from Friday.", "Great, thanks. Bye! [END]"]
AGENT_SAYS = ["Booked: two nights from Friday. Anything else?", "Goodbye!"]


@pytest.fixture
def project(write: Write) -> Path:
    write("agent.py", AGENT)
    return write("scenarios.yaml", SCENARIOS)


def cassette_file(project: Path) -> Path:
    return project.parent / "__cassettes__" / "scenarios" / "Books_a_room.yaml"


def record(pytester: pytest.Pytester, server: ModelServer, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--agentsim",
        "--agentsim-record",
        f"--agentsim-model-base-url={server.base_url}",
        "-p",
        "no:cacheprovider",
        *args,
    )


@pytest.fixture
def recorded(pytester: pytest.Pytester, project: Path) -> Iterator[ModelServer]:
    with ModelServer(USER, AGENT_SAYS, [PASS]) as server:
        result = record(pytester, server)
        result.assert_outcomes(passed=1)
    yield server


def test_no_cassette_skips_saying_how_to_record(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest("--agentsim", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*without a cassette (__cassettes__/scenarios/Books_a_room.yaml)*"
            '`pytest --agentsim --agentsim-record "scenarios.yaml::Books a room"`*'
        ]
    )


def test_record_then_replay_offline(
    pytester: pytest.Pytester, project: Path, recorded: ModelServer
) -> None:
    roles = [role for role, _ in recorded.requests]
    assert roles == ["user", "agent", "user", "agent", "judge"]
    # the clients sent real credentials (a LiveKit JWT); none reached the cassette
    assert any(a.startswith("Bearer eyJ") for a in recorded.auth)
    path = cassette_file(project)
    text = path.read_text(encoding="utf-8")
    assert "eyJ" not in text and "Bearer" not in text and "sk-agentsim" not in text
    assert "authorization" not in text.lower()
    cassette = Cassette.load(path)
    assert [i.role for i in cassette.interactions] == roles
    agent_call = cassette.interactions[1]
    assert agent_call.events is not None and agent_call.events[-1] == "[DONE]"
    assert agent_call.url == recorded.base_url + "/chat/completions"
    assert "Books a room" in text and "instructions" not in yaml.safe_load(text)

    # replay: the server is stopped, the network blocked; twice, identical
    outs = []
    for _ in range(2):
        result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider", "-rA")
        result.assert_outcomes(passed=1)
        outs.append(path.read_text(encoding="utf-8"))
    assert outs[0] == outs[1] == text


def test_replay_transcript_and_judge_in_report(
    pytester: pytest.Pytester, project: Path, recorded: ModelServer
) -> None:
    result = pytester.runpytest(
        "--agentsim", "-p", "no:cacheprovider", "--junitxml=out.xml", "-o", "junit_family=xunit1"
    )
    result.assert_outcomes(passed=1)
    xml = (pytester.path / "out.xml").read_text(encoding="utf-8")
    assert 'name="judge_verdict" value="pass"' in xml
    assert "booked the room for Friday" in xml


def test_changed_instructions_fail_with_rerecord_hint(
    pytester: pytest.Pytester, project: Path, recorded: ModelServer
) -> None:
    project.write_text(
        SCENARIOS.replace("two nights from Friday", "three nights from Monday"), encoding="utf-8"
    )
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*model request not in cassette Books_a_room.yaml: user POST /chat/completions*",
            "*messages?0? (system) content was recorded as*two nights from Friday*",
            "*but is now*three nights from Monday*",
            '*fix: re-record with `pytest --agentsim --agentsim-record "scenarios.yaml::Books*',
        ]
    )


def test_judge_fail_fails_the_test_with_its_reason(
    pytester: pytest.Pytester, project: Path
) -> None:
    fail = '{"verdict": "fail", "reason": "The agent never confirmed the dates."}'
    with ModelServer(USER, AGENT_SAYS, [fail]) as server:
        result = record(pytester, server)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the judge failed the conversation: The agent never confirmed the dates.*",
            "*agent_expectations: The agent books the room and confirms the dates.*",
        ]
    )
    # the replay fails the same way, offline
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*judge | fail: The agent never confirmed the dates.*"])


def test_turn_limit_stops_the_user(pytester: pytest.Pytester, project: Path) -> None:
    with ModelServer(["Hello?"], ["Hi, how can I help?"], [PASS]) as server:
        result = record(pytester, server, "--agentsim-max-turns=3", "-rA")
        result.assert_outcomes(passed=1)
        roles = [role for role, _ in server.requests]
    assert roles == ["user", "agent"] * 3 + ["judge"]


def test_redact_and_verdicts() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJl"
    assert redact({"a": f"token {jwt}", "api_key": "x", "b": ["sk-abcdefghijkl"]}) == {
        "a": "token <redacted>",
        "api_key": "<redacted>",
        "b": ["<redacted>"],
    }
    assert parse_verdict('```json\n{"verdict": "PASS", "reason": "ok"}\n```').passed
    assert not parse_verdict('{"verdict": "fail", "reason": "no"}').passed
    assert not parse_verdict("I am not sure").passed


SERVER = """
import json
from pathlib import Path

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, inference

server = AgentServer()


def on_end(ctx):
    verdict = ctx.simulator_verdict
    Path(__file__).with_name("verdict.json").write_text(
        json.dumps([verdict.success, verdict.reason])
    )
    said = [m.text_content for m in ctx.job_context.primary_session.history.messages()]
    if "Goodbye!" not in said:
        ctx.fail("the agent never said goodbye")
    if MUST_FAIL:
        ctx.fail("grader: no booking row in the database")


@server.rtc_session(on_simulation_end=on_end)
async def entrypoint(ctx: JobContext) -> None:
    session = AgentSession(llm=inference.LLM("openai/gpt-4.1-mini"))
    await session.start(Agent(instructions="You are a hotel receptionist."), room=ctx.room)
"""


@pytest.mark.parametrize("must_fail", [False, True])
def test_entrypoint_mode_runs_graders_with_the_judge_verdict(
    pytester: pytest.Pytester, write: Write, must_fail: bool
) -> None:
    write("server.py", f"MUST_FAIL = {must_fail}\n" + SERVER)
    write("scenarios.yaml", SCENARIOS.replace("agent:Receptionist", "server:server"))
    with ModelServer(USER, AGENT_SAYS, [PASS]) as server:
        result = record(pytester, server)
    verdict = json.loads((pytester.path / "verdict.json").read_text(encoding="utf-8"))
    assert verdict == [True, "The agent booked the room for Friday."]
    (pytester.path / "verdict.json").unlink()
    for run in (result, pytester.runpytest("--agentsim", "-p", "no:cacheprovider")):
        if must_fail:
            run.assert_outcomes(failed=1)
            run.stdout.fnmatch_lines(["*grader: no booking row in the database*"])
        else:
            run.assert_outcomes(passed=1)
    assert (pytester.path / "verdict.json").is_file()  # the replay ran the grader too


JUDGED = """
name: Hotel
agentsim: {agent: "agent:Receptionist"}
scenarios:
  - label: Offers a room
    instructions: Ask for a room.
    agent_expectations: Offers one.
    agentsim:
      turns:
        - user: Do you have a room tonight?
          llm:
            - say: We have a double room free tonight.
          expect:
            - message: {judge: "offers the guest a room"}
"""


@pytest.mark.parametrize("verdict", ["pass", "fail"])
def test_yaml_judge_matcher_records_and_replays(
    pytester: pytest.Pytester, write: Write, verdict: str
) -> None:
    write("agent.py", AGENT)
    write("scenarios.yaml", JUDGED)
    answer = json.dumps({"verdict": verdict, "reason": "It mentions a free double room."})
    result = pytester.runpytest("--agentsim", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*uses `judge` matchers without a cassette*--agentsim-record*"])
    with ModelServer(["unused"], ["unused"], [answer]) as server:
        recorded = record(pytester, server)
        roles = [role for role, _ in server.requests]
    assert roles == ["judge"]
    for run in (recorded, pytester.runpytest("--agentsim", "-p", "no:cacheprovider")):
        if verdict == "pass":
            run.assert_outcomes(passed=1)
        else:
            run.assert_outcomes(failed=1)
            run.stdout.fnmatch_lines(
                [
                    "*message text does not match judge 'offers the guest a room' "
                    "(the judge: It mentions a free double room.)*"
                ]
            )
    path = pytester.path / "__cassettes__" / "scenarios" / "Offers_a_room.yaml"
    assert "We have a double room free tonight." in path.read_text(encoding="utf-8")
    # a changed message is not in the cassette: a clear failure, with how to re-record
    write("scenarios.yaml", JUDGED.replace("double room", "single room"))
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*model request not in cassette*", "*fix: re-record with `pytest --agentsim*"]
    )


def test_python_judge_fixture(pytester: pytest.Pytester, write: Write) -> None:
    write(
        "test_reply.py",
        """
        def test_reply(agentsim_judge):
            agentsim_judge.assert_intent("We have a double room free.", "offers a room")
        """,
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*agentsim_judge has no cassette*--agentsim-record*"])
    with ModelServer(["unused"], ["unused"], [PASS]) as server:
        record(pytester, server).assert_outcomes(passed=1)
    assert (pytester.path / "__cassettes__" / "test_reply" / "test_reply.yaml").is_file()
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_changed_agent_fails_on_its_model_request(
    pytester: pytest.Pytester, write: Write, project: Path, recorded: ModelServer
) -> None:
    write("agent.py", AGENT.replace("Book rooms.", "Book rooms and sell breakfast."))
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*model request not in cassette Books_a_room.yaml: agent POST /chat/completions*",
            "*content was recorded as*Book rooms.*",
            "*but is now*Book rooms and sell breakfast.*",
            "*fix: re-record with `pytest --agentsim --agentsim-record*",
        ]
    )


def test_max_turns_must_be_positive(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest("--agentsim", "--agentsim-max-turns=0")
    result.stderr.fnmatch_lines(["*agentsim_max_turns must be a positive whole number*"])


GREETER = """
from livekit.agents import Agent


class Receptionist(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a hotel receptionist. Book rooms.")

    async def on_enter(self) -> None:
        self.session.generate_reply(instructions="Greet the guest.")
"""


def test_agent_greeting_comes_before_the_user(
    pytester: pytest.Pytester, write: Write, project: Path
) -> None:
    write("agent.py", GREETER)
    with ModelServer(USER, ["Welcome to the hotel!", *AGENT_SAYS], [PASS]) as server:
        record(pytester, server).assert_outcomes(passed=1)
        roles = [role for role, _ in server.requests]
        first_user = next(body for role, body in server.requests if role == "user")
    assert roles == ["agent", "user", "agent", "user", "agent", "judge"]
    assert first_user["messages"][1] == {"role": "user", "content": "Welcome to the hotel!"}
    for _ in range(2):
        result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)
