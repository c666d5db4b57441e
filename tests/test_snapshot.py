"""History snapshots through syrupy, for YAML-collected items and for Python tests.

The pytester projects below carry their own minimal YAML collector, shaped like the real
scenario collector (a ``pytest.File`` yielding ``pytest.Function.from_parent(file, name=label,
callobj=<module-level function>)``), so these tests pin what syrupy does with such items
independently of the plugin. Every run goes through a subprocess: syrupy keeps module-global
session state that an in-process nested run would swap under the outer session's feet.
``-p no:agentsim`` keeps the installed plugin (and its own YAML handling) out of the way.
They pass on syrupy 7.0.2 (the newest) and 6.0.0, but not on the 4.8 that ``pyproject`` still
allows: 5.5.0 fails the xdist test, and before 5.3.4 the plugin cannot even import
(``syrupy.terminal.disable_color``).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from syrupy.filters import props
from syrupy.matchers import path_type

from pytest_agentsim.plugin.snapshot import (
    SNAPSHOT_FILE_EXTENSION,
    AgentsimSnapshotExtension,
    ignore_scenario_snapshots,
    serialize_yaml,
)

BASE_ARGS = ("-p", "no:agentsim", "-p", "no:cacheprovider", "--snapshot-no-colors")

CONFTEST = """
import uuid

import pytest
import yaml

from pytest_agentsim.observe.history import normalize_items
from pytest_agentsim.plugin.snapshot import (
    HistorySnapshotMismatch,
    assert_history_snapshot,
    ignore_scenario_snapshots,
)


def pytest_addoption(parser):
    parser.addoption("--yaml-off", action="store_true")
    parser.addoption("--shield", action="store_true")


def pytest_configure(config):
    if config.getoption("--yaml-off") and config.getoption("--shield"):
        ignore_scenario_snapshots(config.option)


def _fresh(prefix):
    # every run mints new ids, as a live session does: snapshots must not care
    return prefix + uuid.uuid4().hex[:12]


def _history(sc):
    items = [
        {"id": _fresh("item_"), "type": "message", "role": "user",
         "content": [sc["user"]], "interrupted": False, "created_at": 1.0},
    ]
    tool = sc.get("tool")
    if tool:
        call_id = _fresh("call_")
        gen = _fresh("item_")
        items.append({"id": gen + "/fnc_0", "type": "function_call", "call_id": call_id,
                      "arguments": tool["arguments"], "name": tool["name"], "extra": {}})
        items.append({"id": _fresh("item_"), "type": "function_call_output",
                      "name": tool["name"], "call_id": call_id, "output": tool["output"],
                      "is_error": False})
    items.append({"id": _fresh("item_"), "type": "message", "role": "assistant",
                  "content": [sc["reply"]], "interrupted": False,
                  "metrics": {"llm_node_ttft": uuid.uuid4().int % 1000 / 1000}})
    return normalize_items(items)


def _run_scenario(request):
    snapshot = request.getfixturevalue("snapshot")
    try:
        assert_history_snapshot(snapshot, _history(request.node.scenario))
    except HistorySnapshotMismatch as exc:
        out = request.config.rootpath / "diffs" / (request.node.name + ".txt")
        out.parent.mkdir(exist_ok=True)
        out.write_text(exc.diff, encoding="utf-8")
        raise


class ScenarioItem(pytest.Function):
    def reportinfo(self):
        return self.path, self.scenario.get("line", 0), f"scenario: {self.name}"


class ScenarioFile(pytest.File):
    def collect(self):
        doc = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        for sc in doc["scenarios"]:
            item = ScenarioItem.from_parent(self, name=sc["label"], callobj=_run_scenario)
            item.scenario = sc
            yield item


def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".yaml" and not parent.config.getoption("--yaml-off"):
        return ScenarioFile.from_parent(parent, path=file_path)
"""

FLOWS_YAML = """
scenarios:
  - label: greet
    user: Hello
    reply: Hi! How can I help?
  - label: "book a slot: morning"
    user: Anything free on June 15th?
    tool: {name: list_slots, arguments: '{"date":"2026-06-15"}', output: '["09:00"]'}
    reply: |-
      We have 09:00.
      Shall I book it?
"""

# The whole snapshot file, byte for byte: location, naming, ordering and the YAML body are
# what users review, so any drift must show here.
FLOWS_SNAPSHOT = """\
# serializer version: 1
# name: book a slot: morning
  - type: message
    id: item_1
    role: user
    content:
    - Anything free on June 15th?
    interrupted: false
  - type: function_call
    id: item_2/fnc_0
    call_id: call_1
    name: list_slots
    arguments:
      date: '2026-06-15'
  - type: function_call_output
    id: item_3
    call_id: call_1
    name: list_slots
    output: '["09:00"]'
    is_error: false
  - type: message
    id: item_4
    role: assistant
    content:
    - |-
      We have 09:00.
      Shall I book it?
    interrupted: false
