"""Hardening: every broken scenario file is a clean collection error, never a traceback.

The corpus lives in ``tests/data/broken/``. Each text file starts with a header naming what
loading it must produce::

    # error: <pattern of the message>            (or `# collects: <number of items>`)
    # fix: <pattern of the fix line>
    # line: <the line the error (or warning) must name>
    # warning: <pattern of a warning>            (collecting files only)
    # absent: <text that must not be collected>  (collecting files only)

In patterns only ``*`` is special (any text); brackets and the rest match literally.
Files that are not UTF-8 text carry their expectations in :data:`NON_TEXT` below. Files too
big to keep in the repository are generated at test time.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import yaml

from pytest_agentsim import ScenarioError, load_scenario_file
from pytest_agentsim.load.loader import MAX_FILE_BYTES
from pytest_agentsim.load.yamlv3 import YamlError, compose_document

from .conftest import DATA, plugin_output

CORPUS = DATA / "broken"
# Loose, in CPU seconds (a busy CI machine or xdist does not skew them): the real cost is
# milliseconds; this only catches a hang or a quadratic blow-up.
BUDGET_SECONDS = 2.0


@dataclasses.dataclass(frozen=True)
class Expect:
    error: str | None = None  # pattern of ScenarioError.message
    fix: str | None = None  # pattern of ScenarioError.fix
    line: int | None = None  # the line the error or the first warning names
    collects: int | None = None  # number of scenarios, for files that must load
    warning: str | None = None  # pattern of a warning (collecting files)
    absent: str | None = None  # text no collected label or tag may contain


NON_TEXT: dict[str, Expect] = {
    "encoding-latin1.yaml": Expect(
        error="the file is not valid UTF-8 (byte 0xe9 cannot be decoded)",
        fix="save the file as UTF-8 text*",
        line=3,
    ),
    "encoding-binary-junk.yaml": Expect(
        error="the file is not valid UTF-8 (byte 0x89 cannot be decoded)",
        fix="save the file as UTF-8 text (is it a binary file?)",
        line=1,
    ),
    "encoding-nul-byte.yaml": Expect(
        error="the file contains the control character U+0000*binary file?*",
        fix="save the file as plain UTF-8 text*",
        line=3,
    ),
    "encoding-control-character.yaml": Expect(
        error="the file contains the control character U+0007*",
        fix="save the file as plain UTF-8 text*",
        line=3,
    ),
    "encoding-utf16-no-bom.yaml": Expect(
        error="the file looks like UTF-16 without a byte order mark*",
        fix="save the file as UTF-8",
        line=1,
    ),
    "encoding-utf32.yaml": Expect(
        error="the file is UTF-32 encoded*", fix="save the file as UTF-8", line=1
    ),
    "encoding-broken-utf16.yaml": Expect(
        error="the file starts with a UTF-16 byte order mark but is not valid UTF-16",
        fix="save the file as UTF-8",
    ),
    # yaml.v3 reads UTF-16 with a byte order mark, and skips a UTF-8 one: these must collect.
    "encoding-utf16-le-bom.yaml": Expect(collects=1),
    "encoding-utf16-be-bom.yaml": Expect(collects=1),
    "encoding-utf8-bom.yaml": Expect(collects=1),
    "shape-empty.yaml": Expect(
        error="the file is empty", fix="start the file with `name:`*", line=1
    ),
}


def _header(path: Path) -> Expect:
    if path.name in NON_TEXT:
        return NON_TEXT[path.name]
    fields: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("# "):
            break
        key, sep, value = line[2:].partition(": ")
        if sep and key in ("error", "fix", "line", "collects", "warning", "absent"):
            fields[key] = value
    assert fields, f"{path.name}: no expectation header and not in NON_TEXT"
    return Expect(
        error=fields.get("error"),
        fix=fields.get("fix"),
        line=int(fields["line"]) if "line" in fields else None,
        collects=int(fields["collects"]) if "collects" in fields else None,
        warning=fields.get("warning"),
        absent=fields.get("absent"),
    )


CASES = sorted(p.name for p in CORPUS.iterdir() if p.suffix == ".yaml")
CATEGORIES = sorted({name.split("-", 1)[0] for name in CASES})


def _matches(text: str | None, pattern: str) -> bool:
    """``*`` matches any text (newlines included); everything else literally."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return text is not None and re.fullmatch(regex, text, re.DOTALL) is not None


