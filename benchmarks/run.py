"""pytest-agentsim benchmarks: the SPEC §9 targets, measured in one run.

    python benchmarks/run.py            # full run (~40 s)
    python benchmarks/run.py --quick    # CI-sized run (~15 s), no real-timing retry run
    python benchmarks/run.py --json out.json

What is measured (each line of the table has a target and PASS/MISS, or "info"):

1. Per-turn overhead of the plugin's path over a bare ``AgentSession.run`` with the same
   instant ``FakeLLM`` and no recording. (a) ``AgentSim.run`` (recording outputs, timeline,
   settle) against ``session.run(user_input=...)``, turn by turn; (b) the full runner
   ``run_scenario`` on a generated multi-turn scenario against a bare session that starts,
   plays the same turns and closes, reported per turn. A and B alternate in the same
   process and event loop (ABBA order), and the ratio is of medians over many samples.
2. Collection of 1,000 generated scenarios: ``pytest --agentsim --collect-only`` in a
   subprocess minus the same command on an empty directory; ``load_scenario_file`` alone.
3. Playout of 10 s of synthesized speech (``FakeTTS`` + the recording audio sink).
4. Three retried LLM faults then an answer under ``no_backoff()`` (what the plugin does by
   default) against the same scenario without faults, and once with real waits.
5. Peak RSS of ``pytest --agentsim`` running 100 scenarios against running 1.
6. Process mode per scenario over the same scenario in entrypoint mode in-process: a job
   forked from a warm server (target < 0.3 s), a cold child (reference), and the warm
   server's RSS.
7. Voice time (``benchmarks/voice.py``): ten minutes of spoken conversation on the virtual
   clock (target < 1 s of wall time), its timeline and metrics identical over 20 runs (5
   with ``--quick``), and the virtual clock's cost per text turn over a plain loop.

The machine is shared: medians and interleaving keep the ratios stable, absolute times move.
Ratio lines also show the same ratio in process CPU time ("cpu"), which other processes on
the machine do not inflate. Exit status: 1 only if a measurement broke (ERROR); a MISS is
reported, not raised, since one noisy run on a shared machine should not fail a build.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from livekit.agents import Agent, AgentSession

from pytest_agentsim.fakes import FakeLLM, FakeTTS, no_backoff
from pytest_agentsim.load.loader import Scenario, load_scenario_file
from pytest_agentsim.run.api import RunSettings, run_scenario
from pytest_agentsim.run.harness import AgentSim

sys.path.insert(0, str(Path(__file__).parent))  # benchmarks/voice.py, beside this file
from voice import bench_voice

INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
ANSWER = "Sure, we are open from nine to five, Monday to Friday."
QUESTION = "When are you open?"


# --------------------------------------------------------------------------- results
@dataclasses.dataclass
class Row:
    key: str
    what: str
    measured: str
    target: str
    status: str  # PASS, MISS, info, skipped, ERROR
    values: dict[str, Any] = dataclasses.field(default_factory=dict)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


@dataclasses.dataclass(frozen=True)
class Sizes:
    turn_blocks: int
    turns_per_block: int
    scenario_pairs: int
    scenario_turns: int
    collect_reps: int
    load_reps: int
    playout_reps: int
    retry_reps: int
    real_timing: bool


FULL = Sizes(
    turn_blocks=30,
    turns_per_block=25,
    scenario_pairs=80,
    scenario_turns=8,
    collect_reps=3,
    load_reps=5,
    playout_reps=20,
    retry_reps=10,
    real_timing=True,
)
QUICK = Sizes(
    turn_blocks=6,
    turns_per_block=25,
    scenario_pairs=14,
    scenario_turns=8,
    collect_reps=1,
    load_reps=2,
    playout_reps=8,
    retry_reps=4,
    real_timing=False,
)


# --------------------------------------------------------------------------- timing helpers
def paired_ratio_iqr(a: list[float], b: list[float]) -> tuple[float, float]:
    ratios = sorted(x / y for x, y in zip(a, b, strict=True) if y > 0)
    if len(ratios) < 4:
        return (min(ratios), max(ratios)) if ratios else (float("nan"), float("nan"))
    q = statistics.quantiles(ratios, n=4)
    return q[0], q[2]


async def timed(aw: Awaitable[Any]) -> float:
    t0 = time.perf_counter()
    await aw
    return time.perf_counter() - t0


@dataclasses.dataclass
class Samples:
    """Wall and process-CPU durations of one side of an A/B comparison.

    CPU time leaves out the time other processes on a shared machine take from us, so a
    wall-clock ratio that moves with the load can be checked against it."""

    wall: list[float] = dataclasses.field(default_factory=list)
    cpu: list[float] = dataclasses.field(default_factory=list)

    async def measure(self, aw: Awaitable[Any], *, keep: bool = True, per: int = 1) -> None:
        c0, t0 = time.process_time(), time.perf_counter()
        await aw
        t1, c1 = time.perf_counter(), time.process_time()
        if keep:
            self.wall.append((t1 - t0) / per)
            self.cpu.append((c1 - c0) / per)


def compare(key: str, what: str, a: Samples, b: Samples, limit: float) -> Row:
    """A row for "A costs at most ``limit`` times B", judged on the wall-clock medians."""
    wa, wb = statistics.median(a.wall), statistics.median(b.wall)
    ca, cb = statistics.median(a.cpu), statistics.median(b.cpu)
    ratio = wa / wb
    cpu_ratio = ca / cb if cb > 0 else float("nan")
    lo, hi = paired_ratio_iqr(a.wall, b.wall)
    return Row(
        key,
        what,
        f"{wa * 1e3:.2f} / {ms(wb)} = {ratio:.3f}x (cpu {cpu_ratio:.3f}x)",
        f"<= {limit:g}x",
        verdict(ratio <= limit),
        {
            "plugin_median_s": wa,
            "bare_median_s": wb,
            "ratio": ratio,
            "cpu_plugin_median_s": ca,
            "cpu_bare_median_s": cb,
            "cpu_ratio": cpu_ratio,
            "paired_ratio_iqr": [lo, hi],
            "n": len(a.wall),
        },
    )


def new_agent(_scenario: Scenario | None = None) -> Agent:
    return Agent(instructions="You are the front desk of a clinic. Answer briefly.")


def bare_session(fake: FakeLLM) -> AgentSession[Any]:
    """What a user would write without the plugin: no outputs, no recording."""
    return AgentSession(llm=fake, vad=None, turn_handling={"turn_detection": "manual"})


# --------------------------------------------------------------------------- 1. per turn
async def bench_turns(sizes: Sizes) -> list[Row]:
    a = Samples()  # AgentSim.run
    b = Samples()  # bare session.run
    spoken_ok = True
    for block in range(sizes.turn_blocks + 1):  # block 0 warms up and is discarded
        sim = AgentSim()
        await sim.start(new_agent())
        fake = FakeLLM()
        bare = bare_session(fake)
        await bare.start(new_agent())
        for i in range(sizes.turns_per_block):
            sim.fake_llm.add_response(ANSWER)
            fake.add_response(ANSWER)
            order = (True, False) if (i + block) % 2 == 0 else (False, True)
            for plugin in order:
                if plugin:
                    await a.measure(sim.run(QUESTION), keep=block > 0)
                else:
                    await b.measure(bare.run(user_input=QUESTION), keep=block > 0)
        spoken_ok &= len(sim.spoken) == sizes.turns_per_block and not sim.run_errors
        await sim.aclose()
        await bare.aclose()
        gc.collect()

    row = compare(
        "turn_agentsim_run",
        f"per turn: AgentSim.run / bare session.run (n={len(a.wall)})",
        a,
        b,
        1.25,
    )
    if not spoken_ok:
        row.status = "ERROR"
        row.measured += " [the plugin path did not record every reply]"
    return [row]


def scenario_yaml(n_turns: int, *, faults: int = 0) -> str:
    turns = []
    for i in range(n_turns):
        llm = [f"{{fault: server_error, times: {faults}}}"] if faults and i == 0 else []
        llm.append(f'"Answer number {i}: we are open nine to five."')
        turns.append(
            f"""
        - user: Question number {i}, when are you open?
          llm: [{", ".join(llm)}]
          expect:
            - message: {{contains: "Answer number {i}:"}}"""
        )
    return f"""name: bench
