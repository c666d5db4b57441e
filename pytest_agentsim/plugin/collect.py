"""Scenario files as pytest collectors, scenarios as ``pytest.Function`` items.

Items are ``pytest.Function`` subclasses (not bare ``pytest.Item``) so fixtures, ``-k``,
``-m``, autouse fixtures and syrupy's ``snapshot`` work on them; their test function is
the module-level :func:`run_scenario_item`. The engine (:mod:`pytest_agentsim.run.api`,
which imports livekit) is loaded only when an item runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
import warnings
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from ..env import scenario_env
from ..errors import AgentsimError, AgentsimWarning, ScenarioError, ScenarioFailure
from ..load.loader import load_scenario_file
from ..load.model import Scenario
from ..observe.history import mask_history
from ..observe.timeline import TimelineEntry, render_transcript
from .cassettes import missing_cassette, report_unused, shown_path
from .metrics import keep_metrics
from .repeat import play_repeated
from .settings import (
    SETTINGS_KEY,
    Settings,
    resolved_mode,
    resolved_timeout,
    run_settings,
    snapshot_on,
)
from .snapshot import HistorySnapshotMismatch, assert_history_snapshot

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr
    from _pytest.fixtures import FuncFixtureInfo

    from ..run.api import (
        Cassette,
        IntentJudge,
        NetworkGuard,
        RunSettings,
        ScenarioRun,
        Verdict,
    )

__all__ = [
    "ScenarioItem",
    "ScenarioYamlFile",
    "network_report",
    "recorded_judge",
    "run_scenario_item",
]

T = TypeVar("T")


def run_blocking(
    coro: Coroutine[Any, Any, T],
    loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
) -> T:
    """``asyncio.run(coro)`` on a fresh loop that never becomes the thread's current loop
    (``loop_factory``: the virtual clock's loop, or a plain one).

    ``asyncio.run`` replaces the current loop and leaves ``None`` behind, so a loop that
    something else left current (pytest-asyncio < 1.4 leaves an open loop after every async
    test) is garbage-collected unclosed, and its ResourceWarning lands on whatever test runs
    then (an error under ``-W error``).
    """
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(coro)
    loop = loop_factory()  # Python 3.10: what Runner does, by hand
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


_TRANSCRIPT_KEY = pytest.StashKey[str]()
TIMELINE_KEY: pytest.StashKey[list[TimelineEntry]] = pytest.StashKey()


class ScenarioYamlFile(pytest.File):
    """A ``scenarios.yaml`` file: one item per scenario."""

    def collect(self) -> list[ScenarioItem]:
        try:
            loaded = load_scenario_file(self.path)
        except ScenarioError as e:
            raise self.CollectError(e.render(self.config.invocation_params.dir)) from None
        for w in loaded.warnings:
            warnings.warn_explicit(
                w.message, AgentsimWarning, filename=str(self.path), lineno=w.line or 1
            )
        # one fixture closure for all: the items share their parent and test function (as
        # the items of a parametrized test share theirs)
        items: list[ScenarioItem] = []
        for s in loaded.scenarios:
            info = items[0]._fixtureinfo if items else None
            items.append(ScenarioItem.from_scenario(self, s, info))
        return items


class DisabledScenarioFile(pytest.File):
    """A YAML file named on the command line of a run without ``--agentsim``."""

    def collect(self) -> list[pytest.Item]:
        raise self.CollectError(
            f"{self.path.name} is collected as scenarios only with --agentsim "
            "(or `agentsim = true` in the ini file): run `pytest --agentsim "
            f"{self.path.name}`"
        )


def network_report(blocked: list[str]) -> str:
    """Why a run that tried to leave the machine fails, and how to fix it."""
    listing = "\n".join(f"    {b}" for b in dict.fromkeys(blocked))
    return (
        "the agent tried to reach the network (blocked in offline runs):\n"
        f"{listing}\n"
        "  fix: script that model with the fakes (llm:/tts: steps) or the inference_gateway "
        "fixture, or pass --agentsim-allow-network"
    )


@contextlib.contextmanager
def recorded_judge(
    settings: Settings, node: pytest.Item, path: Path, name: str, rerecord: str
) -> Iterator[IntentJudge]:
    """The intent judge of one scenario or test, from its cassette at ``path``, in the
    run's record mode. Its verdicts are each one whole exchange: what was recorded is
    saved unless recording failed or the run was interrupted."""
    from ..run.api import open_cassette, open_intent_judge, save_cassette

    cassette = open_cassette(path, name, settings.record_mode)
    judge = open_intent_judge(
        cassette=cassette,
        judge_model=settings.judge_model,
        model_base_url=settings.model_base_url,
        rerecord=rerecord,
    )
    try:
        yield judge
    except Exception:  # a failed test still saves; an interrupt keeps the old cassette
        save_cassette(cassette)
        raise
    save_cassette(cassette)
    report_unused(node, cassette)


def run_scenario_item(request: pytest.FixtureRequest) -> None:
    """The test function of every scenario item."""
    __tracebackhide__ = True
    item = request.node
    assert isinstance(item, ScenarioItem)
    item.run(request)


class ScenarioItem(pytest.Function):
    scenario: Scenario
    snapshot_diff: str | None = None

    @classmethod
    def from_scenario(
        cls, parent: ScenarioYamlFile, scenario: Scenario, fixtureinfo: FuncFixtureInfo | None
    ) -> ScenarioItem:
        item: ScenarioItem = super().from_parent(
            parent, name=scenario.name, callobj=run_scenario_item, fixtureinfo=fixtureinfo
        )
        item.scenario = scenario
        # tag names and values are -k keywords (-k room_booking); the marker carries them
        # as kwargs for -m "scenario(feature='room_booking')"
        for key, value in scenario.tags.items():
            item.extra_keyword_matches.add(key)
            if value:
                item.extra_keyword_matches.add(value)
        item.add_marker(pytest.mark.scenario(**scenario.tags))
        return item

    # -- reporting ---------------------------------------------------------------------
    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, self.scenario.line - 1, f"scenario: {self.scenario.name}"

    def add_report_properties(self) -> None:
        """Properties for --junitxml (label, tags, mode)."""
        s = self.scenario
        self.user_properties.append(("label", s.label))
        if s.id:
            self.user_properties.append(("scenario_id", s.id))
        for k, v in s.tags.items():
            self.user_properties.append((f"tag.{k}", v))
        self.user_properties.append(("mode", resolved_mode(self.config.stash[SETTINGS_KEY], s)))
        if s.config.faults:
            self.user_properties.append(
                ("faults", ", ".join(f.fault.describe() for f in s.config.faults))
            )

    def transcript(self) -> str | None:
        return self.stash.get(_TRANSCRIPT_KEY, None)

    def timeline(self) -> list[TimelineEntry]:
        return self.stash.get(TIMELINE_KEY, [])

    def repr_failure(  # type: ignore[override]
        self, excinfo: pytest.ExceptionInfo[BaseException]
    ) -> str | TerminalRepr:
        err = excinfo.value
        if isinstance(err, AgentsimError):
            return err.render(self.config.invocation_params.dir)
        return super().repr_failure(excinfo)

    # -- running -----------------------------------------------------------------------
    def run(self, request: pytest.FixtureRequest) -> None:
        __tracebackhide__ = True
        s = self.scenario
        if s.config.skip:
            pytest.skip(s.config.skip)
        # the scenario's `env:` holds while the agent is imported and while it runs (a
        # process-mode child inherits it)
        with scenario_env(s.config.env):
            if s.scripted:
                self.run_scripted(request)
            else:
                self.run_simulated(request)

    def run_scripted(self, request: pytest.FixtureRequest) -> None:
        __tracebackhide__ = True
        from ..run import api as engine

        s = self.scenario
        settings = self.config.stash[SETTINGS_KEY]
        resolved = run_settings(
            settings, s, allow_unused=self.get_closest_marker("agentsim_allow_unused") is not None
        )
        # `message: {judge: ...}` matchers: recording asks the judge's real endpoint
        judging = s.uses_judge
        offline = not settings.allow_network and not (judging and self._records())
        guard = engine.block_network() if offline else None
        # the guard is on while the agent module is imported too: code at its top level (a
        # telemetry client, a warm-up request) is offline like the rest
        with self._guarded(guard):
            # process mode: the AgentServer file in a child process (the child imports it)
            target: Any = (
                self._resolve(request, engine.locate_agent_file)
                if resolved.process
                else self._resolve(request, engine.resolve_target, env=s.config.env)
            )
            if judging and self._records() and settings.repeat > 1:
                run = self._judged_repeatedly(target, resolved)
            else:
                with self._intent_judge(judging) as judge:
                    run = self._play(
                        engine.run_scenario(s, target, resolved, judge=judge), resolved
                    )
        self._keep(run)
        blocked = [*(guard.blocked if guard is not None else ()), *run.blocked]
        if blocked:
            raise ScenarioFailure(
                network_report(blocked), location=None, transcript=self.transcript() or ""
            )
        if snapshot_on(settings, s) and run.history is not None:
            try:
                assert_history_snapshot(
                    request.getfixturevalue("snapshot"),
                    mask_history(run.history, s.config.snapshot_mask),
                )
            except HistorySnapshotMismatch as e:
                self.snapshot_diff = e.diff  # for the HTML report
                raise

    def _keep(self, run: ScenarioRun) -> None:
        self.stash[TIMELINE_KEY] = run.timeline
        self.stash[_TRANSCRIPT_KEY] = render_transcript(run.timeline)

    @contextlib.contextmanager
    def _intent_judge(self, judging: bool) -> Iterator[Any]:
        """The LLM judge for `message: {judge: ...}` matchers, from the scenario's cassette."""
        if not judging:
            yield None
            return

        settings = self.config.stash[SETTINGS_KEY]
        path, rerecord = self._cassette("scenario uses `judge` matchers", "the judge's verdicts")
        with recorded_judge(settings, self, path, self.scenario.name, rerecord) as judge:
            yield judge

    def _play(self, play: Coroutine[Any, Any, ScenarioRun], resolved: RunSettings) -> ScenarioRun:
        """Runs a scripted scenario: process mode on a plain loop (the agent's misdeeds stay
        in its own process); in-process on the virtual clock (unless real timing), contained
        (run/contain.py)."""
        from ..run import api as engine

        try:
            if resolved.process:
                run = run_blocking(play)
            else:
                loop = asyncio.new_event_loop if resolved.real_timing else engine.VirtualClockLoop
                run = engine.run_contained(play, loop, timeout=resolved.timeout, name=self.nodeid)
        except ScenarioFailure as e:
            keep_metrics(self, e.metrics)
            raise
        keep_metrics(self, run.metrics)
        return run

    def _judged_repeatedly(self, target: Any, resolved: RunSettings) -> ScenarioRun:
        """A scripted run whose `judge` matchers are recorded, ``--agentsim-repeat`` times
        (the script is deterministic, the judge is not); passed on the pass rate."""
        __tracebackhide__ = True
        from ..run import api as engine

        s, settings = self.scenario, self.config.stash[SETTINGS_KEY]
        path, rerecord = self._cassette("scenario uses `judge` matchers", "the judge's verdicts")

        def play(cassette: Cassette) -> tuple[ScenarioRun, None]:
            judge = engine.open_intent_judge(
                cassette=cassette,
                judge_model=settings.judge_model,
                model_base_url=settings.model_base_url,
                rerecord=rerecord,
            )
            try:
                run = self._play(engine.run_scenario(s, target, resolved, judge=judge), resolved)
            except ScenarioFailure:
                cassette.complete = True  # a verdict: its replay fails the same way
                raise
            cassette.complete = True
            return run, None

        kept = play_repeated(
            self,
            settings.repeat,
            settings.pass_rate,
            lambda: engine.open_cassette(path, s.name, settings.record_mode),
            play,
        )
        assert kept.run is not None
        return kept.run

    def _cassette(self, what: str, record: str, more: str = "") -> tuple[Path, str]:
        """This scenario's cassette and the command that (re)records it; without one to
        replay, the item is skipped (or failed) saying how to record it."""
        __tracebackhide__ = True
        path = self._cassette_path()
        rerecord = f'pytest --agentsim --agentsim-record "{self.nodeid}"'
        missing_cassette(
            self.config.stash[SETTINGS_KEY],
            path,
            f"{what} without a cassette ({shown_path(self.config, path)}): record {record} "
            f"with `{rerecord}`{more}",
        )
        return path, rerecord

    def _cassette_path(self) -> Path:
        from ..run import api as engine

        return engine.cassette_path(self.scenario.path, self.scenario.name)

    def _records(self) -> bool:
        """Whether this run may send this scenario's model requests out (record mode)."""
        from ..run import api as engine

        settings = self.config.stash[SETTINGS_KEY]
        return engine.record_plan(settings.record_mode, self._cassette_path().is_file())[1]

    @contextlib.contextmanager
    def _guarded(self, guard: NetworkGuard | None) -> Iterator[None]:
        """Run under the offline guard; keep a failure's transcript for the report and
        name any blocked network attempt in it."""
        try:
            with guard if guard is not None else contextlib.nullcontext():
                yield
        except ScenarioFailure as e:
            self.stash[_TRANSCRIPT_KEY] = e.transcript
            self.stash[TIMELINE_KEY] = e.timeline
            if guard is not None and guard.blocked:
                raise e.extended(network_report(guard.blocked)) from None
            raise

    def run_simulated(self, request: pytest.FixtureRequest) -> None:
        """A scenario without turns: simulated user and judge, from its cassette."""
        __tracebackhide__ = True
        from ..run import api as engine

        s = self.scenario
        settings = self.config.stash[SETTINGS_KEY]
        path, rerecord = self._cassette(
            "simulated scenario (no agentsim.turns)",
            "one against the real models",
            " (or add `agentsim: {turns: [...]}` to script it)",
        )
        times = settings.repeat if self._records() else 1  # replays are deterministic
        sim_settings = engine.SimulationSettings(
            rerecord=rerecord,
            agent_model=settings.model,
            user_model=settings.user_model,
            judge_model=settings.judge_model,
            max_turns=settings.max_turns,
            model_base_url=settings.model_base_url,
            timeout=resolved_timeout(settings, s),
            save=times == 1,
        )

        def open_cassette() -> Cassette:
            return engine.open_cassette(path, s.name, settings.record_mode)

        # process mode: the agent file in its own process, talked to over the protocol
        resolved = run_settings(settings, s, allow_unused=False)
        process = dataclasses.replace(resolved, mode="text") if resolved.process else None

        def play(cassette: Cassette) -> tuple[ScenarioRun, Verdict | None]:
            simulation = engine.run_simulation(s, target, sim_settings, cassette, process=process)
            if process is not None:  # the agent's misdeeds stay in its own process
                return run_blocking(simulation)
            return engine.run_contained(
                simulation, asyncio.new_event_loop, timeout=sim_settings.overall, name=self.nodeid
            )

        # recording talks to the real models (through a loopback proxy); a replay must
        # not leave the machine
        offline = not settings.allow_network and not self._records()
        guard = engine.block_network() if offline else None
        with self._guarded(guard):
            target = (
                self._resolve(request, engine.locate_agent_file)
                if process is not None
                else self._resolve(request, engine.resolve_target, env=s.config.env)
            )
            if times == 1:
                cassette = open_cassette()
                run, verdict = play(cassette)
            else:
                kept = play_repeated(self, times, settings.pass_rate, open_cassette, play)
                assert kept.run is not None
                cassette, run, verdict = kept.cassette, kept.run, kept.verdict
        if verdict is not None:
            self.user_properties.append(("judge_verdict", "pass" if verdict.passed else "fail"))
            self.user_properties.append(("judge_reason", verdict.reason))
        self._keep(run)
        blocked = [*(guard.blocked if guard is not None else ()), *run.blocked]
        if blocked:
            raise ScenarioFailure(
                network_report(blocked), location=None, transcript=self.transcript() or ""
            )
        report_unused(self, cassette)

    def _agent_spec(self, request: pytest.FixtureRequest) -> tuple[Any, Path | None, str, bool]:
        """What to run, by precedence CLI > YAML > ini > fixture:
        ``(spec, origin for relative paths, where it came from, from the YAML?)``."""
        s = self.scenario
        settings = self.config.stash[SETTINGS_KEY]
        if settings.agent_cli:
            return settings.agent_cli, None, "--agentsim-agent", False
        if s.config.agent:
            return s.config.agent, s.config.agent_origin, "agentsim.agent", True
        if settings.agent_ini:
            return settings.agent_ini, self.config.inipath, "ini agentsim_agent", False
        try:
            value = request.getfixturevalue("agentsim_agent")
        except pytest.FixtureLookupError:
            raise ScenarioError(
                "no agent to run for this scenario",
                path=s.path,
                line=s.line,
                fix="add `agentsim: {agent: 'my_agent:MyAgent'}` to the file, pass "
                "--agentsim-agent, set ini agentsim_agent, or define an `agentsim_agent` "
                "fixture in conftest.py",
            ) from None
        return value, s.path, "agentsim_agent fixture", False

    def _resolve(self, request: pytest.FixtureRequest, resolver: Any, **extra: Any) -> Any:
        spec, origin, where, from_yaml = self._agent_spec(request)
        try:
            return resolver(spec, origin=origin, rootdir=self.config.rootpath, where=where, **extra)
        except ScenarioError as e:
            if not from_yaml or e.path is not None:
                raise
            # point at the `agent:` line of the scenario file
            s = self.scenario
            raise ScenarioError(
                e.message, path=s.path, line=s.config.agent_line, fix=e.fix
            ) from None
