"""Unit tests for the loader and the agentsim script parser."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pytest_agentsim import ScenarioError, faults, load_scenario_file
from pytest_agentsim.answers import LLMAnswer

from .conftest import DATA


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    p = tmp_path / "scenarios.yaml"
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return load_scenario_file(p)


def test_real_files_decode_and_build_protos() -> None:
    total = 0
    for f in sorted((DATA / "real-scenarios").glob("*.yaml")):
        loaded = load_scenario_file(f)
        for s in loaded.scenarios:
            proto = s.to_proto()
            assert proto.label == s.label and proto.label
            assert proto.instructions == s.instructions
            assert dict(proto.tags) == s.tags
            assert proto.userdata == s.userdata_json
            if s.userdata_json:
                assert json.loads(proto.userdata) == s.userdata
            assert not s.scripted
        total += len(loaded.scenarios)
    assert total == 120


def test_frontdesk_userdata_is_cli_json() -> None:
    loaded = load_scenario_file(DATA / "real-scenarios" / "frontdesk.scenarios.yaml")
    first = loaded.scenarios[0]
    assert first.tags == {"feature": "booking"}
    # Go's encoding/json: sorted keys, no spaces
    assert first.userdata_json.startswith('{"available_slots":["2026-06-15T10:00:00",')
    nulls = [s for s in loaded.scenarios if '"expected_booking":null' in s.userdata_json]
    assert nulls, "null must be kept (it means: must not book)"


def test_hotel_tags_keep_literal_text() -> None:
    loaded = load_scenario_file(DATA / "real-scenarios" / "hotel_receptionist.scenarios.yaml")
    assert loaded.scenarios[0].tags["difficulty"] == "1"
    assert loaded.name == "LiveKit Hotel — remote front office"


def test_tags_literal_source_text(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        """
        scenarios:
          - label: a
            tags: {n: 1, b: true, nul: ~, f: 1.50, q: "x"}
        """,
    ).scenarios[0]
    assert s.tags == {"n": "1", "b": "true", "nul": "", "f": "1.50", "q": "x"}


def test_file_defaults_and_scenario_overrides(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        """
        agentsim: {agent: "a:B", mode: audio, timeout: 5, faults: [{fault: timeout, on_call: 2}]}
        scenarios:
          - label: one
            agentsim:
              mode: text
              faults: [{fault: server_error, status: 502, resource: tts}]
              turns: [{user: hi, llm: [hello]}]
          - label: two
        """,
    )
    one, two = loaded.scenarios
    assert one.config.mode == "text" and one.config.timeout == 5 and one.config.agent == "a:B"
    assert [f.fault.kind for f in one.config.faults] == ["timeout", "server_error"]
    assert one.config.faults[1].resource == "tts" and one.config.faults[1].fault.status == 502
    assert one.config.faults[0].fault.on_call == 2
    assert one.config.turns is not None and one.config.turns[0].llm[0].answer == LLMAnswer(
        text="hello"
    )
    assert two.config.mode == "audio" and two.config.turns is None


def test_fault_specs_and_schedules(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        """
        scenarios:
          - label: a
            agentsim:
              turns:
                - user: hi
                  llm:
                    - fault: quota_exceeded
                    - {fault: quota_exceeded, then: ok}
                    - {fault: rate_limited, times: 3}
                    - {fault: disconnect_mid_stream, after_chunks: 2}
                    - {fault: server_error, status: 500, times: always}
        """,
    ).scenarios[0]
    assert s.config.turns is not None
    steps = [st.fault for st in s.config.turns[0].llm]
    assert all(f is not None for f in steps)
    q, q_ok, rl, dc, se = steps  # type: ignore[misc]
    assert q.times is None and q.status == 429 and q.body["type"] == "inference_quota_exceeded"
    assert q_ok.times == 1
    assert rl.times == 3 and rl.kind == "rate_limited"
    assert dc.after_chunks == 2
    assert se.status == 500 and se.times is None


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("{fault: quota_exceded}", "did you mean 'quota_exceeded'?"),
        ("{fault: server_error, status: 404}", "server_error status must be 5xx"),
        ("{fault: timeout, tims: 2}", "did you mean 'times'?"),
        ("{fault: timeout, times: 0}", "times must be a positive whole number"),
        ("{fault: quota_exceeded, category: Nope}", "unknown quota category"),
        ("{say: hi, tool_cals: []}", "did you mean 'tool_calls'?"),
        ("{tool_calls: [{nam: x}]}", "did you mean 'name'?"),
        ("{}", "needs `say`, `tool_calls` or `fault`"),
    ],
)
def test_bad_llm_steps(tmp_path: Path, snippet: str, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load(
            tmp_path,
            f"""
            scenarios:
              - label: a
                agentsim:
                  turns:
                    - user: hi
                      llm:
                        - {snippet}
            """,
        )
    assert message in str(info.value)
    assert info.value.line == 7
    assert str(info.value).startswith(f"{tmp_path / 'scenarios.yaml'}:7: ")


def test_turn_needs_exactly_one_starter(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="exactly one of user, say, generate_reply"):
        load(tmp_path, "scenarios:\n  - label: a\n    agentsim:\n      turns: [{llm: [x]}]\n")
    with pytest.raises(ScenarioError, match=r"\(it has user, say\)"):
        load(
            tmp_path, "scenarios:\n  - label: a\n    agentsim:\n      turns: [{user: a, say: b}]\n"
        )


def test_turns_only_in_scenarios(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="belongs to a scenario"):
        load(tmp_path, "agentsim: {turns: []}\nscenarios:\n  - label: a\n")


def test_expectation_shapes(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        """
        scenarios:
          - label: a
            agentsim:
              turns:
                - user: hi
                  expect:
                    - message: hello
                    - function_call: lookup
                    - function_call_output: {regex: "^ok", is_error: false}
                    - agent_handoff: Support
                  spoken: [hello, {equals: "Hi.", source: tts}]
                  closed: {reason: user_initiated}
        """,
    ).scenarios[0]
    assert s.config.turns is not None
    t = s.config.turns[0]
    assert t.expect is not None
    assert [e.type for e in t.expect] == [
        "message",
        "function_call",
        "function_call_output",
        "agent_handoff",
    ]
    assert t.expect[0].text is not None and t.expect[0].text.matches("well HELLO there")
    assert t.expect[2].text is not None and t.expect[2].text.matches("ok!")
    assert not t.expect[2].text.matches("not ok")
    assert t.spoken is not None and t.spoken[1].source == "tts"
    assert t.closed is not None and t.closed.reason == "user_initiated"


def test_invalid_regex_and_judge(tmp_path: Path) -> None:
    base = "scenarios:\n  - label: a\n    agentsim:\n      turns: [{user: hi, expect: [%s]}]\n"
    with pytest.raises(ScenarioError, match="invalid regex"):
        load(tmp_path, base % "{message: {regex: '('}}")
    judged = load(tmp_path, base % "{message: {judge: 'greets'}}")
    expect = judged.scenarios[0].config.turns[0].expect
    assert expect is not None and expect[0].text is not None
    assert expect[0].text.kind == "judge" and expect[0].text.value == "greets"
    with pytest.raises(ScenarioError, match=r"unknown key .judge. in function_call_output"):
        load(tmp_path, base % "{function_call_output: {judge: 'greets'}}")


def test_anchors_and_merges_in_agentsim(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        """
        x-common: &common {agent: "a:B", mode: audio}
        scenarios:
          - label: a
            agentsim:
              <<: *common
              mode: text
              turns: [{user: hi}]
        """,
    ).scenarios[0]
    assert s.config.agent == "a:B" and s.config.mode == "text"


def test_python_fault_api() -> None:
    q = faults.quota_exceeded()
    assert q.status == 429
    assert (
        q.headers["X-LiveKit-Inference-Credits-Used"]
        == q.headers["X-LiveKit-Inference-Credits-Limit"]
    )
    assert set(q.body or {}) == {
        "type",
        "error",
        "quota_type",
        "category",
        "hint",
        "remaining_limit",
    }
    r = faults.rate_limited()
    assert r.kind == "rate_limited" and r.times == 1 and not r.terminal
    assert q.terminal
    script: faults.CallScript[str] = faults.CallScript()
    script.add("a")
    script.add_fault(faults.server_error().repeat(2))
    script.add("b")
    script.add_fault(faults.timeout().on(5))
    got = [script.next() for _ in range(5)]
    assert got[0] == "a" and got[3] == "b"
    assert [g.kind for g in got if isinstance(g, faults.Fault)] == [
        "server_error",
        "server_error",
        "timeout",
    ]
    assert script.unused() == []
    with pytest.raises(faults.ScriptExhausted):
        script.next()