scenarios:
  - label: multi turn
    instructions: |
      You are a caller asking about opening hours.
    agentsim:
      turns:{"".join(turns)}
"""


def load_one(directory: Path, name: str, text: str) -> Scenario:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return load_scenario_file(path).scenarios[0]


async def bare_scenario(n_turns: int) -> None:
    fake = FakeLLM()
    for i in range(n_turns):
        fake.add_response(f"Answer number {i}: we are open nine to five.")
    session = bare_session(fake)
    await session.start(new_agent())
    for i in range(n_turns):
        await session.run(user_input=f"Question number {i}, when are you open?")
    await session.aclose()


async def bench_runner(sizes: Sizes, tmp: Path) -> list[Row]:
    n = sizes.scenario_turns
    scenario = load_one(tmp, "runner.scenarios.yaml", scenario_yaml(n))
    settings = RunSettings()
    a, b = Samples(), Samples()
    for i in range(sizes.scenario_pairs + 2):  # 2 warm-up pairs
        order = (True, False) if i % 2 == 0 else (False, True)
        for plugin in order:
            if plugin:
                await a.measure(run_scenario(scenario, new_agent, settings), keep=i >= 2, per=n)
            else:
                await b.measure(bare_scenario(n), keep=i >= 2, per=n)
    what = f"per turn: run_scenario / bare start+{n} runs+close (n={len(a.wall)})"
    return [compare("turn_run_scenario", what, a, b, 1.25)]


# --------------------------------------------------------------------------- scenario files
AGENT_MODULE = '''\
"""A small booking agent for the benchmark scenarios."""

from __future__ import annotations

from typing import Any

from livekit.agents import Agent, function_tool


class BookingAgent(Agent):
    def __init__(self, slots: list[str]) -> None:
        super().__init__(instructions="You book appointments at a clinic. Be brief.")
        self._slots = slots

    @function_tool
    async def list_slots(self, date: str) -> str:
        """List the free appointment slots on a date (YYYY-MM-DD)."""
        free = [s for s in self._slots if s.startswith(date)]
        return ", ".join(free) or "no free slots"


def make_agent(scenario: Any) -> BookingAgent:
    return BookingAgent(list(scenario.userdata.get("available_slots", [])))
'''


def scenario_entry(n: int) -> str:
    day = 1 + n % 28
    date = f"2026-06-{day:02d}"
    return f"""
  - label: Books the first free slot on {date} (case {n})
    instructions: |
      You are patient number {n}. Ask what is free on {date} and take the first time.
      If nothing is free, ask for the next day instead.
    agent_expectations: Lists the free slots and books exactly one.
    tags: {{feature: booking, case: "{n}"}}
    userdata:
      patient_id: {1000 + n}
      date_of_birth: 1990-04-{day:02d}
      created_at: 2026-05-{day:02d} 09:00:00
      available_slots: ["{date}T09:00", "{date}T14:30"]
      returning: yes
    agentsim:
      turns:
        - user: Anything free on {date}?
          llm:
            - tool_calls: [{{name: list_slots, arguments: {{date: "{date}"}}}}]
            - say: We have 09:00 and 14:30.
          expect:
            - function_call: {{name: list_slots, arguments: {{date: "{date}"}}}}
            - function_call_output: {{contains: "09:00"}}
            - message: {{contains: "09:00 and 14:30"}}
        - user: The first one, please.
          llm: ["You are booked for 09:00 on {date}."]
          expect:
            - message: "booked for 09:00"
