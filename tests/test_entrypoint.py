"""Entrypoint mode: an AgentServer's rtc_session entrypoint runs unchanged in a fake job.

Each test is a pytester project with a real scenarios YAML and an AgentServer file, run
with ``pytest --agentsim`` on the installed livekit-agents (1.6.0 and 1.8.x are both
covered by running this file in each venv).
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from livekit.agents.voice.run_result import mock_tools

from pytest_agentsim import load_scenario_file
from pytest_agentsim.fakes.session import SESSION_CLASS as AgentSession

from .conftest import plugin_output

Write = Callable[[str, str], Path]

# livekit >= 1.7 has mock_tools(..., session=); 1.6 only the context-manager form
SESSION_MOCKS = "session" in inspect.signature(mock_tools).parameters

# An entrypoint as LiveKit's examples write one: it builds its own session on LiveKit
# Inference models and starts it in the job's room. It records what it saw in seen.json.
SERVER_PY = '''
import json
from pathlib import Path

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, RunContext
from livekit.agents import function_tool, inference
from livekit.agents import job as lk_job

SEEN = Path(__file__).with_name("seen.json")


def record(**facts):
    data = json.loads(SEEN.read_text()) if SEEN.exists() else {}
    data.update(facts)
    SEEN.write_text(json.dumps(data, default=str))


class Desk(Agent):
    def __init__(self, guest: str) -> None:
        super().__init__(instructions="You are a hotel front desk.")
        self.guest = guest

    @function_tool
    async def lookup_booking(self, context: RunContext) -> str:
        """Look up the guest's booking."""
        return f"real booking for {self.guest}"

    @function_tool
    async def room_service(self, context: RunContext) -> str:
        """Order room service."""
        return "real room service"


server = AgentServer()
%(extra)s

@server.rtc_session(%(options)s)
async def entrypoint(ctx: JobContext) -> None:
    sim = ctx.simulation_context()
    current = getattr(lk_job, "current_simulation", None)
    record(
        label=sim.scenario.label,
        id=sim.scenario.id,
        tags=dict(sim.scenario.tags),
        instructions=sim.scenario.instructions,
        userdata=sim.userdata(),
        mode=int(sim.simulation_mode),
        dispatch=ctx.job.attributes.get("lk.simulator.dispatch") or ctx.job.metadata,
        current_is_ctx=(current() is sim) if current is not None else None,
        fake_job=ctx.is_fake_job(),
    )
    session = AgentSession(llm=inference.LLM("openai/gpt-4.1-mini"), tts="cartesia/sonic-3")
%(before_start)s
    await session.start(Desk(sim.userdata().get("guest", "?")), room=ctx.room)
    record(
        primary_is_session=ctx.primary_session is session,
        models=[type(session.llm).__name__, type(session.tts).__name__],
    )
