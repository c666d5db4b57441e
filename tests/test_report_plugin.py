"""`--agentsim-report PATH` from real runs, serial and under xdist."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from .test_report_html import CHROMIUM, _parse, render_dom

Write = Callable[[str, str], Path]
EXAMPLES = Path(__file__).parent.parent / "examples"

FAILING = """
name: Broken on purpose
agentsim: {agent: "agent:make_agent"}
scenarios:
  - label: Wrong slot
    tags: {feature: booking}
    agentsim:
      turns:
        - user: Anything free on June 15th?
          llm:
            - tool_calls: [{name: list_slots, arguments: {date: "2026-06-15"}}]
            - say: We have 09:00 and 14:30.
          expect:
            - function_call: list_slots
            - function_call_output: {}
            - message: {contains: "10:00"}
  - label: Simulated only
    instructions: an LLM would play the user here
"""


def _project(pytester: pytest.Pytester, write: Write) -> None:
    for f in ("agent.py", "scenarios.yaml"):
        shutil.copy(EXAMPLES / "clinic" / f, pytester.path / f)
    shutil.copytree(EXAMPLES / "clinic" / "__snapshots__", pytester.path / "__snapshots__")
    write("broken.scenarios.yaml", FAILING)


def test_report_page_from_a_run(pytester: pytest.Pytester, write: Write) -> None:
    _project(pytester, write)
    result = pytester.runpytest("--agentsim", "--agentsim-report", "out/report.html")
    result.assert_outcomes(passed=4, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["agentsim report: out/report.html"])
    page = _parse((pytester.path / "out" / "report.html").read_text())
    assert len(page.find("section", "scenario")) == 6
    text = "".join(page.text)
    assert "6 scenarios: 4 passed, 1 failed, 1 skipped" in text
    assert "message text does not match contains '10:00'" in text
    assert "Anything free on June 15th?" in text and "list_slots" in text
    assert "simulated scenario (no agentsim.turns)" in text
    assert len(page.find("li", "failed")) >= 1  # the failing step is highlighted


@pytest.fixture
def _no_xdist_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.usefixtures("_no_xdist_env")
def test_report_is_the_same_under_xdist(pytester: pytest.Pytester, write: Write) -> None:
    _project(pytester, write)
    serial = pytester.runpytest_subprocess("--agentsim", "--agentsim-report", "serial.html")
    serial.assert_outcomes(passed=4, failed=1, skipped=1)
    parallel = pytester.runpytest_subprocess(
        "--agentsim", "--agentsim-report", "parallel.html", "-n", "2"
    )
    parallel.assert_outcomes(passed=4, failed=1, skipped=1)
    assert not (pytester.path / "parallel.html.parts").exists()

    def sections(name: str) -> list[str]:
        page = _parse((pytester.path / name).read_text())
        return [attrs for attrs, _ in page.find("section", "scenario")]

    assert len(sections("serial.html")) == len(sections("parallel.html")) == 6


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium binary not found (install it: apt-get install -y chromium)"
)
def test_chromium_renders_the_plugin_report(pytester: pytest.Pytester, write: Write) -> None:
    assert CHROMIUM is not None
    _project(pytester, write)
    pytester.runpytest("--agentsim", "--agentsim-report", "report.html")
    proc = render_dom(pytester.path / "report.html", pytester.path / "profile")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "We have 09:00 and 14:30." in proc.stdout
    assert "Billing here, how can I help?" in proc.stdout
