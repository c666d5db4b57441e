"""Collection of scenario files, the way users run it (pytester projects)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import DATA, plugin_output

Write = Callable[[str, str], Path]

SIMPLE = """
name: Demo
scenarios:
  - label: First one
    instructions: hi
    agent_expectations: be nice
    tags: {feature: room_booking, channel: phone}
  - id: second-id
    label: Second one
    instructions: hi
    agent_expectations: be nice
    tags: {feature: billing}
"""


def test_real_livekit_scenarios_all_collect(pytester: pytest.Pytester) -> None:
    for f in (DATA / "real-scenarios").glob("*.yaml"):
        shutil.copy(f, pytester.path / f.name)
    result = pytester.runpytest("--agentsim", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*120 tests collected*"])
    assert result.ret == 0
    # the hotel file has 100 scenarios
    assert result.stdout.str().count("hotel_receptionist.scenarios.yaml::") == 100


def test_yaml_not_collected_without_flag(pytester: pytest.Pytester, write: Write) -> None:
    write("scenarios.yaml", SIMPLE)
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_ini_enables_collection_and_patterns(pytester: pytest.Pytester, write: Write) -> None:
    write("pytest.ini", "[pytest]\nagentsim = true\nagentsim_patterns = *.sim.yml\n")
    write("a.sim.yml", SIMPLE)
    write("scenarios.yaml", SIMPLE)  # not matched by the custom pattern
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["a.sim.yml::First one", "a.sim.yml::second-id", "*2 tests*"])


@pytest.mark.parametrize(
    "name", ["scenarios.yaml", "scenarios_extra.yml", "clinic.scenarios.yaml", "scenarios-2.yaml"]
)
def test_default_patterns(pytester: pytest.Pytester, write: Write, name: str) -> None:
    write(name, SIMPLE)
    write("other.yaml", SIMPLE)
    result = pytester.runpytest("--agentsim", "--collect-only", "-q")
    result.stdout.fnmatch_lines([f"{name}::First one", "*2 tests collected*"])


def test_ids_tags_and_markers(pytester: pytest.Pytester, write: Write) -> None:
    write("scenarios.yaml", SIMPLE)
    result = pytester.runpytest("--agentsim", "--collect-only", "-q", "-k", "room_booking")
    result.stdout.fnmatch_lines(
        ["scenarios.yaml::First one", "*1/2 tests collected (1 deselected)*"]
    )
    result = pytester.runpytest(
        "--agentsim", "--collect-only", "-q", "-m", "scenario(feature='billing')"
    )
    result.stdout.fnmatch_lines(["scenarios.yaml::second-id", "*1/2 tests collected*"])
    result = pytester.runpytest("--agentsim", "--collect-only", "-q", "-m", "scenario")
    result.stdout.fnmatch_lines(["*2 tests collected*"])


def test_duplicate_labels_are_disambiguated_with_warning(
    pytester: pytest.Pytester, write: Write
) -> None:
    write(
        "scenarios.yaml",
        """
        name: Dups
        scenarios:
          - label: Same
            instructions: a
          - label: Same
            instructions: b
        """,
    )
    result = pytester.runpytest("--agentsim", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        ["scenarios.yaml::Same", "scenarios.yaml::Same#2", "*used more than once*"]
    )


def test_livekit_level_typo_warns_but_collects(pytester: pytest.Pytester, write: Write) -> None:
    write(
        "scenarios.yaml",
        """
        name: Typos
        scenarios:
          - label: One
            instrutions: misspelled
            whatever_custom: ignored silently like the CLI does
        """,
    )
    result = pytester.runpytest("--agentsim", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "scenarios.yaml:4",
            "*unknown key 'instrutions'*did you mean 'instructions'?*",
            "*1 test collected*",
        ]
    )
    assert "whatever_custom" not in result.stdout.str()


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("name: x\nscenarios: []\n", 2, "*`scenarios` is empty*"),
        ("name: x\n", 1, "*no `scenarios` list*"),
        ("- just\n- a list\n", 1, "*must be a mapping*"),
        ("name: x\nscenarios:\n  - label: a\n    label: b\n", 4, "*already defined at line 3*"),
        ("name: x\nscenarios:\n  - label: [a, b]\n", 3, "*label must be a string*"),
        (
            "name: x\nscenarios:\n  - label: a\n    tags: {k: [1, 2]}\n",
            4,
            "*tag 'k' must be a string*",
        ),
        (
            "name: x\nscenarios:\n  - label: a\n    userdata: [1]\n",
            4,
            "*userdata must be a mapping*",
        ),
        ("name: x\nscenarios:\n  - label: a\n    userdata: {x: .inf}\n", 4, "*unsupported value*"),
        (
            "name: x\nscenarios:\n  - label: a\n    agentsim: {turns: [{usr: hi}]}\n",
            4,
            "*unknown key 'usr' in turn 1*",
        ),
        (
            "name: x\nscenarios:\n  - label: a\n    agentsim:\n      mdoe: audio\n",
            5,
            "*unknown key 'mdoe' in agentsim block*",
        ),
        (
            "name: x\nscenarios:\n  - label: a\n    agentsim:\n      mode: vidoe\n",
            5,
            "*agentsim.mode must be one of text, audio*",
        ),
        ("name: x\nscenarios:\n  - label: a\n  bad indent: [\n", 4, "*"),
    ],
)
def test_collection_errors_name_file_line_and_fix(
    pytester: pytest.Pytester, write: Write, content: str, line: int, message: str
) -> None:
    (pytester.path / "scenarios.yaml").write_text(content, encoding="utf-8")
    result = pytester.runpytest("--agentsim", "--collect-only")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    out = result.stdout.str()
    assert f"scenarios.yaml:{line}:" in out, out
    result.stdout.fnmatch_lines([message])
    assert "Traceback" not in plugin_output(result)


def test_collection_error_has_fix_line(pytester: pytest.Pytester, write: Write) -> None:
    write("scenarios.yaml", "name: x\nscenarios: []\n")
    result = pytester.runpytest("--agentsim", "--collect-only")
    result.stdout.fnmatch_lines(["scenarios.yaml:2: *", "  fix: add at least one scenario"])
    write(
        "scenarios.yaml", "name: x\nscenarios:\n  - label: a\n    agentsim: {turns: [{usr: hi}]}\n"
    )
    result = pytester.runpytest("--agentsim", "--collect-only")
    result.stdout.fnmatch_lines(
        ["scenarios.yaml:4: unknown key 'usr' in turn 1", "  fix: did you mean 'user'?"]
    )


def test_report_header_names_livekit_version(pytester: pytest.Pytester) -> None:
    from importlib.metadata import version

    result = pytester.runpytest("--agentsim", "--collect-only")
    result.stdout.fnmatch_lines([f"agentsim: livekit-agents {version('livekit-agents')}*"])


def test_junitxml_properties(pytester: pytest.Pytester, write: Write) -> None:
    write("scenarios.yaml", SIMPLE)
    result = pytester.runpytest("--agentsim", "--junitxml=out.xml", "-q")
    xml = (pytester.path / "out.xml").read_text()
    assert '<property name="label" value="First one"' in xml
    assert '<property name="tag.feature" value="room_booking"' in xml
    assert '<property name="mode" value="text"' in xml
    assert result.ret == 0  # both are simulated scenarios: skipped


def test_simulated_scenarios_skip_with_reason(pytester: pytest.Pytester, write: Write) -> None:
    write("scenarios.yaml", SIMPLE)
    result = pytester.runpytest("--agentsim", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        ["*simulated scenario (no agentsim.turns) without a cassette*--agentsim-record*"]
    )


def test_scenario_runs_do_not_nag_about_pytest_asyncio_loop_scope(
    pytester: pytest.Pytester,
) -> None:
    """pytest-asyncio warns when the ini leaves its fixture loop scope unset; a scenario
    run (which has no async fixtures of the project's) filters that one warning."""
    (pytester.path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    nag = '*"asyncio_default_fixture_loop_scope" is unset*'
    # in a subprocess: pytest-asyncio warns while configuring, outside an in-process run
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    plain.assert_outcomes(passed=1)
    plain.stderr.fnmatch_lines([nag])
    quiet = pytester.runpytest_subprocess("--agentsim", "-p", "no:cacheprovider")
    quiet.assert_outcomes(passed=1)
    quiet.stderr.no_fnmatch_line(nag)


def test_collect_only_leaves_the_engine_unloaded(pytester: pytest.Pytester, write: Write) -> None:
    """``--collect-only`` runs nothing, so it does not import the engine (livekit, over a
    second); a run loads it at collection's end. The items of a file share one fixture
    closure, with the project's autouse fixtures in it."""
    write("scenarios.yaml", SIMPLE)
    write(
        "conftest.py",
        """
        import sys

        import pytest


        @pytest.fixture(autouse=True)
        def project_wide():
            pass


        def pytest_sessionfinish(session):
            print("engine loaded:", "pytest_agentsim.run.api" in sys.modules)
            for item in session.items:
                print(item.name, "uses", ",".join(sorted(item.fixturenames)))
        """,
    )
    # in a subprocess: this process has imported the engine already
    collected = pytester.runpytest_subprocess("--agentsim", "--collect-only", "-q", "-s")
    collected.stdout.fnmatch_lines(
        [
            "engine loaded: False",
            "First one uses *project_wide,request*",
            "second-id uses *project_wide,request*",
        ]
    )
    ran = pytester.runpytest_subprocess("--agentsim", "-q", "-s")
    ran.stdout.fnmatch_lines(["*engine loaded: True*"])
