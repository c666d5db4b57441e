"""pytest entry point (``pytest11: agentsim``): options, ini keys, markers, collection hooks.

Kept thin on purpose: the engine (:mod:`pytest_agentsim.run`) never imports pytest, and
the plugin loads it (and so livekit) only when a scenario or fixture runs, so a pytest run
that does not use the plugin pays nothing for it (``import livekit.agents`` costs ~2 s).
"""

from __future__ import annotations

import fnmatch
import sys
import warnings
from collections.abc import Generator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from .cassettes import unused_summary
from .collect import DisabledScenarioFile, ScenarioItem, ScenarioYamlFile
from .fixtures import (
    agentsim,
    agentsim_judge,
    agentsim_scenario,
    fake_llm,
    fake_stt,
    fake_tts,
)
from .metrics import JOB_ATTR, MetricsWriter, job_of
from .repeat import pass_rate_summary
from .reporting import record_report, write_session_report
from .settings import RECORD_MODES, SETTINGS_KEY, Settings
from .snapshot import ignore_scenario_snapshots

__all__ = [
    "agentsim",
    "agentsim_judge",
    "agentsim_scenario",
    "fake_llm",
    "fake_stt",
    "fake_tts",
]

# the gateway fixtures are a plugin of their own (loadable alone with -p)
pytest_plugins = ["pytest_agentsim.plugin.fixtures_gateway"]

