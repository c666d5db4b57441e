"""Failure modes the fakes and the fake gateway can inject.

A :class:`Fault` describes one failure *as the wire shows it* (status, JSON body, headers)
and *as the livekit client raises it* (:meth:`Fault.to_exception`), so the in-process fakes
and the transport-level gateway inject the same thing. Its schedule (``on_call``, ``times``)
says which calls of a resource it hits. This module never imports pytest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Generic, Literal, TypeVar

__all__ = [
    "CREDIT_CATEGORIES",
    "FAULT_NAMES",
    "RATE_CATEGORIES",
    "CallScript",
    "Fault",
    "ScriptExhausted",
    "connection_error",
    "disconnect_mid_stream",
    "quota_exceeded",
    "rate_limited",
    "server_error",
    "terminal",
    "timeout",
]

Resource = Literal["llm", "stt", "tts"]

# Credit exhaustion does not get better by retrying; rate limits do.
CREDIT_CATEGORIES = ("MaxGatewayCredits", "MaxBargeInRequests", "MaxEotRequests")
RATE_CATEGORIES = ("MaxConcurrentGatewayLLMRpm", "MaxConcurrentGatewayLLMTpm")

_QUOTA_HINTS = {
    "MaxGatewayCredits": "LiveKit Inference credits are exhausted; add credits or upgrade.",
    "MaxBargeInRequests": "The barge-in request quota is exhausted; upgrade your plan.",
    "MaxEotRequests": "The end-of-turn request quota is exhausted; upgrade your plan.",
    "MaxConcurrentGatewayLLMRpm": "Too many LLM requests per minute; slow down or raise it.",
    "MaxConcurrentGatewayLLMTpm": "Too many LLM tokens per minute; slow down or raise your limit.",
}


@dataclasses.dataclass(frozen=True)
class Fault:
    """One failure mode plus the calls it applies to.

    ``on_call`` is the 1-based index of the resource's first failing call (``None``: the
    next call after the fault is queued). ``times`` is how many consecutive calls fail
    (``None``: every call from then on). After that, calls succeed again ("then: ok").
    """

    kind: str
    message: str
    status: int | None = None
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    retryable: bool = True
    terminal: bool = False
    after_chunks: int = 0
    on_call: int | None = None
    times: int | None = 1

    # -- schedule builders (return copies, so a fault can be reused) ---------------------
    def on(self, call: int) -> Fault:
        """Fail starting at the resource's ``call``-th call (1-based)."""
        if call < 1:
            raise ValueError(f"on_call must be >= 1, got {call}")
        return dataclasses.replace(self, on_call=call)

    def repeat(self, times: int | None) -> Fault:
        """Fail ``times`` consecutive calls (``None``: every call)."""
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1 or None, got {times}")
        return dataclasses.replace(self, times=times)

    def always(self) -> Fault:
        return self.repeat(None)

    def describe(self) -> str:
        """One line for transcripts: ``quota_exceeded(429 MaxGatewayCredits)``."""
        detail = []
        if self.status is not None:
            detail.append(str(self.status))
        if self.body and "category" in self.body:
            detail.append(str(self.body["category"]))
        if self.kind == "disconnect_mid_stream":
            detail.append(f"after {self.after_chunks} chunks")
        return f"{self.kind}({' '.join(detail)})" if detail else self.kind

    def log_texts(self) -> frozenset[str]:
        """The distinctive texts of this failure (its message, the strings of its body):
        what livekit's logs quote when they report it."""
        texts = {self.message}
        stack: list[Any] = [self.body]
        while stack:
            value = stack.pop()
            if isinstance(value, str):
                texts.add(value)
            elif isinstance(value, Mapping):
                stack.extend(value.values())
            elif isinstance(value, list | tuple):
                stack.extend(value)
        return frozenset(t for t in texts if len(t) >= 12)  # short ones match anything

    def to_exception(self) -> Exception:
        """What the real livekit client raises for this failure, on the installed version.

        On releases with the proposed upstream API (``InferenceQuotaExceededError``,
        ``APIError.terminal``), quota faults raise the typed error and terminal faults set
        ``terminal=True``; on 1.8.x they raise what the inference client raises today.
        """
        from livekit.agents import _exceptions as exc

        err: Exception
        if self.kind in ("timeout",):
            err = exc.APITimeoutError(retryable=self.retryable)
        elif self.kind in ("connection_error", "disconnect_mid_stream"):
            err = exc.APIConnectionError(self.message, retryable=self.retryable)
        elif self.kind == "quota_exceeded" and hasattr(exc, "InferenceQuotaExceededError"):
            typed = exc.InferenceQuotaExceededError
            err = typed(
                self.message,
                status_code=self.status or 429,
                body=dict(self.body or {}),
                retryable=self.retryable,
            )
        elif self.status is not None:
            # Today's client passes its stream's own retry flag for every HTTP error and
            # APIStatusError keeps 408/429/499/5xx retryable; only the proposed terminal
            # API lets a credit 429 say "don't retry".
            retryable = self.retryable if _has_terminal_api() else True
            # What livekit's OpenAI-based clients raise today: the openai SDK unwraps the
            # JSON body to its "error" member and names only the status, so the gateway's
            # structured quota fields (category, quota_type, ...) never reach the agent.
            body: Any = dict(self.body) if self.body else None
            if isinstance(body, dict) and "error" in body:
                body = body["error"]
            err = exc.APIStatusError(
                f"Error code: {self.status}",
                status_code=self.status,
                body=body,
                retryable=retryable,
            )
        else:
            err = exc.APIError(self.message, body=None, retryable=self.retryable)
        if self.terminal and hasattr(exc.APIError, "terminal"):
            err.terminal = True  # type: ignore[attr-defined]
        return err


