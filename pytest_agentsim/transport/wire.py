"""What the fake gateway puts on the wire, independent of which transport carries it.

The respx routes, the loopback aiohttp server and the aioresponses callbacks all render the
same :class:`HTTPReply`, so an LLM answer or a fault looks byte-identical whichever client
stack asks for it. Nothing here does I/O; nothing here imports pytest.

Wire format: OpenAI chat completions, as ``api.openai.com`` and the LiveKit Inference gateway
(``/v1/chat/completions``) stream it: ``data: {chat.completion.chunk}`` SSE events, a final
chunk carrying ``finish_reason``, an optional usage chunk (``choices: []``) when the request
asks ``stream_options.include_usage``, then ``data: [DONE]``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..answers import LLMAnswer
from ..faults import Fault

__all__ = [
    "REDACTED",
    "REQUEST_ID_PREFIX",
    "Carrier",
    "HTTPReply",
    "Headers",
    "RequestKind",
    "TransportError",
    "chat_completion_reply",
    "fault_reply",
    "models_reply",
    "offered_tools",
    "partial_chunk_text",
    "redact_headers",
    "unscripted_reply",
]

REQUEST_ID_PREFIX = "req_agentsim_"
"""The fake gateway's ``x-request-id`` values (livekit logs quote them)."""

TransportError = Literal["connect", "timeout", "read"]
"""How a reply fails below HTTP: ``connect`` (no connection), ``timeout`` (no answer in
time), ``read`` (the connection drops while the body streams)."""

Carrier = Literal["respx", "http", "aiohttp", "ws"]
"""What carried a request to the gateway: ``respx`` (in-process httpx/httpx2), ``http``
(loopback server), ``aiohttp`` (aioresponses), ``ws`` (websocket handshake)."""
RequestKind = Literal["llm", "models", "stt", "tts"]
Headers = Sequence[tuple[str, str]] | Mapping[str, str]

REDACTED = "<redacted>"
# Headers that carry credentials; recorded requests never keep their values.
_SECRET_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "x-livekit-worker-token", "cookie"}
)

_CREATED = 1_700_000_000  # fixed, so recorded traffic and snapshots are stable


def partial_chunk_text(index: int) -> str:
    """Text of content chunk ``index`` (1-based) sent before ``disconnect_mid_stream`` drops.

    Same text as the in-process FakeLLM streams, so a scenario reads the same on either
    transport. A fault body may override it with ``{"chunks": [...]}``.
    """
    return f"Partial response {index}. "


@dataclasses.dataclass(frozen=True)
class HTTPReply:
    """One HTTP answer, transport-neutral.

    ``events`` are SSE payloads streamed one by one (each already ``data: ...\\n\\n``);
    ``body`` is a complete body. ``error`` makes the transport fail: before any response
    for ``connect``/``timeout``, after the streamed ``events`` for ``read``.
    """

    status: int = 200
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b""
    events: tuple[bytes, ...] = ()
    error: TransportError | None = None
    error_message: str = ""
    delay: float = 0.0  # seconds before the response starts (an answer's ttft)

    @property
    def streamed(self) -> bool:
        return bool(self.events) or self.error == "read"

    def full_body(self) -> bytes:
        """Body as one buffer (events joined), for transports that cannot stream."""
        return self.body + b"".join(self.events)


