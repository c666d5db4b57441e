"""Process mode's warm servers: the agent file is imported and prewarmed once per agent
file and environment, and every scenario still runs in a fresh job of its own.

Pytester projects with a real AgentServer file whose import, prewarm and entrypoint each
append a line (with their pid) to ``events.log`` in the project, so the tests see how many
times each ran and in which process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .test_process_mode import _agent_children, agent_children_gone, outcomes, run

Write = Callable[[str, str], Path]

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="warm servers run on Linux"
)

AGENT_PY = '''
import os
import threading
import time

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, JobProcess
from livekit.agents import RunContext, function_tool, inference

MOOD = os.environ.get("DESK_MOOD", "calm")  # read once, at import time
os.environ["DESK_SET_AT_IMPORT"] = "kept"  # what the import sets, the job still sees
NOTES = []  # module state: a job that shares it with another job is no fresh job


def event(text: str) -> None:
    with open("events.log", "a") as f:
        f.write(f"{text} pid={os.getpid()}\\n")


event(f"import mood={MOOD}")
if os.environ.get("DESK_THREAD"):  # a thread at import: forking is not safe any more
    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()


class Desk(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a desk.")

    @function_tool
    async def remember(self, context: RunContext, note: str) -> str:
        """Remember a note."""
        NOTES.append(note)
        return "notes: " + ", ".join(NOTES)

    @function_tool
    async def mood(self, context: RunContext) -> str:
        """The desk's mood."""
        return f"mood {MOOD}, {os.environ.get('DESK_SET_AT_IMPORT')}"

    @function_tool
    async def crash(self, context: RunContext) -> str:
        """Crash the process."""
        os._exit(3)


def prewarm(proc: JobProcess) -> None:
    proc.userdata["prewarmed_in"] = os.getpid()
    event("prewarm")
    if os.environ.get("DESK_PREWARM_THREAD"):  # e.g. a model runtime's worker thread
        threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()


server = AgentServer(setup_fnc=prewarm)


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    event(f"job prewarmed_in={ctx.proc.userdata.get('prewarmed_in')}")
    session = AgentSession(llm=inference.LLM("openai/gpt-4.1-mini"))
    await session.start(agent=Desk(), room=ctx.room)