T = TypeVar("T")


class ScriptExhausted(LookupError):
    """A model call arrived with nothing scripted for it."""


class CallScript(Generic[T]):
    """What one resource (LLM, STT or TTS) answers, call by call.

    Two ways to script a failure, as SPEC §5 describes:

    * queued (``on_call is None``): the fault takes its place in the answer queue, so
      ``add(A); add_fault(F); add(B)`` answers A, fails ``F.times`` calls, then answers B;
      ``times=None`` keeps failing every later call.
    * scheduled (``on_call=N``): calls N .. N+times-1 fail whatever is queued, and do not
      consume queued answers ("fail then recover": the queue resumes afterwards).

    Fakes and the gateway call :meth:`next` once per model call.
    """

    def __init__(self) -> None:
        self._queue: list[T | Fault] = []
        self._remaining: dict[int, int | None] = {}  # id(queued fault) -> calls left
        self._scheduled: list[Fault] = []
        self.calls = 0
        self.fired: list[tuple[int, Fault]] = []  # (call number, fault)
        # called with (call number, fault) whenever a call fails, for timelines of
        # servers (the gateway) that have no observer API of their own
        self.fault_observers: list[Callable[[int, Fault], None]] = []

    def add(self, answer: T) -> None:
        self._queue.append(answer)

    def add_fault(self, fault: Fault) -> None:
        if any(f is fault for f in self._queue) or any(f is fault for f in self._scheduled):
            # the same object queued twice would share one countdown (keyed by id): copy it
            fault = dataclasses.replace(fault)
        if fault.on_call is not None:
            self._scheduled.append(fault)
        else:
            self._queue.append(fault)
            self._remaining[id(fault)] = fault.times

    def _scheduled_for(self, n: int) -> Fault | None:
        for fault in self._scheduled:
            assert fault.on_call is not None
            if n >= fault.on_call and (fault.times is None or n < fault.on_call + fault.times):
                return fault
        return None

    def has_next(self) -> bool:
        """Whether the next call would get a scripted answer or fault (not exhaustion)."""
        return self._scheduled_for(self.calls + 1) is not None or bool(self._queue)

    def peek(self) -> T | Fault | None:
        """What :meth:`next` would return, without consuming it (None: nothing scripted)."""
        fault = self._scheduled_for(self.calls + 1)
        if fault is not None:
            return fault
        return self._queue[0] if self._queue else None

    def persistent_fault(self) -> Fault | None:
        """The fault that fails every call from the next one on (``times: always`` at the
        head of the queue or scheduled from here), if any: the credits are gone for good."""
        for fault in self._scheduled:
            assert fault.on_call is not None
            if fault.times is None and fault.on_call <= self.calls + 1:
                return fault
        head = self._queue[0] if self._queue else None
        if isinstance(head, Fault) and self._remaining.get(id(head), 0) is None:
            return head
        return None

    def next(self) -> T | Fault:
        """The answer for the next call; raises :class:`ScriptExhausted` if none."""
        answer = self._next()
        if isinstance(answer, Fault):
            for fn in self.fault_observers:
                fn(self.calls, answer)
        return answer

    def _next(self) -> T | Fault:
        self.calls += 1
        n = self.calls
        fault = self._scheduled_for(n)
        if fault is not None:
            self.fired.append((n, fault))
            return fault
        if not self._queue:
            raise ScriptExhausted(f"call {n} has no scripted answer")
        head = self._queue[0]
        if isinstance(head, Fault):
            left = self._remaining[id(head)]
            if left is not None:
                left -= 1
                self._remaining[id(head)] = left
                if left <= 0:
                    self._queue.pop(0)
            self.fired.append((n, head))
            return head
        self._queue.pop(0)
        return head

    def unused(self) -> list[T | Fault]:
        """Scripted answers and faults that never fired (persistent faults that fired count
        as used; scheduled faults whose calls never came are unused)."""
        fired_ids = {id(f) for _, f in self.fired}
        out: list[T | Fault] = [
            q
            for q in self._queue
            if not (isinstance(q, Fault) and q.times is None and id(q) in fired_ids)
        ]
        out.extend(f for f in self._scheduled if id(f) not in fired_ids)
        return out

    def clear(self) -> None:
        self._queue.clear()
        self._remaining.clear()
        self._scheduled.clear()