def _has_error_lines(out: str, where: str, expect: Expect) -> bool:
    """The error line, then its fix line, as the collection error shows them."""
    lines = out.splitlines()
    return any(
        _matches(line, f"{where}: {expect.error}") and _matches(following, f"  fix: {expect.fix}")
        for line, following in itertools.pairwise(lines)
    )


def _load_timed(path: Path) -> tuple[object, float]:
    """load_scenario_file's result (or its ScenarioError) and the CPU time it took."""
    start = time.process_time()
    try:
        result: object = load_scenario_file(path)
    except ScenarioError as e:
        result = e
    return result, time.process_time() - start


def test_corpus_covers_every_category() -> None:
    assert len(CASES) >= 150
    assert CATEGORIES == [
        "agentsim",
        "dup",
        "encoding",
        "limits",
        "shape",
        "syntax",
        "tabs",
        "type",
        "unknown",
    ]
    for name in CASES:
        expect = _header(CORPUS / name)
        assert (expect.error is None) != (expect.collects is None), name
        if expect.error is not None:
            assert expect.fix, f"{name}: every corpus error has a known fix"


@pytest.mark.parametrize("name", CASES)
def test_loader_reports_file_line_and_fix(name: str) -> None:
    path = CORPUS / name
    expect = _header(path)
    result, elapsed = _load_timed(path)
    assert elapsed < BUDGET_SECONDS, f"{name} took {elapsed:.2f}s"
    if expect.error is None:
        assert not isinstance(result, ScenarioError), str(result)
        loaded = load_scenario_file(path)
        assert len(loaded.scenarios) == expect.collects
        if expect.warning is not None:
            assert [(w.line, w.message) for w in loaded.warnings if w.line == expect.line] and any(
                _matches(w.message, expect.warning) for w in loaded.warnings
            ), loaded.warnings
        if expect.absent is not None:
            for s in loaded.scenarios:
                assert expect.absent not in s.label
                assert expect.absent not in s.tags and expect.absent not in s.tags.values()
        return
    assert isinstance(result, ScenarioError), f"{name} loaded without error"
    assert _matches(result.message, expect.error), result.message
    assert _matches(result.fix, expect.fix or ""), result.fix
    assert result.line == expect.line, str(result)
    text = str(result)
    where = f"{path}:{expect.line}: " if expect.line else f"{path}: "
    assert text.startswith(where), text
    assert "\n  fix: " in text
    assert "Traceback" not in text


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="compares libyaml with pure Python")
def test_both_parsers_agree_on_the_corpus() -> None:
    """Without libyaml, PyYAML's pure-Python parser must fail (or not) on the same line,
    with the same message and fix: the words are ours, not either parser's."""

    def outcome(data: bytes, use_libyaml: bool) -> tuple[str, int | None, str, str | None]:
        try:
            return "ok", compose_document(data, use_libyaml=use_libyaml)[1], "", None
        except YamlError as e:
            return "error", e.line, e.message, e.fix

    differ = [
        name
        for name in CASES
        if outcome(data := (CORPUS / name).read_bytes(), True) != outcome(data, False)
    ]
    assert differ == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    pipe = tmp_path / "scenarios.yaml"
    os.mkfifo(pipe)
    with pytest.raises(ScenarioError, match="not a regular file"):
        load_scenario_file(pipe)


# One file of each category the way users meet it: `pytest --agentsim --collect-only`.
REPRESENTATIVES = {
    "agentsim": "agentsim-fault-missing-name.yaml",
    "dup": "dup-tags-key.yaml",
    "encoding": "encoding-latin1.yaml",
    "limits": "limits-billion-laughs.yaml",
    "shape": "shape-scalar-document.yaml",
    "syntax": "syntax-unclosed-double-quote.yaml",
    "tabs": "tabs-indent-mapping.yaml",
    "type": "type-label-alias-to-list.yaml",
    "unknown": "unknown-agentsim-key-typo.yaml",
}


