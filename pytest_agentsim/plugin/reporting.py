"""``--agentsim-report PATH``: one self-contained HTML page for the run's scenarios.

Each scenario item's result becomes a :class:`~pytest_agentsim.observe.report_html.ScenarioRecord`
in ``pytest_runtest_makereport``. Under pytest-xdist every worker dumps its records to
``PATH.parts/<worker>.json`` at session end and the controller merges them, so the page is
the same with and without ``-n``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ..observe.report_html import ScenarioRecord, write_report
from ..observe.timeline import TimelineEntry

__all__ = ["RECORDS_KEY", "record_report", "reported_property", "write_session_report"]

RECORDS_KEY = pytest.StashKey[list[ScenarioRecord]]()


def record_report(item: Any, report: pytest.TestReport, timeline: list[TimelineEntry]) -> None:
    """Remember one scenario item's result (called for its call phase, or a skipped setup)."""
    records = item.config.stash.setdefault(RECORDS_KEY, [])
    s = item.scenario
    message = None
    if report.failed:
        message = str(report.longrepr).split("\n(transcript below", 1)[0]
    elif report.skipped and isinstance(report.longrepr, tuple):
        message = str(report.longrepr[2]).removeprefix("Skipped: ")
    diff = getattr(item, "snapshot_diff", None)
    props = dict(item.user_properties)
    records.append(
        ScenarioRecord(
            label=s.name,
            path=str(Path(item.path).relative_to(item.config.rootpath))
            if Path(item.path).is_relative_to(item.config.rootpath)
            else str(item.path),
            line=s.line,
            outcome=report.outcome,
            duration=report.duration,
            mode=str(props.get("mode", "text")),
            tags=dict(s.tags),
            timeline=list(timeline),
            snapshot_diff=diff,
            message=message,
            nodeid=item.nodeid,
            metrics=getattr(item, "job_metrics", None),
        )
    )


def _parts_dir(path: Path) -> Path:
    return path.with_name(path.name + ".parts")


def _to_json(record: ScenarioRecord) -> dict[str, Any]:
    data = dataclasses.asdict(record)
    data["timeline"] = [dataclasses.asdict(e) for e in record.timeline]  # type: ignore[call-overload]
    return data


def _from_json(data: dict[str, Any]) -> ScenarioRecord:
    data["timeline"] = [TimelineEntry(**e) for e in data["timeline"]]
    return ScenarioRecord(**data)


def write_session_report(config: pytest.Config, path: Path) -> Path | None:
    """Write the page (controller / no xdist) or this worker's part file."""
    records = config.stash.get(RECORDS_KEY, [])
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        parts = _parts_dir(path)
        parts.mkdir(parents=True, exist_ok=True)
        out = parts / f"{workerinput['workerid']}.json"
        out.write_text(json.dumps([_to_json(r) for r in records], default=str), encoding="utf-8")
        return None
    merged = list(records)
    parts = _parts_dir(path)
    if parts.is_dir():
        for part in sorted(parts.glob("*.json")):
            merged.extend(_from_json(d) for d in json.loads(part.read_text(encoding="utf-8")))
        shutil.rmtree(parts, ignore_errors=True)
    merged.sort(key=lambda r: (r.path, r.line or 0, r.nodeid or ""))
    return write_report(path, merged)


def reported_property(terminalreporter: Any, name: str) -> list[tuple[str, Any]]:
    """``(nodeid, value)`` of every report's user property ``name``, in order, once each
    (a test reports it in each of its phases)."""
    found: dict[tuple[str, str], Any] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            for key, value in getattr(report, "user_properties", ()):
                if key == name:
                    found.setdefault((report.nodeid, str(value)), value)
    return [(nodeid, value) for (nodeid, _), value in found.items()]
