"""Simulated scenarios (no ``agentsim.turns``): an LLM user, the agent's real LLM, a judge.

Like ``lk agent simulate`` in text mode: a simulated user, prompted with the scenario's
``instructions``, converses with the agent until the agent ends the session, the user ends
the call, or ``max_turns`` user turns were played; then a judge LLM grades the transcript
against ``agent_expectations`` and, in entrypoint mode, ``on_simulation_end`` runs with
the judge's verdict as the simulator verdict.

**Ending the call.** The simulated user ends the call by putting :data:`END_MARKER`
(``[END]``) in its message; the text before the marker, if any, is said as its last turn.

**Models.** All model traffic goes through a loopback :class:`~.cassette.ModelProxy`:
the agent's LLM (``inference.LLM`` built by the plugin for Agent targets, or whatever
LLM the agent/entrypoint makes: ``LIVEKIT_INFERENCE_URL`` and ``OPENAI_BASE_URL`` point at
the proxy), the simulated user and the judge (OpenAI chat completions, one request per
turn). A model name with a ``/`` (``openai/gpt-4.1-mini``) is a LiveKit Inference model,
anything else an OpenAI model. Recording, the proxy forwards to the real endpoints (or to
``model_base_url`` for all of them) and the cassette is written once the conversation and
the judge ran to their end (a failed, cut-short or interrupted recording writes nothing);
replaying, nothing leaves the machine. The record mode (:mod:`.recording`) decides which.
Never imports pytest.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import aiohttp
from livekit.agents import inference

from ..env import DUMMY_CREDENTIALS, ScopedEnv
from ..errors import AgentSimAssertionError, ScenarioFailure
from ..fakes import no_backoff
from ..load.model import Scenario, Turn
from ..observe.record import Recorder
from .cassette import Cassette
from .drivers.job import FakeJob
from .drivers.process import ProcessDriver
from .harness import AgentSim
from .judge import Verdict, parse_verdict
from .outcome import StepFailed, scenario_failure
from .player import ScenarioRun
from .proxy import ModelProxy, auth_header, upstreams
from .recording import save_cassette
from .settings import RunSettings
from .target import AgentTarget

__all__ = [
    "END_MARKER",
    "SimulationSettings",
    "Verdict",
    "run_simulation",
]

END_MARKER = "[END]"

USER_PROMPT = """\
You are role-playing a user who is talking to an AI voice agent, to test the agent.
Stay in character and follow these instructions:

{instructions}

Reply with only what the user says next: one short conversational message, no stage \
directions. When the conversation has reached its end (your goal is met, or it cannot \
be), say your last words and end your message with {marker}."""

JUDGE_PROMPT = """\
You are grading a conversation between a user and an AI voice agent.
The agent was expected to:

{expectations}

