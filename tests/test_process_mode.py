"""Process mode: an AgentServer file runs unchanged in a child process, driven over
LiveKit's session protocol (``RemoteSession``) like the cloud simulator drives it.

Each test is a pytester project with a real scenarios YAML and a real AgentServer file. The
child is ``python -m pytest_agentsim.run.drivers.shim`` (livekit's console CLI plus the
simulation dispatch); its models are served by the loopback fake gateway.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import plugin_output

Write = Callable[[str, str], Path]

# An entrypoint as LiveKit's examples write one (LiveKit Inference LLM, session started in
# the job's room); on_simulation_end fails the run when the agent never said `must_say`.
SERVER_PY = '''
from livekit.agents import Agent, AgentServer, AgentSession, JobContext, RunContext
from livekit.agents import function_tool, inference
from livekit.agents.simulation import SimulationContext


class Desk(Agent):
    def __init__(self, city: str) -> None:
        super().__init__(instructions="You are a weather desk.")
        self.city = city

    @function_tool
    async def lookup(self, context: RunContext, city: str) -> str:
        """Look up the weather."""
        return f"sunny in {city}"


async def check(ctx: SimulationContext) -> None:
    want = ctx.userdata().get("must_say")
    if not want:
        return
    said = " ".join(
        item.text_content or ""
        for item in ctx.job_context.primary_session.history.items
        if item.type == "message" and item.role == "assistant"
    )
    if want not in said:
        ctx.fail(f"the agent never said {want!r}")


server = AgentServer()


@server.rtc_session(on_simulation_end=check)
async def entrypoint(ctx: JobContext) -> None:
    sim = ctx.simulation_context()
    city = sim.userdata().get("city", "Paris") if sim is not None else "Paris"
    session = AgentSession(llm=inference.LLM("openai/gpt-4.1-mini"))
    await session.start(agent=Desk(city), room=ctx.room)
'''

SCENARIOS = """
name: Weather desk
agentsim:
  agent: agent.py
  {process}
scenarios:
  - label: Looks up the weather
    userdata: {{must_say: sunny, city: Paris}}
    agentsim:
      turns:
        - user: What's the weather in Paris?
          llm:
            - tool_calls: [{{name: lookup, arguments: {{city: Paris}}}}]
            - say: It is sunny in Paris today.
          expect:
            - function_call: {{name: lookup, arguments: {{city: Paris}}}}
            - function_call_output: {{equals: sunny in Paris}}
            - message: {{contains: sunny}}
        - user: Thanks!
          llm: ["You're welcome."]
          expect:
            - message: {{regex: "welcome"}}

  - label: Vetoed by on_simulation_end
    userdata: {{must_say: raining}}
    agentsim:
      turns:
        - user: What's the weather in Oslo?
          llm: ["It is cold in Oslo."]
          expect:
            - message: {{contains: cold}}

  - label: Credits run out
    agentsim:
      turns:
        - user: Hello?
          llm:
            - {{fault: quota_exceeded, times: always}}
          expect: []

  - label: Wrong expectation
    agentsim:
      turns:
        - user: Hello?
          llm: ["Hi there."]
          expect:
            - function_call: {{name: lookup}}
