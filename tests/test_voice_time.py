"""Voice time on the virtual clock: provider delays (`timing:`, `ttft:`), the user's
`pause:` and latency budgets (`within:`), measured the same on every run and costing no
wall time."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

Write = Callable[[str, str], Path]

# A spoken "hi" (0.4 s at 150 words a minute): the final transcript comes 0.2 s after it
# and livekit starts the reply's LLM then (preemptive generation); it commits the turn
# 0.55 s after the speech (its VAD's silence outlasts the 0.5 s endpointing delay) and the
# TTS starts once both are done. With the model's 0.6 s and the TTS's 0.25 s, the first
# audio comes this long after the user stopped (the same on 1.6.0, 1.8.9 and 2.0.0b1).
SPOKEN_LATENCY = 1.05

AGENT = '''
import asyncio

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, RunContext
from livekit.agents import function_tool, inference


class Desk(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a front desk.")

    @function_tool
    async def lookup(self, context: RunContext) -> str:
        """A slow back-office lookup."""
        await asyncio.sleep(20)
        return "found it"


server = AgentServer()


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    session = AgentSession(
        stt=inference.STT("deepgram/nova-3"),
        llm=inference.LLM("openai/gpt-4.1-mini"),
        tts=inference.TTS("cartesia/sonic-2"),
    )
    await session.start(agent=Desk(), room=ctx.room)
'''

SCENARIOS = """
name: Budgets
agentsim:
  agent: {agent}
  timing: {{llm_ttft: 0.6, tts_ttfb: 0.25}}
scenarios:
  - label: text
    agentsim:
      turns:
        - user: hi
          within: 0.6
          llm: [Hello]
        - user: and now?
          within: 0.59
          llm: [Still here]
  - label: own ttft
    agentsim:
      turns:
        - user: hi
          within: 1
          llm: [{{say: Hello, ttft: 1.5}}]
  - label: audio adds the tts
    agentsim:
      mode: audio
      turns:
        - user: hi
          within: 1.3
          llm: [Hello]
        - user: again
          within: 1
          llm: [Hello again]
  - label: slow tool
    agentsim:
      turns:
        - user: find it
          pause: 120
          within: 5
          llm:
            - tool_calls: [{{name: lookup}}]
            - {{say: Found it., ttft: 0.2}}
  - label: never speaks
    agentsim:
      turns:
        - user: hi
          within: 1
          llm: [{{tool_calls: [{{name: lookup}}]}}, {{say: ''}}]
