"""history_from_proto: a history read over the session protocol normalizes exactly like the
in-process one, so process-mode snapshots equal in-process snapshots.

Real sessions run on the fakes; their items go through the encoder the installed release's
``SessionHost`` answers ``get_chat_history`` with, serialized to bytes and parsed back as the
wire would carry them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import pytest
from livekit.agents import Agent, RunContext, StopResponse, ToolError, function_tool, llm
from livekit.agents.voice import remote_session
from livekit.protocol.agent_pb import agent_session as pb

from pytest_agentsim.fakes import FakeLLM, FakeTTS, attach_outputs, make_session
from pytest_agentsim.observe.history import History, history_from_proto, normalize_history
from pytest_agentsim.run.harness import AgentSim

# 1.7 brought the full encoder (1.6's leaves out an output's id and name and most optional
# message fields) together with reply_required and an output for StopResponse
SINCE_1_7 = hasattr(remote_session, "encode_chat_item")
# What SessionHost calls per item for get_chat_history on the installed release
ENCODE: Callable[[Any], pb.ChatContext.ChatItem] = getattr(
    remote_session, "encode_chat_item" if SINCE_1_7 else "_chat_item_to_proto"
)


def wire(items: Iterable[Any]) -> list[pb.ChatContext.ChatItem]:
    """Encode chat items and put them through bytes, as GetChatHistoryResponse carries them."""
    response = pb.SessionResponse.GetChatHistoryResponse(items=[ENCODE(i) for i in items])
    return list(
        pb.SessionResponse.GetChatHistoryResponse.FromString(response.SerializeToString()).items
    )


def agent_context(session: Any) -> llm.ChatContext:
    """The running agent's own context (instructions message first)."""
    try:
        return session.current_agent.chat_ctx  # type: ignore[no-any-return]
    except RuntimeError:  # livekit-agents 2: readable only inside the agent's hooks
        return session._activity.chat_ctx  # type: ignore[no-any-return]


def assert_same(chat_ctx: llm.ChatContext) -> History:
    """Both paths agree on ``chat_ctx``; returns the (shared) normalized history."""
    expected = normalize_history(chat_ctx)
    assert history_from_proto(wire(chat_ctx.items)) == expected
    return expected


# -- agents -----------------------------------------------------------------------------


