"""One self-contained HTML page showing every scenario of a run as a conversation.

The page has inline CSS only: no scripts, fonts, images or links to anything outside the file,
so it can be attached to a CI run, mailed, or opened from an artifact store and look the same.
Everything is plain HTML (no ``<details>`` to expand), so all content is visible, searchable
with the browser's find and printable.

Input is deliberately simple so the harness can build it without knowing about HTML:

* :class:`TimelineEntry` - one thing that happened, in order. ``kind`` is one of
  :data:`KINDS` (unknown kinds render as-is, so a new kind never breaks the report); ``text``
  is the one-line summary; ``detail`` is any JSON-able mapping shown under it (tool
  arguments, fault bodies, ...); ``failed`` marks the step an assertion failed on (highlighted,
  with an anchor the summary table links to); ``yaml_line`` is the scenario-file line of the
  step that produced or checked the entry. Any object with these attributes is accepted
  (:class:`TimelineEntryLike`), e.g. ``pytest_agentsim.observe.timeline.TimelineEntry``; an optional
  integer ``turn`` attribute adds "turn N" separators.
* :class:`ScenarioRecord` - one scenario: where it is, how it ended, its timeline, and the
  snapshot diff text if its history snapshot did not match.

Never imports pytest.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from .timeline import TimelineEntry  # the harness record; re-exported for report users
from .voice_svg import CSS as _VOICE_CSS
from .voice_svg import voice_timeline

__all__ = [
    "KINDS",
    "OUTCOMES",
    "ScenarioRecord",
    "TimelineEntry",
    "TimelineEntryLike",
    "render_report",
    "write_report",
]

KINDS = (
    "user",
    "agent",
    "tool_call",
    "tool_output",
    "fault",
    "spoken",
    "error",
    "close",
    "handoff",
    "note",
)
"""Timeline entry kinds the page styles."""

OUTCOMES = ("passed", "failed", "skipped")

_KIND_LABELS = {
    "user": "user",
    "agent": "agent",
    "tool_call": "tool call",
    "tool_output": "tool output",
    "fault": "fault",
    "spoken": "spoken",
    "error": "error",
    "close": "close",
    "handoff": "handoff",
    "note": "note",
}


class TimelineEntryLike(Protocol):
    """What the report reads from a timeline entry (read-only)."""

    @property
    def kind(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def detail(self) -> Mapping[str, Any]: ...

    @property
    def failed(self) -> bool: ...

    @property
    def yaml_line(self) -> int | None: ...


@dataclasses.dataclass
class ScenarioRecord:
    """One scenario's result.

    ``path`` is the file as it should be shown (relative to the rootdir, usually the YAML);
    ``line`` the scenario's line in it. ``outcome`` is one of :data:`OUTCOMES`; ``duration`` is
    in seconds. ``message`` is the failure reason or skip reason; ``snapshot_diff`` the text of
    a history snapshot mismatch (``-`` snapshot, ``+`` this run; ANSI colours are stripped).
    """

    label: str
    path: str
    line: int | None
    outcome: str
    duration: float
    mode: str = "text"
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)
    timeline: Sequence[TimelineEntryLike] = dataclasses.field(default_factory=list)
    snapshot_diff: str | None = None
    message: str | None = None
    nodeid: str | None = None
    metrics: Mapping[str, Any] | None = None  # JobMetrics protojson: the voices are drawn


def write_report(
    path: str | Path,
    scenarios: Sequence[ScenarioRecord],
    *,
    title: str = "pytest-agentsim report",
) -> Path:
    """Write the report page for ``scenarios`` to ``path`` (UTF-8) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_report(scenarios, title=title), encoding="utf-8")
    return target


def render_report(
    scenarios: Sequence[ScenarioRecord], *, title: str = "pytest-agentsim report"
) -> str:
    """The report page as a string (what :func:`write_report` writes)."""
    counts = {outcome: 0 for outcome in OUTCOMES}
    for record in scenarios:
        counts[record.outcome] = counts.get(record.outcome, 0) + 1
    total = sum(r.duration for r in scenarios)
    summary = ", ".join(f"{n} {outcome}" for outcome, n in counts.items())
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title>",
        f"<style>{_CSS}{_VOICE_CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{_esc(title)}</h1>",
        f'<p class="summary">{len(scenarios)} scenario{"" if len(scenarios) == 1 else "s"}: '
        f"{_esc(summary)} &middot; {_esc(_seconds(total))}</p>",
        "</header>",
        "<main>",
        _index(scenarios),
        *(_scenario(i, record) for i, record in enumerate(scenarios, start=1)),
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------


