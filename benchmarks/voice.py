"""Voice-time benchmarks (SPEC §10 targets), used by ``benchmarks/run.py``.

* Ten minutes of conversation time (spoken turns at 150 words a minute, provider delays,
  the caller's pauses and silences, a barge-in) played on the virtual clock: wall time,
  target under 1 s.
* The same scenario run 20 times (serially, each on a fresh virtual clock): its timeline
  and metrics are byte-identical.
* The virtual clock's own cost per text turn: ``run_scenario`` on the virtual clock over
  the same on a plain asyncio loop (the per-turn benchmark's loop), reported.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_agentsim.load.loader import Scenario, load_scenario_file
from pytest_agentsim.run.api import RunSettings, VirtualClockLoop, run_scenario

__all__ = ["bench_voice"]

TOUR = (
    "The old town was founded in the twelfth century, and its walls still stand on three "
    "sides; the market square hosts a fair every Saturday from spring to autumn."
)


def ten_minutes_yaml() -> str:
    """Nine exchanges of about 70 s each: the caller thinks (45 s), speaks, the models
    take their time, the agent speaks, the caller stays silent (20 s); one barge-in."""
    turns = []
    for i in range(9):
        barge = i == 5  # talks over the reply to the turn before
        turns.append(
            f"""        - user: Tell me a little more about the old town, please, number {i}?
          {"interrupt: 2" if barge else "pause: 45"}
          llm: ["{TOUR}"]
"""
        )
        if i != 4:
            turns.append("        - silence: 20\n")
    return f"""name: ten minutes
agentsim:
  mode: audio
  timing: {{llm_ttft: 0.7, tts_ttfb: 0.3, stt_delay: 0.25, words_per_minute: 150}}
scenarios:
  - label: a long call
    agentsim:
      turns:
{"".join(turns)}"""


def _play(
    scenario: Scenario, make_agent: Callable[..., Any], loop: Any, mode: str = "audio"
) -> tuple[float, str]:
    runner = asyncio.Runner(loop_factory=loop)
    try:
        t0 = time.perf_counter()
        run = runner.run(run_scenario(scenario, make_agent, RunSettings(mode=mode, timeout=300)))  # type: ignore[arg-type]
        wall = time.perf_counter() - t0
    finally:
        runner.close()
    record = json.dumps(
        {
            "timeline": [(e.turn, e.kind, e.text) for e in run.timeline],
            "metrics": run.metrics,
        },
        sort_keys=True,
    )
    return wall, record


def bench_voice(
    tmp: Path, make_agent: Callable[..., Any], runs: int, row: Any, text_yaml: str, n_turns: int
) -> list[Any]:
    """``row(key, what, measured, target, status, data)`` builds a table row;
    ``text_yaml`` is a text scenario of ``n_turns`` turns (the per-turn benchmark's)."""
    path = tmp / "voice.scenarios.yaml"
    path.write_text(ten_minutes_yaml(), encoding="utf-8")
    scenario = load_scenario_file(path).scenarios[0]
    walls, records = [], []
    for _ in range(runs):
        wall, record = _play(scenario, make_agent, VirtualClockLoop)
        walls.append(wall)
        records.append(record)
    metrics = json.loads(records[0])["metrics"] or {}
    turns = metrics.get("turns", [])
    conversation_s = max((t.get("endMs", 0) for t in turns), default=0) / 1000
    wall = statistics.median(walls)
    identical = len(set(records)) == 1
    ok = conversation_s >= 600
    text = tmp / "voice_text.scenarios.yaml"
    text.write_text(text_yaml, encoding="utf-8")
    plain_scenario = load_scenario_file(text).scenarios[0]
    virtual, plain = [], []
    for i in range(max(runs, 10)):
        order = (True, False) if i % 2 else (False, True)  # alternate: the machine drifts
        for on_clock in order:
            loop = VirtualClockLoop if on_clock else asyncio.new_event_loop
            taken = _play(plain_scenario, make_agent, loop, mode="text")[0] / n_turns
            (virtual if on_clock else plain).append(taken)
    v, p = statistics.median(virtual), statistics.median(plain)
    return [
        row(
            "voice_clock_cost",
            f"per text turn: run_scenario on the virtual clock / a plain loop (n={len(virtual)})",
            f"{v * 1e3:.2f} / {p * 1e3:.2f} ms = {v / p:.3f}x",
            "(reference)",
            "info",
            {"virtual_s": v, "plain_s": p},
        ),
        row(
            "voice_ten_minutes",
            f"{conversation_s / 60:.1f} min of conversation (spoken turns, delays, silences)",
            f"{wall * 1e3:.0f} ms wall (median of {runs})",
            "< 1 s",
            ("PASS" if wall < 1.0 else "MISS") if ok else "ERROR",
            {"wall_s": wall, "conversation_s": conversation_s},
        ),
        row(
            "voice_identical",
            f"the same scenario, {runs} runs: timeline and metrics",
            "byte-identical" if identical else f"{len(set(records))} different",
            "identical",
            "PASS" if identical else "MISS",
            {"distinct": len(set(records))},
        ),
    ]