# ---
# name: greet
  - type: message
    id: item_1
    role: user
    content:
    - Hello
    interrupted: false
  - type: message
    id: item_2
    role: assistant
    content:
    - Hi! How can I help?
    interrupted: false
# ---
"""


@pytest.fixture(autouse=True)
def _not_an_xdist_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    # When this suite itself runs under xdist, the child pytest inherits PYTEST_XDIST_WORKER and
    # syrupy then believes it is a worker: no summary, no unused detection. Children are
    # top-level runs (or xdist controllers of their own).
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    _project_files(pytester)
    (pytester.path / "suite").mkdir()
    _write(pytester.path / "suite" / "flows.yaml", FLOWS_YAML)
    return pytester


def _project_files(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    # silences pytest-asyncio's "loop scope unset" warning in the child runs
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*BASE_ARGS, *args)


def _snapshot_file(pytester: pytest.Pytester, where: str = "suite") -> Path:
    return pytester.path / where / "__snapshots__" / f"flows.{SNAPSHOT_FILE_EXTENSION}"


def test_update_writes_next_to_the_yaml_then_matches(project: pytest.Pytester) -> None:
    result = _run(project, "--snapshot-update", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*suite/flows.yaml::greet PASSED*", "*2 snapshots generated.*"])
    assert sorted(p.name for p in (project.path / "suite" / "__snapshots__").iterdir()) == [
        "flows.agentsim"
    ]
    assert _snapshot_file(project).read_text(encoding="utf-8") == FLOWS_SNAPSHOT

    # New random ids, timestamps and metrics on this run: still a match, file untouched.
    again = _run(project)
    again.assert_outcomes(passed=2)
    again.stdout.fnmatch_lines(["*2 snapshots passed.*"])
    assert again.ret == 0
    assert _snapshot_file(project).read_text(encoding="utf-8") == FLOWS_SNAPSHOT


def test_missing_snapshot_fails_and_says_how_to_record(project: pytest.Pytester) -> None:
    result = _run(project)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*HistorySnapshotMismatch: no stored history snapshot 'greet' in "
            "suite/__snapshots__/flows.agentsim; run pytest with --snapshot-update to record it",
        ]
    )
    assert not _snapshot_file(project).exists()


def test_mismatch_shows_a_readable_diff_and_keeps_the_file(project: pytest.Pytester) -> None:
    _run(project, "--snapshot-update").assert_outcomes(passed=2)
    _write(
        project.path / "suite" / "flows.yaml",
        FLOWS_YAML.replace("Hi! How can I help?", "Hello there, what do you need?"),
    )
    result = _run(project)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*chat history differs from snapshot 'greet' in suite/__snapshots__/flows.agentsim"
            " (- snapshot, + this run); run pytest with --snapshot-update to accept",
            "E *-   - Hi! How can I help?",
            "E *+   - Hello there, what do you need?",
            "*1 snapshot failed. 1 snapshot passed.*",
        ]
    )
    # The diff is the changed line with one line of context, not the whole history.
    diff = (project.path / "diffs" / "greet.txt").read_text(encoding="utf-8")
    assert diff.splitlines() == [
        "  - type: message",
        "   ...",
        "    content:",
        "-   - Hi! How can I help?",
        "+   - Hello there, what do you need?",
        "    interrupted: false",
    ]
    assert "\x1b[" not in diff
    assert _snapshot_file(project).read_text(encoding="utf-8") == FLOWS_SNAPSHOT


def test_unused_scenario_snapshots_are_reported_and_deleted(project: pytest.Pytester) -> None:
    _run(project, "--snapshot-update").assert_outcomes(passed=2)
    # Deselecting a scenario with -k must not make its snapshot "unused".
    selected = _run(project, "-k", "greet")
    selected.assert_outcomes(passed=1)
    assert selected.ret == 0, selected.stdout.str()

    only_greet = FLOWS_YAML.split('  - label: "book a slot')[0]
    _write(project.path / "suite" / "flows.yaml", only_greet)

    failing = _run(project, "--snapshot-details")
    failing.assert_outcomes(passed=1)
    assert failing.ret == 1  # syrupy fails the session on unused snapshots by default
    failing.stdout.fnmatch_lines(
        [
            "*1 snapshot passed. 1 snapshot unused.*",
            "Unused book a slot: morning (suite/__snapshots__/flows.agentsim)",
            "Re-run pytest with --snapshot-update to delete unused snapshots.",
        ]
    )

    warned = _run(project, "--snapshot-warn-unused")
    assert warned.ret == 0
    warned.stdout.fnmatch_lines(["*1 snapshot unused.*"])

    cleaned = _run(project, "--snapshot-update")
    assert cleaned.ret == 0
    cleaned.stdout.fnmatch_lines(["*1 unused snapshot deleted.*"])
    text = _snapshot_file(project).read_text(encoding="utf-8")
    assert "# name: greet" in text and "book a slot" not in text
    assert _run(project).ret == 0


def test_a_deleted_yaml_file_leaves_an_orphan_that_update_removes(
    project: pytest.Pytester,
) -> None:
    _write(project.path / "suite" / "other.yaml", FLOWS_YAML)
    _run(project, "--snapshot-update").assert_outcomes(passed=4)
    (project.path / "suite" / "other.yaml").unlink()
    stale = project.path / "suite" / "__snapshots__" / "other.agentsim"
    assert stale.exists()

    result = _run(project, "--snapshot-details")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*2 snapshots unused.*"])
    assert _run(project, "--snapshot-update").ret == 0
    assert not stale.exists()
    assert _snapshot_file(project).read_text(encoding="utf-8") == FLOWS_SNAPSHOT


def _many_scenarios(prefix: str, count: int) -> str:
    lines = ["scenarios:"]
    for i in range(count):
        lines += [
            f"  - label: {prefix} case {i}",
            f"    user: question {i}",
            f"    reply: answer {i}",
        ]
    return "\n".join(lines) + "\n"


def test_xdist_writes_the_same_files_as_a_serial_run(pytester: pytest.Pytester) -> None:
    _project_files(pytester)
    for where in ("serial", "parallel"):
        _write(pytester.path / where / "flows.yaml", FLOWS_YAML + _many_scenarios("x", 8)[10:])
        _write(pytester.path / where / "more.yaml", _many_scenarios("y", 8))

    serial = _run(pytester, "serial", "--snapshot-update", "-p", "no:xdist")
    serial.assert_outcomes(passed=18)
    parallel = _run(pytester, "parallel", "--snapshot-update", "-n", "2")
    parallel.assert_outcomes(passed=18)
    parallel.stdout.fnmatch_lines(["*2 workers*"])

    for name in ("flows.agentsim", "more.agentsim"):
        a = (pytester.path / "serial" / "__snapshots__" / name).read_bytes()
        b = (pytester.path / "parallel" / "__snapshots__" / name).read_bytes()
        assert a == b, name
    # no lock or temp sidecars left behind by the concurrent writers
    assert sorted(p.name for p in (pytester.path / "parallel" / "__snapshots__").iterdir()) == [
        "flows.agentsim",
        "more.agentsim",
    ]

    # matching and unused detection under xdist too
    matched = _run(pytester, "parallel", "-n", "2")
    assert matched.ret == 0
    matched.stdout.fnmatch_lines(["*18 snapshots passed.*"])
    _write(pytester.path / "parallel" / "more.yaml", _many_scenarios("y", 7))
    unused = _run(pytester, "parallel", "-n", "2", "--snapshot-details")
    assert unused.ret == 1
    unused.stdout.fnmatch_lines(["Unused y case 7 (parallel/__snapshots__/more.agentsim)"])


PY_TEST = """
from pytest_agentsim.observe.history import normalize_items
from pytest_agentsim.plugin.snapshot import assert_history_snapshot

