"""The HTML report: structure (html.parser) and what a real browser renders (headless Chromium)."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pytest_agentsim.observe.report_html import (
    ScenarioRecord,
    TimelineEntry,
    render_report,
    write_report,
)
from pytest_agentsim.observe.timeline import TimelineEntry as HarnessTimelineEntry

HOSTILE = '<script>alert("x")</script></pre><b onmouseover="y">&amp;'

VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "area", "base", "source"}


def _records() -> list[ScenarioRecord]:
    passed = ScenarioRecord(
        label="book a slot",
        path="tests/scenarios.yaml",
        line=3,
        outcome="passed",
        duration=0.0123,
        mode="audio",
        tags={"feature": "room_booking", "priority": "1"},
        nodeid="tests/scenarios.yaml::book a slot",
        timeline=[
            TimelineEntry("user", "Anything free on June 15th?", yaml_line=8),
            TimelineEntry(
                "tool_call",
                "list_slots(date='2026-06-15')",
                detail={"arguments": {"date": "2026-06-15"}, "call_id": "call_1"},
                yaml_line=10,
            ),
            TimelineEntry("tool_output", '["09:00", "14:30"]', yaml_line=12),
            TimelineEntry("agent", "We have 09:00 and 14:30."),
            TimelineEntry("spoken", "We have 09:00 and 14:30."),
            TimelineEntry("handoff", "clinic_agent -> billing_agent"),
            TimelineEntry("note", "played 1.2 s of audio"),
        ],
    )
    failed = ScenarioRecord(
        label="quota runs out",
        path="tests/scenarios.yaml",
        line=20,
        outcome="failed",
        duration=1.5,
        tags={"fault": "quota"},
        message="\x1b[31mexpected spoken 'temporarily unavailable' before close\x1b[0m",
        timeline=[
            TimelineEntry("user", "Book 09:00", yaml_line=24),
            TimelineEntry(
                "fault",
                "quota_exceeded (429 inference_quota_exceeded)",
                detail={"status": 429, "body": {"type": "inference_quota_exceeded"}},
                yaml_line=26,
            ),
            TimelineEntry("error", "llm error [unrecoverable]"),
            TimelineEntry(
                "close",
                "closed: error",
                failed=True,
                yaml_line=29,
                detail={"reason": "error"},
            ),
            TimelineEntry("agent", HOSTILE, failed=True),
        ],
        snapshot_diff=(
            "  - type: message\n   ...\n    content:\n"
            "-   - Hi! How can I help?\n+   - Hello there, what do you need?\n"
            "    interrupted: false"
        ),
    )
    skipped = ScenarioRecord(
        label=f"simulated {HOSTILE}",
        path="tests/other.scenarios.yaml",
        line=None,
        outcome="skipped",
        duration=0.0,
        message="no cassette; record with --agentsim-record",
    )
    return [passed, failed, skipped]


class _Page(HTMLParser):
    """Collects elements (tag, attrs, text) and checks that every element is closed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str], list[str]]] = []
        self.elements: list[tuple[str, dict[str, str], str]] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag in VOID:
            self.elements.append((tag, attributes, ""))
            return
        self.stack.append((tag, attributes, []))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1][0] != tag:
            self.errors.append(f"unexpected </{tag}>")
            return
        name, attributes, parts = self.stack.pop()
        text = "".join(parts)
        self.elements.append((name, attributes, text))
        if self.stack:
            self.stack[-1][2].append(text)

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.stack:
            self.stack[-1][2].append(data)

    def find(self, tag: str | None = None, cls: str | None = None) -> list[tuple[str, str]]:
        """(class attribute, text) of matching elements, in document order of their end."""
        return [
            (attrs.get("class", ""), text)
            for name, attrs, text in self.elements
            if (tag is None or name == tag)
            and (cls is None or cls in attrs.get("class", "").split())
        ]


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    assert page.errors == [] and page.stack == [], (page.errors, page.stack)
    return page