"""


def project(write: Write, *, process: bool = True, agent: str = SERVER_PY) -> None:
    write("agent.py", agent)
    write("scenarios.yaml", SCENARIOS.format(process="process: true" if process else ""))


def edit_scenarios(pytester: pytest.Pytester, old: str, new: str) -> None:
    """Replace ``old`` (which must be there) in the project's scenarios.yaml."""
    path = pytester.path / "scenarios.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in scenarios.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """scenario label -> PASSED/FAILED/ERROR, from `-rA` short summary lines."""
    out = {}
    for line in result.outlines:
        m = re.match(r"^(PASSED|FAILED|ERROR) scenarios\.yaml::(.+?)(?: - .*)?$", line)
        if m:
            out[m.group(2)] = m.group(1)
    return out


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--agentsim", "-rA", "-p", "no:cacheprovider", *args)


def test_scripted_turns_with_a_tool_call_pass(pytester: pytest.Pytester, write: Write) -> None:
    project(write)
    result = run(pytester, "-k", "Looks")
    result.assert_outcomes(passed=1)


def test_process_mode_reports_wall_clock_metrics(pytester: pytest.Pytester, write: Write) -> None:
    """The session host forwards the agent's state: each turn's latency is measured on the
    wall clock, as the cloud simulator measures it, in the same SimulationRun shape."""
    project(write)
    result = run(pytester, "-k", "Looks", "--agentsim-metrics", "m.json")
    result.assert_outcomes(passed=1)
    [job] = json.loads((pytester.path / "m.json").read_text())["jobs"]
    replies = [t for t in job["metrics"]["turns"] if t["role"] == "ASSISTANT"]
    assert len(replies) == 2
    for reply in replies:  # answered, within the turn, after the user
        assert 0 < reply["e2eLatencyMs"] < 30_000 and "unanswered" not in reply
    assert job["metrics"]["endReason"] == "END_REASON_SCENARIO_COMPLETED"


def test_on_simulation_end_veto_fails_with_its_reason(
    pytester: pytest.Pytester, write: Write
) -> None:
    project(write)
    result = run(pytester, "-k", "Vetoed")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "on_simulation_end failed the simulation (SimulationContext.fail): "
            "the agent never said 'raining'",
            "*ctx.fail(*the agent never said *raining*)*",
            "agent process log (last 40 lines):",
        ]
    )


def test_quota_fault_fails_the_turn_and_is_classified(
    pytester: pytest.Pytester, write: Write
) -> None:
    project(write)
    edit_scenarios(pytester, "          expect: []", "          expect:\n            - message: {}")
    result = run(pytester, "-k", "Credits")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "turn 1: expected event 1 (message*) but the turn produced only 0 event(s):",
            "*the turn failed: *(the gateway served "
            "quota_exceeded(429 MaxGatewayCredits) on llm call 1 to *)",
        ]
    )
    # the agent's own retry policy ran against the gateway (attempts unchanged)
    assert result.stdout.str().count("(gateway): quota_exceeded") >= 2


def test_child_crashing_at_import_fails_with_its_log(
    pytester: pytest.Pytester, write: Write
) -> None:
    project(write, agent="raise RuntimeError('database unreachable at import')\n")
    started = time.monotonic()
    result = run(pytester, "-k", "Looks")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "the agent process exited with code * before its session connected*",
            "  agent process log (last lines):",
            "*RuntimeError: database unreachable at import*",
        ]
    )
    assert time.monotonic() - started < 20  # no connect timeout: the exit is noticed


def test_entrypoint_raising_before_start_fails_fast(
    pytester: pytest.Pytester, write: Write
) -> None:
    agent = SERVER_PY.replace(
        "    session = AgentSession(",
        "    raise ValueError('no config')\n    session = AgentSession(",
    )
    project(write, agent=agent)
    started = time.monotonic()
    result = run(pytester, "-k", "Looks")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["the agent's entrypoint raised before its session started*", "*ValueError: no config*"]
    )
    assert time.monotonic() - started < 20  # the process stays up: read from its log


def test_a_hung_turn_fails_at_the_scenario_timeout(pytester: pytest.Pytester, write: Write) -> None:
    hang = (
        "    @function_tool\n"
        "    async def lookup(self, context: RunContext, city: str) -> str:\n"
        '        """Look up the weather."""\n'
        "        await asyncio.sleep(3600)\n"
        '        return "never"\n'
    )
    start = SERVER_PY.index("    @function_tool")
    end = SERVER_PY.index("async def check")
    project(write, agent="import asyncio\n" + SERVER_PY[:start] + hang + "\n\n" + SERVER_PY[end:])
    edit_scenarios(pytester, "  process: true", "  process: true\n  timeout: 2")
    result = run(pytester, "-k", "Looks")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["turn 1: the agent did not finish its reply within 2s (agentsim.timeout)"]
    )
    assert _agent_children(pytester.path) == set()


def test_parity_with_entrypoint_mode(pytester: pytest.Pytester, write: Write) -> None:
    """Same YAML, same verdicts in-process (entrypoint mode) and in process mode; the
    process-mode run uses two xdist workers and leaves no agent process behind."""
    project(write, process=False)
    in_process = outcomes(run(pytester))
    assert in_process == {
        "Looks up the weather": "PASSED",
        "Vetoed by on_simulation_end": "FAILED",
        "Credits run out": "PASSED",
        "Wrong expectation": "FAILED",
    }
    assert outcomes(run(pytester, "--agentsim-process", "-n", "2")) == in_process
    assert _agent_children(pytester.path) == set()


AGENT_TURNS = """
name: Desk
agentsim: {{agent: agent.py{process}}}
scenarios:
  - label: Mocked tool, then the agent speaks on its own
    agentsim:
      turns:
        - user: What's the weather in Oslo?
          tools: {{lookup: snowing in Oslo}}
          llm:
            - tool_calls: [{{name: lookup, arguments: {{city: Oslo}}}}]
            - It is snowing in Oslo.
          expect:
            - function_call: {{name: lookup, arguments: {{city: Oslo}}}}
            - function_call_output: {{equals: snowing in Oslo}}
            - message: {{contains: snowing}}
        - say: One more thing before you go.
          expect:
            - message: {{equals: One more thing before you go.}}
        - generate_reply: Offer an umbrella.
          llm: ["Take an umbrella!"]
          expect:
            - message: {{contains: umbrella}}
        - user: What's the weather in Rome?
          llm:
            - tool_calls: [{{name: lookup, arguments: {{city: Rome}}}}]
            - It is sunny in Rome.
          expect:
            - function_call: lookup
            - function_call_output: {{equals: sunny in Rome}}
            - message: {{contains: sunny}}