DEFAULT_PATTERNS = [
    "scenarios.yaml",
    "scenarios*.yaml",
    "*.scenarios.yaml",
    "scenarios.yml",
    "scenarios*.yml",
    "*.scenarios.yml",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("agentsim", "LiveKit agent scenarios (pytest-agentsim)")
    group.addoption(
        "--agentsim",
        action="store_true",
        default=None,
        help="collect scenarios.yaml files as tests (ini: agentsim = true).",
    )
    group.addoption(
        "--agentsim-agent",
        default=None,
        metavar="MODULE:ATTR",
        help="agent to run for every scenario: an Agent subclass, a factory "
        "(scenario) -> Agent, or an AgentServer. Overrides the YAML and ini.",
    )
    group.addoption(
        "--agentsim-mode",
        default=None,
        choices=("text", "audio"),
        help="run scenarios in text (default) or audio mode (ini: agentsim_mode).",
    )
    group.addoption(
        "--agentsim-timeout",
        default=None,
        type=float,
        metavar="SECONDS",
        help="per-scenario timeout (default 30; ini: agentsim_timeout).",
    )
    group.addoption(
        "--agentsim-real-timing",
        action="store_true",
        default=None,
        help="run on the wall clock: by default in-process scenarios run on a virtual "
        "clock (timers fire at once, in order) and retry backoff costs no wall time.",
    )
    group.addoption(
        "--agentsim-transport",
        default=None,
        choices=("fake", "gateway"),
        help="fake: in-process fake models (default); gateway: the real livekit "
        "inference.LLM client against the loopback fake gateway. Overrides the YAML.",
    )
    group.addoption(
        "--agentsim-allow-network",
        action="store_true",
        default=None,
        help="let agents under test reach non-loopback hosts (blocked by default).",
    )
    group.addoption(
        "--agentsim-process",
        action="store_true",
        default=None,
        help="run AgentServer scenarios in a child process, as `python -m livekit.agents "
        "console` starts them, driven over the session protocol (YAML: agentsim.process).",
    )
    group.addoption(
        "--agentsim-cold-start",
        action="store_true",
        default=None,
        help="process mode: start a fresh child per scenario instead of forking it from a "
        "warm server that imported the agent file once (ini: agentsim_cold_start).",
    )
    group.addoption(
        "--agentsim-report",
        default=None,
        metavar="PATH",
        help="write one self-contained HTML page with every scenario's conversation.",
    )
    group.addoption(
        "--agentsim-metrics",
        default=None,
        metavar="PATH",
        help="write the run's conversation metrics as one SimulationRun protojson (each "
        "scenario a job with its JobMetrics: latencies, unanswered turns), as LiveKit's "
        "cloud simulator reports them.",
    )
    group.addoption(
        "--agentsim-model",
        default=None,
        metavar="MODEL",
        help="model of simulated scenarios (no agentsim.turns): the agent's LLM, and the "
        "simulated user's and judge's unless set apart; a LiveKit Inference name "
        "(openai/gpt-4.1-mini, the default) or an OpenAI model (gpt-4.1-mini). "
        "ini: agentsim_model.",
    )
    group.addoption(
        "--agentsim-user-model",
        default=None,
        metavar="MODEL",
        help="the simulated user's model (default: --agentsim-model; ini: agentsim_user_model).",
    )
    group.addoption(
        "--agentsim-judge-model",
        default=None,
        metavar="MODEL",
        help="the judge's model (default: --agentsim-model; ini: agentsim_judge_model).",
    )
    group.addoption(
        "--agentsim-max-turns",
        default=None,
        type=int,
        metavar="N",
        help="simulated user turns before a simulated conversation stops (default 8; "
        "ini: agentsim_max_turns).",
    )
    group.addoption(
        "--agentsim-record-mode",
        default=None,
        choices=RECORD_MODES,
        help="cassettes of simulated scenarios and judges (__cassettes__/ beside the YAML), "
        "as in vcrpy: none (default): replay only, offline; once: record a missing "
        "cassette, replay the others; new_episodes: replay what matches, record and "
        "append the rest; rewrite: record from scratch; all: send every request to the "
        "models, keeping earlier exchanges this run did not make. ini: agentsim_record_mode.",
    )
    group.addoption(
        "--agentsim-record",
        action="store_true",
        default=None,
        help="re-record the cassettes of simulated scenarios against the real models: "
        "--agentsim-record-mode=rewrite.",
    )
    group.addoption(
        "--agentsim-missing-cassette",
        default=None,
        choices=("skip", "fail"),
        help="replaying (record mode none), an item without its cassette is skipped "
        "(default) or fails (for CI). ini: agentsim_missing_cassette.",
    )
    group.addoption(
        "--agentsim-repeat",
        default=None,
        metavar="N",
        help="in runs that record, play each simulated scenario (and scripted one with "
        "judge matchers) N times (LLM users and judges vary) and pass it on its pass "
        "rate (--agentsim-pass-rate). ini: agentsim_repeat.",
    )
    group.addoption(
        "--agentsim-pass-rate",
        default=None,
        metavar="RATE",
        help="with --agentsim-repeat, the share of attempts that must pass: 0.8 or 80%% "
        "(default 1: all). ini: agentsim_pass_rate.",
    )
    group.addoption(
        "--agentsim-model-base-url",
        default=None,
        metavar="URL",
        help="while recording, send every model request (agent, user, judge) to this "
        "OpenAI-compatible base URL (env: AGENTSIM_MODEL_BASE_URL).",
    )
    parser.addini(
        "agentsim",
        type="bool",
        default=False,
        help="collect scenarios.yaml files without passing --agentsim.",
    )
    parser.addini(
        "agentsim_patterns",
        type="args",
        default=DEFAULT_PATTERNS,
        help="file name patterns collected as scenario files.",
    )
    parser.addini(
        "agentsim_agent",
        default="",
        help="default agent (MODULE:ATTR) when a scenario file names none.",
    )
    parser.addini("agentsim_mode", default="text", help="default mode: text or audio.")
    parser.addini("agentsim_timeout", default="30", help="default per-scenario timeout, seconds.")
    parser.addini("agentsim_model", default="", help="model of simulated scenarios.")
    parser.addini("agentsim_user_model", default="", help="the simulated user's model.")
    parser.addini("agentsim_judge_model", default="", help="the judge's model.")
    parser.addini(
        "agentsim_max_turns", default="8", help="simulated user turns per simulated scenario."
    )
    parser.addini(
        "agentsim_record_mode",
        default="none",
        help="record mode of cassettes: none, once, new_episodes, rewrite or all.",
    )
    parser.addini(
        "agentsim_missing_cassette",
        default="skip",
        help="an item whose cassette is missing (record mode none): skip or fail.",
    )
    parser.addini("agentsim_repeat", default="1", help="attempts per simulated scenario.")
    parser.addini("agentsim_pass_rate", default="1", help="share of the attempts that must pass.")
    parser.addini(
        "agentsim_cold_start",
        type="bool",
        default=False,
        help="process mode: a fresh child per scenario, no warm server.",
    )
    parser.addini(
        "agentsim_snapshot",
        type="bool",
        default=False,
        help="snapshot every scenario's chat history (like agentsim: {snapshot: true}).",
    )


_LOOP_SCOPE_INI = "asyncio_default_fixture_loop_scope"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    _quiet_loop_scope_nag(config)
    config.addinivalue_line(
        "markers",
        "scenario(file=None, label=None, **tags): a scenario item (its tags as keyword "
        "arguments, so -m \"scenario(feature='booking')\" selects), or on a Python test: "
        "load that scenario from FILE for the agentsim_scenario fixture.",
    )
    config.addinivalue_line(
        "markers",
        "agentsim_allow_unused: do not fail the test when scripted fake answers were not used.",
    )
    settings = Settings.from_config(config)
    config.stash[SETTINGS_KEY] = settings
    metrics = config.getoption("--agentsim-metrics", None)
    if metrics:
        config.pluginmanager.register(MetricsWriter(config, Path(metrics)), "agentsim-metrics")
    if not settings.enabled:
        # without --agentsim, scenario snapshots have no items: keep syrupy from reporting
        # them as unused (or deleting them on --snapshot-update)
        ignore_scenario_snapshots(config.option)


def _quiet_loop_scope_nag(config: pytest.Config) -> None:
    """pytest-asyncio (our dependency, maybe not the project's) warns on every run whose ini
    leaves its fixture loop scope unset. In ``--agentsim`` runs that leave it unset the
    plugin filters that one warning: it is about the project's async fixtures, and a
    scenario run has none of its own. Runs first in pytest_configure, inside pytest's
    warning capture for the configure hooks, so the filter ends with them."""
    enabled = config.getoption("--agentsim", False) or config.getini("agentsim")
    try:
        unset = not config.getini(_LOOP_SCOPE_INI)
    except ValueError:  # pragma: no cover - pytest-asyncio is a dependency
        return
    if enabled and unset:
        warnings.filterwarnings(
            "ignore", message=f'The configuration option "{_LOOP_SCOPE_INI}" is unset'
        )


def pytest_report_header(config: pytest.Config) -> str | None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        return None
    try:
        version = metadata.version("livekit-agents")
    except metadata.PackageNotFoundError:  # pragma: no cover - a hard dependency
        version = "not installed"
    state = "on" if settings.enabled else "off (pass --agentsim to collect scenarios.yaml)"
    return (
        f"agentsim: livekit-agents {version}, scenario collection {state}, "
        f"mode {settings.mode}, backoff {'real' if settings.real_timing else 'virtual'}"
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    settings = parent.config.stash[SETTINGS_KEY]
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    # a file named on the command line is collected whatever its name, as pytest does
    # with test modules; without --agentsim it says how to run it (not a bare "not found")
    named = parent.session.isinitpath(file_path)
    if not settings.enabled:
        if named:
            off: DisabledScenarioFile = DisabledScenarioFile.from_parent(parent, path=file_path)
            return off
        return None
    if named or any(fnmatch.fnmatch(file_path.name, p) for p in settings.patterns):
        collector: ScenarioYamlFile = ScenarioYamlFile.from_parent(parent, path=file_path)
        return collector
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if not isinstance(item, ScenarioItem):
        return report
    if call.when == "call":
        transcript = item.transcript()
        if transcript and report.failed:
            report.sections.append(("agentsim transcript", transcript))
    if call.when == "call" and item.config.getoption("--agentsim-metrics"):
        setattr(report, JOB_ATTR, job_of(item, report))
    if item.config.getoption("--agentsim-report") and (
        call.when == "call" or (call.when == "setup" and not report.passed)
    ):
        record_report(item, report, item.timeline())
    return report


_LATE_NETWORK = pytest.StashKey[list[str]]()
_LATE_WORKER_KEY = "agentsim_late_network"  # xdist: a worker's lines, for the controller


def _late_network(session: pytest.Session) -> None:
    """Network attempts of threads that outlived the offline test that started them: each
    was blocked, and fails the run here, named after that test (it has ended; the test
    running at the time is not charged). A worker hands its lines to the controller."""
    lines: list[str] = []
    if "pytest_agentsim.run.api" in sys.modules:  # else no guard ever ran
        from ..run import api as engine

        lines = [
            f"{label or '(a test)'}: a thread it started tried to reach {entry} after it "
            "ended (blocked)"
            for label, entry in engine.late_attempts()
        ]
    config = session.config
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_LATE_WORKER_KEY] = lines
        return
    lines = [*config.stash.get(_LATE_NETWORK, []), *lines]
    config.stash[_LATE_NETWORK] = lines
    if lines and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect a finished worker's late network attempts."""
    lines = getattr(node, "workeroutput", {}).get(_LATE_WORKER_KEY)
    if lines:
        node.config.stash[_LATE_NETWORK] = [*node.config.stash.get(_LATE_NETWORK, []), *lines]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    unused_summary(terminalreporter)
    pass_rate_summary(terminalreporter)
    lines = terminalreporter.config.stash.get(_LATE_NETWORK, [])
    if lines:
        terminalreporter.write_sep("=", "agentsim: network access after a test ended", red=True)
        for line in dict.fromkeys(lines):
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _late_network(session)
    _stop_warm_servers()
    path = session.config.getoption("--agentsim-report")
    if path:
        written = write_session_report(session.config, Path(path))
        if written is not None:
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(f"agentsim report: {written}")


def pytest_unconfigure(config: pytest.Config) -> None:
    _stop_warm_servers()  # again: sessionfinish does not run on every way out


def _stop_warm_servers() -> None:
    """End process mode's warm servers (only if any could have started: importing the
    pool imports livekit)."""
    pool = sys.modules.get("pytest_agentsim.run.drivers.warm_pool")
    if pool is not None:
        pool.WARM_POOL.shutdown()


def pytest_itemcollected(item: pytest.Item) -> None:
    if isinstance(item, ScenarioItem):
        item.add_report_properties()


# the fixtures that need the engine (the gateway fixture's own is in fixtures_gateway)
_ENGINE_FIXTURES = frozenset(
    {"agentsim", "fake_llm", "fake_tts", "fake_stt", "agentsim_judge", "inference_gateway"}
)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The one lazy boundary: when a collected item will run a scenario or use a fixture
    that needs the engine, load it now, once, at a shallow point of the stack (importing
    it deep inside a running test costs the same, later, and some CPython 3.11 releases
    fail to compile a module there: "AST constructor recursion depth mismatch").
    ``--collect-only`` runs nothing, so it never pays for the engine (over 1 s of imports)."""
    if session.config.option.collectonly:
        return
    for item in session.items:
        if isinstance(item, ScenarioItem) or _ENGINE_FIXTURES.intersection(
            getattr(item, "fixturenames", ())
        ):
            from ..run import api  # noqa: F401 - loaded for the items that need it

            return
