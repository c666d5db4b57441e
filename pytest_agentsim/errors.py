"""Errors and warnings that point at a place in a scenario file.

User mistakes are reported as ``file:line: message`` plus a ``fix:`` line, never as a
traceback; this module holds the two types every layer raises. It never imports pytest.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

__all__ = ["AgentsimWarning", "ScenarioError", "did_you_mean"]


class ScenarioError(Exception):
    """A problem with a scenario file, or with a scenario's script, at ``path:line``."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = Path(path) if path is not None else None
        self.line = line
        self.fix = fix

    def where(self) -> str:
        if self.path is None:
            return ""
        return f"{self.path}:{self.line}" if self.line else str(self.path)

    def __str__(self) -> str:
        where = self.where()
        text = f"{where}: {self.message}" if where else self.message
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class AgentsimWarning(UserWarning):
    """Something in a scenario file that works but is probably a mistake."""


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest known key, for "did you mean ...?" hints (None if nothing is close)."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return matches[0] if matches else None
