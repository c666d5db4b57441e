"""Unit tests for pytest_agentsim.observe.history (no pytest plugin machinery involved)."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pytest
from livekit.agents import llm

from pytest_agentsim.observe.history import chat_context_items, normalize_history, normalize_items


class Run(NamedTuple):
    """The values a real run mints afresh; two runs must normalize identically."""

    ids: list[str]
    call_ids: tuple[str, str]
    group: str
    t0: float


def _conversation(
    run: Run,
    *,
    arguments: tuple[str, str] = ('{"date": "2026-06-15"}', '{"room":"A", "size": 2}'),
    reply: str = "We have 09:00 and 14:30.",
) -> llm.ChatContext:
    """A booking conversation built through livekit's own models."""
    gen, out1, out2, user, sys_dyn, assistant, handoff, config = run.ids
    call_ids, group, t0 = run.call_ids, run.group, run.t0
    ctx = llm.ChatContext.empty()
    ctx.items.extend(
        [
            llm.AgentHandoff(id=handoff, new_agent_id="clinic_agent", created_at=t0),
            llm.AgentConfigUpdate(
                id=config,
                instructions="You book rooms.",
                # LiveKit builds these from set differences: order varies between processes.
                tools_added=["list_slots", "book", "cancel"],
                created_at=t0 + 0.001,
            ),
            llm.ChatMessage(
                id="lk.agent_task.instructions",
                role="system",
                content=["You book rooms."],
                created_at=t0 + 0.002,
            ),
            llm.ChatMessage(
                id=sys_dyn, role="system", content=["Caller: +1 555"], created_at=t0 + 0.003
            ),
            llm.ChatMessage(
                id=user,
                role="user",
                content=["Anything free on June 15th?"],
                metrics={"end_of_turn_delay": t0 / 1e9, "transcription_delay": 0.25},
                created_at=t0 + 0.004,
            ),
            llm.FunctionCall(
                id=f"{gen}/fnc_0",
                call_id=call_ids[0],
                name="list_slots",
                arguments=arguments[0],
                group_id=group,
                created_at=t0 + 0.005,
            ),
            llm.FunctionCall(
                id=f"{gen}/fnc_1",
                call_id=call_ids[1],
                name="book",
                arguments=arguments[1],
                group_id=group,
                created_at=t0 + 0.006,
            ),
            # outputs in the opposite order of the calls: links must follow call_id, not position
            llm.FunctionCallOutput(
                id=out2,
                call_id=call_ids[1],
                name="book",
                output="room full",
                is_error=True,
                created_at=t0 + 0.007,
            ),
            llm.FunctionCallOutput(
                id=out1,
                call_id=call_ids[0],
                name="list_slots",
                output='["09:00", "14:30"]',
                is_error=False,
                created_at=t0 + 0.008,
            ),
            llm.ChatMessage(
                id=assistant,
                role="assistant",
                content=[reply],
                interrupted=True,
                metrics={"llm_node_ttft": t0 / 1e10, "e2e_latency": 1.5},
                created_at=t0 + 0.009,
            ),
            llm.AgentHandoff(
                id=f"{handoff}x",
                old_agent_id="clinic_agent",
                new_agent_id="billing_agent",
                created_at=t0 + 0.010,
            ),
        ]
    )
    return ctx


RUN_A = Run(
    ids=[
        "item_0a1b2c3d4e5f",
        "item_111111111111",
        "item_222222222222",
        "item_333333333333",
        "item_444444444444",
        "item_555555555555",
        "item_666666666666",
        "item_777777777777",
    ],
    call_ids=("call_Xy12", "call_Zq34"),
    group="resp_abc",
    t0=1_700_000_000.0,
)
RUN_B = Run(
    ids=[
        "item_ffffffffffff",
        "item_eeeeeeeeeeee",
        "item_dddddddddddd",
        "item_cccccccccccc",
        "item_bbbbbbbbbbbb",
        "item_aaaaaaaaaaaa",
        "item_999999999999",
        "item_888888888888",
    ],
    call_ids=("toolu_01", "toolu_02"),
    group="resp_zzz",
    t0=1_800_000_123.5,
)