def test_page_structure(tmp_path: Path) -> None:
    out = write_report(tmp_path / "nested" / "report.html", _records())
    text = out.read_text(encoding="utf-8")
    assert text == render_report(_records())
    assert text.startswith("<!DOCTYPE html>")
    page = _parse(text)

    tags = {name for name, _, _ in page.elements}
    # self-contained: inline CSS only, nothing fetched, no script needed (or present)
    assert "style" in tags
    assert tags.isdisjoint({"script", "link", "img", "iframe", "object", "embed"})
    for _, attrs, _ in page.elements:
        assert "src" not in attrs
        assert attrs.get("href", "#").startswith("#")
        assert not any(k.startswith("on") for k in attrs), attrs

    summary = page.find("p", "summary")[0][1]
    assert summary == "3 scenarios: 1 passed, 1 failed, 1 skipped · 1.51 s"

    sections = page.find("section", "scenario")
    assert [cls.split()[1] for cls, _ in sections] == [
        "outcome-passed",
        "outcome-failed",
        "outcome-skipped",
    ]
    first, second, third = (t for _, t in sections)
    for expected in (
        "book a slot",
        "tests/scenarios.yaml:3",
        "tests/scenarios.yaml::book a slot",
        "audio",
        "feature=room_booking",
        "priority=1",
        "12 ms",
        "Anything free on June 15th?",
        "list_slots(date='2026-06-15')",
        '"date": "2026-06-15"',
        "scenarios.yaml:10",
        "We have 09:00 and 14:30.",
        "clinic_agent -> billing_agent",
    ):
        assert expected in first, expected
    assert "quota_exceeded (429 inference_quota_exceeded)" in second
    assert "1.50 s" in second
    assert "no cassette; record with --agentsim-record" in third
    assert "No conversation recorded." in third
    assert "tests/other.scenarios.yaml" in third  # no line: no ":None"
    assert ":None" not in text

    # timeline entries keep their order and kinds
    entries = page.find("li", "entry")
    kinds = [cls.split()[1] for cls, _ in entries]
    assert kinds == [
        "kind-user",
        "kind-tool_call",
        "kind-tool_output",
        "kind-agent",
        "kind-spoken",
        "kind-handoff",
        "kind-note",
        "kind-user",
        "kind-fault",
        "kind-error",
        "kind-close",
        "kind-agent",
    ]


def test_failing_step_is_highlighted_and_linked() -> None:
    page = _parse(render_report(_records()))
    failed = [(cls, t) for cls, t in page.find("li", "failed")]
    assert len(failed) == 2
    assert failed[0][1].startswith("closeclosed: error")
    assert "failed here" in failed[0][1]
    assert "scenarios.yaml:29" in failed[0][1]
    # the summary table links to the first failing step, and that anchor exists exactly once
    ids = [attrs.get("id") for _, attrs, _ in page.elements if attrs.get("id")]
    links = [attrs["href"] for name, attrs, _ in page.elements if name == "a"]
    assert "#s2-fail" in links
    assert ids.count("s2-fail") == 1
    assert all(link[1:] in ids for link in links)
    assert len(ids) == len(set(ids))
    # passed scenarios have no failing-step link
    assert "#s1-fail" not in links


def test_snapshot_diff_block_marks_removed_and_added_lines() -> None:
    page = _parse(render_report(_records()))
    assert page.find("span", "del") == [("del", "-   - Hi! How can I help?")]
    assert page.find("span", "add") == [("add", "+   - Hello there, what do you need?")]
    [(_, diff)] = page.find("pre", "diff")
    assert diff.splitlines()[0] == "  - type: message"
    # only the failed scenario has one
    assert len(page.find("h3")) == 3 + 1


def test_everything_is_escaped_and_ansi_stripped() -> None:
    text = render_report(_records())
    page = _parse(text)
    assert "<script" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    # no element or attribute came out of the hostile string...
    names = {name for name, _, _ in page.elements}
    assert names.isdisjoint({"script", "b"})
    # ...which comes back verbatim as text: index link, heading, timeline entry
    assert sum(HOSTILE in t for t in page.text) == 3
    assert "\x1b" not in text
    assert "expected spoken 'temporarily unavailable' before close" in "".join(page.text)


def test_control_characters_and_unknown_kinds_are_visible() -> None:
    record = ScenarioRecord(
        label="odd",
        path="s.yaml",
        line=1,
        outcome="failed",
        duration=2.0,
        timeline=[TimelineEntry("telepathy", "nul\x00bell\x07 tab\tok", detail={"x": object()})],
    )
    page = _parse(render_report([record]))
    [(cls, text)] = page.find("li", "entry")
    assert cls == "entry kind-other"
    assert text.startswith("telepathynul\\x00bell\\x07 tab\tok")
    assert "<object object at" in text  # detail falls back to repr, never crashes
    # the failed record without a failing step gets no dangling link
    assert not [a for n, a, _ in page.elements if n == "a" and a["href"].endswith("-fail")]