HISTORY = normalize_items([
    {"id": "item_abc", "type": "message", "role": "user", "content": ["hi"]},
    {"id": "item_def", "type": "agent_handoff", "new_agent_id": "billing"},
])


def test_twice(snapshot):
    assert_history_snapshot(snapshot, HISTORY)
    assert_history_snapshot(snapshot, HISTORY[:1])
    assert_history_snapshot(snapshot, HISTORY[1:], name="after_handoff")


def test_default_amber(snapshot):
    # the Python API: a plain list, compared with syrupy's default extension
    assert HISTORY == snapshot
"""


def test_python_tests_get_indexed_names_and_amber_still_works(
    pytester: pytest.Pytester,
) -> None:
    _project_files(pytester)
    pytester.makepyfile(test_py=PY_TEST)
    _run(pytester, "--snapshot-update").assert_outcomes(passed=2)
    ours = (pytester.path / "__snapshots__" / "test_py.agentsim").read_text(encoding="utf-8")
    names = [line for line in ours.splitlines() if line.startswith("# name:")]
    assert names == [
        "# name: test_twice",
        "# name: test_twice.1",
        "# name: test_twice[after_handoff]",
    ]
    # syrupy's own extension still serves the plain comparison (its format is not ours)
    amber_file = pytester.path / "__snapshots__" / "test_py.ambr"
    assert amber_file.exists()
    amber = amber_file.read_text(encoding="utf-8")
    assert "test_default_amber" in amber
    assert "hi" in amber and "billing" in amber
    # both files live in one __snapshots__ directory without flagging each other as unused
    rerun = _run(pytester)
    assert rerun.ret == 0, rerun.stdout.str()
    rerun.stdout.fnmatch_lines(["*4 snapshots passed.*"])


OTHER_PY = """
def test_other(snapshot):
    assert {"a": 1} == snapshot