def redact_headers(headers: Mapping[str, str] | Sequence[tuple[str, str]]) -> dict[str, str]:
    """Header dict with credential values replaced by ``<redacted>`` (names lower-cased)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        out[key] = REDACTED if key in _SECRET_HEADERS else value
    return out


def _sse(payload: Mapping[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def _chunk(cid: str, model: str, delta: Mapping[str, Any], finish: str | None) -> bytes:
    return _sse(
        {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": _CREATED,
            "model": model,
            "system_fingerprint": "fp_agentsim",
            "choices": [
                {"index": 0, "delta": dict(delta), "logprobs": None, "finish_reason": finish}
            ],
        }
    )


def _count_tokens(value: Any) -> int:
    """A deterministic stand-in for a tokenizer: whitespace-separated words."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, Mapping):
        return sum(_count_tokens(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_tokens(v) for v in value)
    return 0


def _usage(request: Mapping[str, Any], answer: LLMAnswer) -> dict[str, Any]:
    prompt = max(1, _count_tokens(request.get("messages", [])))
    completion = _count_tokens(answer.text or "") + sum(
        1 + _count_tokens(tc.arguments_json) for tc in answer.tool_calls
    )
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _tool_call_id(call_number: int, index: int, given: str | None) -> str:
    return given or f"call_agentsim_{call_number}_{index}"


def chat_completion_reply(
    request: Mapping[str, Any], answer: LLMAnswer, call_number: int
) -> HTTPReply:
    """The completion for ``answer``: SSE when the request streams, else one JSON object."""
    model = str(request.get("model") or "agentsim")
    cid = f"chatcmpl-agentsim-{call_number}"
    finish = "tool_calls" if answer.tool_calls else "stop"
    headers = {"x-request-id": f"{REQUEST_ID_PREFIX}{call_number}"}
    if not request.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None}
        if answer.tool_calls:
            message["tool_calls"] = [
                {
                    "id": _tool_call_id(call_number, i, tc.call_id),
                    "type": "function",
                    "function": {"name": tc.name, "arguments": tc.arguments_json},
                }
                for i, tc in enumerate(answer.tool_calls)
            ]
        body = {
            "id": cid,
            "object": "chat.completion",
            "created": _CREATED,
            "model": model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": _usage(request, answer),
        }
        return HTTPReply(
            headers={**headers, "content-type": "application/json"},
            body=json.dumps(body).encode(),
            delay=answer.ttft or 0.0,
        )

    events = [_chunk(cid, model, {"role": "assistant", "content": "", "refusal": None}, None)]
    events.extend(_chunk(cid, model, {"content": text}, None) for text in answer.text_chunks())
    for i, tc in enumerate(answer.tool_calls):
        # name first, arguments in a second delta: the shape OpenAI streams and the one
        # livekit's parser accumulates (it joins argument fragments per tool index)
        start = {
            "index": i,
            "id": _tool_call_id(call_number, i, tc.call_id),
            "type": "function",
            "function": {"name": tc.name, "arguments": ""},
        }
        events.append(_chunk(cid, model, {"tool_calls": [start]}, None))
        args = {"index": i, "function": {"arguments": tc.arguments_json}}
        events.append(_chunk(cid, model, {"tool_calls": [args]}, None))
    events.append(_chunk(cid, model, {}, finish))
    options = request.get("stream_options")
    if isinstance(options, Mapping) and options.get("include_usage"):
        events.append(
            _sse(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": _CREATED,
                    "model": model,
                    "choices": [],
                    "usage": _usage(request, answer),
                }
            )
        )
    events.append(_sse("[DONE]"))
    return HTTPReply(
        headers={**headers, "content-type": "text/event-stream; charset=utf-8"},
        events=tuple(events),
        delay=answer.ttft or 0.0,
    )


def fault_reply(request: Mapping[str, Any], fault: Fault, call_number: int) -> HTTPReply:
    """How the gateway answers a request that ``fault`` hits."""
    if fault.kind == "timeout":
        return HTTPReply(error="timeout", error_message=fault.message)
    if fault.kind == "connection_error":
        return HTTPReply(error="connect", error_message=fault.message)
    if fault.kind == "disconnect_mid_stream":
        model = str(request.get("model") or "agentsim")
        cid = f"chatcmpl-agentsim-{call_number}"
        custom = (fault.body or {}).get("chunks")
        texts = (
            [str(t) for t in custom][: fault.after_chunks]
            if isinstance(custom, list)
            else [partial_chunk_text(i) for i in range(1, fault.after_chunks + 1)]
        )
        events = [_chunk(cid, model, {"role": "assistant", "content": ""}, None)]
        events.extend(_chunk(cid, model, {"content": t}, None) for t in texts)
        return HTTPReply(
            headers={"content-type": "text/event-stream; charset=utf-8"},
            events=tuple(events),
            error="read",
            error_message=fault.message,
        )
    status = fault.status
    body: Mapping[str, Any] | None = fault.body
    if status is None:
        # terminal(): a non-retryable rejection; 400 is what the clients never retry
        status = 400
        body = body or {
            "error": {
                "message": fault.message,
                "type": "invalid_request_error",
                "code": "agentsim_terminal",
            }
        }
    if body is None:
        body = {"error": {"message": fault.message, "type": fault.kind}}
    headers = {
        "content-type": "application/json",
        "x-request-id": f"{REQUEST_ID_PREFIX}{call_number}",
        **fault.headers,
    }
    return HTTPReply(status=status, headers=headers, body=json.dumps(dict(body)).encode())


def unscripted_reply(resource: str, call_number: int) -> HTTPReply:
    """Answer to a call nothing was scripted for: a 400 (never retried) that says so."""
    message = (
        f"pytest-agentsim: {resource} call {call_number} has no scripted answer; "
        f"script it with inference_gateway.add_response(...) / add_fault(...)"
    )
    body = {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "code": "agentsim_unscripted",
        }
    }
    return HTTPReply(
        status=400, headers={"content-type": "application/json"}, body=json.dumps(body).encode()
    )


def models_reply(model_ids: Sequence[str]) -> HTTPReply:
    """``GET /models``: livekit's LLM prewarm (and openai's ``models.list()``)."""
    data = [
        {"id": m, "object": "model", "created": _CREATED, "owned_by": "agentsim"} for m in model_ids
    ]
    return HTTPReply(
        headers={"content-type": "application/json"},
        body=json.dumps({"object": "list", "data": data}).encode(),
    )


def offered_tools(request: Mapping[str, Any]) -> frozenset[str]:
    """The tool names a chat-completions request offers (OpenAI's ``tools`` list)."""
    names = set()
    for tool in request.get("tools") or ():
        if isinstance(tool, Mapping):
            fn = tool.get("function")
            name = fn.get("name") if isinstance(fn, Mapping) else tool.get("name")
            if isinstance(name, str):
                names.add(name)
    return frozenset(names)