"""


def write_project(directory: Path, files: int, per_file: int) -> list[Path]:
    """A project dir with ``agent.py`` and ``files`` scenario files of ``per_file`` each."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pytest.ini").write_text(INI, encoding="utf-8")
    (directory / "agent.py").write_text(AGENT_MODULE, encoding="utf-8")
    paths = []
    n = 0
    for f in range(files):
        body = [f"name: Booking suite {f}\nagentsim:\n  agent: agent:make_agent\nscenarios:"]
        for _ in range(per_file):
            body.append(scenario_entry(n))
            n += 1
        path = directory / f"booking_{f:02d}.scenarios.yaml"
        path.write_text("".join(body), encoding="utf-8")
        paths.append(path)
    return paths


def pytest_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "--agentsim", "-q", "-p", "no:cacheprovider", *args]


@dataclasses.dataclass
class ChildRun:
    wall: float
    cpu: float  # user + system seconds of the child
    maxrss_kib: int
    returncode: int
    output: str


def run_child(cmd: list[str], cwd: Path) -> ChildRun:
    """Run ``cmd`` and read its own peak RSS from ``wait4`` (not the max over all children)."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    # ru_maxrss is KiB on Linux
    cpu = usage.ru_utime + usage.ru_stime
    return ChildRun(wall, cpu, int(usage.ru_maxrss), proc.returncode, text)


# --------------------------------------------------------------------------- 2. collection
def _collected(output: str) -> str:
    """The item count from pytest's summary line ("1000 tests collected in 0.58s")."""
    for line in reversed(output.strip().splitlines()):
        words = line.split()
        if len(words) > 2 and words[1] in ("test", "tests") and words[2] == "collected":
            return f"{int(words[0]):,}" if words[0].isdigit() else words[0]
    return "?"


