"""Conversation metrics out of a run (SPEC §10): per scenario as junitxml properties
(``metrics.<figure>``), and with ``--agentsim-metrics PATH`` the whole run as one
``SimulationRun`` protojson whose jobs carry their ``JobMetrics``, the shape LiveKit's
cloud simulator reports, so a local run and a cloud run can be diffed with one tool.

Each scenario's job rides on its test report (``report.agentsim_job``), which pytest-xdist
carries to the controller like the rest of the report; the controller writes the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

__all__ = ["JOB_ATTR", "MetricsWriter", "job_of", "keep_metrics", "write_metrics"]

JOB_ATTR = "agentsim_job"
_JOBS_KEY = pytest.StashKey[list[dict[str, Any]]]()


def keep_metrics(item: Any, metrics: dict[str, Any] | None) -> None:
    """Remember a scenario's JobMetrics; its conversation figures become properties."""
    item.job_metrics = metrics
    # a scenario played again (--agentsim-repeat) keeps the figures of its last attempt
    item.user_properties[:] = [p for p in item.user_properties if not p[0].startswith("metrics.")]
    for key, value in ((metrics or {}).get("conversation") or {}).items():
        item.user_properties.append((f"metrics.{key}", value))


def job_of(item: Any, report: pytest.TestReport) -> dict[str, Any]:
    """The scenario as a ``SimulationRun.Job`` (protojson)."""
    s = item.scenario
    job: dict[str, Any] = {
        "id": item.nodeid,
        "label": s.label,
        "instructions": s.instructions,
        "agentExpectations": s.agent_expectations,
        "tags": [f"{k}={v}" for k, v in s.tags.items()],
        "status": "STATUS_FAILED" if report.failed else "STATUS_COMPLETED",
    }
    if s.id:
        job["scenarioId"] = s.id
    if report.failed:
        job["error"] = str(report.longrepr).split("\n(transcript below", 1)[0]
    metrics = getattr(item, "job_metrics", None)
    if metrics:
        job["metrics"] = metrics
    return job


def collect_job(config: pytest.Config, report: pytest.TestReport) -> None:
    job = getattr(report, JOB_ATTR, None)
    if isinstance(job, dict):
        config.stash.setdefault(_JOBS_KEY, []).append(job)


def write_metrics(config: pytest.Config, path: Path) -> Path | None:
    """The run's SimulationRun protojson (controller, or a run without xdist)."""
    if getattr(config, "workerinput", None) is not None:
        return None  # the controller has every report
    from google.protobuf.json_format import MessageToDict, ParseDict
    from livekit.protocol.agent_simulation import SimulationRun

    gathered: list[dict[str, Any]] = config.stash.get(_JOBS_KEY, [])
    jobs = sorted(gathered, key=lambda j: str(j["id"]))
    failed = sum(j["status"] == "STATUS_FAILED" for j in jobs)
    run = {
        "status": "STATUS_COMPLETED",
        "jobs": jobs,
        "jobCount": len(jobs),
        "passedCount": len(jobs) - failed,
        "failedCount": failed,
    }
    # through the message: the file holds only what the cloud's schema has
    checked = MessageToDict(ParseDict(run, SimulationRun()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(checked, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


class MetricsWriter:
    """A plugin (registered with ``--agentsim-metrics``): gathers the jobs of the reports
    and writes the file at the session's end."""

    def __init__(self, config: pytest.Config, path: Path) -> None:
        self.config = config
        self.path = path

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        collect_job(self.config, report)

    def pytest_sessionfinish(self) -> None:
        write_metrics(self.config, self.path)
