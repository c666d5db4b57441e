"""Snapshots of scenario items: agentsim: {snapshot: true} and ini agentsim_snapshot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import AGENTS_PY

Write = Callable[[str, str], Path]

SCENARIOS = """
name: Snap
agentsim: {agent: "agents:EchoAgent", snapshot: true}
scenarios:
  - label: Weather
    agentsim:
      turns:
        - user: Weather in Paris?
          llm:
            - tool_calls: [{name: lookup, arguments: {city: Paris}}]
            - say: SAID
"""


@pytest.fixture(autouse=True)
def _no_xdist_worker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # under `-n 2` the inner run would inherit the worker's identity and syrupy would
    # behave as a worker (no unused report)
    for var in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(var, raising=False)


def test_create_match_mismatch_update(pytester: pytest.Pytester, write: Write) -> None:
    write("agents.py", AGENTS_PY)
    write("scenarios.yaml", SCENARIOS.replace("SAID", "Sunny in Paris."))
    result = pytester.runpytest("--agentsim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no stored history snapshot 'Weather'*--snapshot-update*"])

    result = pytester.runpytest("--agentsim", "--snapshot-update")
    result.assert_outcomes(passed=1)
    stored = pytester.path / "__snapshots__" / "scenarios.agentsim"
    text = stored.read_text()
    assert "# name: Weather" in text
    assert "call_id: call_1" in text and "city: Paris" in text
    assert "Sunny in Paris." in text

    pytester.runpytest("--agentsim").assert_outcomes(passed=1)
    assert stored.read_text() == text  # a matching run rewrites nothing

    write("scenarios.yaml", SCENARIOS.replace("SAID", "Rainy in Paris."))
    result = pytester.runpytest("--agentsim", "--snapshot-no-colors")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*chat history differs from snapshot 'Weather'*",
            "*- *Sunny in Paris.*",
            "*+ *Rainy in Paris.*",
        ]
    )


def test_unused_scenario_snapshot_reported(pytester: pytest.Pytester, write: Write) -> None:
    write("agents.py", AGENTS_PY)
    write("scenarios.yaml", SCENARIOS.replace("SAID", "Sunny."))
    pytester.runpytest("--agentsim", "--snapshot-update").assert_outcomes(passed=1)
    renamed = (pytester.path / "scenarios.yaml").read_text().replace("Weather", "Forecast")
    (pytester.path / "scenarios.yaml").write_text(renamed)
    result = pytester.runpytest("--agentsim", "--snapshot-update")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    # the renamed scenario's snapshot is written, the old one deleted from the file
    text = (pytester.path / "__snapshots__" / "scenarios.agentsim").read_text()
    assert "# name: Forecast" in text
    assert "Weather" not in text
    assert "Sunny." in text


def test_plain_pytest_leaves_scenario_snapshots_alone(
    pytester: pytest.Pytester, write: Write
) -> None:
    write("agents.py", AGENTS_PY)
    write("scenarios.yaml", SCENARIOS.replace("SAID", "Sunny."))
    write("test_other.py", "def test_x(snapshot):\n    assert 1 == snapshot\n")
    pytester.runpytest("--agentsim", "--snapshot-update").assert_outcomes(passed=2)
    result = pytester.runpytest("--snapshot-update")  # no --agentsim: YAML not collected
    result.assert_outcomes(passed=1)
    assert (pytester.path / "__snapshots__" / "scenarios.agentsim").exists()


def test_ini_switch_and_python_api(pytester: pytest.Pytester, write: Write) -> None:
    write("agents.py", AGENTS_PY)
    write("pytest.ini", "[pytest]\nagentsim_snapshot = true\n")
    write("scenarios.yaml", SCENARIOS.replace("SAID", "Sunny.").replace(", snapshot: true", ""))
    write(
        "test_api.py",
        """
import pytest
from agents import EchoAgent

@pytest.mark.asyncio
async def test_history(agentsim, fake_llm, snapshot):
    fake_llm.add_response(text="Hello!")
    await agentsim.start(EchoAgent())
    await agentsim.run("hi")
    assert agentsim.history == snapshot
""",
    )
    pytester.runpytest("--agentsim", "--snapshot-update").assert_outcomes(passed=2)
    assert (pytester.path / "__snapshots__" / "scenarios.agentsim").exists()
    assert "Hello!" in (pytester.path / "__snapshots__" / "test_api.ambr").read_text()
    pytester.runpytest("--agentsim").assert_outcomes(passed=2)


def test_snapshots_identical_with_xdist(pytester: pytest.Pytester, write: Write) -> None:
    write("agents.py", AGENTS_PY)
    base = SCENARIOS.replace("SAID", "Sunny.")
    one = base.split("scenarios:\n", 1)[1]
    body = base + "".join(one.replace("Weather", f"Weather {i}") for i in range(3))
    write("scenarios.yaml", body)
    pytester.runpytest_subprocess("--agentsim", "--snapshot-update", "-p", "no:cacheprovider")
    serial = (pytester.path / "__snapshots__" / "scenarios.agentsim").read_text()
    (pytester.path / "__snapshots__" / "scenarios.agentsim").unlink()
    result = pytester.runpytest_subprocess(
        "--agentsim", "--snapshot-update", "-n", "2", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=4)
    assert (pytester.path / "__snapshots__" / "scenarios.agentsim").read_text() == serial
    result = pytester.runpytest_subprocess("--agentsim", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