"""


def test_tool_mocks_and_agent_turns_in_both_modes(pytester: pytest.Pytester, write: Write) -> None:
    """`tools:` mocks and `say:`/`generate_reply:` turns reach the agent in its own process
    (over the control channel), with the verdicts of in-process mode; the mock is gone
    after its turn (Rome's lookup is the real tool)."""
    write("agent.py", SERVER_PY)
    write("scenarios.yaml", AGENT_TURNS.format(process=""))
    run(pytester).assert_outcomes(passed=1)
    write("scenarios.yaml", AGENT_TURNS.format(process=", process: true"))
    run(pytester).assert_outcomes(passed=1)
    # a wrong mocked value fails the same way in the child
    write(
        "scenarios.yaml",
        AGENT_TURNS.format(process=", process: true").replace(
            "equals: snowing in Oslo", "equals: raining in Oslo"
        ),
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["turn 1, event 2: tool output does not match equals 'raining*"])


def test_tts_steps_in_text_mode_are_errors_naming_the_line(
    pytester: pytest.Pytester, write: Write
) -> None:
    write("agent.py", SERVER_PY)
    write(
        "scenarios.yaml",
        "name: Desk\nagentsim: {agent: agent.py, process: true}\nscenarios:\n"
        "  - label: Steps\n    agentsim:\n      turns:\n"
        "      - user: Hi\n        tts: [{fault: server_error}]\n",
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "scenarios.yaml:7: process mode cannot script `tts:` steps in text mode*",
            "*fix: add `mode: audio`*",
        ]
    )
    assert "Traceback" not in plugin_output(result)