"""


def _failures(result: pytest.RunResult) -> list[str]:
    """The failure reasons of a run, as its report states them (any pytest version)."""
    return sorted(line for line in result.outlines if re.match(r"^turn \d+: the agent", line))


@pytest.mark.parametrize("agent", ["agent:Desk", "agent.py"], ids=["Agent", "entrypoint"])
def test_latency_budgets_on_the_virtual_clock(
    pytester: pytest.Pytester, write: Write, agent: str
) -> None:
    write("agent.py", AGENT)
    write("scenarios.yaml", SCENARIOS.format(agent=agent))
    start = time.perf_counter()
    result = pytester.runpytest("--agentsim", "-rA", "-p", "no:cacheprovider")
    elapsed = time.perf_counter() - start
    result.assert_outcomes(passed=0, failed=5)
    text = result.stdout.str()
    # text mode: the first text after the model's 0.6 s; the second turn's budget is 0.59
    result.stdout.fnmatch_lines_random(
        [
            "*turn 2: the agent started speaking 0.6 s after the user's turn, over its "
            "latency budget (within: 0.59 s)*",
            "*turn 1: the agent started speaking 1.5 s after the user's turn, over its "
            "latency budget (within: 1 s)*",
            # audio: the user speaks; livekit starts the reply at the final transcript
            # (0.2 s after the speech: preemptive generation), then the model's 0.6 s and
            # the TTS's 0.25 s
            f"*turn 2: the agent started speaking {SPOKEN_LATENCY:g} s after the user's turn, "
            "over its latency budget (within: 1 s)*",
            # 0.6 to the tool call + 20 s of lookup + 0.2 to the answer
            "*turn 1: the agent started speaking 20.8 s after the user's turn, over its "
            "latency budget (within: 5 s)*",
            "*turn 1: the agent never started speaking (within: 1 s)*",
        ]
    )
    # the first turns passed their budgets (the failures are all in later turns or alone)
    assert "the agent started speaking after 0.6 s" in text
    assert f"the agent started speaking after {SPOKEN_LATENCY:g} s" in text
    assert "the user waits 120 s" in text
    # two minutes of pause and 20 s of lookup cost no wall time
    assert elapsed < 60, elapsed


def test_the_same_figures_on_every_run(pytester: pytest.Pytester, write: Write) -> None:
    write("agent.py", AGENT)
    write("scenarios.yaml", SCENARIOS.format(agent="agent:Desk"))
    runs = [_failures(pytester.runpytest("--agentsim", "-p", "no:cacheprovider")) for _ in range(3)]
    assert len(runs[0]) == 5
    assert runs[0] == runs[1] == runs[2]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            "{turns: [{say: hi, within: 1}]}",
            "*`within` is the latency budget of the reply to a user turn; turn 1 has none",
        ),
        ("{turns: [{user: hi, pause: -1}]}", "*pause must be a positive number of seconds*"),
        ("{turns: [{user: hi, llm: [{say: x, ttft: 0}]}]}", "*ttft must be a positive number*"),
        (
            "{timing: {words_per_minute: 0}, turns: [{user: hi}]}",
            "*timing.words_per_minute must be a positive number up to 600, got the scalar '0'*",
        ),
        (
            "{timing: {llm_ttf: 1}, turns: [{user: hi}]}",
            "*unknown key 'llm_ttf' in agentsim.timing",
        ),
    ],
)
def test_bad_timing_is_a_located_error(
    pytester: pytest.Pytester, write: Write, block: str, message: str
) -> None:
    write("agent.py", AGENT)
    write("scenarios.yaml", f"name: Bad\nscenarios:\n  - label: x\n    agentsim: {block}\n")
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["scenarios.yaml:4: " + message.lstrip("*")])
    assert result.ret != 0


@pytest.mark.parametrize(
    ("step", "key", "line"),
    [
        ("within: 1\n                  llm: [Hello]", "within", 7),
        ("llm: [Hello]\n                  tts: [{ttfb: 1}]", "ttfb", 9),
    ],
)
def test_process_mode_says_budgets_need_the_virtual_clock(
    pytester: pytest.Pytester, write: Write, step: str, key: str, line: int
) -> None:
    write("agent.py", AGENT)
    write(
        "scenarios.yaml",
        f"""
        name: Process
        agentsim: {{agent: agent.py, process: true, mode: audio}}
        scenarios:
          - label: x
            agentsim:
              turns:
                - user: hi
                  {step}
        """,
    )
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"scenarios.yaml:{line}: `{key}` is measured on the virtual clock, and in process "
            "mode the agent runs on the wall clock in its own process",
            "  fix: run this scenario in entrypoint mode (without `process: true`)*",
        ]
    )


# -- barge-in: `interrupt:` ------------------------------------------------------------------

BARGE_AGENT = """
from livekit.agents import Agent, AgentServer, AgentSession, JobContext, inference