def bench_collection(sizes: Sizes, tmp: Path) -> list[Row]:
    full = tmp / "collect1000"
    paths = write_project(full, files=20, per_file=50)
    empty = tmp / "collect_empty"
    empty.mkdir()
    (empty / "pytest.ini").write_text(INI, encoding="utf-8")

    cmd = pytest_cmd("--collect-only")
    if sizes.collect_reps > 1:
        run_child(cmd, empty)  # warm the OS file cache first
    full_times, empty_times, full_cpu, empty_cpu = [], [], [], []
    collected_n = "?"
    ok = True
    for _ in range(sizes.collect_reps):
        e = run_child(cmd, empty)
        f = run_child(cmd, full)
        empty_times.append(e.wall)
        full_times.append(f.wall)
        empty_cpu.append(e.cpu)
        full_cpu.append(f.cpu)
        ok &= e.returncode == 5 and f.returncode == 0  # 5: no tests collected
        collected_n = _collected(f.output)
    f_med, e_med = statistics.median(full_times), statistics.median(empty_times)
    delta = f_med - e_med
    cpu_delta = statistics.median(full_cpu) - statistics.median(empty_cpu)
    rows = [
        Row(
            "collect_1000",
            "pytest --collect-only: 1,000 scenarios (20 files) - empty dir",
            f"{f_med:.2f} - {e_med:.2f} = {delta:.2f} s (cpu {cpu_delta:.2f} s), "
            f"{collected_n} items",
            "< 1 s",
            verdict(delta < 1.0 and ok) if ok else "ERROR",
            {
                "full_s": f_med,
                "empty_s": e_med,
                "delta_s": delta,
                "cpu_delta_s": cpu_delta,
                "reps": sizes.collect_reps,
            },
        )
    ]

    load_times = []
    count = 0
    for _ in range(sizes.load_reps):
        t0 = time.perf_counter()
        count = sum(len(load_scenario_file(p).scenarios) for p in paths)
        load_times.append(time.perf_counter() - t0)
    load = min(load_times)
    rows.append(
        Row(
            "load_1000",
            f"load_scenario_file, the same {count:,} scenarios (best of {sizes.load_reps})",
            f"{load * 1e3:.0f} ms = {load / max(count, 1) * 1e6:.0f} us/scenario",
            "(part of the 1 s)",
            "info",
            {"best_s": load, "scenarios": count},
        )
    )
    return rows


