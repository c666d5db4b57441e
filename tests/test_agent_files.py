"""Agent files as LiveKit's examples write them: helpers imported by bare name from the
agent's folder, settings read from the environment at import (``agentsim: {env: ...}``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_agentsim.run import siblings
from pytest_agentsim.run.target import import_target

Write = Callable[[str, str], Path]

AGENT_PY = """
import os
import sys

sys.path.append(os.path.dirname(os.path.abspath(__file__)))

from helper import VALUE  # a sibling module, imported by bare name


def late() -> str:
    import helper  # imported again at run time, not at import

    return helper.VALUE
"""


@pytest.fixture
def folders(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "agent.py").write_text(AGENT_PY, "utf-8")
        (folder / "helper.py").write_text(f"VALUE = {name!r}\n", "utf-8")
    saved_path, saved_modules = list(sys.path), dict(sys.modules)
    yield tmp_path / "a", tmp_path / "b"
    sys.path[:] = saved_path
    for name in set(sys.modules) - set(saved_modules):
        del sys.modules[name]
    sys.modules.update(saved_modules)
    siblings.activate(siblings.scope_for(tmp_path, {}))  # leave no agent folder current


def load(folder: Path, env: dict[str, str | None] | None = None) -> object:
    return import_target(
        "agent.py", origin=folder / "scenarios.yaml", rootdir=None, where="test", env=env
    )


def test_each_agent_folder_imports_its_own_helpers(folders: tuple[Path, Path]) -> None:
    a_dir, b_dir = folders
    a, b = load(a_dir), load(b_dir)
    assert (a.VALUE, b.VALUE) == ("a", "b")  # type: ignore[attr-defined]
    # a helper imported while the agent runs resolves in the folder of the agent that runs
    assert load(a_dir) is a
    assert a.late() == "a"  # type: ignore[attr-defined]
    assert load(b_dir) is b
    assert b.late() == "b"  # type: ignore[attr-defined]


def test_a_module_of_the_tests_with_a_helper_name_comes_back(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    a_dir, _ = folders
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "helper.py").write_text("VALUE = 'tests'\n", "utf-8")
    sys.path.insert(0, str(mine))
    import helper  # type: ignore[import-not-found]

    assert helper.VALUE == "tests"
    assert load(a_dir).VALUE == "a"  # type: ignore[attr-defined]
    # another folder becomes current: the tests' own module is back under its name
    siblings.activate(siblings.scope_for(tmp_path, {}))
    assert sys.modules["helper"] is helper


def test_another_env_imports_the_agent_afresh(folders: tuple[Path, Path]) -> None:
    a_dir, _ = folders
    (a_dir / "helper.py").write_text("import os\nVALUE = os.environ.get('TODAY', 'unset')\n")
    os.environ["TODAY"] = "2026-06-08"
    try:
        first = load(a_dir, {"TODAY": "2026-06-08"})
        os.environ["TODAY"] = "2026-01-01"
        second = load(a_dir, {"TODAY": "2026-01-01"})
    finally:
        del os.environ["TODAY"]
    assert first is not second
    assert (first.VALUE, second.VALUE) == ("2026-06-08", "2026-01-01")  # type: ignore[attr-defined]
    assert load(a_dir, {"TODAY": "2026-06-08"}) is first  # the same env: the same import


SERVER_PY = """
import os

from settings import GREETING  # read from the environment at import

from livekit.agents import Agent, AgentServer, JobContext, inference
from pytest_agentsim.fakes.session import SESSION_CLASS as AgentSession


class Desk(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="desk")

    async def on_enter(self) -> None:
        self.session.say(f"{GREETING} / key={os.environ.get('DESK_KEY', 'unset')}")


server = AgentServer()


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    session = AgentSession(llm=inference.LLM("openai/gpt-4.1-mini"))
    await session.start(agent=Desk(), room=ctx.room)
"""

SCENARIOS = """
name: Env
agentsim:
  agent: agent.py
  env: {{GREETING_TEXT: {greeting}, DESK_KEY: null}}
  greeting:
    expect:
      - agent_handoff: {{new_agent: Desk}}
      - message: {{contains: "{expected}"}}
scenarios:
  - label: greets
    instructions: x
    agentsim:
      turns:
        - user: hi
          llm: [{{say: Hello.}}]
"""


@pytest.mark.parametrize("mode", ["entrypoint", "process"])
def test_env_is_set_for_the_import_and_the_run(
    pytester: pytest.Pytester, write: Write, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two files with different `env:` in one run: each agent import sees its own values,
    and `null` unsets what the shell set (a real API key stays out of the test)."""
    monkeypatch.setenv("DESK_KEY", "real-secret")
    write("desk/agent.py", SERVER_PY)
    write("desk/settings.py", "import os\nGREETING = os.environ['GREETING_TEXT']\n")
    write(
        "desk/morning.scenarios.yaml",
        SCENARIOS.format(greeting="Morning", expected="Morning / key=unset"),
    )
    write(
        "desk/evening.scenarios.yaml",
        SCENARIOS.format(greeting="Evening", expected="Evening / key=unset"),
    )
    args = ["--agentsim", "-p", "no:cacheprovider"]
    if mode == "process":
        args.append("--agentsim-process")
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=2)
    assert os.environ["DESK_KEY"] == "real-secret"
    assert "GREETING_TEXT" not in os.environ