# -- constructors (also the names YAML `fault:` accepts) ------------------------------


def _quota(
    category: str, quota_type: str, hint: str | None, remaining_limit: str, message: str | None
) -> Fault:
    terminal_ = category not in RATE_CATEGORIES
    dim = {"llm": "Credits", "stt": "Credits", "tts": "Credits"}.get(quota_type, "Credits")
    if category.endswith("Rpm"):
        dim = "RPM"
    elif category.endswith("Tpm"):
        dim = "TPM"
    error = message or (
        f"inference quota exceeded: {category}" if terminal_ else f"rate limit exceeded: {category}"
    )
    body = {
        "type": "inference_quota_exceeded",
        "error": error,
        "quota_type": quota_type,
        "category": category,
        "hint": hint if hint is not None else _QUOTA_HINTS.get(category, ""),
        "remaining_limit": remaining_limit,
    }
    limits = {"Credits": ("100", "100"), "RPM": ("60", "60"), "TPM": ("100000", "100000")}
    headers: dict[str, str] = {}
    for d, (limit, used) in limits.items():
        headers[f"X-LiveKit-Inference-{d}-Limit"] = limit
        headers[f"X-LiveKit-Inference-{d}-Used"] = used if d == dim else "0"
    # Today's client (1.8.x) treats every 429 as retryable; `terminal` says whether
    # retrying could ever help, which is what the proposed upstream API exposes.
    return Fault(
        kind="quota_exceeded" if terminal_ else "rate_limited",
        message=error,
        status=429,
        body=body,
        headers=headers,
        # whether retrying can help; 1.8.x clients retry every 429 anyway (to_exception)
        retryable=not terminal_,
        terminal=terminal_,
        # credits do not come back within a conversation: fail every later call unless
        # the user schedules recovery (`times`, `then: ok`)
        times=None if terminal_ else 1,
    )


def _has_terminal_api() -> bool:
    try:
        from livekit.agents import _exceptions as exc
    except ImportError:  # pragma: no cover - livekit-agents is a hard dependency
        return False
    return hasattr(exc, "InferenceQuotaExceededError") or hasattr(exc.APIError, "terminal")


def quota_exceeded(
    category: str = "MaxGatewayCredits",
    quota_type: str = "llm",
    hint: str | None = None,
    remaining_limit: str = "0",
    message: str | None = None,
) -> Fault:
    """The gateway's HTTP 429 ``inference_quota_exceeded`` answer."""
    if category not in CREDIT_CATEGORIES + RATE_CATEGORIES:
        raise ValueError(
            f"unknown quota category {category!r}; expected one of "
            f"{', '.join(CREDIT_CATEGORIES + RATE_CATEGORIES)}"
        )
    return _quota(category, quota_type, hint, remaining_limit, message)


def rate_limited(
    category: str = "MaxConcurrentGatewayLLMRpm",
    quota_type: str = "llm",
    hint: str | None = None,
    remaining_limit: str = "0",
    message: str | None = None,
) -> Fault:
    """A retryable 429 from the gateway's rate limiter."""
    if category not in RATE_CATEGORIES:
        raise ValueError(f"rate_limited category must be one of {', '.join(RATE_CATEGORIES)}")
    return _quota(category, quota_type, hint, remaining_limit, message)


def server_error(status: int = 503, message: str | None = None) -> Fault:
    if not 500 <= status <= 599:
        raise ValueError(f"server_error status must be 5xx, got {status}")
    msg = message or f"server error {status}"
    return Fault(
        kind="server_error",
        message=msg,
        status=status,
        body={"error": {"message": msg, "type": "server_error"}},
    )


def timeout(message: str = "Request timed out.") -> Fault:
    return Fault(kind="timeout", message=message)


def connection_error(message: str = "Connection error.") -> Fault:
    return Fault(kind="connection_error", message=message)


def disconnect_mid_stream(
    after_chunks: int = 1, message: str = "Connection dropped mid-stream."
) -> Fault:
    """The stream starts, delivers ``after_chunks`` chunks, then the connection drops.

    Once output has reached the user, the client does not retry (livekit marks the
    error non-retryable after the first chunk), so this is the fault for that path.
    """
    if after_chunks < 0:
        raise ValueError("after_chunks must be >= 0")
    return Fault(
        kind="disconnect_mid_stream",
        message=message,
        after_chunks=after_chunks,
        retryable=after_chunks == 0,
    )


def terminal(message: str = "terminal error") -> Fault:
    """A non-retryable error (``terminal=True`` where livekit-agents has that attribute)."""
    return Fault(kind="terminal", message=message, status=None, retryable=False, terminal=True)


FAULT_NAMES: dict[str, Callable[..., Fault]] = {
    "quota_exceeded": quota_exceeded,
    "rate_limited": rate_limited,
    "server_error": server_error,
    "timeout": timeout,
    "connection_error": connection_error,
    "disconnect_mid_stream": disconnect_mid_stream,
    "terminal": terminal,
}