'''

SCENARIOS = """
name: Warm desk
agentsim:
  agent: agent.py
  process: true
scenarios:
  - label: First note
    agentsim:
      turns:
        - user: Remember apples.
          llm:
            - tool_calls: [{name: remember, arguments: {note: apples}}]
            - say: Noted.
          expect:
            - function_call: {name: remember}
            - function_call_output: {equals: "notes: apples"}
            - message: {contains: Noted}
  - label: Crashes
    agentsim:
      turns:
        - user: Crash.
          llm:
            - tool_calls: [{name: crash, arguments: {}}]
            - say: Never said.
          expect:
            - function_call: {name: crash}
  - label: Second note
    agentsim:
      turns:
        - user: Remember pears.
          llm:
            - tool_calls: [{name: remember, arguments: {note: pears}}]
            - say: Noted.
          expect:
            - function_call: {name: remember}
            - function_call_output: {equals: "notes: pears"}
            - message: {contains: Noted}
  - label: Grumpy
    agentsim:
      env: {DESK_MOOD: grumpy}
      turns:
        - user: How are you?
          llm:
            - tool_calls: [{name: mood, arguments: {}}]
            - say: Fine.
          expect:
            - function_call: {name: mood}
            - function_call_output: {equals: "mood grumpy, kept"}
            - message: {contains: Fine}
  - label: Calm again
    agentsim:
      turns:
        - user: How are you?
          llm:
            - tool_calls: [{name: mood, arguments: {}}]
            - say: Fine.
          expect:
            - function_call: {name: mood}
            - function_call_output: {equals: "mood calm, kept"}
            - message: {contains: Fine}
"""

EXPECTED = {
    "First note": "PASSED",
    "Crashes": "FAILED",
    "Second note": "PASSED",
    "Grumpy": "PASSED",
    "Calm again": "PASSED",
}


def events(project: Path) -> list[tuple[str, dict[str, str]]]:
    """``(kind, fields)`` per line of the project's events.log."""
    out = []
    for line in (project / "events.log").read_text().splitlines():
        kind, *pairs = line.split()
        out.append((kind, dict(p.split("=", 1) for p in pairs)))
    return out


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


@pytest.fixture
def desk(write: Write) -> None:
    write("agent.py", AGENT_PY)
    write("scenarios.yaml", SCENARIOS)


@pytest.mark.usefixtures("desk")
def test_one_import_and_prewarm_per_agent_file_and_env(pytester: pytest.Pytester) -> None:
    result = run(pytester)
    assert outcomes(result) == EXPECTED
    seen = events(pytester.path)
    imports = [f for kind, f in seen if kind == "import"]
    prewarms = [f for kind, f in seen if kind == "prewarm"]
    jobs = [f for kind, f in seen if kind == "job"]
    # one warm server for the default environment, one for `env: {DESK_MOOD: grumpy}`
    assert sorted(f["mood"] for f in imports) == ["calm", "grumpy"]
    assert [f["pid"] for f in prewarms] == [f["pid"] for f in imports]
    warm = {f["mood"]: f["pid"] for f in imports}
    assert len(jobs) == 5
    # every job is a process of its own, prewarmed by the server of its environment
    assert len({f["pid"] for f in jobs}) == 5
    assert not {f["pid"] for f in jobs} & set(warm.values())
    assert [f["prewarmed_in"] for f in jobs] == [
        warm["calm"],
        warm["calm"],
        warm["calm"],
        warm["grumpy"],
        warm["calm"],
    ]
    # the crash ended its own job only, and says how
    result.stdout.fnmatch_lines(["*Crashes*", "*exited*code 3*"])
    assert re.search(
        r"connected after [0-9.]+s \(forked from warm server \d+\)", result.stdout.str()
    )
    # nothing outlives the run: the jobs, and the warm servers
    assert _agent_children(pytester.path) == set()
    assert all(_gone(int(pid)) for pid in warm.values())


@pytest.mark.usefixtures("desk")
def test_cold_start_option_imports_per_scenario(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--agentsim-cold-start")
    assert outcomes(result) == EXPECTED
    seen = events(pytester.path)
    imports = [f["pid"] for kind, f in seen if kind == "import"]
    jobs = [f for kind, f in seen if kind == "job"]
    assert len(imports) == 5
    # a cold child prewarms in its own process, and runs the job there
    assert [f["prewarmed_in"] for f in jobs] == [f["pid"] for f in jobs] == imports
    assert "forked from warm server" not in result.stdout.str()


@pytest.mark.usefixtures("desk")
def test_thread_at_import_falls_back_to_cold_start(pytester: pytest.Pytester) -> None:
    os.environ["DESK_THREAD"] = "1"
    try:
        result = run(pytester, "-k", "Crashes or First")
    finally:
        del os.environ["DESK_THREAD"]
    assert outcomes(result) == {"First note": "PASSED", "Crashes": "FAILED"}
    result.stdout.fnmatch_lines(["*(cold start: 2 Python threads are running*"])
    # the warm server tried once, then every scenario started cold (its own import)
    imports = [f["pid"] for kind, f in events(pytester.path) if kind == "import"]
    assert len(imports) == 3
    assert _agent_children(pytester.path) == set()


@pytest.mark.usefixtures("desk")
def test_thread_from_prewarm_leaves_prewarm_to_each_job(pytester: pytest.Pytester) -> None:
    os.environ["DESK_PREWARM_THREAD"] = "1"
    try:
        result = run(pytester, "-k", "First or Second")
    finally:
        del os.environ["DESK_PREWARM_THREAD"]
    assert outcomes(result) == {"First note": "PASSED", "Second note": "PASSED"}
    seen = events(pytester.path)
    imports = [f["pid"] for kind, f in seen if kind == "import"]
    prewarms = [f["pid"] for kind, f in seen if kind == "prewarm"]
    jobs = [f for kind, f in seen if kind == "job"]
    # the first server's prewarm left a thread: a second server imports without it, and
    # each forked job prewarms in its own process, as a cold child does (jobs that started
    # cold would have imported the file themselves)
    assert len(imports) == 2
    assert prewarms == [imports[0], *(f["pid"] for f in jobs)]
    assert [f["prewarmed_in"] for f in jobs] == [f["pid"] for f in jobs]
    assert imports[1] not in {f["pid"] for f in jobs}
    assert _agent_children(pytester.path) == set()


def test_cold_start_ini(pytester: pytest.Pytester, write: Write) -> None:
    write("agent.py", AGENT_PY)
    write("scenarios.yaml", SCENARIOS)
    result = run(pytester, "-o", "agentsim_cold_start=true", "-k", "First or Second")
    assert outcomes(result) == {"First note": "PASSED", "Second note": "PASSED"}
    imports = [f for kind, f in events(pytester.path) if kind == "import"]
    assert len(imports) == 2


@pytest.mark.usefixtures("desk")
def test_xdist_workers_have_their_own_servers(pytester: pytest.Pytester) -> None:
    result = run(pytester, "-n", "2")
    assert outcomes(result) == EXPECTED
    imports = [f for kind, f in events(pytester.path) if kind == "import"]
    # at most one server per worker and environment, whatever the distribution
    assert 2 <= len(imports) <= 4
    assert _agent_children(pytester.path) == set()


def test_ctrl_c_ends_the_warm_server_and_its_job(pytester: pytest.Pytester, write: Write) -> None:
    """SIGINT to pytest mid-scenario: the session ends and no agent process is left."""
    agent = AGENT_PY.replace(
        "    await session.start(", "    await asyncio.sleep(3600)\n    await session.start("
    )
    write("agent.py", "import asyncio\n" + agent)
    write("scenarios.yaml", SCENARIOS)
    proc = pytester.popen(
        [sys.executable, "-m", "pytest", "--agentsim", "-p", "no:cacheprovider", "-k", "First"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while len(_agent_children(pytester.path)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_agent_children(pytester.path)) == 2, "no warm server and job"
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        assert agent_children_gone(pytester.path)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.usefixtures("desk")
def test_least_recently_used_server_ends_past_the_limit(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_agentsim.run.drivers import warm_pool

    monkeypatch.setattr(warm_pool, "MAX_SERVERS", 1)
    result = run(pytester, "-k", "Grumpy or Calm or First")
    assert outcomes(result) == {"First note": "PASSED", "Grumpy": "PASSED", "Calm again": "PASSED"}
    # the grumpy server replaced the calm one, which "Calm again" then started anew
    moods = [f["mood"] for kind, f in events(pytester.path) if kind == "import"]
    assert moods == ["calm", "grumpy", "calm"]
    assert _agent_children(pytester.path) == set()