"""


@pytest.mark.parametrize("shield", [False, True])
def test_scenario_snapshots_survive_runs_that_do_not_collect_yaml(
    project: pytest.Pytester, shield: bool
) -> None:
    _write(project.path / "suite" / "test_other.py", OTHER_PY)
    _run(project, "--snapshot-update").assert_outcomes(passed=3)
    extra = ("--yaml-off", "--shield") if shield else ("--yaml-off",)

    plain = _run(project, *extra)
    plain.assert_outcomes(passed=1)
    updated = _run(project, *extra, "--snapshot-update")
    updated.assert_outcomes(passed=1)
    if shield:
        assert plain.ret == 0
        assert _snapshot_file(project).read_text(encoding="utf-8") == FLOWS_SNAPSHOT
    else:
        # Why the plugin must call ignore_scenario_snapshots when YAML is off: syrupy
        # blames the scenario file on test_other.py's site, fails, and deletes it on update.
        assert plain.ret == 1
        plain.stdout.fnmatch_lines(["*1 snapshot unused.*"])
        assert not _snapshot_file(project).exists()


def test_ignore_scenario_snapshots_keeps_user_extensions() -> None:
    import argparse

    option = argparse.Namespace(ignore_file_extensions=["png"])
    ignore_scenario_snapshots(option)
    ignore_scenario_snapshots(option)
    assert option.ignore_file_extensions == ["png", "agentsim"]
    bare = argparse.Namespace(ignore_file_extensions=None)
    ignore_scenario_snapshots(bare)
    assert bare.ignore_file_extensions == ["agentsim"]


# --- the YAML body on its own -------------------------------------------------------------

AWKWARD_STRINGS = [
    "yes",
    "null",
    "1.0",
    "~",
    "a: b",
    "#comment",
    "- dash",
    "trailing ",
    " leading",
    "multi\nline\n",
    "multi\nline with trailing space \nx",
    "  indented\nfirst line",
    "cr\rlf\r\n",
    "nel\x85ls\u2028ps\u2029",
    "nul\x00bell\x07",
    'quote\'s "double"',
    "é 🙂 中文",
    "",
    "\n",
    "{not: a map}",
    "[not, a, list]",
    "@at",
    "%percent",
    "*star",
    "&amp",
    "!bang",
]


def test_yaml_body_round_trips_awkward_text_exactly() -> None:
    data = [
        {"type": "message", "content": AWKWARD_STRINGS, "n": [0, -1, 1.5, True, None]},
        {"nested": {"deep": [{"x": "y"}, []], "empty": {}}},
    ]
    text = AgentsimSnapshotExtension().serialize(data)
    assert yaml.safe_load(text) == data
    # what the amber container does to the body must not matter either
    assert "\r" not in text and "\u2028" not in text
    assert not text.endswith("\n")


def test_yaml_body_keeps_insertion_order_and_uses_blocks_for_text() -> None:
    text = serialize_yaml([{"type": "message", "id": "item_1", "content": ["a\nb"]}])
    assert text == "- type: message\n  id: item_1\n  content:\n  - |-\n    a\n    b"


def test_yaml_body_never_folds_long_lines_or_uses_anchors() -> None:
    long = " ".join(["word"] * 200)
    shared = ["same"]
    text = serialize_yaml({"a": long, "b": shared, "c": shared})
    assert text.splitlines()[0] == f"a: {long}"
    assert "&" not in text and "*" not in text


def test_yaml_body_marks_non_json_values_explicitly() -> None:
    class Thing:
        def __repr__(self) -> str:
            return "Thing(1)"

    text = serialize_yaml({"t": Thing(), "tuple": (1, 2)})
    assert text == "t: !repr 'Thing(1)'\ntuple:\n- 1\n- 2"


def test_syrupy_filters_and_matchers_apply_like_amber() -> None:
    data: list[dict[str, Any]] = [
        {"type": "message", "id": "item_1", "content": ["hi"]},
        {"type": "function_call", "id": "item_2", "arguments": {"date": "x"}},
    ]
    ext = AgentsimSnapshotExtension()
    assert ext.serialize(data, exclude=props("id")) == serialize_yaml(
        [
            {"type": "message", "content": ["hi"]},
            {"type": "function_call", "arguments": {"date": "x"}},
        ]
    )
    masked = ext.serialize(data, matcher=path_type({"1.arguments.date": (str,)}))
    # path_type puts syrupy's Repr placeholder there; the YAML body tags it as a repr
    assert masked.splitlines()[-2:] == ["  arguments:", "    date: !repr 'str'"]