# --------------------------------------------------------------------------- 3. playout
def speech_text(chars: int) -> str:
    """``chars`` characters of plain sentences, ending with a full stop."""
    sentence = "Your appointment is confirmed for Monday at nine in the morning. "
    body = (sentence * (chars // len(sentence) + 1))[: chars - 1]
    return body[:-1] + "a." if body.endswith(" ") else body + "."


async def bench_playout(sizes: Sizes) -> list[Row]:
    text = speech_text(200)
    tts = FakeTTS(seconds_per_char=10.0 / len(text.strip()))
    sim = AgentSim(tts=tts)
    await sim.start(new_agent(), mode="audio")
    sink = sim._outputs.audio
    times: list[float] = []
    audio_s: list[float] = []
    for i in range(sizes.playout_reps + 2):
        t0 = time.perf_counter()
        handle = sim.session.say(text)
        await handle.wait_for_playout()
        dt = time.perf_counter() - t0
        if i >= 2:
            times.append(dt)
            audio_s.append(sum(s.duration for s in sink.segments if s.speech_id == handle.id))
    await sim.aclose()
    med = statistics.median(times)
    audio = statistics.median(audio_s)
    ok = abs(audio - 10.0) < 0.05
    return [
        Row(
            "playout_10s",
            f"say() of 10 s of FakeTTS audio until played out (n={len(times)})",
            f"{ms(med)} (max {max(times) * 1e3:.2f}), {audio:.2f} s recorded",
            "< 20 ms",
            verdict(med < 0.020) if ok else "ERROR",
            {"median_s": med, "max_s": max(times), "audio_s": audio},
        )
    ]


# --------------------------------------------------------------------------- 4. retries
async def bench_retries(sizes: Sizes, tmp: Path) -> list[Row]:
    faulty = load_one(tmp, "retry.scenarios.yaml", scenario_yaml(1, faults=3))
    clean = load_one(tmp, "clean.scenarios.yaml", scenario_yaml(1))
    settings = RunSettings()
    fault_times, clean_times = [], []
    skipped = 0.0
    calls = 0
    for i in range(sizes.retry_reps + 1):
        for with_faults in (True, False) if i % 2 == 0 else (False, True):
            with no_backoff() as nb:
                t0 = time.perf_counter()
                run = await run_scenario(faulty if with_faults else clean, new_agent, settings)
                dt = time.perf_counter() - t0
            if i == 0:
                continue
            if with_faults:
                fault_times.append(dt)
                skipped = nb.skipped_seconds
                assert isinstance(run.rec, AgentSim)
                calls = len(run.rec.fake_llm.calls)
            else:
                clean_times.append(dt)
    f, c = statistics.median(fault_times), statistics.median(clean_times)
    extra = f - c
    rows = [
        Row(
            "retry_no_backoff",
            f"3 retried LLM 503s + answer, no_backoff / no faults (n={len(fault_times)})",
            f"{f * 1e3:.2f} / {ms(c)}: +{ms(extra)}, {calls} calls, "
            f"{skipped:.1f} s backoff skipped",
            "< 50 ms extra",
            verdict(extra < 0.050 and calls == 4 and skipped > 0),
            {"fault_s": f, "clean_s": c, "extra_s": extra, "skipped_s": skipped, "calls": calls},
        )
    ]
    if sizes.real_timing:
        real = await timed(run_scenario(faulty, new_agent, RunSettings(real_timing=True)))
        rows.append(
            Row(
                "retry_real_timing",
                "the same with real waits (--agentsim-real-timing), once",
                f"{real:.2f} s = {real / f:.0f}x the no_backoff run",
                "(reference)",
                "info",
                {"real_s": real},
            )
        )
    else:
        rows.append(
            Row(
                "retry_real_timing",
                "the same with real waits (--agentsim-real-timing), once",
                "skipped (--quick)",
                "(reference)",
                "skipped",
            )
        )
    return rows


# --------------------------------------------------------------------------- process mode
PROCESS_SERVER = """\
from livekit.agents import Agent, AgentServer, AgentSession, JobContext, inference

server = AgentServer()


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    session = AgentSession(
        llm=inference.LLM("openai/gpt-4.1-mini"), tts=inference.TTS("cartesia/sonic-3")
    )
    await session.start(agent=Agent(instructions="Be brief."), room=ctx.room)
"""


def process_yaml(n_turns: int, mode: str) -> str:
    turns = "".join(
        f"        - user: Question {i}?\n"
        f'          llm: ["Answer number {i}."]\n'
        f"          expect: [{{message: {{contains: 'number {i}'}}}}]\n"
        for i in range(n_turns)
    )
    return (
        "name: Process bench\nagentsim: {agent: server.py, process: true}\nscenarios:\n"
        f"  - label: {mode}\n    agentsim:\n      mode: {mode}\n      turns:\n{turns}"
    )


async def bench_process(sizes: Sizes, tmp: Path) -> list[Row]:
    """Process mode: the child's start-up (spawn to session ready) and the cost of a turn
    (run_input request to its response), in text and in audio mode."""
    (tmp / "server.py").write_text(PROCESS_SERVER, encoding="utf-8")
    n = 10
    reps = 1 if sizes is QUICK else 3
    rows = []
    for mode in ("text", "audio"):
        scenario = load_one(tmp, f"process-{mode}.scenarios.yaml", process_yaml(n, mode))
        startups: list[float] = []
        turns: list[float] = []
        for _ in range(reps):
            run = await run_scenario(
                scenario,
                tmp / "server.py",
                RunSettings(mode=mode, keep_history=False, process=True),
            )
            startups.append(run.figures["startup_seconds"] or 0.0)
            turns.extend(run.figures["turn_seconds"])
        start, turn = statistics.median(startups), statistics.median(turns)
        rows.append(
            Row(
                f"process_{mode}",
                f"process mode, {mode}: child start-up; per turn (runs={reps}, turns={len(turns)})",
                f"start-up {start:.2f} s; turn {ms(turn)} (max {ms(max(turns))})",
                "(reference)",
                "info",
                {"startup_s": start, "turn_s": turn, "turn_max_s": max(turns)},
            )
        )
    return rows


async def bench_warm(sizes: Sizes, tmp: Path) -> list[Row]:
    """Process mode per scenario: a job forked from a warm server, and a cold child, each
    over the same scenario run in-process in entrypoint mode (2 text turns)."""
    import importlib.util

    from pytest_agentsim.run.drivers.warm_pool import WARM_POOL
    from pytest_agentsim.run.target import resolve_target

    (tmp / "server.py").write_text(PROCESS_SERVER, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("agentsim_bench_server", tmp / "server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    target = resolve_target(module.server)
    scenario = load_one(tmp, "warm.scenarios.yaml", process_yaml(2, "text"))
    n = 3 if sizes is QUICK else 8
    text = RunSettings(mode="text", keep_history=False)

    async def per_scenario(settings: RunSettings, target: Any, runs: int) -> list[float]:
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            await run_scenario(scenario, target, settings)
            times.append(time.perf_counter() - t0)
        return times

    agent_file = tmp / "server.py"
    warm = dataclasses.replace(text, process=True, warm=True)
    cold = dataclasses.replace(text, process=True, warm=False)
    try:
        await per_scenario(text, target, 2)  # imports and first-run costs out of the way
        t_first = await per_scenario(warm, agent_file, 1)  # starts the warm server
        rss = [_rss_kib(pid) for pid in WARM_POOL.server_pids()]
        t_in = await per_scenario(text, target, n)
        t_warm = await per_scenario(warm, agent_file, n)
        t_cold = await per_scenario(cold, agent_file, max(2, n // 2))
    finally:
        WARM_POOL.shutdown()
    base = statistics.median(t_in)
    over_warm = statistics.median(t_warm) - base
    over_cold = statistics.median(t_cold) - base
    return [
        Row(
            "process_warm",
            f"process mode per scenario over in-process entrypoint ({ms(base)}): warm job "
            f"(runs={n})",
            f"+{over_warm:.3f} s (first, with server start: {t_first[0]:.2f} s)",
            "< 0.3 s",
            verdict(over_warm < 0.3),
            {"inprocess_s": base, "warm_s": statistics.median(t_warm), "over_s": over_warm},
        ),
        Row(
            "process_cold",
            f"the same, cold child per scenario (runs={len(t_cold)})",
            f"+{over_cold:.3f} s",
            "(reference)",
            "info",
            {"cold_s": statistics.median(t_cold), "over_s": over_cold},
        ),
        Row(
            "process_warm_rss",
            "RSS of a warm server (agent file imported, prewarmed)",
            f"{(rss[0] if rss else 0) / 1024:.1f} MiB",
            "(no spec target)",
            "info",
            {"rss_kib": rss[0] if rss else None},
        ),
    ]


def _rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# --------------------------------------------------------------------------- 5. memory
def bench_memory(tmp: Path) -> list[Row]:
    many = tmp / "mem100"
    write_project(many, files=5, per_file=20)
    one = tmp / "mem1"
    write_project(one, files=1, per_file=1)
    r1 = run_child(pytest_cmd(), one)
    r100 = run_child(pytest_cmd(), many)
    rows: list[Row] = []
    for r, what in ((r1, "1 scenario"), (r100, "100 scenarios")):
        if r.returncode != 0:
            tail = "\n".join(r.output.strip().splitlines()[-15:])
            print(f"pytest on {what} failed (exit {r.returncode}):\n{tail}", file=sys.stderr)
    ok = r1.returncode == 0 and r100.returncode == 0
    per = (r100.maxrss_kib - r1.maxrss_kib) / 99
    rows.append(
        Row(
            "memory_100",
            "peak RSS, pytest --agentsim: 100 scenarios / 1 (2 turns each)",
            f"{r100.maxrss_kib / 1024:.1f} / {r1.maxrss_kib / 1024:.1f} MiB: "
            f"+{per:.0f} KiB/scenario",
            "(no spec target)",
            "info" if ok else "ERROR",
            {
                "rss_100_kib": r100.maxrss_kib,
                "rss_1_kib": r1.maxrss_kib,
                "per_scenario_kib": per,
            },
        )
    )
    per_run = (r100.wall - r1.wall) / 99
    rows.append(
        Row(
            "wall_100",
            "wall time, the same two pytest runs",
            f"{r100.wall:.2f} / {r1.wall:.2f} s: +{per_run * 1e3:.1f} ms/scenario",
            "(no spec target)",
            "info" if ok else "ERROR",
            {"wall_100_s": r100.wall, "wall_1_s": r1.wall, "per_scenario_s": per_run},
        )
    )
    return rows


# --------------------------------------------------------------------------- report
def machine_info() -> dict[str, Any]:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        affinity = os.cpu_count() or 0
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "usable_cores": affinity,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "livekit_agents": metadata.version("livekit-agents"),
        "pytest": metadata.version("pytest"),
        "pytest_agentsim": metadata.version("pytest-agentsim"),
    }
    with contextlib.suppress(OSError):
        info["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    return info


def print_table(rows: list[Row]) -> None:
    headers = ("#", "measurement", "measured", "target", "result")
    lines = [(str(i + 1), r.what, r.measured, r.target, r.status) for i, r in enumerate(rows)]
    widths = [max(len(h), *(len(line[c]) for line in lines)) for c, h in enumerate(headers)]
    widths[1] = min(widths[1], 72)

    def fmt(cells: tuple[str, ...]) -> str:
        out = []
        for c, cell in enumerate(cells):
            if c == 1 and len(cell) > widths[1]:
                cell = cell[: widths[1] - 1] + "…"
            out.append(cell.ljust(widths[c]))
        return "  ".join(out).rstrip()

    print(fmt(headers))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(fmt(line))


@contextlib.contextmanager
def quiet_livekit() -> Iterator[None]:
    """livekit logs every retried fault as a warning; keep the table readable."""
    logger = logging.getLogger("livekit")
    saved = logger.propagate
    handler = logging.NullHandler()
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = saved


def step(name: str, fn: Callable[[], list[Row]], rows: list[Row]) -> None:
    print(f"  {name}...", end="", flush=True, file=sys.stderr)
    t0 = time.perf_counter()
    try:
        rows.extend(fn())
    except Exception as e:  # one broken measurement must not hide the others
        rows.append(Row(name, name, f"{type(e).__name__}: {e}", "", "ERROR"))
    print(f" {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="CI-sized run (~15 s)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL

    info = machine_info()
    rows: list[Row] = []
    t_start = time.perf_counter()
    print("running benchmarks:", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="agentsim-bench-") as d, quiet_livekit():
        tmp = Path(d)
        step("per-turn (AgentSim.run)", lambda: asyncio.run(bench_turns(sizes)), rows)
        step("per-turn (run_scenario)", lambda: asyncio.run(bench_runner(sizes, tmp)), rows)
        step("collection", lambda: bench_collection(sizes, tmp), rows)
        step("playout", lambda: asyncio.run(bench_playout(sizes)), rows)
        step("retries", lambda: asyncio.run(bench_retries(sizes, tmp)), rows)
        step("process mode", lambda: asyncio.run(bench_process(sizes, tmp)), rows)
        step("warm process mode", lambda: asyncio.run(bench_warm(sizes, tmp)), rows)
        step("memory", lambda: bench_memory(tmp), rows)
        step(
            "voice time",
            lambda: bench_voice(tmp, new_agent, 5 if args.quick else 20, Row, scenario_yaml(8), 8),
            rows,
        )
    total = time.perf_counter() - t_start

    with contextlib.suppress(OSError):
        info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    load = " ".join(str(x) for x in info.get("loadavg", []))
    print()
    print(f"pytest-agentsim benchmarks ({'quick' if args.quick else 'full'} run, {total:.0f} s)")
    print(
        f"machine: {info['cores']} cores ({info['usable_cores']} usable), load {load or '?'}, "
        f"{info['platform']}, {info['implementation']} {info['python']}"
    )
    print(
        f"versions: livekit-agents {info['livekit_agents']}, pytest {info['pytest']}, "
        f"pytest-agentsim {info['pytest_agentsim']}"
    )
    cores = info["usable_cores"] or 1
    start_load = info.get("loadavg", [0.0])[0]
    end_load = info.get("loadavg_end", [0.0])[0]  # includes this run's own ~1 core
    if start_load > cores / 2 or end_load > cores / 2 + 1:
        busy = max(start_load, end_load)
        print(
            f"note: the machine was busy (1-min load up to {busy:.2f} on "
            f"{info['usable_cores']} cores): wall times are inflated; the cpu figures and "
            "the ratios hold up better"
        )
    print()
    print_table(rows)
    missed = [r for r in rows if r.status in ("MISS", "ERROR")]
    targets = sum(r.status in ("PASS", "MISS", "ERROR") for r in rows)
    print()
    print(f"{len(missed)} of {targets} targets missed" if missed else "all targets met")

    if args.json:
        payload = {
            "mode": "quick" if args.quick else "full",
            "total_s": total,
            "machine": info,
            "results": [dataclasses.asdict(r) for r in rows],
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    # a MISS on a noisy shared machine is a finding, not a crash: only broken
    # measurements (ERROR) fail the command
    return 1 if any(r.status == "ERROR" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