%(after_start)s
'''

TURN = """
        - user: Do I have a booking?
          llm:
            - tool_calls: [{name: lookup_booking}]
            - say: Yes, you do.
          expect:
            - function_call: {name: lookup_booking}
            - function_call_output: {contains: "%(output)s"}
            - message: {contains: "Yes"}
"""


def server_project(
    write: Write,
    *,
    options: str = "",
    extra: str = "",
    before_start: str = "",
    after_start: str = "",
    scenario_extra: str = "",
    turns: str | None = None,
    agent: str = "hotel.py",
) -> None:
    write(
        "hotel.py",
        SERVER_PY
        % {
            "options": options,
            "extra": extra,
            "before_start": before_start,
            "after_start": after_start,
        },
    )
    body = turns if turns is not None else TURN % {"output": "real booking for Ana"}
    write(
        "scenarios.yaml",
        f"""
name: Hotel
agentsim:
  agent: {agent}
scenarios:
  - label: Guest asks about a booking
    id: booking-lookup
    instructions: Ask whether you have a booking.
    agent_expectations: Looks the booking up.
    tags: {{feature: booking, priority: 1}}
    userdata:
      guest: Ana
      check_in: 2026-07-14
      arrival: 2026-06-12 09:00:00
      note: 2026-06-12T09:00:00
      nights: 2
    agentsim:
{scenario_extra}      turns:
{body.strip(chr(10))}
""",
    )


def seen(pytester: pytest.Pytester) -> dict[str, object]:
    data: dict[str, object] = json.loads((pytester.path / "seen.json").read_text())
    return data


def test_simulation_context_as_in_the_cloud(pytester: pytest.Pytester, write: Write) -> None:
    server_project(write)
    result = pytester.runpytest("--agentsim", "-v")
    result.assert_outcomes(passed=1)
    facts = seen(pytester)
    assert facts["label"] == "Guest asks about a booking"
    assert facts["id"] == ""  # the CLI does not send a scenario's id (it names the item)
    assert facts["tags"] == {"feature": "booking", "priority": "1"}
    assert facts["instructions"] == "Ask whether you have a booking."
    assert facts["mode"] == 1  # SIMULATION_MODE_TEXT
    assert facts["fake_job"] is True
    assert facts["primary_is_session"] is True
    assert facts["models"] == ["FakeLLM", "FakeTTS"]  # substituted before livekit saw them
    assert facts["current_is_ctx"] in (True, None)  # None: no current_simulation() (1.6)
    # userdata decoded as the CLI encodes it (yaml.v3 + Go encoding/json)
    assert facts["userdata"] == {
        "guest": "Ana",
        "check_in": "2026-07-14T00:00:00Z",
        "arrival": "2026-06-12T09:00:00Z",
        "note": "2026-06-12T09:00:00",
        "nights": 2,
    }
    # the dispatch is the protojson SimulationDispatch the cloud sends
    dispatch = json.loads(str(facts["dispatch"]))
    assert set(dispatch) == {"simulationRunId", "jobId", "scenario", "mode"}
    assert dispatch["mode"] == "SIMULATION_MODE_TEXT"
    from google.protobuf import json_format

    proto = load_scenario_file(pytester.path / "scenarios.yaml").scenarios[0].to_proto()
    assert dispatch["scenario"] == json_format.MessageToDict(proto)


def test_audio_mode_dispatches_audio_and_speaks_through_the_fake_tts(
    pytester: pytest.Pytester, write: Write
) -> None:
    turns = """
        - user: Hello?
          llm: ["Welcome to the Harbor Hotel."]
          spoken:
            - {contains: "Welcome", source: tts}
"""
    server_project(write, turns=turns, scenario_extra="      mode: audio\n")
    pytester.runpytest("--agentsim").assert_outcomes(passed=1)
    assert seen(pytester)["mode"] == 2  # SIMULATION_MODE_AUDIO


def test_failing_turn_is_a_scenario_failure_with_transcript(
    pytester: pytest.Pytester, write: Write
) -> None:
    server_project(write, turns=TURN % {"output": "something else"})
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*turn 1, event 2: tool output does not match contains 'something else'*",
            "*agentsim transcript*",
            "*note | entrypoint mode: hotel.py (AgentServer) in a fake job*",
            "*session models served by the fakes: llm inference.LLM('openai/gpt-4.1-mini')*",
            "*user | Do I have a booking?*",
        ]
    )
    assert "Traceback" not in plugin_output(result)


@pytest.mark.parametrize(
    "agent",
    [
        "hotel.py",  # a module (file) holding exactly one AgentServer
        "hotel",  # the same, as a module name next to the scenario file
        "hotel:server",  # the server itself
    ],
)
def test_server_targets(pytester: pytest.Pytester, write: Write, agent: str) -> None:
    server_project(write, agent=agent)
    pytester.runpytest("--agentsim").assert_outcomes(passed=1)


def test_server_from_cli_and_fixture(pytester: pytest.Pytester, write: Write) -> None:
    server_project(write, agent="nothing_here:Nope")
    # the CLI beats the YAML
    pytester.runpytest("--agentsim", "--agentsim-agent", "hotel.py").assert_outcomes(passed=1)
    # a conftest fixture returning the server (or its module)
    yaml = (
        (pytester.path / "scenarios.yaml")
        .read_text()
        .replace("agentsim:\n  agent: nothing_here:Nope\n", "")
    )
    (pytester.path / "scenarios.yaml").write_text(yaml)
    write(
        "conftest.py",
        """
        import sys

        import pytest

        sys.path.insert(0, __import__("os").path.dirname(__file__))
        import hotel


        @pytest.fixture
        def agentsim_agent():
            return hotel
        """,
    )
    pytester.runpytest("--agentsim").assert_outcomes(passed=1)


def test_mock_tools_with_session_survive_turn_mocks(
    pytester: pytest.Pytester, write: Write
) -> None:
    # the entrypoint mocks its own backend under a simulation (as in the cloud); a turn's
    # `tools:` mocks go on top for that turn only
    mocks = "{'lookup_booking': lambda: 'mocked booking'}"
    if SESSION_MOCKS:
        before, after = "", f"    mock_tools(Desk, {mocks}, session=session)"
    else:  # livekit 1.6: the context-manager form, entered before start() (and kept)
        before, after = f"    _keep = mock_tools(Desk, {mocks})\n    _keep.__enter__()", ""
    turns = (
        TURN % {"output": "mocked booking"}
        + """
        - user: Room service please.
          llm:
            - tool_calls: [{name: room_service}]
            - say: On its way.
          tools: {room_service: "turn-mocked room service"}
          expect:
            - function_call: {name: room_service}
            - function_call_output: {equals: "turn-mocked room service"}
            - message: {contains: "On its way"}
"""
        + TURN % {"output": "mocked booking"}
    )
    server_project(
        write,
        extra="from livekit.agents.voice.run_result import mock_tools\n",
        before_start=before,
        after_start=after,
        turns=turns,
    )
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_on_simulation_end_runs_after_the_turns(
    pytester: pytest.Pytester, write: Write, kind: str
) -> None:
    prefix = "async " if kind == "async" else ""
    extra = f"""
{prefix}def on_end(ctx):
    verdict = ctx.simulator_verdict
    run = ctx.simulation_run
    record(
        end_called=True,
        end_verdict=[verdict.success, verdict.reason],
        end_run_id=run.id if run is not None else None,
        end_userdata=ctx.userdata(),
        end_history=[m.text_content for m in ctx.job_context.primary_session.history.messages()],
    )
"""
    server_project(write, options="on_simulation_end=on_end", extra=extra)
    pytester.runpytest("--agentsim").assert_outcomes(passed=1)
    facts = seen(pytester)
    assert facts["end_called"] is True
    assert facts["end_verdict"][0] is True  # type: ignore[index]
    dispatch = json.loads(str(facts["dispatch"]))
    assert facts["end_run_id"] == dispatch["simulationRunId"]
    assert facts["end_userdata"] == facts["userdata"]
    # the session is still running when the callback runs (as in the cloud)
    assert facts["end_history"][-2:] == ["Do I have a booking?", "Yes, you do."]  # type: ignore[index]


def test_ctx_fail_fails_with_the_reason(pytester: pytest.Pytester, write: Write) -> None:
    extra = """
def on_end(ctx):
    if ctx.userdata()["nights"] != 3:
        ctx.fail(f"expected 3 nights in the database, found {ctx.userdata()['nights']}")
"""
    server_project(write, options="on_simulation_end=on_end", extra=extra)
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*on_simulation_end failed the simulation (SimulationContext.fail): "
            "expected 3 nights in the database, found 2",
            "  at scenarios.yaml:5",
            "*>>*note | ctx.fail('expected 3 nights in the database, found 2')*",
        ]
    )
    assert "Traceback" not in plugin_output(result)


def test_exception_in_callback_fails_and_keeps_the_veto(
    pytester: pytest.Pytester, write: Write
) -> None:
    extra = """
async def on_end(ctx):
    ctx.fail("balance is 10, expected 0")
    rooms = {}
    rooms["204"]
"""
    server_project(write, options="on_simulation_end=on_end", extra=extra)
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "on_simulation_end raised KeyError: '204' (hotel.py:* in on_end)",
            "  at scenarios.yaml:5",
            "  it had already failed the run: ctx.fail('balance is 10, expected 0')",
            "*>>*error | on_simulation_end raised KeyError*",
            "*note |   at hotel.py:* in on_end: rooms*204*",
        ]
    )
    assert "Traceback" not in plugin_output(result)


def test_ctx_fail_outside_the_callback_counts_too(pytester: pytest.Pytester, write: Write) -> None:
    # the cloud reports the user verdict whoever set it (here: the entrypoint itself)
    server_project(write, after_start="    sim.fail('the entrypoint vetoed it')")
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*the agent failed the simulation (SimulationContext.fail): the entrypoint vetoed it"]
    )


def test_crash_before_session_start_fails_fast_and_the_run_goes_on(
    pytester: pytest.Pytester, write: Write
) -> None:
    write(
        "broken.py",
        """
        from livekit.agents import AgentServer, JobContext

        server = AgentServer()


        def open_database(path):
            raise FileNotFoundError(f"no database at {path}")


        @server.rtc_session()
        async def entrypoint(ctx: JobContext) -> None:
            db = open_database("/nonexistent/hotel.db")
        """,
    )
    write(
        "broken.scenarios.yaml",
        """
        name: Broken
        agentsim: {agent: broken.py, timeout: 20}
        scenarios:
          - label: crashes
            agentsim:
              turns:
                - user: Hello
                  llm: ["Hi"]
        """,
    )
    server_project(write)
    started = time.monotonic()
    result = pytester.runpytest("--agentsim")
    elapsed = time.monotonic() - started
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "the entrypoint raised before its AgentSession started: FileNotFoundError: no "
            "database at /nonexistent/hotel.db (broken.py:7 in open_database)",
            "  at broken.scenarios.yaml:4",
            "*>>*error | the entrypoint raised FileNotFoundError*",
            "*note |   at broken.py:12 in entrypoint: db = open_database(*",
        ]
    )
    assert "Traceback" not in plugin_output(result)
    assert elapsed < 15, "a crash must fail at once, not at the 20 s timeout"
    # nothing leaks into the next scenario, or into this process
    name = AgentSession.__name__  # LiveSession on livekit-agents 2
    assert AgentSession.start.__qualname__ == f"{name}.start"
    assert AgentSession.__init__.__qualname__ == f"{name}.__init__"


def test_entrypoint_without_session_and_hanging_entrypoint(
    pytester: pytest.Pytester, write: Write
) -> None:
    write(
        "odd.py",
        """
        import asyncio
        from livekit.agents import AgentServer, JobContext

        server = AgentServer()


        @server.rtc_session()
        async def entrypoint(ctx: JobContext) -> None:
            if ctx.simulation_context().scenario.label == "hangs":
                await asyncio.Event().wait()
        """,
    )
    write(
        "odd.scenarios.yaml",
        """
        name: Odd
        agentsim: {agent: odd.py, timeout: 0.5}
        scenarios:
          - label: returns
            agentsim: {turns: [{user: Hello}]}
          - label: hangs
            agentsim: {turns: [{user: Hello}]}
        """,
    )
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "the entrypoint returned without starting an AgentSession (session.start() was "
            "never called)",
            "*the scenario did not finish within 0.5s (agentsim.timeout)*",
            ">>*note | running the entrypoint entrypoint(ctx) until session.start()*",
        ]
    )


def test_crash_after_session_start_fails(pytester: pytest.Pytester, write: Write) -> None:
    server_project(write, after_start="    raise RuntimeError('analytics client missing')")
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "the entrypoint raised after session.start(): RuntimeError: analytics client "
            "missing (hotel.py:* in entrypoint)"
        ]
    )


def test_setup_fnc_agent_models_handoff_and_shutdown(
    pytester: pytest.Pytester, write: Write
) -> None:
    # the server's setup_fnc fills proc.userdata; an agent with its own openai.LLM is handed
    # off to (its model is served by the fakes too); a tool ends the job with ctx.shutdown()
    write(
        "concierge.py",
        """
        from pathlib import Path

        from livekit.agents import Agent, AgentServer, AgentSession, JobContext, JobProcess
        from livekit.agents import RunContext, function_tool, get_job_context, inference
        from livekit.plugins import openai

        server = AgentServer()
        LOG = Path(__file__).with_name("log.txt")


        def log(line: str) -> None:
            with LOG.open("a") as f:
                f.write(line + "\\n")


        def prewarm(proc: JobProcess) -> None:
            proc.userdata["hotel"] = "Harbor Hotel"


        server.setup_fnc = prewarm


        class Concierge(Agent):
            def __init__(self) -> None:
                super().__init__(
                    instructions="You are the concierge.", llm=openai.LLM(model="gpt-4.1")
                )

            @function_tool
            async def hang_up(self, context: RunContext) -> str:
                \"\"\"End the call.\"\"\"
                log(f"concierge llm: {type(self.llm).__name__}")
                get_job_context().shutdown(reason="guest hung up")
                return "bye"


        class Desk(Agent):
            def __init__(self, hotel: str) -> None:
                super().__init__(instructions=f"You are the front desk of {hotel}.")

            @function_tool
            async def to_concierge(self, context: RunContext) -> tuple[Agent, str]:
                \"\"\"Hand over to the concierge.\"\"\"
                return Concierge(), "Transferring."


        async def on_shutdown(reason: str) -> None:
            log(f"shutdown: {reason}")


        @server.rtc_session()
        async def entrypoint(ctx: JobContext) -> None:
            ctx.add_shutdown_callback(on_shutdown)
            session = AgentSession(llm=inference.LLM("openai/gpt-4.1-mini"))
            await session.start(Desk(ctx.proc.userdata["hotel"]), room=ctx.room)
        """,
    )
    write(
        "scenarios.yaml",
        """
        name: Concierge
        agentsim: {agent: concierge.py}
        scenarios:
          - label: handoff then hang up
            agentsim:
              turns:
                - user: Who runs this place?
                  llm:
                    - tool_calls: [{name: to_concierge}]
                    - say: Concierge of the Harbor Hotel here.
                  expect:
                    - function_call: {name: to_concierge}
                    - function_call_output: {contains: Transferring}
                    - message: {contains: Harbor Hotel}
                    - agent_handoff: {new_agent: Concierge}
                - user: Bye
                  # the job ends in the tool: the session closes before any reply
                  llm: [{tool_calls: [{name: hang_up}]}]
                  closed: {reason: user_initiated}
        """,
    )
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(passed=1)
    log = (pytester.path / "log.txt").read_text().splitlines()
    assert log == ["concierge llm: FakeLLM", "shutdown: guest hung up"]


def test_greeting_before_the_first_turn_is_explained(
    pytester: pytest.Pytester, write: Write
) -> None:
    """The entrypoint greets after session.start(): the greeting takes turn 1's first
    answer, so turn 1 runs short, and the failure says why and names `greeting:`."""
    server_project(write, after_start="    await session.generate_reply(instructions='Greet.')")
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "turn 1: the agent made model calls nothing scripted: llm call 3",
            "*fix: the agent's greeting (before turn 1) took the first 2 of turn 1's llm "
            "answers: script it in `agentsim: {greeting: {llm: *",
        ]
    )


def test_gateway_transport_serves_the_entrypoints_own_llm(
    pytester: pytest.Pytester, write: Write
) -> None:
    server_project(write)
    result = pytester.runpytest("--agentsim", "--agentsim-transport", "gateway")
    result.assert_outcomes(passed=1)
    # the entrypoint's own inference.LLM answered over HTTP; TTS still faked
    assert seen(pytester)["models"] == ["LLM", "FakeTTS"]


EXAMPLES = Path(__file__).parent.parent / "examples"


def test_hotel_example_passes_and_its_demo_is_vetoed(pytester: pytest.Pytester) -> None:
    import shutil

    shutil.copytree(
        EXAMPLES / "hotel", pytester.path / "hotel", ignore=shutil.ignore_patterns("__*")
    )
    result = pytester.runpytest("--agentsim", "hotel")
    result.assert_outcomes(passed=4)
    result = pytester.runpytest("--agentsim", "hotel", "-o", "agentsim_patterns=failing_demo.yaml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "on_simulation_end failed the simulation (SimulationContext.fail): reservations "
            "differ from expected_state",
            "  at failing_demo.yaml:*",
            "  expected:",
            "    - Leo Park: room 204, 2026-07-12 to 2026-07-15, confirmed",
            "    - Maya Chen: room 204, 2026-07-14 to 2026-07-16, confirmed",
            "  got:",
            "    - Leo Park: room 204, 2026-07-12 to 2026-07-15, confirmed",
            "    - Maya Chen: room 205, 2026-07-14 to 2026-07-16, confirmed",
        ]
    )
    assert "Traceback" not in plugin_output(result)


def test_job_shutdown_runs_callbacks_and_warns_on_their_errors(
    pytester: pytest.Pytester, write: Write
) -> None:
    # an entrypoint that never returns is cancelled at the end without costing wall time;
    # on_session_end and shutdown callbacks run, and their errors are warnings (the cloud
    # only logs them) naming the scenario
    write(
        "keeper.py",
        """
        import asyncio
        from livekit.agents import Agent, AgentServer, AgentSession, JobContext


        async def session_end(ctx: JobContext) -> None:
            raise RuntimeError("report upload failed")


        server = AgentServer()


        @server.rtc_session(on_session_end=session_end)
        async def entrypoint(ctx: JobContext) -> None:
            async def flush(reason: str) -> None:
                raise ValueError(f"flush failed ({reason})")

            ctx.add_shutdown_callback(flush)
            session = AgentSession(llm="openai/gpt-4.1-mini")
            await session.start(Agent(instructions="x"), room=ctx.room)
            await asyncio.Event().wait()
        """,
    )
    write(
        "scenarios.yaml",
        """
        name: Keeper
        agentsim: {agent: keeper.py}
        scenarios:
          - label: stays up
            agentsim: {turns: [{user: Hello, llm: [Hi]}]}
        """,
    )
    started = time.monotonic()
    result = pytester.runpytest("--agentsim")
    assert time.monotonic() - started < 10
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines_random(
        [
            "*scenarios.yaml:4: AgentsimWarning: stays up: on_session_end session_end raised "
            "RuntimeError: report upload failed (keeper.py:6 in session_end)",
            "*scenarios.yaml:4: AgentsimWarning: stays up: shutdown callback "
            "entrypoint.<locals>.flush raised ValueError: flush failed (simulation completed)*",
        ]
    )