EXPECTED: list[dict[str, Any]] = [
    {"type": "agent_handoff", "id": "item_1", "new_agent_id": "clinic_agent"},
    {
        "type": "agent_config_update",
        "id": "item_2",
        "instructions": "You book rooms.",
        "tools_added": ["book", "cancel", "list_slots"],
    },
    {
        "type": "message",
        "id": "lk.agent_task.instructions",
        "role": "system",
        "content": ["You book rooms."],
        "interrupted": False,
    },
    {
        "type": "message",
        "id": "item_3",
        "role": "system",
        "content": ["Caller: +1 555"],
        "interrupted": False,
    },
    {
        "type": "message",
        "id": "item_4",
        "role": "user",
        "content": ["Anything free on June 15th?"],
        "interrupted": False,
    },
    {
        "type": "function_call",
        "id": "item_5/fnc_0",
        "call_id": "call_1",
        "group_id": "group_1",
        "name": "list_slots",
        "arguments": {"date": "2026-06-15"},
    },
    {
        "type": "function_call",
        "id": "item_5/fnc_1",
        "call_id": "call_2",
        "group_id": "group_1",
        "name": "book",
        "arguments": {"room": "A", "size": 2},
    },
    {
        "type": "function_call_output",
        "id": "item_6",
        "call_id": "call_2",
        "name": "book",
        "output": "room full",
        "is_error": True,
    },
    {
        "type": "function_call_output",
        "id": "item_7",
        "call_id": "call_1",
        "name": "list_slots",
        "output": '["09:00", "14:30"]',
        "is_error": False,
    },
    {
        "type": "message",
        "id": "item_8",
        "role": "assistant",
        "content": ["We have 09:00 and 14:30."],
        "interrupted": True,
    },
    {
        "type": "agent_handoff",
        "id": "item_9",
        "old_agent_id": "clinic_agent",
        "new_agent_id": "billing_agent",
    },
]


def test_normalizes_a_full_conversation_exactly() -> None:
    history = normalize_history(_conversation(RUN_A))
    assert history == EXPECTED
    # Key order is part of the contract (snapshots and printed histories read type/id first).
    assert [list(item)[:2] for item in history] == [["type", "id"]] * len(EXPECTED)
    assert list(history[5]) == ["type", "id", "call_id", "group_id", "name", "arguments"]


def test_runs_differing_only_in_unstable_values_normalize_identically() -> None:
    a = normalize_history(_conversation(RUN_A))
    # Same arguments, serialized with other spacing and key order (as another provider would).
    reordered = ('{"date":"2026-06-15"}', '{"size": 2, "room": "A"}')
    b = normalize_history(_conversation(RUN_B, arguments=reordered))
    assert a == b
    # ...and the raw dumps really did differ, so the equality above is normalization's work.
    assert chat_context_items(_conversation(RUN_A)) != chat_context_items(_conversation(RUN_B))


def test_a_behaviour_change_still_shows() -> None:
    a = normalize_history(_conversation(RUN_A))
    b = normalize_history(_conversation(RUN_B, reply="Sorry, nothing free."))
    assert a != b
    assert [i for i in range(len(a)) if a[i] != b[i]] == [9]


def test_call_links_survive_whatever_the_provider_ids_look_like() -> None:
    history = normalize_history(_conversation(RUN_B))
    calls = {i["call_id"]: i["name"] for i in history if i["type"] == "function_call"}
    outputs = {i["call_id"]: i["name"] for i in history if i["type"] == "function_call_output"}
    assert calls == outputs == {"call_1": "list_slots", "call_2": "book"}


def test_timestamps_metrics_and_raw_ids_are_gone() -> None:
    text = json.dumps(normalize_history(_conversation(RUN_A)))
    for unstable in ("created_at", "metrics", "item_0a1b", "call_Xy12", "resp_abc", "1700000000"):
        assert unstable not in text


def test_placeholders_follow_first_appearance() -> None:
    history = normalize_items(
        [
            {"type": "function_call_output", "id": "o", "call_id": "late", "output": "x"},
            {"type": "message", "id": "m", "role": "user", "content": ["hi"]},
            {"type": "function_call", "id": "c", "call_id": "early", "name": "f"},
            {"type": "function_call", "id": "c2", "call_id": "late", "name": "f"},
            {"type": "message", "id": "m", "role": "user", "content": ["same id again"]},
        ]
    )
    assert [i["id"] for i in history] == ["item_1", "item_2", "item_3", "item_4", "item_2"]
    assert [i["call_id"] for i in history if "call_id" in i] == ["call_1", "call_2", "call_1"]


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ('{"a": [1, {"b": null}]}', {"a": [1, {"b": None}]}),
        ("{}", {}),
        ('{"a": 1', '{"a": 1'),  # malformed JSON from a model stays visible as-is
        ('"just a string"', '"just a string"'),  # valid JSON, but not an object
        ("[1, 2]", "[1, 2]"),
        ('{"x": NaN}', '{"x": NaN}'),  # not JSON; parsing it would make history != itself
        ("", ""),
    ],
)
def test_arguments_are_parsed_only_when_they_are_a_json_object(raw: str, shown: Any) -> None:
    [item] = normalize_items(
        [{"type": "function_call", "id": "i", "call_id": "c", "arguments": raw}]
    )
    assert item["arguments"] == shown
    assert type(item["arguments"]) is type(shown)