def _clean(result: pytest.RunResult) -> None:
    out = plugin_output(result)  # not what livekit may log in a captured section
    assert "Traceback" not in out
    assert "INTERNALERROR" not in out


def test_every_category_has_a_representative() -> None:
    assert sorted(REPRESENTATIVES) == CATEGORIES
    assert all(name in CASES for name in REPRESENTATIVES.values())


@pytest.mark.parametrize("category", sorted(REPRESENTATIVES))
def test_collection_error_per_category(pytester: pytest.Pytester, category: str) -> None:
    name = REPRESENTATIVES[category]
    expect = _header(CORPUS / name)
    assert expect.error is not None
    shutil.copy(CORPUS / name, pytester.path / "scenarios.yaml")
    result = pytester.runpytest("--agentsim", "--collect-only")
    out = result.stdout.str()
    _clean(result)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert _has_error_lines(out, f"scenarios.yaml:{expect.line}", expect), out


def test_whole_corpus_in_one_session(pytester: pytest.Pytester) -> None:
    """Every corpus file at once: one clean error per broken file, the rest collected."""
    expected_items = 0
    for name in CASES:
        shutil.copy(CORPUS / name, pytester.path / f"{name[: -len('.yaml')]}.scenarios.yaml")
        expected_items += _header(CORPUS / name).collects or 0
    result = pytester.runpytest("--agentsim", "--collect-only", "-q")
    out = result.stdout.str()
    _clean(result)
    errors = [n for n in CASES if _header(CORPUS / n).error is not None]
    assert f"{len(errors)} errors" in out
    assert f"{expected_items} tests collected" in out
    for name in errors:
        expect = _header(CORPUS / name)
        where = f"{name[: -len('.yaml')]}.scenarios.yaml"
        if expect.line:
            where += f":{expect.line}"
        assert _has_error_lines(out, where, expect), name


@pytest.mark.parametrize(
    "name", ["shape-multi-document.yaml", "unknown-livekit-scenario-key-typo.yaml"]
)
def test_collecting_file_warns_at_the_line(pytester: pytest.Pytester, name: str) -> None:
    expect = _header(CORPUS / name)
    assert expect.collects is not None and expect.warning is not None
    shutil.copy(CORPUS / name, pytester.path / "scenarios.yaml")
    result = pytester.runpytest("--agentsim", "--collect-only", "-q")
    _clean(result)
    assert result.ret == pytest.ExitCode.OK
    lines = result.stdout.lines
    at = lines.index(f"scenarios.yaml:{expect.line}")
    assert _matches(lines[at + 1], f"*AgentsimWarning: {expect.warning}"), lines[at + 1]
    result.stdout.fnmatch_lines([f"*{expect.collects} test* collected*"])
    if expect.absent is not None:
        assert expect.absent not in result.stdout.str()


def test_multi_document_collects_first_document_only() -> None:
    path = CORPUS / "shape-multi-document.yaml"
    loaded = load_scenario_file(path)
    assert [s.label for s in loaded.scenarios] == ["greets"]
    assert loaded.name == "Broken corpus"
    (warning,) = loaded.warnings
    assert warning.line is not None
    assert path.read_text().splitlines()[warning.line - 1] == "---"
    assert "ignored, as lk agent simulate ignores it" in warning.message


def test_null_tag_keys_are_dropped_like_yaml_v3() -> None:
    loaded = load_scenario_file(CORPUS / "shape-null-tag-key.yaml")
    assert loaded.scenarios[0].tags == {"feature": "booking"}
    assert dict(loaded.scenarios[0].to_proto().tags) == {"feature": "booking"}


# ---------------------------------------------------------------------------------------
# Generated: too big to keep in the repository


def _scenarios_file(count: int) -> str:
    out = ["name: Load test", "scenarios:"]
    for i in range(count):
        out += [
            f"  - label: caller {i}",
            f"    instructions: You are caller {i} and want a room.",
            "    agent_expectations: The agent books it.",
            f"    tags: {{feature: booking, n: {i}}}",
            f"    userdata: {{caller: {i}, date: 2026-06-15}}",
        ]
    return "\n".join(out) + "\n"


