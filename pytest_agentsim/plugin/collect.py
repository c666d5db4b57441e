"""Scenario files as pytest collectors, scenarios as ``pytest.Function`` items.

Items are ``pytest.Function`` subclasses (not bare ``pytest.Item``) so fixtures, ``-k``,
``-m``, autouse fixtures and syrupy's ``snapshot`` work on them; their test function is
the module-level :func:`run_scenario_item`.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from ..errors import AgentsimWarning, ScenarioError
from ..load.loader import Scenario, load_scenario_file
from .settings import SETTINGS_KEY

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

    from ..observe.timeline import TimelineEntry
    from ..run.target import AgentTarget
    from ..transport.offline import NetworkGuard


__all__ = ["ScenarioItem", "ScenarioYamlFile", "run_scenario_item"]

T = TypeVar("T")

_TRANSCRIPT_KEY = pytest.StashKey[str]()
TIMELINE_KEY: pytest.StashKey[list[TimelineEntry]] = pytest.StashKey()


class ScenarioYamlFile(pytest.File):
    """A ``scenarios.yaml`` file: one item per scenario."""

    def collect(self) -> list[pytest.Item]:
        try:
            loaded = load_scenario_file(self.path)
        except ScenarioError as e:
            raise self.CollectError(str(relative_to_invocation(e, self.config))) from None
        for w in loaded.warnings:
            warnings.warn_explicit(
                w.message, AgentsimWarning, filename=str(self.path), lineno=w.line or 1
            )
        return [ScenarioItem.from_scenario(self, s) for s in loaded.scenarios]


def relative_to_invocation(err: ScenarioError, config: pytest.Config) -> ScenarioError:
    """Report paths as the user typed them (relative to where pytest was started)."""
    if err.path is not None:
        with contextlib.suppress(ValueError):
            err.path = err.path.resolve().relative_to(config.invocation_params.dir.resolve())
    return err


def network_report(blocked: list[str]) -> str:
    """Why a run that tried to leave the machine fails, and how to fix it."""
    listing = "\n".join(f"    {b}" for b in dict.fromkeys(blocked))
    return (
        "the agent tried to reach the network (blocked in offline runs):\n"
        f"{listing}\n"
        "  fix: script that model with the fakes (llm:/tts: steps) or the inference_gateway "
        "fixture, or pass --agentsim-allow-network"
    )


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
    def from_scenario(cls, parent: ScenarioYamlFile, scenario: Scenario) -> ScenarioItem:
        item: ScenarioItem = super().from_parent(
            parent, name=scenario.name, callobj=run_scenario_item
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
        settings = self.config.stash[SETTINGS_KEY]
        mode = settings.mode if settings.mode_from_cli else (s.config.mode or settings.mode)
        self.user_properties.append(("mode", mode))
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
        from ..run.harness import AgentSimAssertionError
        from ..run.judge import JudgeError
        from ..run.runner import ScenarioFailure
        from .snapshot import HistorySnapshotMismatch

        err = excinfo.value
        if isinstance(err, ScenarioFailure):
            return f"{err.headline()}\n(transcript below, in 'agentsim transcript')"
        if isinstance(err, ScenarioError):
            return str(relative_to_invocation(err, self.config))
        if isinstance(err, AgentSimAssertionError | HistorySnapshotMismatch | JudgeError):
            return str(err)
        return super().repr_failure(excinfo)

    # -- running -----------------------------------------------------------------------
    def run(self, request: pytest.FixtureRequest) -> None:
        __tracebackhide__ = True
        from ..run.runner import RunSettings, ScenarioFailure, run_scenario

        s = self.scenario
        settings = self.config.stash[SETTINGS_KEY]
        if s.config.skip:
            pytest.skip(s.config.skip)
        if not s.scripted:
            self.run_simulated(request)
            return
        # process mode: the AgentServer file in a child process (pytest_agentsim/process.py)
        process = bool(s.config.process or settings.process)
        target: Any = self._agent_file(request) if process else self._target(request)
        run_settings = RunSettings(
            mode=settings.mode if settings.mode_from_cli else (s.config.mode or settings.mode),
            timeout=settings.timeout
            if settings.timeout_from_cli
            else (s.config.timeout or settings.timeout),
            allow_unused=bool(s.config.allow_unused)
            or self.get_closest_marker("agentsim_allow_unused") is not None,
            real_timing=settings.real_timing,
            transport=settings.transport or s.config.transport or "fake",
            keep_history=bool(
                s.config.snapshot if s.config.snapshot is not None else settings.snapshot
            ),
        )
        from ..observe.timeline import render_transcript
        from ..run.judge import uses_judge
        from ..transport.offline import block_network

        # `message: {judge: ...}` matchers: recording asks the judge's real endpoint
        judging = uses_judge(s.config.turns)
        offline = not settings.allow_network and not (judging and settings.record)
        guard = block_network() if offline else None
        with self._guarded(guard), self._intent_judge(judging):
            if process:
                from ..run.drivers.process import run_process_scenario

                run = asyncio.run(
                    run_process_scenario(
                        s, target, run_settings, allow_network=settings.allow_network
                    )
                )
            else:
                run = asyncio.run(run_scenario(s, target, run_settings))
        self.stash[TIMELINE_KEY] = run.timeline
        transcript = render_transcript(run.timeline)
        self.stash[_TRANSCRIPT_KEY] = transcript
        blocked = [*(guard.blocked if guard is not None else ()), *getattr(run, "blocked", ())]
        if blocked:
            raise ScenarioFailure(network_report(blocked), location=None, transcript=transcript)
        snapshot_on = s.config.snapshot if s.config.snapshot is not None else settings.snapshot
        if snapshot_on and run.history is not None:
            from .snapshot import HistorySnapshotMismatch, assert_history_snapshot

            try:
                assert_history_snapshot(request.getfixturevalue("snapshot"), run.history)
            except HistorySnapshotMismatch as e:
                self.snapshot_diff = e.diff  # for the HTML report
                raise

    @contextlib.contextmanager
    def _intent_judge(self, judging: bool) -> Iterator[None]:
        """The LLM judge for `message: {judge: ...}` matchers, from the scenario's cassette."""
        if not judging:
            yield
            return
        from ..run.judge import CURRENT_JUDGE, open_intent_judge

        s = self.scenario
        settings = self.config.stash[SETTINGS_KEY]
        path, rerecord = self._cassette()
        if not settings.record and not path.is_file():
            pytest.skip(
                f"scenario uses `judge` matchers but has no cassette ({self._shown(path)}): "
                f"record the judge's verdicts with `{rerecord}`"
            )
        judge = open_intent_judge(
            path=path,
            name=s.name,
            record=settings.record,
            judge_model=settings.judge_model,
            model_base_url=settings.model_base_url,
            rerecord=rerecord,
        )
        token = CURRENT_JUDGE.set(judge)
        try:
            yield
        finally:
            CURRENT_JUDGE.reset(token)
            if settings.record:
                judge.cassette.save()

    def _cassette(self) -> tuple[Path, str]:
        """This scenario's cassette and the command that (re)records it."""
        from ..run.cassette import cassette_path

        path = cassette_path(self.scenario.path, self.scenario.name)
        return path, f'pytest --agentsim --agentsim-record "{self.nodeid}"'

    def _shown(self, path: Path) -> Path:
        try:
            return path.resolve().relative_to(self.config.invocation_params.dir.resolve())
        except ValueError:
            return path

    @contextlib.contextmanager
    def _guarded(self, guard: NetworkGuard | None) -> Iterator[None]:
        """Run under the offline guard; keep a failure's transcript for the report and
        name any blocked network attempt in it."""
        from ..run.runner import ScenarioFailure

        try:
            with guard if guard is not None else contextlib.nullcontext():
                yield
        except ScenarioFailure as e:
            self.stash[_TRANSCRIPT_KEY] = e.transcript
            self.stash[TIMELINE_KEY] = e.timeline
            if guard is not None and guard.blocked:
                raise ScenarioFailure(
                    f"{e.reason}\n{network_report(guard.blocked)}",
                    location=e.location,
                    transcript=e.transcript,
                    timeline=e.timeline,
                ) from None
            raise

    def run_simulated(self, request: pytest.FixtureRequest) -> None:
        """A scenario without turns: simulated user and judge, from its cassette."""
        __tracebackhide__ = True
        from ..observe.timeline import render_transcript
        from ..run.runner import ScenarioFailure
        from ..run.simulate import SimulationSettings, run_simulation
        from ..transport.offline import block_network

        s = self.scenario
        settings = self.config.stash[SETTINGS_KEY]
        path, rerecord = self._cassette()
        if not settings.record and not path.is_file():
            pytest.skip(
                f"simulated scenario (no agentsim.turns) without a cassette "
                f"({self._shown(path)}): record "
                f"one against the real models with `{rerecord}` (or add "
                "`agentsim: {turns: [...]}` to script it)"
            )
        target = self._target(request)
        sim_settings = SimulationSettings(
            cassette=path,
            rerecord=rerecord,
            agent_model=settings.model,
            user_model=settings.user_model,
            judge_model=settings.judge_model,
            max_turns=settings.max_turns,
            record=settings.record,
            model_base_url=settings.model_base_url,
            timeout=settings.timeout
            if settings.timeout_from_cli
            else (s.config.timeout or settings.timeout),
        )
        # recording talks to the real models (through a loopback proxy); a replay must
        # not leave the machine
        offline = not settings.allow_network and not settings.record
        guard = block_network() if offline else None
        with self._guarded(guard):
            run, verdict = asyncio.run(run_simulation(s, target, sim_settings))
        if verdict is not None:
            self.user_properties.append(("judge_verdict", "pass" if verdict.passed else "fail"))
            self.user_properties.append(("judge_reason", verdict.reason))
        self.stash[TIMELINE_KEY] = run.timeline
        transcript = render_transcript(run.timeline)
        self.stash[_TRANSCRIPT_KEY] = transcript
        if guard is not None and guard.blocked:
            raise ScenarioFailure(
                network_report(guard.blocked), location=None, transcript=transcript
            )

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

    def _resolve(self, request: pytest.FixtureRequest, resolver: Callable[..., T]) -> T:
        spec, origin, where, from_yaml = self._agent_spec(request)
        try:
            return resolver(spec, origin=origin, rootdir=self.config.rootpath, where=where)
        except ScenarioError as e:
            if not from_yaml:
                raise
            # point at the `agent:` line of the scenario file
            s = self.scenario
            raise ScenarioError(
                e.message, path=s.path, line=s.config.agent_line, fix=e.fix
            ) from None

    def _agent_file(self, request: pytest.FixtureRequest) -> Path:
        """Process mode: the agent's file, found as :meth:`_target` finds the agent, but
        not imported here (the child imports it)."""
        from ..run.drivers.process import locate_agent_file

        return self._resolve(request, locate_agent_file)

    def _target(self, request: pytest.FixtureRequest) -> AgentTarget:
        from ..run.target import resolve_target

        return self._resolve(request, resolve_target)