class Support(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are support.")


class Desk(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are the front desk.")

    @function_tool
    async def lookup(self, context: RunContext, city: str) -> str:
        """Look up the weather."""
        return f"sunny in {city}"

    @function_tool
    async def broken(self, context: RunContext) -> str:
        """Always fails."""
        raise ToolError("backend down")

    @function_tool
    async def note(self, context: RunContext, text: str) -> None:
        """Write a note; says nothing back."""

    @function_tool
    async def hush(self, context: RunContext) -> str:
        """Ends the turn without a reply."""
        raise StopResponse()

    @function_tool
    async def to_support(self, context: RunContext) -> tuple[Agent, str]:
        """Hand over to support, with a message."""
        return Support(), "Transferring."

    @function_tool
    async def bare_handoff(self, context: RunContext) -> Agent:
        """Hand over to support, saying nothing."""
        return Support()


@contextlib.asynccontextmanager
async def sim_with(*answers: dict[str, Any]) -> AsyncIterator[AgentSim]:
    """A started AgentSim on a Desk whose model answers ``answers`` in order."""
    sim = AgentSim()
    for answer in answers:
        sim.fake_llm.add_response(**answer)
    await sim.start(Desk())
    try:
        yield sim
    finally:
        await sim.aclose()
    assert sim.fake_llm.unused() == []  # every scripted answer was asked for


def item_types(history: History) -> list[str]:
    return [f"{i['type']}:{i.get('role', '')}".rstrip(":") for i in history]


# -- real sessions ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_plain_replies_and_user_messages() -> None:
    async with sim_with({"text": "Hello there."}, {"text": "Bye."}) as sim:
        await sim.run("hi")
        await sim.run("that is all")
        history = assert_same(sim.session.history)
    assert history == [
        {"type": "agent_handoff", "id": "item_1", "new_agent_id": "desk"},
        {
            "type": "agent_config_update",
            "id": "item_2",
            "instructions": "You are the front desk.",
            "tools_added": ["bare_handoff", "broken", "hush", "lookup", "note", "to_support"],
        },
        {
            "type": "message",
            "id": "item_3",
            "role": "user",
            "content": ["hi"],
            "interrupted": False,
        },
        {
            "type": "message",
            "id": "item_4",
            "role": "assistant",
            "content": ["Hello there."],
            "interrupted": False,
        },
        {
            "type": "message",
            "id": "item_5",
            "role": "user",
            "content": ["that is all"],
            "interrupted": False,
        },
        {
            "type": "message",
            "id": "item_6",
            "role": "assistant",
            "content": ["Bye."],
            "interrupted": False,
        },
    ]


@pytest.mark.asyncio
async def test_parallel_tool_calls_with_an_error_output() -> None:
    calls = [{"name": "lookup", "arguments": {"city": "Paris"}}, {"name": "broken"}]
    async with sim_with({"tool_calls": calls}, {"text": "Paris is sunny."}) as sim:
        await sim.run("weather?")
        history = assert_same(sim.session.history)
    tools = [i for i in history if i["type"].startswith("function_call")]
    assert tools == [
        {
            "type": "function_call",
            "id": "item_4/fnc_0",
            "call_id": "call_1",
            "name": "lookup",
            "arguments": {"city": "Paris"},
        },
        {
            "type": "function_call",
            "id": "item_4/fnc_1",
            "call_id": "call_2",
            "name": "broken",
            "arguments": {},
        },
        {
            "type": "function_call_output",
            "id": "item_5",
            "call_id": "call_1",
            "name": "lookup",
            "output": "sunny in Paris",
            "is_error": False,
        },
        {
            "type": "function_call_output",
            "id": "item_6",
            "call_id": "call_2",
            "name": "broken",
            "output": "backend down",
            "is_error": True,
        },
    ]


@pytest.mark.asyncio
async def test_silent_tools_keep_their_reply_required_flag() -> None:
    # None results and StopResponse are recorded with reply_required=False on 1.7+; the wire
    # does not carry the flag, so history_from_proto must restore it from the empty output.
    calls = [{"name": "note", "arguments": {"text": "x"}}]
    # neither asks for a reply, so the model is not called again after either of them
    async with sim_with({"tool_calls": calls}, {"tool_calls": [{"name": "hush"}]}) as sim:
        await sim.run("note x")
        await sim.run("be quiet")
        history = assert_same(sim.session.history)
    outputs = [i for i in history if i["type"] == "function_call_output"]
    if SINCE_1_7:
        assert [(o["name"], o["output"], o["reply_required"]) for o in outputs] == [
            ("note", "", False),
            ("hush", "", False),
        ]
    else:  # no flag in 1.6, which records no output for StopResponse
        assert [(o["name"], o["output"], "reply_required" in o) for o in outputs] == [
            ("note", "", False)
        ]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("tool", "reply"),
    [("to_support", [{"text": "Support here."}]), ("bare_handoff", [])],  # bare: no reply asked
)
async def test_handoff_to_another_agent(tool: str, reply: list[dict[str, Any]]) -> None:
    async with sim_with({"tool_calls": [{"name": tool}]}, *reply) as sim:
        await sim.run("I need support")
        history = assert_same(sim.session.history)
        assert_same(agent_context(sim.session))
    handoffs = [i for i in history if i["type"] == "agent_handoff"]
    assert handoffs[-1]["old_agent_id"] == "desk"
    assert handoffs[-1]["new_agent_id"] == "support"
    assert "old_agent_id" not in handoffs[0]  # the first agent came from nowhere
    assert {"type": "agent_config_update", "instructions": "You are support."} in [
        {k: v for k, v in i.items() if k != "id"} for i in history
    ]


@pytest.mark.asyncio
async def test_agent_context_with_the_instructions_message() -> None:
    # session.history has no system message; the agent's own context (what get_agent_info
    # sends) starts with LiveKit's fixed-id instructions message
    async with sim_with({"text": "Hello."}) as sim:
        await sim.run("hi")
        history = assert_same(agent_context(sim.session))
    assert {
        "type": "message",
        "id": "lk.agent_task.instructions",
        "role": "system",
        "content": ["You are the front desk."],
        "interrupted": False,
    } in history
    assert item_types(history)[-2:] == ["message:user", "message:assistant"]


@pytest.mark.asyncio
async def test_interrupted_message() -> None:
    session = make_session(llm=FakeLLM(), tts=FakeTTS())
    outputs = attach_outputs(session, audio=True, instant=False)
    await session.start(Support())
    try:
        assert outputs.audio is not None
        handle = session.say("one two three four five six seven eight nine ten")
        await outputs.audio.wait_for_captured()
        outputs.audio.advance(1.0)
        handle.interrupt()
        await handle
        history = assert_same(session.history)
    finally:
        await session.aclose()
    last = history[-1]
    assert last["role"] == "assistant" and last["interrupted"] is True
    assert last["content"] == ["one two three four"]


class _Pipe(remote_session.SessionTransport):
    """One end of an in-memory transport; messages cross it as bytes."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[pb.AgentSessionMessage | None] = asyncio.Queue()
        self.peer: _Pipe | None = None

    async def start(self) -> None:
        pass

    async def send_message(self, msg: pb.AgentSessionMessage) -> None:
        assert self.peer is not None
        self.peer.inbox.put_nowait(pb.AgentSessionMessage.FromString(msg.SerializeToString()))

    async def close(self) -> None:
        self.inbox.put_nowait(None)

    def __aiter__(self) -> _Pipe:
        return self

    async def __anext__(self) -> pb.AgentSessionMessage:
        msg = await self.inbox.get()
        if msg is None:
            raise StopAsyncIteration
        return msg


@pytest.mark.asyncio
async def test_history_read_through_remote_session() -> None:
    """The process-mode path end to end: SessionHost answers RemoteSession.get_chat_history."""
    host_end, client_end = _Pipe(), _Pipe()
    host_end.peer, client_end.peer = client_end, host_end
    calls = [{"name": "lookup", "arguments": {"city": "Oslo"}}, {"name": "broken"}]
    async with sim_with(
        {"tool_calls": calls},
        {"text": "Cold."},
        {"tool_calls": [{"name": "to_support"}]},
        {"text": "Support."},
    ) as sim:
        host = remote_session.SessionHost(host_end)
        host.register_session(sim.session)
        await host.start()
        remote = remote_session.RemoteSession(client_end)
        await remote.start()
        try:
            await sim.run("weather in Oslo?")
            await sim.run("support")
            response = await remote.get_chat_history()
        finally:
            await remote.aclose()
            await host.aclose()
        expected = normalize_history(sim.session.history)
    assert history_from_proto(response.items) == expected
    assert sum(i["type"] == "function_call_output" for i in expected) == 3


# -- hand-built contexts through the real encoder ---------------------------------------


def test_every_item_type_and_optional_field_round_trips() -> None:
    ctx = llm.ChatContext.empty()
    ctx.items.extend(
        [
            llm.AgentHandoff(new_agent_id="a"),
            llm.AgentHandoff(old_agent_id="", new_agent_id="b"),  # empty, but present
            llm.AgentConfigUpdate(instructions="", tools_removed=["z", "b", "m"]),
            llm.AgentConfigUpdate(tools_added=["t"]),
            llm.ChatMessage(role="developer", content=["dev"]),
            llm.ChatMessage(role="system", content=[]),
            llm.ChatMessage(role="user", content=["a"], metrics={"transcription_delay": 0.4}),
            llm.ChatMessage(role="assistant", content=[""], interrupted=True),
            llm.FunctionCall(call_id="c1", name="f", arguments='{"b": 1, "a": [2]}'),
            llm.FunctionCall(call_id="c2", name="g", arguments="{not json"),
            llm.FunctionCall(call_id="c3", name="h", arguments=""),
            llm.FunctionCallOutput(call_id="c2", name="g", output="bad", is_error=True),
            llm.FunctionCallOutput(call_id="c1", name="f", output="ok", is_error=False),
        ]
    )
    history = history_from_proto(wire(ctx.items))
    if SINCE_1_7:
        assert history == normalize_history(ctx)
    else:
        # 1.6 sends no content part for an empty text
        assert history == [
            i if i.get("content") != [""] else {**i, "content": []} for i in normalize_history(ctx)
        ]
    assert history[1] == {
        "type": "agent_handoff",
        "id": "item_2",
        "old_agent_id": "",
        "new_agent_id": "b",
    }
    assert history[2] == {
        "type": "agent_config_update",
        "id": "item_3",
        "instructions": "",
        "tools_removed": ["b", "m", "z"],
    }
    assert [i["role"] for i in history if i["type"] == "message"] == [
        "developer",
        "system",
        "user",
        "assistant",
    ]
    assert [i["arguments"] for i in history if i["type"] == "function_call"] == [
        {"b": 1, "a": [2]},
        "{not json",
        "",
    ]


@pytest.mark.skipif(not SINCE_1_7, reason="1.6 sends neither transcript_confidence nor extra")
def test_extra_round_trips_and_confidence_is_dropped() -> None:
    ctx = llm.ChatContext.empty()
    ctx.items.extend(
        [
            llm.ChatMessage(role="user", content=["hi"], transcript_confidence=0.0),
            llm.ChatMessage(role="user", content=["hey"], transcript_confidence=0.87),
            llm.ChatMessage(role="assistant", content=["yo"], extra={"lang": "fr"}),
            llm.FunctionCall(call_id="c", name="f", arguments="{}", extra={"sig": "abc"}),
        ]
    )
    history = assert_same(ctx)
    # an STT's measurement, like the metrics: spoken and typed turns snapshot alike
    assert [i.get("transcript_confidence") for i in history[:2]] == [None, None]
    assert history[2]["extra"] == {"lang": "fr"} and history[3]["extra"] == {"sig": "abc"}


def test_documented_losses() -> None:
    """What the wire cannot carry (see the docstring); a fix upstream should fail this test."""
    ctx = llm.ChatContext.empty()
    ctx.items.extend(
        [
            llm.FunctionCall(call_id="c", name="f", arguments="{}", group_id="resp_1"),
            llm.FunctionCallOutput(call_id="c", name="f", output="", is_error=False),
            llm.ChatMessage(role="assistant", content=["a", "b"], extra={"n": 1, "s": "x"}),
        ]
    )
    in_process, over_wire = normalize_history(ctx), history_from_proto(wire(ctx.items))
    assert in_process[0]["group_id"] == "group_1" and "group_id" not in over_wire[0]
    assert in_process[2]["extra"] == {"n": 1, "s": "x"}
    if SINCE_1_7:
        # an output of "" that did ask for a reply is shown as a silent one
        assert "reply_required" not in in_process[1]
        assert over_wire[1]["reply_required"] is False
        assert over_wire[2]["extra"] == {"n": "1", "s": "x"}  # map<string, string>
        assert over_wire[2]["content"] == ["a", "b"]
    else:
        assert "reply_required" not in over_wire[1]
        assert "extra" not in over_wire[2]
        assert over_wire[2]["content"] == ["a\nb"]
    # everything else is the same
    lost = {"group_id", "reply_required", "extra", "content"}
    assert [{k: v for k, v in i.items() if k not in lost} for i in over_wire] == [
        {k: v for k, v in i.items() if k not in lost} for i in in_process
    ]


@pytest.mark.skipif(
    not hasattr(llm, "CacheBreakpoint"), reason="this livekit-agents has no llm.CacheBreakpoint"
)
def test_cache_breakpoint_is_not_on_the_wire() -> None:
    ctx = llm.ChatContext.empty()
    marker = llm.CacheBreakpoint()  # type: ignore[attr-defined,unused-ignore]
    ctx.add_message(role="system", content=["Static prompt.", marker])
    [in_process], [over_wire] = normalize_history(ctx), history_from_proto(wire(ctx.items))
    assert in_process["content"] == ["Static prompt.", {"type": "cache_breakpoint"}]
    assert over_wire["content"] == ["Static prompt."]


# -- hand-built protos ------------------------------------------------------------------


def _message(**fields: Any) -> pb.ChatContext.ChatItem:
    return pb.ChatContext.ChatItem(message=pb.ChatMessage(**fields))


def test_an_item_with_no_known_variant_keeps_its_place() -> None:
    history = history_from_proto(
        [
            _message(id="m1", role=pb.USER, content=[pb.ChatMessage.ChatContent(text="a")]),
            pb.ChatContext.ChatItem(),
            pb.ChatContext.ChatItem(),
            _message(id="m2", role=pb.ASSISTANT),
        ]
    )
    assert history == [
        {"type": "message", "id": "item_1", "role": "user", "content": ["a"], "interrupted": False},
        {"type": "unknown", "id": "item_2"},
        {"type": "unknown", "id": "item_3"},  # two items, not one id seen twice
        {
            "type": "message",
            "id": "item_4",
            "role": "assistant",
            "content": [],
            "interrupted": False,
        },
    ]
    assert history_from_proto([]) == []


def test_proto3_defaults_versus_present_fields() -> None:
    [bare, full] = history_from_proto(
        [
            _message(id="a"),  # every field at its default: role 0 is DEVELOPER
            _message(
                id="b",
                role=pb.SYSTEM,
                content=[pb.ChatMessage.ChatContent(), pb.ChatMessage.ChatContent(text="")],
                interrupted=True,
                transcript_confidence=0.0,
                extra={"k": "v"},
                metrics=pb.MetricsReport(e2e_latency=1.5),
                created_at={"seconds": 1_700_000_000},
            ),
        ]
    )
    assert bare == {
        "type": "message",
        "id": "item_1",
        "role": "developer",
        "content": [],
        "interrupted": False,
    }
    # the part with no payload is dropped; the empty text is a real part; timings are gone
    assert full == {
        "type": "message",
        "id": "item_2",
        "role": "system",
        "content": [""],
        "interrupted": True,
        "extra": {"k": "v"},
    }


def test_unknown_role_number_stays_visible() -> None:
    [item] = history_from_proto([_message(id="x", role=99)])
    assert item["role"] == 99


@pytest.mark.parametrize(
    ("raw", "shown"),
    [('{"a": 1}', {"a": 1}), ('{"a": 1', '{"a": 1'), ("[1]", "[1]"), ("", "")],
)
def test_arguments_are_parsed_like_in_process(raw: str, shown: Any) -> None:
    call = pb.FunctionCall(id="i/fnc_0", call_id="c", name="f", arguments=raw)
    [item] = history_from_proto([pb.ChatContext.ChatItem(function_call=call)])
    assert item == {
        "type": "function_call",
        "id": "item_1/fnc_0",
        "call_id": "call_1",
        "name": "f",
        "arguments": shown,
    }


def test_outputs_without_id_and_name_are_completed_from_their_call() -> None:
    """1.6's host shape: the output's name comes from its call; each gets its own id."""
    items = [
        pb.ChatContext.ChatItem(function_call=pb.FunctionCall(id="g/fnc_0", call_id="x", name="f")),
        pb.ChatContext.ChatItem(function_call=pb.FunctionCall(id="g/fnc_1", call_id="y", name="g")),
        pb.ChatContext.ChatItem(function_call_output=pb.FunctionCallOutput(call_id="y", output="")),
        pb.ChatContext.ChatItem(
            function_call_output=pb.FunctionCallOutput(call_id="x", output="1")
        ),
        pb.ChatContext.ChatItem(
            function_call_output=pb.FunctionCallOutput(call_id="lost", output="2")
        ),
        _message(id="m", role=pb.ASSISTANT),
    ]
    history = history_from_proto(iter(items))  # any iterable, consumed once
    assert [(i["id"], i.get("name"), i.get("call_id")) for i in history] == [
        ("item_1/fnc_0", "f", "call_1"),
        ("item_1/fnc_1", "g", "call_2"),
        ("item_2", "g", "call_2"),
        ("item_3", "f", "call_1"),
        ("item_4", "", "call_3"),
        ("item_5", None, None),
    ]
    # no reply_required invented for a release that has none
    assert all("reply_required" not in i for i in history)


@pytest.mark.parametrize(
    ("output", "is_error", "silent"),
    [("", False, True), ("done", False, False), ("", True, False)],
)
def test_reply_required_is_restored_only_for_empty_successful_outputs(
    output: str, is_error: bool, silent: bool
) -> None:
    out = pb.FunctionCallOutput(id="o", name="f", call_id="c", output=output, is_error=is_error)
    [item] = history_from_proto([pb.ChatContext.ChatItem(function_call_output=out)])
    assert ("reply_required" in item) is silent
    if silent:
        assert item["reply_required"] is False


def test_config_update_lists_are_sorted_and_empty_ones_omitted() -> None:
    update = pb.AgentConfigUpdate(id="u", tools_added=["b", "a"])
    [item] = history_from_proto([pb.ChatContext.ChatItem(agent_config_update=update)])
    assert item == {"type": "agent_config_update", "id": "item_1", "tools_added": ["a", "b"]}