def test_file_over_the_size_cap(pytester: pytest.Pytester) -> None:
    path = pytester.path / "scenarios.yaml"
    path.write_text("name: Huge\nscenarios:\n  - label: a\n", encoding="utf-8")
    with path.open("r+b") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: no 16 MiB written to disk
    result, elapsed = _load_timed(path)
    assert elapsed < BUDGET_SECONDS
    assert isinstance(result, ScenarioError)
    assert (
        result.message
        == f"file is {MAX_FILE_BYTES + 1} bytes, over the {MAX_FILE_BYTES} byte limit"
    )
    run = pytester.runpytest("--agentsim", "--collect-only")
    _clean(run)
    run.stdout.fnmatch_lines(["scenarios.yaml: file is * bytes, over the *", "  fix: split it*"])


def test_large_valid_file_collects_quickly(pytester: pytest.Pytester) -> None:
    path = pytester.path / "scenarios.yaml"
    path.write_text(_scenarios_file(5000), encoding="utf-8")
    result, elapsed = _load_timed(path)
    assert not isinstance(result, ScenarioError), str(result)
    assert elapsed < BUDGET_SECONDS, f"loading 5,000 scenarios took {elapsed:.2f}s"
    start = time.process_time()  # in-process pytester: pytest's own work counts too
    run = pytester.runpytest("--agentsim", "--collect-only", "-q")
    elapsed = time.process_time() - start
    run.stdout.fnmatch_lines(["*5000 tests collected*"])
    assert run.ret == pytest.ExitCode.OK
    assert elapsed < 10 * BUDGET_SECONDS, f"collecting 5,000 scenarios took {elapsed:.2f}s"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[" * 100_000, 1),
        ("name: x\nscenarios:\n  - label: a\n    userdata: " + "{a: " * 100_000 + "\n", 4),
        (
            "name: x\nscenarios:\n  - label: a\n    userdata:\n      k:\n        " + "- " * 100_000,
            6,
        ),
    ],
    ids=["brackets", "flow-mappings", "block-sequences"],
)
def test_deep_nesting(pytester: pytest.Pytester, text: str, line: int) -> None:
    path = pytester.path / "scenarios.yaml"
    path.write_text(text, encoding="utf-8")
    result, elapsed = _load_timed(path)
    assert elapsed < BUDGET_SECONDS
    assert isinstance(result, ScenarioError)
    assert result.message == "the YAML nests deeper than 200 levels"
    assert result.line == line
    run = pytester.runpytest("--agentsim", "--collect-only")
    _clean(run)
    run.stdout.fnmatch_lines(
        [f"scenarios.yaml:{line}: the YAML nests deeper than 200 levels", "  fix: *"]
    )


def test_huge_integers_read_as_yaml_v3_reads_them(pytester: pytest.Pytester) -> None:
    """An integer of 5,000 digits (over Python's 4,300-digit conversion limit, which used to
    escape as a ValueError traceback) is out of Go's range: yaml.v3, and so `lk agent
    simulate`, reads it as a string, here too; where a number is needed it is a located
    error (limits-huge-int-timeout.yaml)."""
    digits = "1" * 5000
    assert load_scenario_file(CORPUS / "limits-huge-int-userdata.yaml").scenarios[0].userdata == {
        "caller": digits
    }
    turn = load_scenario_file(CORPUS / "limits-huge-int-tools.yaml").scenarios[0].config.turns
    assert turn is not None
    answer = turn[0].llm[0].answer
    assert answer is not None and answer.tool_calls[0].arguments == {"city": digits}
    assert turn[0].tools[0].value == digits
    shutil.copy(CORPUS / "limits-huge-int-timeout.yaml", pytester.path / "scenarios.yaml")
    result = pytester.runpytest("--agentsim", "--collect-only")
    _clean(result)
    result.stdout.fnmatch_lines(
        [
            "scenarios.yaml:12: agentsim.timeout must be a positive number*",
            "  fix: e.g. timeout: 30",
        ]
    )
