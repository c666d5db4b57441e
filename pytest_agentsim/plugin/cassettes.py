"""Cassettes from pytest's side: an item whose cassette is missing, and the report of
recorded requests a replay never asked for.

A replay that passed with recorded requests left over reports them: a junitxml property
``cassette_unused_requests`` on the test (``"2 of 5 in __cassettes__/.../x.yaml"``) and,
at the end of the run, a terminal summary section listing them (xdist workers' too: it is
read from the test reports).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .reporting import reported_property
from .settings import Settings

if TYPE_CHECKING:
    from ..run.api import Cassette

__all__ = ["UNUSED_PROPERTY", "missing_cassette", "report_unused", "unused_summary"]

UNUSED_PROPERTY = "cassette_unused_requests"


def missing_cassette(settings: Settings, path: Path, reason: str) -> None:
    """Skip (or, with ``--agentsim-missing-cassette=fail``, fail) a test that would replay
    a cassette that is not there. Modes that record make it instead."""
    __tracebackhide__ = True
    if settings.record_mode != "none" or path.is_file():
        return
    if settings.missing_cassette == "fail":
        pytest.fail(f"{reason} (--agentsim-missing-cassette=fail)", pytrace=False)
    pytest.skip(reason)


def shown_path(config: pytest.Config, path: Path) -> Path:
    """``path`` relative to where pytest was started, when it is below it."""
    try:
        return path.resolve().relative_to(config.invocation_params.dir.resolve())
    except ValueError:
        return path


def report_unused(item: pytest.Item, cassette: Cassette) -> None:
    """Note the requests of a replayed ``cassette`` the test never made."""
    if not cassette.replay:
        return
    unused = cassette.unused()
    if unused:
        where = shown_path(item.config, cassette.path)
        total = len(cassette.interactions)
        item.user_properties.append((UNUSED_PROPERTY, f"{len(unused)} of {total} in {where}"))


def unused_summary(terminalreporter: Any) -> None:
    """The terminal summary section of unused recorded requests, one line per test."""
    lines = [
        f"{nodeid}: {value} recorded requests never replayed"
        for nodeid, value in reported_property(terminalreporter, UNUSED_PROPERTY)
    ]
    if not lines:
        return
    terminalreporter.write_sep("=", "agentsim: unused cassette requests", yellow=True)
    for line in lines:
        terminalreporter.write_line(line)
    terminalreporter.write_line(
        "  the run no longer makes them: re-record with --agentsim-record-mode=rewrite to drop them"
    )