def _index(scenarios: Sequence[ScenarioRecord]) -> str:
    if not scenarios:
        return '<p class="empty">No scenarios ran.</p>'
    rows = []
    for i, record in enumerate(scenarios, start=1):
        failed_step = any(e.failed for e in record.timeline)
        jump = (
            f' <a class="jump" href="#s{i}-fail">failing step</a>'
            if failed_step and record.outcome == "failed"
            else ""
        )
        rows.append(
            f'<tr class="{_outcome_class(record.outcome)}">'
            f'<td><a href="#s{i}">{_esc(record.label)}</a>{jump}</td>'
            f"<td>{_badge(record.outcome)}</td>"
            f'<td class="num">{_esc(_seconds(record.duration))}</td>'
            f"<td><code>{_esc(_location(record.path, record.line))}</code></td>"
            "</tr>"
        )
    return (
        '<table class="index"><thead><tr><th>Scenario</th><th>Outcome</th>'
        "<th>Duration</th><th>Location</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _scenario(index: int, record: ScenarioRecord) -> str:
    anchor = f"s{index}"
    tags = (
        " ".join(
            f'<span class="tag">{_esc(k)}={_esc(v)}</span>' for k, v in sorted(record.tags.items())
        )
        or '<span class="none">none</span>'
    )
    meta = (
        '<dl class="meta">'
        f"<dt>Location</dt><dd><code>{_esc(_location(record.path, record.line))}</code></dd>"
        + (f"<dt>Test id</dt><dd><code>{_esc(record.nodeid)}</code></dd>" if record.nodeid else "")
        + f"<dt>Mode</dt><dd>{_esc(record.mode)}</dd>"
        f"<dt>Tags</dt><dd>{tags}</dd>"
        f"<dt>Duration</dt><dd>{_esc(_seconds(record.duration))}</dd>"
        "</dl>"
    )
    message = f'<pre class="message">{_esc(_plain(record.message))}</pre>' if record.message else ""
    diff = _diff(record.snapshot_diff) if record.snapshot_diff else ""
    voices = voice_timeline((record.metrics or {}).get("turns") or ())
    if voices:
        message += f"<h3>Who spoke when</h3>{voices}"
    return (
        f'<section class="scenario {_outcome_class(record.outcome)}" id="{anchor}">'
        f"<h2>{_badge(record.outcome)} {_esc(record.label)}</h2>"
        f"{meta}{message}"
        f"<h3>Conversation</h3>{_timeline(anchor, record)}"
        f"{diff}"
        "</section>"
    )


def _timeline(anchor: str, record: ScenarioRecord) -> str:
    if not record.timeline:
        return '<p class="empty">No conversation recorded.</p>'
    items: list[str] = []
    fail_anchor_used = False
    last_turn: object = None
    file_name = Path(record.path).name
    for entry in record.timeline:
        turn = getattr(entry, "turn", None)
        if isinstance(turn, int) and turn != last_turn:
            items.append(
                f'<li class="turn">turn {turn}</li>' if turn else '<li class="turn">start</li>'
            )
            last_turn = turn
        kind_class = "kind-" + (entry.kind if entry.kind in _KIND_LABELS else "other")
        classes = ["entry", kind_class]
        entry_id = ""
        mark = ""
        if entry.failed:
            classes.append("failed")
            mark = '<strong class="failmark">&#10007; failed here</strong>'
            if not fail_anchor_used:
                entry_id = f' id="{anchor}-fail"'
                fail_anchor_used = True
        where = (
            f'<span class="where">{_esc(file_name)}:{entry.yaml_line}</span>'
            if entry.yaml_line is not None
            else ""
        )
        detail = f'<pre class="detail">{_esc(_json(entry.detail))}</pre>' if entry.detail else ""
        label = _KIND_LABELS.get(entry.kind, entry.kind)
        items.append(
            f'<li class="{" ".join(classes)}"{entry_id}>'
            f'<span class="kind">{_esc(label)}</span>'
            f'<span class="text">{_esc(_plain(entry.text))}</span>'
            f"{where}{mark}{detail}"
            "</li>"
        )
    return '<ol class="timeline">' + "".join(items) + "</ol>"


def _diff(text: str) -> str:
    lines = []
    for line in _plain(text).splitlines():
        if line.startswith("-"):
            css = "del"
        elif line.startswith("+"):
            css = "add"
        else:
            css = "ctx"
        lines.append(f'<span class="{css}">{_esc(line)}</span>')
    return (
        '<h3>Snapshot diff <span class="legend">(- snapshot, + this run)</span></h3>'
        '<pre class="diff">' + "\n".join(lines) + "</pre>"
    )


# ---------------------------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# C0/C1 controls other than tab and newline: invisible (or worse) in a page, so shown escaped.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _plain(text: str) -> str:
    text = _ANSI.sub("", text)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _json(detail: Mapping[str, Any]) -> str:
    return _plain(
        json.dumps(dict(detail), indent=2, ensure_ascii=False, sort_keys=True, default=repr)
    )


def _badge(outcome: str) -> str:
    return f'<span class="badge {_outcome_class(outcome)}">{_esc(outcome)}</span>'


def _outcome_class(outcome: str) -> str:
    return f"outcome-{outcome}" if outcome in OUTCOMES else "outcome-other"


def _location(path: str, line: int | None) -> str:
    return f"{path}:{line}" if line is not None else path


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


_CSS = """
:root { color-scheme: light; --fg: #1d2430; --muted: #5b6576; --line: #d9dee7;
  --pass: #1a7f37; --fail: #c62828; --skip: #8a6d00; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); background: #f6f8fa; }
header, main { max-width: 1100px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 20px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0 0 8px; }
h3 { font-size: 14px; margin: 16px 0 6px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .04em; }
.summary, .legend, .none, .empty { color: var(--muted); }
.legend { text-transform: none; letter-spacing: 0; }
code, pre, .where, .kind { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 13px; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 6px 0 0; }
table.index { width: 100%; border-collapse: collapse; background: #fff; margin: 12px 0 20px;
  border: 1px solid var(--line); }
table.index th, table.index td { text-align: left; padding: 6px 10px;
  border-bottom: 1px solid var(--line); vertical-align: top; }
td.num { white-space: nowrap; }
a { color: #0b5cad; }
a.jump { font-size: 12px; margin-left: 8px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
  font-weight: 600; color: #fff; background: var(--muted); vertical-align: middle; }
.badge.outcome-passed { background: var(--pass); }
.badge.outcome-failed { background: var(--fail); }
.badge.outcome-skipped { background: var(--skip); }
section.scenario { background: #fff; border: 1px solid var(--line); border-left: 6px solid
  var(--muted); border-radius: 6px; padding: 14px 18px; margin: 0 0 18px; }
section.outcome-passed { border-left-color: var(--pass); }
section.outcome-failed { border-left-color: var(--fail); }
section.outcome-skipped { border-left-color: var(--skip); }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; }
.tag { display: inline-block; background: #eef2f7; border: 1px solid var(--line);
  border-radius: 4px; padding: 0 6px; margin: 0 4px 2px 0; font-size: 13px; }
pre.message { background: #fff5f5; border: 1px solid #f3c4c4; padding: 8px 10px;
  border-radius: 4px; }
section.outcome-skipped pre.message { background: #fffbea; border-color: #eedc9a; }
ol.timeline { list-style: none; margin: 0; padding: 0; }
li.turn { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .05em;
  margin: 10px 0 2px; border-bottom: 1px dashed var(--line); }
li.entry { display: grid; grid-template-columns: 96px 1fr auto; gap: 2px 10px;
  padding: 5px 8px; border-left: 3px solid transparent; border-radius: 3px; }
li.entry .kind { color: var(--muted); text-align: right; }
li.entry .text { white-space: pre-wrap; overflow-wrap: anywhere; }
li.entry .where { color: var(--muted); font-size: 12px; }
li.entry .failmark, li.entry pre.detail { grid-column: 2 / 4; }
li.entry .failmark { color: var(--fail); }
pre.detail { background: #f6f8fa; border-radius: 3px; padding: 6px 8px; margin: 2px 0; }
li.kind-user .kind { color: #0b5cad; }
li.kind-agent .kind { color: #1a7f37; }
li.kind-tool_call .kind, li.kind-tool_output .kind { color: #6f42c1; }
li.kind-fault .kind, li.kind-error .kind { color: var(--fail); }
li.kind-spoken .kind { color: #0a7c86; }
li.kind-handoff .kind, li.kind-close .kind { color: #8a4b00; }
li.entry.failed { background: #fdecec; border-left-color: var(--fail); }
pre.diff { background: #f6f8fa; border: 1px solid var(--line); border-radius: 4px;
  padding: 8px 10px; }
pre.diff .del { color: #a40e26; background: #ffebe9; }
pre.diff .add { color: #116329; background: #dafbe1; }
@media print { body { background: #fff; } section.scenario { break-inside: avoid; } }
"""
