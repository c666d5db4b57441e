"""What users are told when something is wrong: one base type, rendered by ``repr_failure``.

* :class:`ScenarioError`: a mistake in a scenario file or a setting, at ``file:line`` with a
  ``fix:`` line (collection errors, scripting errors found while running);
* :class:`ScenarioFailure`: a scenario ran and the agent did not behave as scripted (the
  reason, its YAML location, and the transcript);
* :class:`AgentSimAssertionError`: an assertion of the Python harness failed;
* :class:`JudgeError`: the LLM judge could not give a verdict.

Each renders itself (:meth:`AgentsimError.render`) so the plugin shows it without a
traceback. Nothing here imports pytest or livekit.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "AgentSimAssertionError",
    "AgentsimError",
    "AgentsimWarning",
    "JudgeError",
    "ScenarioError",
    "ScenarioFailure",
    "did_you_mean",
]


class AgentsimError(Exception):
    """Base of every user-facing error: ``render()`` is what the report shows."""

    def render(self, relative_to: Path | None = None) -> str:
        """The message as users read it (paths relative to ``relative_to`` when given)."""
        return str(self)


class ScenarioError(AgentsimError):
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

    def where(self, relative_to: Path | None = None) -> str:
        if self.path is None:
            return ""
        path = self.path
        if relative_to is not None:
            with contextlib.suppress(ValueError):  # elsewhere: keep it absolute
                path = path.resolve().relative_to(relative_to.resolve())
        return f"{path}:{self.line}" if self.line else str(path)

    def render(self, relative_to: Path | None = None) -> str:
        where = self.where(relative_to)
        text = f"{where}: {self.message}" if where else self.message
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text

    def __str__(self) -> str:
        return self.render()


class ScenarioFailure(AgentsimError, AssertionError):
    """A scenario did not behave as scripted; ``str()`` is the readable report."""

    def __init__(
        self,
        reason: str,
        *,
        location: str | None,
        transcript: str,
        timeline: list[Any] | None = None,
    ) -> None:
        self.reason = reason
        self.location = location
        self.transcript = transcript
        self.timeline = timeline or []
        self.metrics: dict[str, Any] | None = None  # the run's JobMetrics (protojson)
        super().__init__(f"{self.headline()}\n\nTranscript:\n{transcript}")

    def extended(self, more: str) -> ScenarioFailure:
        """The same failure with ``more`` said after its reason (its transcript, line and
        metrics kept)."""
        failure = ScenarioFailure(
            f"{self.reason}\n{more}",
            location=self.location,
            transcript=self.transcript,
            timeline=self.timeline,
        )
        failure.metrics = self.metrics
        return failure

    def headline(self) -> str:
        """The reason with the YAML location under its first line."""
        first, _, rest = self.reason.partition("\n")
        where = f"\n  at {self.location}" if self.location else ""
        return f"{first}{where}" + (f"\n{rest}" if rest else "")

    def render(self, relative_to: Path | None = None) -> str:
        # the transcript follows in its own report section
        return f"{self.headline()}\n(transcript below, in 'agentsim transcript')"


class AgentSimAssertionError(AgentsimError, AssertionError):
    """An assertion about the conversation failed; carries the transcript."""


class JudgeError(AgentsimError, AssertionError):
    """The judge could not give a verdict (not in the cassette, or the request failed)."""


class AgentsimWarning(UserWarning):
    """Something in a scenario file that works but is probably a mistake."""


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest known key, for "did you mean ...?" hints (None if nothing is close)."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return matches[0] if matches else None
