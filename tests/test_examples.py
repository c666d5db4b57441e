"""The shipped examples: the default run passes, the failing demos fail readably."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


def _copy(pytester: pytest.Pytester, name: str) -> None:
    shutil.copytree(
        EXAMPLES / name, pytester.path / name, ignore=shutil.ignore_patterns("__pycache__")
    )


@pytest.mark.parametrize("name", ["clinic", "quota", "hotel", "concierge", "reception"])
def test_example_scenarios_pass(pytester: pytest.Pytester, name: str) -> None:
    _copy(pytester, name)
    result = pytester.runpytest("--agentsim", name)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 3 and "failed" not in outcomes, result.stdout.str()


@pytest.mark.parametrize(
    ("name", "failures", "lines"),
    [
        (
            "clinic",
            2,
            [
                "*message text does not match contains '10:00'*",
                "*at failing_demo.yaml:21*",
                "*expected function_call name=book_slot, got message*",
            ],
        ),
        ("quota", 1, ["*the user heard more than `spoken` lists*"]),
        (
            "reception",
            2,
            [
                "*the greeting, spoken item 1: expected contains 'this call is recorded' "
                "(interrupted), got*",
                "*turn 1: the session must close in this turn, but it is still open*",
            ],
        ),
        (
            "concierge",
            1,
            [
                "*the agent started speaking 3.5 s after the user's turn, over its latency "
                "budget (within: 2 s)*",
                "*at failing_demo.yaml:14*",
            ],
        ),
    ],
)
def test_failing_demos_fail_readably(
    pytester: pytest.Pytester, name: str, failures: int, lines: list[str]
) -> None:
    _copy(pytester, name)
    result = pytester.runpytest("--agentsim", name, "-o", "agentsim_patterns=failing_demo.yaml")
    result.assert_outcomes(failed=failures)
    result.stdout.fnmatch_lines_random(lines)
    assert "Traceback" not in result.stdout.str().split("Captured log")[0]