def test_version_specific_defaults_are_normalized_and_real_values_kept() -> None:
    history = normalize_items(
        [
            # 1.8 adds reply_required (default True) and extra {}: omitted, as 1.6 never has them
            {"type": "function_call_output", "id": "a", "call_id": "c", "reply_required": True},
            {"type": "function_call_output", "id": "b", "call_id": "c", "reply_required": False},
            {"type": "message", "id": "m", "content": [], "extra": {}},
            {"type": "message", "id": "n", "content": [], "extra": {"lang": "fr"}},
            # 1.6 serializes an Instructions content part as a dict
            {
                "type": "message",
                "id": "lk.agent_task.instructions",
                "content": [{"type": "instructions", "audio": "Be brief."}],
            },
            {
                "type": "message",
                "id": "lk.agent_task.instructions",
                "content": [{"type": "instructions", "audio": "Say it.", "text": "Write it."}],
            },
            {
                "type": "agent_config_update",
                "id": "u",
                "instructions": {"type": "instructions", "audio": "Hi."},
            },
            {"type": "future_item", "id": "f", "zeta": 1, "alpha": 2, "hash": "deadbeef"},
        ]
    )
    assert history == [
        {"type": "function_call_output", "id": "item_1", "call_id": "call_1"},
        {
            "type": "function_call_output",
            "id": "item_2",
            "call_id": "call_1",
            "reply_required": False,
        },
        {"type": "message", "id": "item_3", "content": []},
        {"type": "message", "id": "item_4", "content": [], "extra": {"lang": "fr"}},
        {"type": "message", "id": "lk.agent_task.instructions", "content": ["Be brief."]},
        {
            "type": "message",
            "id": "lk.agent_task.instructions",
            "content": [{"type": "instructions", "audio": "Say it.", "text": "Write it."}],
        },
        {"type": "agent_config_update", "id": "item_5", "instructions": "Hi."},
        {"type": "future_item", "id": "item_6", "alpha": 2, "zeta": 1},
    ]
    assert list(history[-1]) == ["type", "id", "alpha", "zeta"]


def test_only_livekits_derived_suffixes_are_kept() -> None:
    history = normalize_items(
        [
            {"type": "function_call", "id": "item_ab/fnc_0", "call_id": "c"},
            {"type": "function_call", "id": "item_ab/fnc_0_running", "call_id": "c"},
            {"type": "function_call_output", "id": "item_ab/fnc_0_running_output", "call_id": "c"},
            {"type": "message", "id": "resp_1/unknown_9f8e7d", "content": []},
            {"type": "message", "id": "lk.agent_task.instructions.dynamic", "content": []},
        ]
    )
    assert [i["id"] for i in history] == [
        "item_1/fnc_0",
        "item_1/fnc_0_running",
        "item_1/fnc_0_running_output",
        "item_2",  # an unknown derivation could hide randomness: replaced whole
        "lk.agent_task.instructions.dynamic",
    ]


def test_input_is_not_mutated_and_calls_are_independent() -> None:
    items = [{"type": "function_call", "id": "x", "call_id": "y", "arguments": "{}"}]
    first = normalize_items(items)
    second = normalize_items(items)
    assert items == [{"type": "function_call", "id": "x", "call_id": "y", "arguments": "{}"}]
    assert (
        first
        == second
        == [{"type": "function_call", "id": "item_1", "call_id": "call_1", "arguments": {}}]
    )


class _OldStyleContext:
    """A ``to_dict`` without ``exclude_metrics`` (the wrapper must not pass it)."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}

    def to_dict(self, *, exclude_timestamp: bool = True) -> dict[str, Any]:
        self.seen = {"exclude_timestamp": exclude_timestamp}
        return {
            "items": [
                {
                    "id": "item_q",
                    "type": "message",
                    "role": "user",
                    "content": ["hi"],
                    "metrics": {"transcription_delay": 0.3},
                    "created_at": 12.5,
                }
            ]
        }


def test_to_dict_compat_wrapper_passes_only_supported_keywords() -> None:
    ctx = _OldStyleContext()
    assert normalize_history(ctx) == [  # type: ignore[arg-type]  # duck-typed on purpose
        {"type": "message", "id": "item_1", "role": "user", "content": ["hi"]}
    ]
    assert ctx.seen == {"exclude_timestamp": True}


def test_real_chat_context_to_dict_accepts_the_keywords() -> None:
    # Guards the compat wrapper's assumption on the installed livekit-agents.
    ctx = llm.ChatContext.empty()
    ctx.add_message(role="user", content="hi", metrics={"transcription_delay": 0.1})
    [item] = chat_context_items(ctx)
    assert "created_at" not in item and "metrics" not in item
    assert item["content"] == ["hi"]
