"""Conversation metrics, shaped as LiveKit's simulator reports them (SPEC §10).

The cloud simulator reports each job's ``SimulationRun.JobMetrics``
(``livekit.protocol.agent_simulation``). A scripted run on the virtual clock has the same
figures, exact and identical on every run: per user turn, when the user finished and when
the agent started speaking (its first audio in ``mode: audio``, its first text otherwise),
whether it answered at all, and what the scenario's ``timing:`` gave the models.
:func:`job_metrics` builds the message and returns its protojson (``MessageToDict``), so a
local run and a cloud run can be compared with one tool.

What is computed here, and how (figures in milliseconds on the scenario's clock, from the
start of the run):

* per turn: the user's turn (``start_ms``/``end_ms``: when it was sent; text turns have no
  duration), then the agent's (``start_ms``: first speech, ``end_ms``: the turn's end,
  ``e2e_latency_ms``: first speech minus the user's end; ``heard_e2e_latency_ms`` the same
  in ``mode: audio``; ``llm_ttft_ms``/``tts_ttfb_ms`` from ``timing``/``ttft``;
  ``unanswered``: nothing spoken; ``awkward_silence``: a latency over
  :data:`AWKWARD_SILENCE` seconds);
* conversation: latency p50/p95/p99 (nearest rank) over answered turns, their count of
  unanswered turns and awkward silences, ``e2e_latency_ms`` the median;
* ``end_reason``: the agent ended the call, or the scenario's turns ran out.

Not computed (they need spoken user turns or a judge): STT/TTS word error rates,
turn-taking scores, false interruptions, backchannels, task completion.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from google.protobuf.json_format import MessageToDict
from livekit.protocol.agent_simulation import SimulationRun

__all__ = ["AWKWARD_SILENCE", "TurnTiming", "job_metrics"]

AWKWARD_SILENCE = 2.0
"""Seconds of waiting for the agent that this plugin counts as an awkward silence."""

_ROLES: Any = SimulationRun.JobMetrics.Turn.DESCRIPTOR.fields_by_name["role"].enum_type
_USER, _ASSISTANT = (_ROLES.values_by_name[r].number for r in ("USER", "ASSISTANT"))


@dataclasses.dataclass
class TurnTiming:
    """One user turn on the scenario's clock (loop seconds)."""

    index: int  # the scripted turn, 0-based
    user: str
    asked: float  # the user finished
    spoke: float | None  # the agent's first speech after it
    done: float  # the turn was over
    agent_text: str = ""
    llm_ttft: float | None = None
    tts_ttfb: float | None = None  # its first synthesis's (a `tts:` step's, or `timing`'s)
    began: float | None = None  # the user started speaking (spoken turns; else = asked)


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _rank(values: list[int], pct: float) -> int:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def job_metrics(
    turns: list[TurnTiming],
    *,
    t0: float,
    audio: bool,
    llm_ttft: float | None,
    tts_ttfb: float | None,
    agent_ended: bool,
    false_interruptions: int = 0,
) -> dict[str, Any]:
    """The run's ``JobMetrics`` as protojson (camelCase keys, defaults left out)."""
    m = SimulationRun.JobMetrics()
    latencies: list[int] = []
    awkward = unanswered = 0
    for n, t in enumerate(turns):
        asked = _ms(t.asked - t0)
        began = _ms(t.began - t0) if t.began is not None else asked
        m.turns.add(index=2 * n, role=_USER, text=t.user, start_ms=began, end_ms=asked)
        agent = m.turns.add(
            index=2 * n + 1, role=_ASSISTANT, text=t.agent_text, end_ms=_ms(t.done - t0)
        )
        if t.llm_ttft is not None:
            agent.llm_ttft_ms = _ms(t.llm_ttft)
        if audio and t.tts_ttfb is not None:
            agent.tts_ttfb_ms = _ms(t.tts_ttfb)
        if t.spoke is None:
            agent.unanswered = True
            unanswered += 1
            continue
        latency = _ms(t.spoke - t.asked)
        latencies.append(latency)
        agent.start_ms = _ms(t.spoke - t0)
        agent.e2e_latency_ms = latency
        if audio:
            agent.heard_e2e_latency_ms = latency
        if t.spoke - t.asked > AWKWARD_SILENCE:
            agent.awkward_silence = True
            awkward += 1
    conv = m.conversation
    conv.unanswered_turns = unanswered
    conv.awkward_silence_count = awkward
    conv.false_interruption_count = false_interruptions
    if latencies:
        conv.e2e_latency_ms = _rank(latencies, 50)
        if audio:
            conv.heard_e2e_latency_p50_ms = _rank(latencies, 50)
            conv.heard_e2e_latency_p95_ms = _rank(latencies, 95)
            conv.heard_e2e_latency_p99_ms = _rank(latencies, 99)
    if llm_ttft is not None:
        m.llm.ttft_ms = _ms(llm_ttft)
    if audio and tts_ttfb is not None:
        m.tts.ttfb_ms = _ms(tts_ttfb)
    reasons: Any = SimulationRun.JobMetrics.EndReason
    m.end_reason = reasons.Value(
        "END_REASON_AGENT_ENDED" if agent_ended else "END_REASON_SCENARIO_COMPLETED"
    )
    return MessageToDict(m)
