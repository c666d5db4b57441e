"""Settings, resolved in one place: CLI > scenario > file > ini > default.

:meth:`Settings.from_config` reads the command line and the ini file once per session;
:func:`run_settings` applies a scenario's (and its file's) ``agentsim:`` values between
them, for every scenario the same way.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Literal

import pytest

from ..load.model import Scenario

if TYPE_CHECKING:
    from ..run.recording import RecordMode
    from ..run.settings import RunSettings

__all__ = [
    "RECORD_MODES",
    "SETTINGS_KEY",
    "Settings",
    "resolved_mode",
    "resolved_timeout",
    "run_settings",
]

# vcrpy's record modes and pytest-recording's `rewrite` (pytest_agentsim.run.recording)
RECORD_MODES: tuple[RecordMode, ...] = ("none", "once", "new_episodes", "rewrite", "all")
MISSING_CASSETTE = ("skip", "fail")


@dataclasses.dataclass(frozen=True)
class Settings:
    enabled: bool
    patterns: tuple[str, ...]
    agent_cli: str | None
    agent_ini: str | None
    mode: Literal["text", "audio"]
    mode_from_cli: bool
    timeout: float
    timeout_from_cli: bool
    real_timing: bool
    snapshot: bool
    transport: Literal["fake", "gateway"] | None
    allow_network: bool
    process: bool  # --agentsim-process: every AgentServer scenario in a child process
    cold_start: bool  # process mode without warm servers (a fresh child per scenario)
    # simulated scenarios (no agentsim.turns): models, turn limit, record/replay
    model: str
    user_model: str
    judge_model: str
    max_turns: int
    record_mode: RecordMode
    missing_cassette: Literal["skip", "fail"]  # a cassette to replay is not there (mode none)
    repeat: int  # attempts per simulated scenario in runs that record
    pass_rate: float  # the share of those attempts that must pass
    model_base_url: str | None

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        opt = config.getoption
        mode_cli = opt("--agentsim-mode")
        mode = mode_cli or str(config.getini("agentsim_mode") or "text").strip()
        if mode not in ("text", "audio"):
            raise pytest.UsageError(f"agentsim_mode must be 'text' or 'audio', got {mode!r}")
        timeout_cli = opt("--agentsim-timeout")
        raw_timeout = timeout_cli if timeout_cli is not None else config.getini("agentsim_timeout")
        try:
            timeout = float(raw_timeout)
        except (TypeError, ValueError):
            raise pytest.UsageError(
                f"agentsim_timeout must be a number of seconds, got {raw_timeout!r}"
            ) from None
        if timeout <= 0:
            raise pytest.UsageError(f"agentsim timeout must be positive, got {timeout:g}")

        def ini(name: str) -> str:
            return str(config.getini(name) or "").strip()

        model = opt("--agentsim-model") or ini("agentsim_model") or "openai/gpt-4.1-mini"
        turns_cli = opt("--agentsim-max-turns")
        raw_turns = turns_cli if turns_cli is not None else (ini("agentsim_max_turns") or "8")
        try:
            max_turns = int(raw_turns)
        except (TypeError, ValueError):
            max_turns = 0
        if max_turns <= 0:
            raise pytest.UsageError(
                f"agentsim_max_turns must be a positive whole number, got {raw_turns!r}"
            )
        repeat, pass_rate = _repeats(config)
        return cls(
            repeat=repeat,
            pass_rate=pass_rate,
            record_mode=_record_mode(config),
            missing_cassette=_missing_cassette(config),
            model=model,
            user_model=opt("--agentsim-user-model") or ini("agentsim_user_model") or model,
            judge_model=opt("--agentsim-judge-model") or ini("agentsim_judge_model") or model,
            max_turns=max_turns,
            model_base_url=opt("--agentsim-model-base-url")
            or os.environ.get("AGENTSIM_MODEL_BASE_URL")
            or None,
            enabled=bool(opt("--agentsim") or config.getini("agentsim")),
            patterns=tuple(config.getini("agentsim_patterns")),
            agent_cli=opt("--agentsim-agent") or None,
            agent_ini=str(config.getini("agentsim_agent") or "").strip() or None,
            mode="audio" if mode == "audio" else "text",
            mode_from_cli=mode_cli is not None,
            timeout=timeout,
            timeout_from_cli=timeout_cli is not None,
            real_timing=bool(opt("--agentsim-real-timing")),
            snapshot=bool(config.getini("agentsim_snapshot")),
            transport=opt("--agentsim-transport"),
            allow_network=bool(opt("--agentsim-allow-network")),
            process=bool(opt("--agentsim-process")),
            cold_start=bool(opt("--agentsim-cold-start") or config.getini("agentsim_cold_start")),
        )


def _record_mode(config: pytest.Config) -> RecordMode:
    """CLI ``--agentsim-record-mode`` (``--agentsim-record``: ``rewrite``) > ini > ``none``."""
    cli = config.getoption("--agentsim-record-mode")
    if config.getoption("--agentsim-record"):
        if cli not in (None, "rewrite"):
            raise pytest.UsageError(
                f"--agentsim-record means --agentsim-record-mode=rewrite; it contradicts "
                f"--agentsim-record-mode={cli}: pass one of them"
            )
        return "rewrite"
    raw = cli or str(config.getini("agentsim_record_mode") or "none").strip()
    for mode in RECORD_MODES:
        if raw == mode:
            return mode
    raise pytest.UsageError(
        f"agentsim_record_mode must be one of {', '.join(RECORD_MODES)}, got {raw!r}"
    )


def _missing_cassette(config: pytest.Config) -> Literal["skip", "fail"]:
    cli = config.getoption("--agentsim-missing-cassette")
    raw = cli or str(config.getini("agentsim_missing_cassette") or "skip").strip()
    if raw == "fail":
        return "fail"
    if raw != "skip":
        raise pytest.UsageError(f"agentsim_missing_cassette must be skip or fail, got {raw!r}")
    return "skip"


def _repeats(config: pytest.Config) -> tuple[int, float]:
    """``--agentsim-repeat`` (a positive whole number) and ``--agentsim-pass-rate`` (a
    share in (0, 1], or a percentage: ``0.8``, ``80%``), each CLI > ini > default."""
    cli = config.getoption("--agentsim-repeat")
    raw = cli if cli is not None else (str(config.getini("agentsim_repeat") or "").strip() or "1")
    try:
        repeat = int(raw)
    except (TypeError, ValueError):
        repeat = 0
    if repeat <= 0:
        raise pytest.UsageError(f"agentsim_repeat must be a positive whole number, got {raw!r}")
    cli_rate = config.getoption("--agentsim-pass-rate")
    text = str(cli_rate or config.getini("agentsim_pass_rate") or "1").strip()
    try:
        rate = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        rate = -1.0
    if not 0 < rate <= 1:
        raise pytest.UsageError(
            f"agentsim_pass_rate must be a share of the attempts in (0, 1] or a percentage "
            f"(0.8, 80%), got {text!r}"
        )
    return repeat, rate


SETTINGS_KEY = pytest.StashKey[Settings]()


def resolved_mode(settings: Settings, scenario: Scenario) -> Literal["text", "audio"]:
    if settings.mode_from_cli:
        return settings.mode
    return scenario.config.mode or settings.mode


def resolved_timeout(settings: Settings, scenario: Scenario) -> float:
    if settings.timeout_from_cli:
        return settings.timeout
    return scenario.config.timeout or settings.timeout


def snapshot_on(settings: Settings, scenario: Scenario) -> bool:
    snap = scenario.config.snapshot
    return bool(snap if snap is not None else settings.snapshot)


def run_settings(settings: Settings, scenario: Scenario, *, allow_unused: bool) -> RunSettings:
    """The settings one scenario runs with (``allow_unused``: a marker said so)."""
    from ..run.api import RunSettings

    cfg = scenario.config
    return RunSettings(
        mode=resolved_mode(settings, scenario),
        timeout=resolved_timeout(settings, scenario),
        allow_unused=bool(cfg.allow_unused) or allow_unused,
        real_timing=settings.real_timing,
        transport=settings.transport or cfg.transport or "fake",
        keep_history=snapshot_on(settings, scenario),
        process=bool(cfg.process or settings.process),
        allow_network=settings.allow_network,
        warm=not settings.cold_start,
    )