def agent_children_gone(project_dir: Path, within: float = 10) -> bool:
    """Waits up to ``within`` seconds for the project's agent processes to be gone."""
    deadline = time.monotonic() + within
    while _agent_children(project_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _agent_children(project_dir) == set()


def _agent_children(project_dir: Path) -> set[int]:
    """pids of live process-mode processes running a project's agent (their cwd): cold
    children, warm servers and the jobs they fork."""
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        ours = (
            b"pytest_agentsim.run.drivers.shim" in cmd or b"pytest_agentsim.run.drivers.warm" in cmd
        )
        if ours and cwd == str(project_dir) and state != "Z":
            out.add(int(entry.name))
    return out


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX process groups")
def test_child_ends_itself_when_pytest_dies(pytester: pytest.Pytester, write: Write) -> None:
    """An xdist worker killed mid-scenario leaves no agent process behind."""
    hang = "    await asyncio.sleep(3600)\n    await session.start("
    agent = "import asyncio\n" + SERVER_PY.replace("    await session.start(", hang)
    project(write, agent=agent)
    proc = pytester.popen(
        [sys.executable, "-m", "pytest", "--agentsim", "-p", "no:cacheprovider", "-k", "Looks"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not _agent_children(pytester.path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _agent_children(pytester.path), "the agent process never started"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert agent_children_gone(pytester.path)
    finally:
        if proc.poll() is None:
            proc.kill()


# Speech and the session's close, observed over the protocol. The fallback is spoken with
# add_to_chat_ctx=False, so in audio mode only the console's audio (and the text the
# gateway synthesized for it) says it was heard; the naive handler apologizes on every
# failed attempt and never ends the call.
FALLBACK_SERVER_PY = """
import asyncio

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, inference

FALLBACK = "Sorry, we are unavailable right now. Please call back later."


class Desk(Agent):
    def __init__(self, naive: bool) -> None:
        super().__init__(instructions="You are a front desk.")
        self.naive = naive
        self.fallback_started = False
        self.tasks = set()

    async def on_enter(self) -> None:
        self.session.on("error", self.on_error)

    def on_error(self, ev) -> None:
        if self.naive:
            self.session.say(FALLBACK)
            return
        if self.fallback_started or getattr(ev.error, "recoverable", False):
            return
        self.fallback_started = True
        task = asyncio.ensure_future(self.fallback())
        self.tasks.add(task)

    async def fallback(self) -> None:
        handle = self.session.say(FALLBACK, add_to_chat_ctx=False)
        await handle.wait_for_playout()
        self.session.shutdown(drain=True)


def check(ctx) -> None:
    if ctx.userdata().get("veto"):
        ctx.fail(ctx.userdata()["veto"])


server = AgentServer()


@server.rtc_session(on_simulation_end=check)
async def entrypoint(ctx: JobContext) -> None:
    sim = ctx.simulation_context()
    naive = bool(sim is not None and sim.userdata().get("naive"))
    session = AgentSession(
        llm=inference.LLM("openai/gpt-4.1-mini"), tts=inference.TTS("cartesia/sonic-3")
    )
    await session.start(agent=Desk(naive), room=ctx.room)
"""

SPEECH_SCENARIOS = """
name: Front desk
agentsim:
  agent: agent.py
  {process}
scenarios:
  - label: Fallback heard then the call ends
    agentsim:
      mode: audio
      turns:
        - user: When are you open?
          llm: ["We are open 9 to 5."]
          expect:
            - message: {{contains: "9 to 5"}}
          spoken: ["9 to 5"]
          closed: false
        - user: Can I book a visit?
          llm:
            - {{fault: quota_exceeded, times: always}}
          spoken:
            - {{contains: "call back later", source: tts}}
          closed: {{reason: user_initiated}}

  - label: Naive handler repeats itself and never hangs up
    userdata: {{naive: true}}
    agentsim:
      mode: audio
      turns:
        - user: Can I book a visit?
          llm:
            - {{fault: quota_exceeded, times: always}}
          spoken: ["call back later"]
          closed: {{reason: user_initiated}}

  - label: A failed synthesis is retried and heard
    agentsim:
      mode: audio
      turns:
        - user: Hello?
          llm: ["Hello, front desk."]
          tts:
            - {{fault: server_error}}
          spoken: ["front desk"]
          closed: false

  - label: Text mode reads the reply
    agentsim:
      turns:
        - user: Hello?
          llm: ["Hello, front desk."]
          spoken: ["front desk"]
          closed: false

  - label: Silence expected but the agent answers
    agentsim:
      turns:
        - user: Hello?
          llm: ["Hello, front desk."]
          spoken: []

  - label: Vetoed after the agent hung up
    userdata: {{veto: "no booking was made"}}
    agentsim:
      mode: audio
      turns:
        - user: Can I book a visit?
          llm:
            - {{fault: quota_exceeded, times: always}}
          closed: true

  - label: A turn after the call ended
    agentsim:
      mode: audio
      allow_unused: true
      turns:
        - user: Can I book a visit?
          llm:
            - {{fault: quota_exceeded, times: always}}
        - user: Hello?
          llm: ["Hi."]
"""

SPEECH_VERDICTS = {
    "Fallback heard then the call ends": "PASSED",
    "Naive handler repeats itself and never hangs up": "FAILED",
    "A failed synthesis is retried and heard": "PASSED",
    "Text mode reads the reply": "PASSED",
    "Silence expected but the agent answers": "FAILED",
    "Vetoed after the agent hung up": "FAILED",
    "A turn after the call ended": "FAILED",
}


def speech_project(write: Write, *, process: bool = True) -> None:
    write("agent.py", FALLBACK_SERVER_PY)
    write("scenarios.yaml", SPEECH_SCENARIOS.format(process="process: true" if process else ""))


def test_spoken_and_closed_are_observed_over_the_protocol(
    pytester: pytest.Pytester, write: Write
) -> None:
    speech_project(write)
    result = run(pytester)
    assert outcomes(result) == SPEECH_VERDICTS
    out = result.stdout.str()
    # the naive handler: heard once per failed attempt, and the call never ends
    result.stdout.fnmatch_lines(
        [
            "turn 1: the user heard more than `spoken` lists (it lists every item, in order):",
            "    1. [tts] 'Sorry, we are unavailable right now. Please call back later.'",
            "    2. [tts] 'Sorry, we are unavailable right now. Please call back later.'",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "turn 1: expected silence, but the user heard:",
            "    1. [text] 'Hello, front desk.'",
        ]
    )
    result.stdout.fnmatch_lines(["turn 2 (user: Hello?) cannot run: the session already closed*"])
    # the close the agent made is in the transcript, with livekit's reason
    assert "close | reason=user_initiated" in out
    # finalize_simulation cannot reach a closed session: on_simulation_end still ran
    result.stdout.fnmatch_lines(
        [
            "on_simulation_end failed the simulation (SimulationContext.fail): no booking was made",
        ]
    )
    assert _agent_children(pytester.path) == set()


def test_spoken_before_close_is_required(pytester: pytest.Pytester, write: Write) -> None:
    """An agent that hangs up before its fallback is played: the user heard nothing."""
    agent = FALLBACK_SERVER_PY.replace("        await handle.wait_for_playout()\n", "").replace(
        "shutdown(drain=True)", "shutdown(drain=False)"
    )
    write("agent.py", agent)
    write("scenarios.yaml", SPEECH_SCENARIOS.format(process="process: true"))
    result = run(pytester, "-k", "Fallback")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "turn 2: expected contains 'call back later' to be spoken (spoken item 1), "
            "the user heard only:",
            "    (nothing)",
        ]
    )


def test_speech_parity_with_entrypoint_mode(pytester: pytest.Pytester, write: Write) -> None:
    """The same speech scenarios, in-process (entrypoint mode, fake TTS) and in a child
    process (the real inference.TTS against the loopback gateway): the same verdicts."""
    speech_project(write, process=False)
    assert outcomes(run(pytester)) == SPEECH_VERDICTS
    assert outcomes(run(pytester, "--agentsim-process", "-n", "2")) == SPEECH_VERDICTS


def test_snapshot_written_in_process_matches_in_process_mode(
    pytester: pytest.Pytester, write: Write
) -> None:
    """One snapshot for both modes: the history read over the session protocol
    normalizes to what the in-process run stored; a changed reply is a diff."""
    project(write, process=False)
    (pytester.path / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nagentsim_snapshot = true\n",
        encoding="utf-8",
    )
    created = run(pytester, "-k", "Looks", "--snapshot-update")
    created.assert_outcomes(passed=1)
    stored = pytester.path / "__snapshots__" / "scenarios.agentsim"
    before = stored.read_bytes()
    assert b"sunny in Paris" in before

    run(pytester, "-k", "Looks", "--agentsim-process").assert_outcomes(passed=1)
    assert stored.read_bytes() == before

    edit_scenarios(pytester, "It is sunny in Paris today.", "It is sunny in Paris.")
    changed = run(pytester, "-k", "Looks", "--agentsim-process")
    changed.assert_outcomes(failed=1)
    changed.stdout.fnmatch_lines(["*It is sunny in Paris today.*", "*It is sunny in Paris.*"])


def test_hotel_example_parity(pytester: pytest.Pytester) -> None:
    """The entrypoint example (sqlite state seeded from userdata, graded by its own
    on_simulation_end, a 503 retried in audio mode) and its failing demo: the same verdicts
    in-process and with every scenario in a child process."""
    example = Path(__file__).resolve().parent.parent / "examples" / "hotel"
    for name in ("agent.py", "scenarios.yaml", "failing_demo.yaml"):
        text = (example / name).read_text(encoding="utf-8")
        # the example runs one scenario in process mode: in-process here, for the baseline
        text = re.sub(r"(?m)^\s+process: true.*\n", "", text)
        (pytester.path / name).write_text(text, encoding="utf-8")
    both = ("-o", "agentsim_patterns=scenarios.yaml failing_demo.yaml")

    def verdicts(result: pytest.RunResult) -> dict[str, str]:
        found = re.findall(
            r"(?m)^(PASSED|FAILED|ERROR) (\w+\.yaml::.+?)(?: - .*)?$", result.stdout.str()
        )
        return {item: verdict for verdict, item in found}

    in_process = verdicts(run(pytester, *both))
    assert in_process == {
        "scenarios.yaml::Books a double for two nights": "PASSED",
        "scenarios.yaml::Cancels an existing reservation": "PASSED",
        "scenarios.yaml::Refuses dates in the past": "PASSED",
        "scenarios.yaml::A gateway hiccup is retried, the caller hears the rate": "PASSED",
        "failing_demo.yaml::Expected state disagrees with the booking": "FAILED",
    }
    processed = run(pytester, *both, "--agentsim-process", "-n", "2")
    assert verdicts(processed) == in_process
    processed.stdout.fnmatch_lines(["*on_simulation_end failed the simulation*"])
    assert _agent_children(pytester.path) == set()


def test_snapshot_parity_with_late_fallback_and_close(
    pytester: pytest.Pytester, write: Write
) -> None:
    """Apologies an error handler adds after the turn's reply, and a history the session
    takes with it when it closes, are in the process-mode snapshot as in-process."""
    write("agent.py", FALLBACK_SERVER_PY)
    write(
        "scenarios.yaml",
        """
        name: Snap
        agentsim: {agent: agent.py, snapshot: true, mode: audio}
        scenarios:
          - label: Naive apologies
            userdata: {naive: true}
            agentsim:
              turns:
                - user: Can I book a visit?
                  llm: [{fault: quota_exceeded, times: always}]
          - label: Fallback then close
            agentsim:
              turns:
                - user: When are you open?
                  llm: ["We are open 9 to 5."]
                - user: Can I book a visit?
                  llm: [{fault: quota_exceeded, times: always}]
        """,
    )
    run(pytester, "--snapshot-update").assert_outcomes(passed=2)
    stored = pytester.path / "__snapshots__" / "scenarios.agentsim"
    before = stored.read_text(encoding="utf-8")
    assert before.count("Please call back later.") == 4  # one per failed attempt
    assert "We are open 9 to 5." in before
    run(pytester, "--agentsim-process").assert_outcomes(passed=2)
    assert stored.read_text(encoding="utf-8") == before


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="processes are found through /proc")
def test_a_process_the_agent_detached_ends_with_its_scenario(
    pytester: pytest.Pytester, write: Write
) -> None:
    # a tool that starts a helper in a session of its own: it leaves the agent's process
    # group, so killing the group alone would leave it running after the test
    spawn = '''
    @function_tool
    async def lookup(self, context: RunContext, city: str) -> str:
        """Look up the weather."""
        import pathlib, subprocess
        helper = subprocess.Popen(["sleep", "300"], start_new_session=True)
        pathlib.Path("helper.pid").write_text(str(helper.pid))
        return f"sunny in {city}"
'''
    agent = re.sub(
        r"\n    @function_tool\n.*?return f\"sunny in \{city\}\"\n", spawn, SERVER_PY, flags=re.S
    )
    assert "start_new_session" in agent
    project(write, agent=agent)
    # a real helper process is a child process the offline guard refuses: allowed here
    result = run(pytester, "-k", "Looks", "--agentsim-allow-network")
    assert outcomes(result) == {"Looks up the weather": "PASSED"}
    pid = int((pytester.path / "helper.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