Answer with a JSON object only: {{"verdict": "pass" or "fail", "reason": "<one or two \
sentences>"}}. Pass only if the agent met the expectations."""


@dataclasses.dataclass(frozen=True)
class SimulationSettings:
    rerecord: str  # the command that re-records this scenario
    agent_model: str = "openai/gpt-4.1-mini"
    user_model: str = "openai/gpt-4.1-mini"
    judge_model: str = "openai/gpt-4.1-mini"
    max_turns: int = 8
    model_base_url: str | None = None  # recording: every model request goes here
    timeout: float = 30.0  # per agent reply / model request
    save: bool = True  # write a complete recording (repeats pick the one to keep)

    @property
    def overall(self) -> float:
        """Seconds the whole simulated conversation may take."""
        return self.timeout * (self.max_turns + 2)


class _ChatClient:
    """A tiny OpenAI chat-completions client (non-streaming), through the proxy."""

    def __init__(self, proxy: ModelProxy, role: str, model: str, timeout: float) -> None:
        self.proxy = proxy
        self.role = role
        self.model = model
        self.timeout = timeout

    async def complete(self, messages: list[dict[str, str]]) -> str:
        body = {"model": self.model, "messages": messages, "temperature": 0}
        url = self.proxy.base_url(self.role) + "/chat/completions"
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(url, json=body, headers={"Authorization": auth_header(self.model)}) as resp,
        ):
            text = await resp.text()
            if resp.status != 200:
                raise _ModelError(f"the {self.role} model request failed ({resp.status}): {text}")
        try:
            content = json.loads(text)["choices"][0]["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise _ModelError(f"the {self.role} model sent no chat completion: {text}") from None
        return str(content)


class _ModelError(Exception):
    pass


def conversation(sim: Recorder) -> list[tuple[str, str]]:
    """(speaker, text) for what the user said and the agent answered, in order."""
    out: list[tuple[str, str]] = []
    for e in sim.timeline:
        if e.kind == "user":
            out.append(("user", e.text))
        elif e.kind == "agent":
            text = str(e.detail.get("content", e.text)).strip()
            if text:
                out.append(("agent", text))
    return out


def user_messages(instructions: str, turns: list[tuple[str, str]]) -> list[dict[str, str]]:
    """The simulated user's chat: the agent speaks as ``user``, the simulated user as
    ``assistant``."""
    messages = [
        {
            "role": "system",
            "content": USER_PROMPT.format(instructions=instructions.strip(), marker=END_MARKER),
        }
    ]
    for who, text in turns:
        messages.append({"role": "assistant" if who == "user" else "user", "content": text})
    if len(messages) == 1:
        messages.append({"role": "user", "content": "(the call connects; you speak first)"})
    return messages


def judge_messages(expectations: str, sim: Recorder) -> list[dict[str, str]]:
    lines = []
    for e in sim.timeline:
        if e.kind == "user":
            lines.append(f"User: {e.text}")
        elif e.kind == "agent":
            lines.append(f"Agent: {e.detail.get('content', e.text)}")
        elif e.kind == "tool_call":
            lines.append(f"[agent called tool {e.text}]")
        elif e.kind == "tool_output":
            lines.append(f"[tool result {e.text}]")
        elif e.kind == "close":
            lines.append(f"[session closed: {e.text}]")
    transcript = "\n".join(lines) or "(nothing was said)"
    return [
        {"role": "system", "content": JUDGE_PROMPT.format(expectations=expectations.strip())},
        {"role": "user", "content": f"Transcript:\n{transcript}"},
    ]


@contextlib.contextmanager
def _pointed_at(proxy: ModelProxy) -> Iterator[None]:
    env = ScopedEnv()
    env.set("LIVEKIT_INFERENCE_URL", proxy.base_url("agent"))
    env.set("OPENAI_BASE_URL", proxy.base_url("agent-openai"))
    # clients refuse to start without credentials; replayed runs need none (and a
    # recording against a loopback server neither). Real recordings use the real ones.
    env.defaults(DUMMY_CREDENTIALS)
    try:
        yield
    finally:
        env.restore()


class _ProxiedProcess(ProcessDriver):
    """Process mode whose child's models are answered by the run's :class:`ModelProxy`
    (bound to the port a warm server imported the agent with: ``models_port``)."""

    proxy: ModelProxy | None = None

    async def serve_models(self) -> dict[str, str]:
        assert self.proxy is not None
        return self.proxy.child_env()

    async def stop_models(self) -> None:
        return None  # the run closes its proxy


class _Simulation:
    def __init__(
        self,
        scenario: Scenario,
        target: AgentTarget | Path,
        settings: SimulationSettings,
        process: RunSettings | None = None,
    ) -> None:
        self.scenario = scenario
        self.target = target
        self.settings = settings
        self.sim = AgentSim(timeout=settings.timeout, llm_model=settings.agent_model)
        self.driver: _ProxiedProcess | None = None
        if process is not None:
            assert isinstance(target, Path)
            self.driver = _ProxiedProcess(scenario, target, process)
        # the record: the in-process session's, or the one the agent process reports to
        self.rec: Recorder = self.driver.rec if self.driver is not None else self.sim
        self.proxy: ModelProxy | None = None
        self.verdict: Verdict | None = None
        self.finished = False  # the conversation and the judge ran to their end
        self.user_turns = 0

    # -- failures ----------------------------------------------------------------------
    def fail(self, reason: str, line: int | None, *, mark: Any = None) -> ScenarioFailure:
        failure = scenario_failure(self.rec, self.scenario, reason, line, mark=mark)
        return self.driver.annotate(failure) if self.driver is not None else failure

    def check_cassette(self) -> None:
        assert self.proxy is not None
        if self.proxy.misses:
            raise self.fail(
                f"{self.proxy.misses[0]}\n  the scenario, the agent or a model option changed "
                "since the cassette was recorded\n"
                f"  fix: re-record with `{self.settings.rerecord}`",
                self.scenario.line,
            )
        if self.proxy.errors:
            raise self.fail(f"recording failed: {self.proxy.errors[0]}", self.scenario.line)

    # -- the conversation ----------------------------------------------------------------
    async def agent_idle(self) -> None:
        """Wait until the agent is quiet (a greeting from ``on_enter`` is a real model call
        here, not instant): the user speaks only after it, so a recording and its replay
        see the same conversation."""
        if self.driver is not None:
            await self.driver.settle(spoken=0, close=False)
        elif self.sim.started:
            await self.sim.wait_quiet()

    async def user_says(self, text: str) -> None:
        """One user turn, until the agent answered it."""
        self.user_turns += 1
        if self.driver is None:
            try:
                await self.sim.run(text)
            except AgentSimAssertionError as e:
                raise self.fail(str(e).split("\n\n", 1)[0], self.scenario.line) from None
            return
        turn = Turn(index=self.user_turns - 1, line=self.scenario.line, user=text)
        await self.driver.play(turn)  # a StepFailed names the turn (a crash, a timeout)

    async def converse(self) -> None:
        rec, settings = self.rec, self.settings
        assert self.proxy is not None
        user = _ChatClient(self.proxy, "user", settings.user_model, settings.timeout)
        await self.agent_idle()
        self.check_cassette()
        for _ in range(settings.max_turns):
            if rec.closed:
                rec.note("note", "the agent ended the session")
                return
            try:
                said = await user.complete(
                    user_messages(self.scenario.instructions, conversation(rec))
                )
            except _ModelError as e:
                self.check_cassette()
                raise self.fail(str(e), self.scenario.line) from None
            ended = END_MARKER in said
            text = said.replace(END_MARKER, "").strip()
            if text:
                await self.user_says(text)
                await self.agent_idle()
                self.check_cassette()
            if ended:
                rec.note("note", f"the simulated user ended the call ({END_MARKER})")
                return
        rec.note("note", f"turn limit reached ({settings.max_turns} user turns)")

    async def judge(self) -> Verdict | None:
        expectations = self.scenario.agent_expectations.strip()
        if not expectations:
            return None
        assert self.proxy is not None
        client = _ChatClient(self.proxy, "judge", self.settings.judge_model, self.settings.timeout)
        try:
            answer = await client.complete(judge_messages(expectations, self.rec))
        except _ModelError as e:
            self.check_cassette()
            raise self.fail(str(e), self.scenario.line) from None
        verdict = parse_verdict(answer)
        self.rec.note("judge", verdict.describe(), failed=not verdict.passed)
        return verdict

    def simulator_verdict(self) -> tuple[bool, str]:
        """What ``on_simulation_end`` sees as the simulator's verdict: the judge's."""
        if self.verdict is None:
            return (True, "no agent_expectations to judge (pytest-agentsim)")
        return (self.verdict.passed, self.verdict.reason)

    def judge_failure(self, verdict: Verdict) -> ScenarioFailure:
        return self.fail(
            f"the judge failed the conversation: {verdict.reason}\n"
            f"  agent_expectations: {self.scenario.agent_expectations.strip()}",
            self.scenario.line,
            mark=next((e for e in reversed(self.rec.timeline) if e.kind == "judge"), None),
        )

    def kept_llm_note(self) -> str:
        assert self.proxy is not None
        cassette = self.proxy.cassette
        if cassette.replay and cassette.record:
            return "replayed from the cassette, new requests recorded"
        return "recorded" if cassette.record else "replayed from the cassette"

    # -- agent mode ----------------------------------------------------------------------
    async def play_agent(self) -> None:
        assert isinstance(self.target, AgentTarget)
        agent, session_kwargs = self.target.build(self.scenario)
        session_kwargs.setdefault("llm", inference.LLM(model=self.settings.agent_model))
        await self.sim.start(agent, mode="text", **session_kwargs)
        await self.converse()
        self.verdict = await self.judge()
        self.finished = True
        if self.verdict is not None and not self.verdict.passed:
            raise self.judge_failure(self.verdict)

    # -- entrypoint mode -----------------------------------------------------------------
    async def play_entrypoint(self) -> None:
        assert isinstance(self.target, AgentTarget)
        server, description = self.target.obj, self.target.description
        try:
            async with FakeJob(
                server,
                self.scenario,
                self.sim,
                mode="text",
                description=description,
                substitute_llm=False,  # the entrypoint's LLM is real, recorded/replayed
                kept_llm_note=self.kept_llm_note(),
            ) as job:
                await job.start()
                await job.in_session_context(self.converse())
                job.check_entrypoint()
                self.verdict = await job.in_session_context(self.judge())
                self.finished = True
                await self.graded(job.in_session_context(job.finalize(self.simulator_verdict())))
        except StepFailed as e:
            raise self.fail(e.reason, e.line or self.scenario.line, mark=e.entry) from None

    async def graded(self, finalize: Coroutine[Any, Any, None]) -> None:
        """``on_simulation_end`` with the judge's verdict; a judge's fail comes first."""
        try:
            await finalize
        except StepFailed as e:
            if self.verdict is not None and not self.verdict.passed:
                raise self.judge_failure(self.verdict) from None
            raise self.fail(e.reason, e.line or self.scenario.line, mark=e.entry) from None
        if self.verdict is not None and not self.verdict.passed:
            raise self.judge_failure(self.verdict)

    # -- process mode --------------------------------------------------------------------
    async def play_process(self) -> None:
        """The agent file in its own process, over the session protocol, as the cloud
        simulator runs it: the user's turns are ``run(user_input)``, the judge's verdict
        goes to ``on_simulation_end`` through ``finalize_simulation``."""
        driver = self.driver
        assert driver is not None
        try:
            await driver.start()
            await driver.greeting()
            await self.converse()
            self.verdict = await self.judge()
            self.finished = True
            await self.graded(driver.end.finalize(driver.remote, self.simulator_verdict()))
        except StepFailed as e:
            raise self.fail(e.reason, e.line or self.scenario.line, mark=e.entry) from None


async def run_simulation(
    scenario: Scenario,
    target: AgentTarget | Path,
    settings: SimulationSettings,
    cassette: Cassette,
    *,
    process: RunSettings | None = None,
) -> tuple[ScenarioRun, Verdict | None]:
    """Run one simulated scenario, replaying and/or recording ``cassette``
    (:func:`~.recording.open_cassette`); a recording is saved once the run got to its end
    (a judge's ``fail`` included: the replay then fails the same way). ``process``: run
    the agent file ``target`` in its own process with these settings (process mode).

    Raises :class:`~.runner.ScenarioFailure` (a judge fail, a cassette miss, a model error,
    ``on_simulation_end`` vetoing).
    """
    sim = _Simulation(scenario, target, settings, process)
    proxy = ModelProxy(
        cassette,
        upstreams=upstreams(
            model_base_url=settings.model_base_url,
            user_model=settings.user_model,
            judge_model=settings.judge_model,
        ),
        port=sim.driver.models_port if sim.driver is not None else 0,
    )
    sim.proxy = proxy
    if sim.driver is not None:
        sim.driver.proxy = proxy
    overall = settings.overall
    failed = True
    await proxy.start()
    try:
        with _pointed_at(proxy), no_backoff():
            play = (
                sim.play_process()
                if sim.driver is not None
                else sim.play_entrypoint()
                if isinstance(target, AgentTarget) and target.kind == "server"
                else sim.play_agent()
            )
            try:
                await asyncio.wait_for(play, timeout=overall)
            except asyncio.TimeoutError:
                raise sim.fail(
                    f"the simulated conversation did not finish within {overall:g}s",
                    scenario.line,
                ) from None
            failed = False
    finally:
        if sim.driver is not None:
            await sim.driver.aclose(failed=failed)
        await sim.sim.aclose(timeout=0.2 if failed else 5.0)
        await proxy.aclose()
        cassette.complete = sim.finished  # else it is partial: the old cassette stays
        if sim.finished and settings.save:
            save_cassette(cassette)
    unused = cassette.unused() if cassette.replay and sim.finished else []
    if unused:
        sim.rec.note("note", f"{len(unused)} recorded model request(s) were not replayed")
    driver = sim.driver
    run = ScenarioRun(rec=sim.rec, timeline=sim.rec.timeline)
    if driver is not None:
        run.blocked, run.figures = driver.blocked_hosts(), driver.figures()
    return run, sim.verdict