class Guide(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a chatty tour guide.")


class Notice(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="Read the notice.", allow_interruptions=False)


class Greeter(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="Greet at length.")

    async def on_enter(self) -> None:
        self.session.say("Welcome to the museum, where every hall tells a story of its own.")


server = AgentServer()


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    session = AgentSession(
        stt=inference.STT("deepgram/nova-3"),
        llm=inference.LLM("openai/gpt-4.1-mini"),
        tts=inference.TTS("cartesia/sonic-2"),
        aec_warmup_duration=0,  # hear barge-ins from the agent's first word
    )
    await session.start(agent=Guide(), room=ctx.room)
"""

TOUR = "The old town was founded in the twelfth century, and its walls still stand on three sides."

BARGE_SCENARIOS = """
name: Barge-in
agentsim: {agent: AGENT, mode: audio, session: {aec_warmup_duration: 0}}
scenarios:
  - label: cut short
    agentsim:
      turns:
        - user: Tell me about the old town.
          llm: ["TOUR"]
          expect:
            # livekit keeps what the user heard: the user speaks 1.5 s into the reply and
            # livekit stops it once it heard min_interruption_duration (0.5 s) of speech,
            # about 2 s of speech at 0.05 s a character (livekit 1.6 stops it at the first
            # interim transcript, 0.4 s into the user's words: "... founded in the")
            - message: {regex: "^The old town was founded in the( twelfth)?$", interrupted: true}
          spoken:
            - {regex: "^The old town was founded in the( twelfth)?$", interrupted: true}
        - user: Sorry, where can I eat?
          interrupt: 1.5
          llm: ["Try the market hall."]
          expect:
            - message: {contains: market hall, interrupted: false}
          spoken:
            - {contains: market hall, interrupted: false}
  - label: too late
    agentsim:
      turns:
        - user: Hi
          llm: ["Hello!"]
        - user: Hey
          interrupt: 5
          llm: ["Yes?"]
""".replace("TOUR", TOUR)


@pytest.mark.parametrize("agent", ["agent:Guide", "agent.py"], ids=["Agent", "entrypoint"])
def test_the_user_barges_in_and_hears_only_what_played(
    pytester: pytest.Pytester, write: Write, agent: str
) -> None:
    write("agent.py", BARGE_AGENT)
    write("scenarios.yaml", BARGE_SCENARIOS.replace("AGENT", agent))
    result = pytester.runpytest("--agentsim", "-rA", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            "PASSED scenarios.yaml::cut short",
            "*turn 2: the user was to barge in 5 s into the agent's reply, but it had "
            "finished speaking after 0.3 s*",
            "*at scenarios.yaml:29*",
        ]
    )


def test_speech_that_disallows_interruptions_plays_on(
    pytester: pytest.Pytester, write: Write
) -> None:
    write("agent.py", BARGE_AGENT)
    write(
        "scenarios.yaml",
        """
        name: Notice
        agentsim: {agent: agent:Notice, mode: audio}
        scenarios:
          - label: plays on
            agentsim:
              turns:
                - user: Read it.
                  llm: ["This call is recorded and processed under our privacy policy."]
                  spoken:
                    - {contains: privacy policy, interrupted: false}
                - user: Okay okay.
                  interrupt: 1
                  expect: []  # livekit drops what was said over it: no reply
                - user: Okay, thanks.
                  llm: ["Thank you for listening."]
                  expect: [{message: Thank you}]
          - label: expects an answer
            agentsim:
              turns:
                - user: Read it.
                  llm: ["This call is recorded and processed under our privacy policy."]
                - user: Okay okay.
                  interrupt: 1
                  llm: ["Thank you for listening."]
        """,
    )
    # heard in full although the user barged in 1 s into its 3 s; the words said over it
    # are dropped ("skipping reply to user input, current speech generation cannot be
    # interrupted"), as livekit does live
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*scripted model answers were never used*",
            "*the agent's speech does not allow interruptions: it plays on*",
            "*livekit did not take the user's turn: it was spoken over speech that does not "
            "allow interruptions*",
        ]
    )


def test_the_user_barges_into_the_greeting(pytester: pytest.Pytester, write: Write) -> None:
    write("agent.py", BARGE_AGENT)
    write(
        "scenarios.yaml",
        """
        name: Greeting
        agentsim: {agent: agent:Greeter, mode: audio}
        scenarios:
          - label: cut short
            agentsim:
              greeting:
                # livekit hears no barge-in in the first 3 s of the agent's first speech
                # (its echo-cancellation warm-up, aec_warmup_duration): the greeting is
                # cut at 3 s (0.05 s a character), not 1.2 s in
                spoken:
                  - equals: "Welcome to the museum, where every hall tells a story of"
                    interrupted: true
              turns:
                - user: Where is the cafe?
                  interrupt: 1.2
                  llm: ["Downstairs."]
                  spoken: [{equals: Downstairs., interrupted: false}]
        """,
    )
    pytester.runpytest("--agentsim", "-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("turns", "message"),
    [
        (
            "[{user: hi, interrupt: 1}], mode: audio",
            "*turn 1: the user was to barge in 1 s into the agent's reply, but the agent did "
            "not speak in the greeting*",
        ),
        (
            "[{user: hi}, {user: wait, interrupt: 1, pause: 2}]",
            "scenarios.yaml:*: a turn that interrupts the agent cannot also wait for it to finish",
        ),
        (
            "[{user: hi, llm: [Hello]}, {user: stop, interrupt: 0.1, llm: [Ok]}]",
            "*turn 2: `interrupt` needs the agent's speech to take time, which it does only "
            "in `mode: audio`*",
        ),
    ],
)
def test_misplaced_interrupts_are_located_errors(
    pytester: pytest.Pytester, write: Write, turns: str, message: str
) -> None:
    write("agent.py", BARGE_AGENT)
    write(
        "scenarios.yaml",
        f"name: Bad\nscenarios:\n  - label: x\n    agentsim: {{agent: agent:Guide, "
        f"turns: {turns}}}\n",
    )
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([message])
    assert result.ret != 0


# -- metrics: JobMetrics per scenario, the run as a SimulationRun -----------------------------


def test_metrics_are_the_cloud_simulators_shape_and_the_same_every_run(
    pytester: pytest.Pytester, write: Write
) -> None:
    from google.protobuf.json_format import ParseDict
    from livekit.protocol.agent_simulation import SimulationRun

    write("agent.py", AGENT)
    write("scenarios.yaml", SCENARIOS.format(agent="agent:Desk"))
    serial = pytester.runpytest(
        "--agentsim",
        "-p",
        "no:cacheprovider",
        "--agentsim-metrics",
        "serial.json",
        "--junitxml",
        "junit.xml",
    )
    serial.assert_outcomes(failed=5)
    parallel = pytester.runpytest(
        "--agentsim", "-p", "no:cacheprovider", "--agentsim-metrics", "parallel.json", "-n", "2"
    )
    parallel.assert_outcomes(failed=5)
    text = (pytester.path / "serial.json").read_text()
    assert text == (pytester.path / "parallel.json").read_text()
    run = ParseDict(json.loads(text), SimulationRun())
    assert (run.job_count, run.failed_count) == (5, 5)
    jobs = {job.label: job for job in run.jobs}
    text_turns = jobs["text"].metrics
    assert [t.e2e_latency_ms for t in text_turns.turns if t.role == 3] == [600, 600]
    assert text_turns.llm.ttft_ms == 600
    audio = jobs["audio adds the tts"].metrics.conversation
    heard = round(SPOKEN_LATENCY * 1000)
    assert (audio.heard_e2e_latency_p50_ms, audio.heard_e2e_latency_p99_ms) == (heard, heard)
    slow = jobs["slow tool"].metrics
    assert slow.conversation.awkward_silence_count == 1
    assert slow.turns[0].start_ms == 120_000  # after the user's two-minute pause
    assert jobs["never speaks"].metrics.conversation.unanswered_turns == 1
    assert "STATUS_FAILED" in text and "over its latency budget" in text
    junit = (pytester.path / "junit.xml").read_text()
    assert 'name="metrics.unansweredTurns" value="1"' in junit
    assert f'name="metrics.heardE2eLatencyP95Ms" value="{heard}"' in junit


SPEECH_STEPS = """
name: Own speech timing
agentsim: {agent: "agent:Desk", mode: audio, timing: {tts_ttfb: 0.25}}
scenarios:
  - label: quick voice
    agentsim:
      turns:
        - user: hi
          within: 1.2
          llm: [Hello]
          tts: [{ttfb: 0.1}]
        - user: again
          within: 1.35
          llm: [Hello again]
  - label: slow voice
    agentsim:
      turns:
        - user: hi
          within: 0.5
          llm: [Hello]
          tts: [{ttfb: 1.2}]
  - label: long answer
    agentsim:
      turns:
        - user: tell me
          llm: [Here it is.]
          tts: [{duration: 4}]
        - user: wait
          interrupt: 5
          llm: [Yes?]
"""


def test_a_tts_step_has_its_own_first_byte_and_duration(
    pytester: pytest.Pytester, write: Write
) -> None:
    write("agent.py", AGENT)
    write("scenarios.yaml", SPEECH_STEPS)
    result = pytester.runpytest(
        "--agentsim", "-rA", "-p", "no:cacheprovider", "--agentsim-metrics", "m.json"
    )
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines_random(
        [
            "*turn 1: the agent started speaking * s after the user's turn, over its "
            "latency budget (within: 0.5 s)*",
            "*but it had finished speaking after 4 s*",
        ]
    )
    jobs = {j["label"]: j for j in json.loads((pytester.path / "m.json").read_text())["jobs"]}

    def replies(label: str) -> list[dict[str, int]]:
        turns = jobs[label]["metrics"]["turns"]
        return [t for t in turns if t["role"] == "ASSISTANT"]

    quick, slow = replies("quick voice"), replies("slow voice")
    # the first synthesis's own 0.1 s, then the scenario's 0.25 s; 1.2 s for the slow one
    assert [t["ttsTtfbMs"] for t in quick] == [100, 250]
    assert slow[0]["ttsTtfbMs"] == 1200
    # what the TTS adds to the same spoken turn's latency, on every livekit version
    assert quick[1]["e2eLatencyMs"] - quick[0]["e2eLatencyMs"] == 150
    assert slow[0]["e2eLatencyMs"] - quick[0]["e2eLatencyMs"] == 1100


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("{ttfb: 1, say: x}", "*unknown key 'say' in tts step*"),
        ("{times: 2}", "*a tts step needs `ttfb`, `duration` or `fault`*"),
        ("{duration: -1}", "*duration must be a positive number of seconds*"),
    ],
)
def test_bad_tts_steps_are_located_errors(
    pytester: pytest.Pytester, write: Write, step: str, message: str
) -> None:
    write("agent.py", AGENT)
    write(
        "scenarios.yaml",
        "name: Bad\nscenarios:\n  - label: x\n    agentsim:\n      mode: audio\n"
        f"      turns:\n        - user: hi\n          tts: [{step}]\n",
    )
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["scenarios.yaml:8: " + message.lstrip("*")])
    assert result.ret != 0