BACKGROUND_PY = """
from livekit.agents import Agent, AgentServer, AudioConfig, BackgroundAudioPlayer, JobContext
from livekit.agents import BuiltinAudioClip, inference
from pytest_agentsim.fakes.session import SESSION_CLASS as AgentSession


class Desk(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="desk")


server = AgentServer()


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    session = AgentSession(llm=inference.LLM("openai/gpt-4.1-mini"))
    await session.start(agent=Desk(), room=ctx.room)
    background = BackgroundAudioPlayer(
        ambient_sound=AudioConfig(BuiltinAudioClip.OFFICE_AMBIENCE, volume=0.8),
        thinking_sound=[AudioConfig(BuiltinAudioClip.KEYBOARD_TYPING, volume=0.8)],
    )
    await background.start(room=ctx.room, agent_session=session)
    await background.play(BuiltinAudioClip.KEYBOARD_TYPING)  # already done: nothing plays
"""


@pytest.mark.parametrize("mode", ["entrypoint", "process"])
def test_background_audio_is_started_and_silent(
    pytester: pytest.Pytester, write: Write, mode: str
) -> None:
    """As in livekit's console: the player starts, nothing is published or decoded."""
    write("agent.py", BACKGROUND_PY)
    write(
        "scenarios.yaml",
        """
        name: Background
        agentsim: {agent: agent.py}
        scenarios:
          - label: hi
            instructions: x
            agentsim:
              turns:
                - user: hi
                  llm: [Hello.]
                  expect: [{message: Hello}]
        """,
    )
    args = ["--agentsim", "-p", "no:cacheprovider"]
    if mode == "process":
        args.append("--agentsim-process")
    pytester.runpytest(*args).assert_outcomes(passed=1)


CRASHING_PY = """
from livekit.agents import Agent, AgentServer, AgentTask, JobContext, RunContext
from livekit.agents import function_tool, inference
from pytest_agentsim.fakes.session import SESSION_CLASS as AgentSession


def load_menu() -> dict:
    raise KeyError("menu.json has no 'specials'")


class Specials(AgentTask[str]):
    def __init__(self) -> None:
        super().__init__(instructions="read the specials")

    async def on_enter(self) -> None:
        self.session.say(f"Today: {load_menu()}")


class Desk(Agent):
    def __init__(self, crash: bool = True) -> None:
        super().__init__(instructions="desk")
        self.crash = crash

    async def on_enter(self) -> None:
        if self.crash:
            load_menu()
        self.session.say("Hello!")

    @function_tool
    async def specials(self, context: RunContext) -> str:
        \"\"\"Read today's specials.\"\"\"
        return await Specials()


def calm_desk() -> Desk:
    return Desk(crash=False)


server = AgentServer()


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    session = AgentSession(llm=inference.LLM("openai/gpt-4.1-mini"))
    await session.start(agent=Desk(), room=ctx.room)
"""


@pytest.mark.parametrize("agent", ["agent.py:Desk", "agent.py", "agent.py --process"])
def test_an_on_enter_that_raises_fails_the_greeting(
    pytester: pytest.Pytester, write: Write, agent: str
) -> None:
    """livekit runs on_enter as a task nobody awaits: the exception would only be logged
    and the greeting would silently never come. The step fails, naming the agent's line."""
    target, _, process = agent.partition(" ")
    write("agent.py", CRASHING_PY)
    write(
        "scenarios.yaml",
        f"""
        name: Crash
        agentsim: {{agent: "{target}", process: {str(bool(process)).lower()}}}
        scenarios:
          - label: hi
            instructions: x
            agentsim:
              turns: [{{user: hi, llm: [Hello.]}}]
        """,
    )
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "the greeting: the agent's on_enter of desk raised KeyError: \"menu.json has no "
            "'specials'\" (agent.py:7 in load_menu)",
            "  at scenarios.yaml:4",
        ]
    )


def test_a_sub_task_whose_on_enter_raises_fails_its_turn(
    pytester: pytest.Pytester, write: Write
) -> None:
    write("agent.py", CRASHING_PY)
    write(
        "scenarios.yaml",
        """
        name: Crash
        agentsim: {agent: "agent.py:calm_desk"}
        scenarios:
          - label: specials
            instructions: x
            agentsim:
              greeting: {expect: [{agent_handoff: {new_agent: Desk}}, {message: Hello}]}
              turns:
                - user: What are the specials?
                  llm: [{tool_calls: [{name: specials}]}]
        """,
    )
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "turn 1: the agent's on_enter of specials raised KeyError*(agent.py:7 in load_menu)",
            "  at scenarios.yaml:9",
        ]
    )
