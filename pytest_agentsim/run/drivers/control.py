"""Process mode's control channel, child side: what the session protocol cannot ask.

The parent (:class:`~.process.ProcessDriver`) sends JSON lines on a loopback socket; the
child answers each one by emitting a ``debug_message`` on its session, which livekit's
session host forwards to the parent *in order with every other session event*. So when
the parent reads the answer to "tell me when you are quiet", every event the agent
produced before it has already arrived: turn boundaries without timing windows.

Requests: ``{"op": "quiet"}`` (answered when the agent is quiet, the greeting included),
``{"op": "say", "text"}`` and ``{"op": "generate_reply", "instructions"}`` (agent-initiated
turns), ``{"op": "mock", "tools": [...]}`` / ``{"op": "unmock"}`` (a turn's tool mocks).
Each carries a ``token``; the answer is ``{"agentsim": token, "error": ...}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Struct
from livekit import rtc
from livekit.protocol.agent_pb import agent_session as agent_pb

from ...fakes.session import TOOL_UPDATES
from ...load.model import ToolMock
from ..hooks import HookWatch
from ..quiet import wait_quiet
from .tools import turn_tool_mocks

__all__ = ["ANSWER_KEY", "TOOL_STARTED_KEY", "report_tool_starts", "serve"]

ANSWER_KEY = "agentsim"
"""The key of the control answers in the ``debug_message`` payload."""

TOOL_STARTED_KEY = "agentsim_tool_started"
"""The key of a tool call as it starts, on livekit 1.6 (:func:`report_tool_starts`)."""


async def _finished(run: Any) -> None:
    await run


def _answer(
    session: Any, token: int, error: str | None = None, crashes: list[str] | None = None
) -> None:
    _emit(session, {ANSWER_KEY: token, "error": error or "", "crashes": crashes or []})


def _emit(session: Any, data: dict[str, Any]) -> None:
    # the session host forwards debug messages over the session protocol, in order; the
    # base emit, as livekit's own debug messages (kept out of the session's report)
    payload = Struct()
    ParseDict(data, payload)
    rtc.EventEmitter.emit(session, "debug_message", agent_pb.DebugMessage(payload=payload))


def report_tool_starts(session: Any) -> None:
    """On livekit 1.6, whose session protocol has no ``tool_execution_updated``: send each
    tool call of ``session`` as it starts (each speech handle reports it) on a debug
    message, so the parent sees a call that is still running when the turn ends."""
    if TOOL_UPDATES:
        return

    def added(item: Any) -> None:
        if getattr(item, "type", "") == "function_call":
            call = {"name": item.name, "arguments": item.arguments, "call_id": item.call_id}
            _emit(session, {TOOL_STARTED_KEY: call})

    def created(ev: Any) -> None:
        add = getattr(ev.speech_handle, "_add_item_added_callback", None)
        if add is not None:
            add(added)

    session.on("speech_created", created)


async def _perform(
    session: Any, greeting: Any, request: dict[str, Any], mocks: list[Any], hooks: HookWatch
) -> None:
    op = request.get("op")
    timeout = float(request.get("timeout", 30.0))
    if op == "quiet":
        if greeting is not None:
            with contextlib.suppress(Exception):  # a failed greeting is the agent's to report
                await asyncio.wait_for(_finished(greeting), timeout)
        await wait_quiet(session, timeout, stop=hooks.crashed)
    elif op == "say":
        handle = session.say(str(request.get("text", "")))
        await asyncio.wait_for(handle.wait_for_playout(), timeout)
    elif op == "generate_reply":
        instructions = request.get("instructions") or None
        kwargs = {"instructions": instructions} if instructions else {}
        handle = session.generate_reply(**kwargs)
        await asyncio.wait_for(handle.wait_for_playout(), timeout)
    elif op == "mock":
        tools = tuple(
            ToolMock(name=t["name"], value=t.get("value"), raise_message=t.get("raise"))
            for t in request.get("tools", ())
        )
        manager = turn_tool_mocks(session, tools)
        manager.__enter__()
        mocks.append(manager)
    elif op == "unmock":
        while mocks:
            mocks.pop().__exit__(None, None, None)
    else:
        raise ValueError(f"unknown control op {op!r}")


async def serve(session: Any, greeting: Any, address: str, hooks: HookWatch) -> None:
    """Answer the parent's requests for ``session`` until the connection ends; each answer
    carries the ``on_enter`` crashes seen since the last (``hooks``)."""
    host, _, port = address.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    mocks: list[Any] = []
    try:
        while line := await reader.readline():
            request = json.loads(line)
            token = int(request.get("token", 0))
            try:
                await _perform(session, greeting, request, mocks, hooks)
            except Exception as e:
                _answer(session, token, f"{type(e).__name__}: {e}", hooks.failures())
            else:
                _answer(session, token, crashes=hooks.failures())
    finally:
        writer.close()
