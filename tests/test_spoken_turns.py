"""Spoken user turns (`mode: audio`): the caller's words reach the session as speech through
a fake VAD and STT on the virtual clock, and livekit's own turn handling commits them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from .test_voice_time import AGENT  # a Desk agent, and a server whose session has an STT

Write = Callable[[str, str], Path]


SCENARIOS = """
name: Spoken
agentsim:
  agent: AGENT
  mode: audio
  timing: {words_per_minute: 60, stt_delay: 0.3, llm_ttft: 0.4}
scenarios:
  - label: slow speaker
    agentsim:
      turns:
        - user: one two three four five
          llm: [Hello]
          expect: [{message: Hello}]
  - label: deaf agent
    agentsim:
      faults:
        - {fault: server_error, resource: stt, times: always}
      turns:
        - user: can you hear me
          expect: [{message: anything}]
"""


@pytest.mark.parametrize("agent", ["agent:Desk", "agent.py"], ids=["Agent", "entrypoint"])
def test_the_caller_speaks_and_livekit_commits_the_turn(
    pytester: pytest.Pytester, write: Write, agent: str
) -> None:
    write("agent.py", AGENT)
    write("scenarios.yaml", SCENARIOS.replace("AGENT", agent))
    result = pytester.runpytest(
        "--agentsim", "-p", "no:cacheprovider", "--agentsim-metrics", "m.json"
    )
    result.assert_outcomes(passed=1, failed=1)
    # an STT that fails: livekit never hears the words, the agent never answers
    result.stdout.fnmatch_lines(
        [
            "*turn 1: expected event 1 (message role=assistant contains 'anything')*",
            "*livekit did not take the user's turn: no final transcript reached it*",
        ]
    )
    jobs = {j["label"]: j for j in json.loads((pytester.path / "m.json").read_text())["jobs"]}
    user, reply = jobs["slow speaker"]["metrics"]["turns"]
    # five words at 60 a minute: the caller speaks from 0 to 5 s; livekit starts the LLM
    # at the final transcript (0.3 s later) and speaks at 0.7 s, after it committed the
    # turn (0.55 s: its VAD's silence)
    assert (user.get("startMs", 0), user["endMs"]) == (0, 5000)
    assert reply["e2eLatencyMs"] == 700
    assert reply["startMs"] == 5700


def test_spoken_turns_are_the_same_every_run(pytester: pytest.Pytester, write: Write) -> None:
    write("agent.py", AGENT)
    write("scenarios.yaml", SCENARIOS.replace("AGENT", "agent:Desk"))
    texts = []
    for n in range(3):
        out = f"m{n}.json"
        pytester.runpytest("--agentsim", "-p", "no:cacheprovider", "--agentsim-metrics", out)
        texts.append((pytester.path / out).read_text())
    assert texts[0] == texts[1] == texts[2]


TOUR = "The old town was founded in the twelfth century, and its walls still stand on three sides."

NOISES = """
name: Noise
agentsim: {agent: "agent:Desk", mode: audio, session: {aec_warmup_duration: 0}}
scenarios:
  - label: a cough is no interruption
    agentsim:
      turns:
        - user: Tell me about the old town.
          llm: ["TOUR"]
          # livekit pauses the agent for the cough, hears no words, and resumes it
          expect: [{message: {equals: "TOUR", interrupted: false}}]
          spoken: [{equals: "TOUR", interrupted: false}]
        - noise: 0.8
          interrupt: 1.5
          expect: []
  - label: a short sound goes unnoticed
    agentsim:
      turns:
        - user: Tell me about the old town.
          llm: ["TOUR"]
          expect: [{message: {equals: "TOUR", interrupted: false}}]
        - noise: 0.3
          interrupt: 1.5
          expect: []
""".replace("TOUR", TOUR)


def test_a_sound_with_no_words_is_a_false_interruption(
    pytester: pytest.Pytester, write: Write
) -> None:
    write("agent.py", AGENT)
    write("scenarios.yaml", NOISES)
    result = pytester.runpytest(
        "--agentsim", "-p", "no:cacheprovider", "--agentsim-metrics", "m.json"
    )
    result.assert_outcomes(passed=2)
    jobs = {j["label"]: j for j in json.loads((pytester.path / "m.json").read_text())["jobs"]}
    conversation = {label: job["metrics"]["conversation"] for label, job in jobs.items()}
    # 0.8 s is over min_interruption_duration (0.5 s): livekit pauses, then resumes
    assert conversation["a cough is no interruption"].get("falseInterruptionCount") == 1
    assert conversation["a short sound goes unnoticed"].get("falseInterruptionCount", 0) == 0


def test_noise_needs_a_session_that_hears(pytester: pytest.Pytester, write: Write) -> None:
    write("agent.py", AGENT)
    write(
        "scenarios.yaml",
        'name: Text\nagentsim: {agent: "agent:Desk"}\nscenarios:\n  - label: x\n'
        "    agentsim:\n      turns:\n        - noise: 1\n",
    )
    result = pytester.runpytest("--agentsim", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*turn 1: `noise` is heard by the session's VAD and STT, and this session hears no*"]
    )
