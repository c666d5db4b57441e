"""Run settings resolved once per session, in one place: CLI > ini > default.

(Per-scenario ``agentsim:`` values sit between CLI and ini; the collector applies them.)
"""

from __future__ import annotations

import dataclasses

import pytest

__all__ = ["SETTINGS_KEY", "Settings"]


@dataclasses.dataclass(frozen=True)
class Settings:
    enabled: bool
    patterns: tuple[str, ...]
    agent_cli: str | None
    agent_ini: str | None
    mode: str
    mode_from_cli: bool
    timeout: float
    timeout_from_cli: bool
    real_timing: bool
    snapshot: bool
    transport: str | None
    allow_network: bool

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
        return cls(
            enabled=bool(opt("--agentsim") or config.getini("agentsim")),
            patterns=tuple(config.getini("agentsim_patterns")),
            agent_cli=opt("--agentsim-agent") or None,
            agent_ini=str(config.getini("agentsim_agent") or "").strip() or None,
            mode=mode,
            mode_from_cli=mode_cli is not None,
            timeout=timeout,
            timeout_from_cli=timeout_cli is not None,
            real_timing=bool(opt("--agentsim-real-timing")),
            snapshot=bool(config.getini("agentsim_snapshot")),
            transport=opt("--agentsim-transport"),
            allow_network=bool(opt("--agentsim-allow-network")),
        )


SETTINGS_KEY = pytest.StashKey[Settings]()