def test_harness_timeline_entries_render_with_turn_separators() -> None:
    record = ScenarioRecord(
        label="from the harness",
        path="s.yaml",
        line=1,
        outcome="passed",
        duration=0.5,
        timeline=[
            HarnessTimelineEntry("note", "session started", turn=0),
            HarnessTimelineEntry("user", "hi", turn=1, yaml_line=4),
            HarnessTimelineEntry("agent", "hello", turn=1),
            HarnessTimelineEntry("user", "bye", turn=2, yaml_line=7),
        ],
    )
    page = _parse(render_report([record]))
    assert [t for _, t in page.find("li", "turn")] == ["start", "turn 1", "turn 2"]
    assert [t for _, t in page.find("span", "where")] == ["s.yaml:4", "s.yaml:7"]


def test_no_scenarios_is_still_a_page() -> None:
    page = _parse(render_report([]))
    assert page.find("p", "summary")[0][1] == "0 scenarios: 0 passed, 0 failed, 0 skipped · 0 ms"
    assert page.find("p", "empty")[0][1] == "No scenarios ran."


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


CHROMIUM = _chromium()


def render_dom(page: Path, profile: Path) -> subprocess.CompletedProcess[str]:
    """Load ``page`` in headless Chromium and dump the rendered DOM (flags: no network)."""
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium binary not found (install it: apt-get install -y chromium)",
)
def test_headless_chromium_renders_the_conversation(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    out = write_report(tmp_path / "report.html", _records())
    proc = render_dom(out, tmp_path / "profile")
    dom = proc.stdout
    # The browser parsed the page into the structure we wrote...
    page = _parse(
        dom.replace("<html", "<!DOCTYPE html><html", 1) if "<!DOCTYPE" not in dom else dom
    )
    assert len(page.find("section", "scenario")) == 3
    assert len(page.find("li", "failed")) == 2
    # ...with the conversation as text, and the hostile string still inert text.
    rendered = "".join(page.text)
    for expected in (
        "Anything free on June 15th?",
        "list_slots(date='2026-06-15')",
        "We have 09:00 and 14:30.",
        "quota_exceeded (429 inference_quota_exceeded)",
        "failed here",
        "+   - Hello there, what do you need?",
        HOSTILE,
    ):
        assert expected in rendered, expected
    assert "<script" not in dom


def test_the_voices_are_drawn_on_a_time_axis() -> None:
    turns = [
        {"role": "USER", "text": "Hi <there>"},
        {
            "index": 1,
            "role": "ASSISTANT",
            "startMs": 800,
            "endMs": 2500,
            "e2eLatencyMs": 800,
            "text": "Hello",
        },
        {"index": 2, "role": "USER", "startMs": 4000, "endMs": 4000, "text": "Rooms?"},
        {
            "index": 3,
            "role": "ASSISTANT",
            "startMs": 7400,
            "endMs": 9000,
            "e2eLatencyMs": 3400,
            "awkwardSilence": True,
            "text": "Two.",
        },
        {"index": 4, "role": "USER", "startMs": 10000, "endMs": 10000, "text": "Thanks"},
        {"index": 5, "role": "ASSISTANT", "endMs": 11000, "unanswered": True},
    ]
    record = ScenarioRecord(
        label="voices",
        path="s.yaml",
        line=1,
        outcome="passed",
        duration=0.1,
        metrics={"turns": turns},
    )
    page = render_report([record])
    svg = page.split('<svg class="voices"', 1)[1].split("</svg>", 1)[0]
    assert svg.count('class="user"') == 3
    assert svg.count('class="agent"') == 2
    assert ">0.8 s</text>" in svg and ">3.4 s</text>" in svg
    assert 'class="wait awkward"' in svg  # the 3.4 s wait is marked
    assert "unanswered" in svg
    assert "Hi &lt;there&gt;" in svg and "<there>" not in svg
    assert ">10 s</text>" in svg  # the axis reaches the end of the conversation
    # a scenario without metrics (process mode, a simulated one) has no drawing
    plain = dataclasses.replace(record, metrics=None)
    assert '<svg class="voices"' not in render_report([plain])
