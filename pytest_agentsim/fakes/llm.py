"""A scripted ``livekit.agents.llm.LLM``: answers, tool calls and faults, call by call.

Every ``_run()`` of a stream is one model call and takes one item from the script, so
livekit's own retry loop (``LLMStream._main_task``) decides what is retried and each
retry attempt consumes the next scripted item, exactly as a real provider would be asked
again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeAlias

from livekit.agents import APIConnectOptions, APIError, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr

from ..answers import LLMAnswer, ToolCall, tool_calls_from
from ..faults import CallScript, Fault, ScriptExhausted
from .events import FakeEvent, Observable

__all__ = ["FakeLLM", "FakeLLMStream", "LLMCall", "LLMCallback", "partial_chunk_text"]

LLMCallbackResult: TypeAlias = "LLMAnswer | str | Fault"
LLMCallback: TypeAlias = Callable[
    [llm.ChatContext, list[str]], "LLMCallbackResult | Awaitable[LLMCallbackResult]"
]
"""``fn(chat_ctx, tool_names)`` -> LLMAnswer | str | Fault, sync or async."""


@dataclasses.dataclass(frozen=True)
class _Callback:
    fn: LLMCallback

    def describe(self) -> str:
        return f"callback {getattr(self.fn, '__qualname__', repr(self.fn))}"


ScriptItem: TypeAlias = "LLMAnswer | _Callback"


@dataclasses.dataclass
class LLMCall:
    """What the model was asked on one call (each retry attempt is its own call)."""

    number: int
    chat_ctx: llm.ChatContext
    tools: list[str]
    user_text: str | None
    answer: LLMAnswer | Fault | None = None
    """The answer or fault given; ``None`` when nothing was scripted."""


def partial_chunk_text(index: int) -> str:
    """Text of chunk ``index`` (1-based) streamed before a ``disconnect_mid_stream`` fault."""
    return f"Partial response {index}. "


def _last_user_text(chat_ctx: llm.ChatContext) -> str | None:
    for item in reversed(chat_ctx.items):
        if item.type == "message" and item.role == "user":
            return item.text_content
    return None


def _describe_answer(answer: LLMAnswer) -> str:
    parts = []
    if answer.text:
        parts.append(repr(answer.text))
    parts.extend(f"{tc.name}({tc.arguments_json})" for tc in answer.tool_calls)
    return ", ".join(parts) or "(empty answer)"


class FakeLLM(llm.LLM[Any], Observable):
    """An LLM whose answers are scripted with :meth:`add_response`, :meth:`add_fault` and
    :meth:`add_callback`, consumed in order, one per model call."""

    def __init__(self, *, model: str = "fake-llm") -> None:
        super().__init__()
        self._init_observers()
        self._model = model
        self.script: CallScript[ScriptItem] = CallScript()
        self.calls: list[LLMCall] = []
        self.errors: list[APIError] = []
        self.unscripted: list[str] = []  # "llm call N" for each call nothing answered
        # scripted answers the framework could not use as written (see FakeLLMStream._run)
        self.misscripted: list[str] = []
        self._next_call_id = 0

    @property
    def model(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        return "agentsim"

    # -- scripting -------------------------------------------------------------------------
    def add_response(
        self,
        text: str | None = None,
        *,
        tool_calls: Sequence[Mapping[str, Any] | ToolCall] | None = None,
        chunks: Sequence[str] | None = None,
    ) -> None:
        """Queue one completion: ``text`` (streamed as ``chunks`` if given), then tool calls."""
        if chunks is not None and text is not None and "".join(chunks) != text:
            raise ValueError("chunks must join to text (or pass chunks without text)")
        if chunks is not None and text is None:
            text = "".join(chunks)
        answer = LLMAnswer(
            text=text,
            tool_calls=tool_calls_from(tool_calls),
            chunks=tuple(chunks) if chunks is not None else None,
        )
        self.script.add(answer)

    def add_answer(self, answer: LLMAnswer) -> None:
        """Queue a prebuilt :class:`LLMAnswer` (what the YAML runner uses)."""
        self.script.add(answer)

    def add_fault(self, fault: Fault) -> None:
        """Fail model calls as ``fault`` says (queued, or scheduled with ``.on(n)``)."""
        self.script.add_fault(fault)

    def add_callback(self, fn: LLMCallback) -> None:
        """Queue a call answered by ``fn(chat_ctx, tool_names)`` (sync or async), which
        returns an :class:`LLMAnswer`, a plain string, or a :class:`Fault`."""
        self.script.add(_Callback(fn))

    def unused(self) -> list[LLMAnswer | LLMCallback | Fault]:
        """Scripted answers, callbacks and faults no model call consumed."""
        return [item.fn if isinstance(item, _Callback) else item for item in self.script.unused()]

    def reset(self) -> None:
        """Forget the script, the recorded calls and errors (observers stay)."""
        self.script = CallScript()
        self.calls.clear()
        self.errors.clear()
        self.unscripted.clear()
        self.misscripted.clear()
        self._next_call_id = 0

    # -- livekit API -----------------------------------------------------------------------
    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> FakeLLMStream:
        stream = FakeLLMStream(
            self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options
        )
        stream.tool_choice = tool_choice if isinstance(tool_choice, str) else None
        return stream

    # -- used by the stream ----------------------------------------------------------------
    def _new_call_id(self) -> str:
        self._next_call_id += 1
        return f"call_{self._next_call_id}"

    async def _take(self, chat_ctx: llm.ChatContext, tools: list[llm.Tool]) -> LLMAnswer | Fault:
        """Record one model call and return its answer; raise if nothing is scripted."""
        tool_names = [t.id for t in tools]
        record = LLMCall(
            number=self.script.calls + 1,
            chat_ctx=chat_ctx.copy(),
            tools=tool_names,
            user_text=_last_user_text(chat_ctx),
        )
        self.calls.append(record)
        self._notify(FakeEvent("llm", "call", record.number, f"user said: {record.user_text!r}"))
        try:
            item = self.script.next()
        except ScriptExhausted:
            err = APIError(
                f"FakeLLM: no scripted response for model call {record.number} "
                f"(user said: {record.user_text!r}); add one with fake_llm.add_response(...) "
                "or an `llm:` entry in the turn",
                retryable=False,
            )
            self.errors.append(err)
            self.unscripted.append(f"llm call {record.number}")
            self._notify(FakeEvent("llm", "unscripted", record.number, str(err)))
            raise err from None

        answer: LLMAnswer | Fault
        if isinstance(item, _Callback):
            result = item.fn(chat_ctx, tool_names)
            if inspect.isawaitable(result):
                result = await result
            answer = LLMAnswer(text=result) if isinstance(result, str) else result
            if not isinstance(answer, (LLMAnswer, Fault)):
                raise TypeError(
                    f"FakeLLM {item.describe()} returned {type(result).__name__}; "
                    "expected LLMAnswer, str or Fault"
                )
        else:
            answer = item
        record.answer = answer
        if isinstance(answer, Fault):
            self._notify(FakeEvent("llm", "fault", record.number, answer.describe(), answer))
        else:
            self._notify(FakeEvent("llm", "answer", record.number, _describe_answer(answer)))
        return answer


class FakeLLMStream(llm.LLMStream):
    tool_choice: str | None = None

    def __init__(
        self,
        fake: FakeLLM,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        conn_options: APIConnectOptions,
    ) -> None:
        super().__init__(fake, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._fake = fake

    async def _run(self) -> None:
        answer = await self._fake._take(self._chat_ctx, self._tools)
        request_id = f"fake-{self._fake.script.calls}"
        if isinstance(answer, Fault):
            for i in range(1, answer.after_chunks + 1):
                self._send_text(request_id, partial_chunk_text(i))
            raise answer.to_exception()

        if answer.ttft:  # the provider's time to first token (on the virtual clock)
            await asyncio.sleep(answer.ttft)
        for chunk in answer.text_chunks():
            self._send_text(request_id, chunk)
        if answer.tool_calls and self.tool_choice == "none":
            # livekit drops tool calls made under tool_choice="none" (e.g. the reply right
            # after a handoff) and only logs it: a script that relies on them is wrong
            names = ", ".join(tc.name for tc in answer.tool_calls)
            self._fake.misscripted.append(
                f"model call {self._fake.script.calls} was made with tool_choice='none' (as "
                f"livekit does for the reply after a handoff), so its scripted tool calls "
                f"({names}) are ignored; script a text answer for it"
            )
        if answer.tool_calls:
            calls = [
                llm.FunctionToolCall(
                    name=tc.name,
                    arguments=tc.arguments_json,
                    call_id=tc.call_id or self._fake._new_call_id(),
                )
                for tc in answer.tool_calls
            ]
            self._event_ch.send_nowait(
                llm.ChatChunk(
                    id=request_id, delta=llm.ChoiceDelta(role="assistant", tool_calls=calls)
                )
            )

    def _send_text(self, request_id: str, text: str) -> None:
        self._event_ch.send_nowait(
            llm.ChatChunk(id=request_id, delta=llm.ChoiceDelta(role="assistant", content=text))
        )
