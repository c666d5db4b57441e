"""Chat-history snapshots through syrupy.

What a snapshot file looks like
-------------------------------
``AgentsimSnapshotExtension`` keeps syrupy's amber *container* (one file per test file,
``# name: <test>`` headers, ``# ---`` dividers, xdist-safe locked merges, unused-snapshot
cleanup) but writes each snapshot *body* as YAML instead of amber's Python-repr form. A history
item then reads in the order it happened, ``type`` first, one line per field::

    # name: book a slot
      - type: message
        id: item_3
        role: user
        content:
        - Anything free on June 15th?
        interrupted: false
      - type: function_call
        id: item_4/fnc_0
        call_id: call_1
        name: list_slots
        arguments:
          date: '2026-06-15'

The same item in default amber is ``dict({`` ... ``}),`` with keys sorted alphabetically
(``arguments`` before ``type``) and a ``list([`` ... ``]),`` pair around every list: about twice
the lines, and a reviewer has to reassemble the conversation. The YAML body is valid YAML that
loads back to the exact history (tested), multi-line text uses ``|`` blocks, and a changed reply
is a one-line diff.

Where the file goes
-------------------
Scenario snapshots live in ``__snapshots__/<yaml stem>.agentsim`` next to the scenario file
(``tests/scenarios.yaml`` -> ``tests/__snapshots__/scenarios.agentsim``), one entry per scenario,
named after the pytest item's name (the scenario label). syrupy derives this from the item:
``item.path`` gives the directory and stem, ``item.name`` the entry name (prefixed with any
class-like ``::`` parts between the file and the name in the nodeid), and ``item.obj`` must have
``__module__`` and ``__name__``. The suffix is deliberately not ``.ambr``: a Python test module
``scenarios.py`` beside ``scenarios.yaml`` keeps its own ``scenarios.ambr``, and the suffix lets
:func:`ignore_scenario_snapshots` hide these files from syrupy when YAML is not collected (see
there for why that matters).

What the scenario runner must provide
-------------------------------------
* Items are ``pytest.Function`` (syrupy tracks only ``Function`` items for unused detection),
  direct children of the YAML ``pytest.File`` so the nodeid is ``<path>::<label>``, created with
  ``pytest.Function.from_parent(file, name=label, callobj=<module-level function>)``.
* ``item.path`` is the YAML file; no other attribute needs overriding (``reportinfo`` may point
  at the YAML line; syrupy does not read it).
* Call :func:`assert_history_snapshot` with the item's ``snapshot`` fixture value
  (``request.getfixturevalue("snapshot")`` works when the callobj does not ask for it).

Limitations (syrupy's rules, seen from YAML files)
-------------------------------------------------
* ``scenarios.yaml`` and ``scenarios.yml`` in one directory share ``scenarios.agentsim``.
* syrupy looks for a ``<stem>.py`` owner when deciding whether a snapshot file is orphaned. A
  YAML file never has one, so ``pytest <dir> --ignore <dir>/scenarios.yaml --snapshot-update``
  treats that file's snapshots as orphans and deletes them (``-k`` and explicit paths are safe).
* Per-entry unused detection needs at least one history snapshot assertion in the session
  (that is what registers this extension); otherwise syrupy sees a stale ``.agentsim`` file as
  one unknown unused file and removes it whole on ``--snapshot-update``, which is also right.
* Verified against syrupy 7.0.2.

This module imports syrupy (which imports pytest) and uses only public pytest API.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.amber import AmberSnapshotExtension
from syrupy.terminal import disable_color

from ..errors import AgentsimError

if TYPE_CHECKING:
    from syrupy.types import PropertyFilter, PropertyMatcher, PropertyPath, SerializableData

__all__ = [
    "SNAPSHOT_FILE_EXTENSION",
    "AgentsimSnapshotExtension",
    "HistorySnapshotMismatch",
    "assert_history_snapshot",
    "ignore_scenario_snapshots",
    "serialize_yaml",
]

SNAPSHOT_FILE_EXTENSION = "agentsim"
"""Suffix of scenario snapshot files (``__snapshots__/<stem>.agentsim``)."""


# ---------------------------------------------------------------------------------------------
# YAML body
# ---------------------------------------------------------------------------------------------

# Characters YAML itself treats as line breaks besides "\n". In a ``|`` block a loader would turn
# "\r" and "\x85" into "\n", and raw U+2028/U+2029 are invisible and split lines in editors and
# in syrupy's diff (str.splitlines). A double-quoted scalar writes them all as escapes.
_OTHER_LINE_BREAKS = re.compile("[\r\x85\u2028\u2029]")


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line text as ``|`` blocks and never emits anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        # The same list object reached twice must print twice, not as &id001/*id001.
        return True


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if _OTHER_LINE_BREAKS.search(data):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    if "\n" in data:
        # PyYAML silently falls back to a quoted style when a block cannot hold the text
        # exactly (trailing spaces, non-printable characters), so this is always faithful.
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


def _represent_other(dumper: yaml.SafeDumper, data: Any) -> yaml.ScalarNode:
    # Values a syrupy matcher substituted (e.g. ``Repr`` placeholders) or exotic objects: show
    # their repr under an explicit tag, so they never read as a plain string.
    return dumper.represent_scalar("!repr", repr(data))


_Dumper.add_representer(str, _represent_str)
_Dumper.add_multi_representer(object, _represent_other)
# A tuple is a sequence in a history, not a Python-specific !!python/tuple.
_Dumper.add_representer(tuple, yaml.SafeDumper.represent_list)
# SafeDumper's multi-representer for object would shadow the exact-type ones for subclasses
# (e.g. bool is an int subclass, handled exactly); dict/list subclasses map to their base form.
_Dumper.add_multi_representer(dict, yaml.SafeDumper.represent_dict)
_Dumper.add_multi_representer(list, yaml.SafeDumper.represent_list)


def serialize_yaml(data: Any) -> str:
    """``data`` as block YAML with insertion-ordered keys and no line folding.

    Keys are not sorted because :func:`~pytest_agentsim.observe.history.normalize_history`
    already puts them in a fixed, meaningful order; ``width`` is effectively unlimited
    because folded lines turn a one-word change into a multi-line diff.
    """
    text = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=2**31 - 1,
        indent=2,
    )
    # A bare top-level scalar ends with the "..." document-end marker; it carries nothing.
    return text.removesuffix("...\n").rstrip("\n")


def _apply_filters(
    data: Any,
    *,
    exclude: PropertyFilter | None,
    include: PropertyFilter | None,
    matcher: PropertyMatcher | None,
    path: PropertyPath = (),
) -> Any:
    """Apply syrupy's ``exclude``/``include``/``matcher`` the way the amber serializer does.

    Paths are built as amber builds them (``(key, type(value))`` per level, list indexes as
    keys), so ``props(...)``, ``paths(...)`` and ``path_type(...)`` behave the same with this
    extension as with the default one.
    """
    if matcher is not None:
        data = matcher(data=data, path=path)
    entries: Sequence[tuple[Any, Any]]
    if isinstance(data, Mapping):
        entries = list(data.items())
    elif isinstance(data, (list, tuple)):
        entries = list(enumerate(data))
    else:
        return data
    kept: list[tuple[Any, Any]] = []
    for key, value in entries:
        if exclude is not None and exclude(prop=key, path=path):
            continue
        if include is not None and not include(prop=key, path=path):
            continue
        child = _apply_filters(
            value,
            exclude=exclude,
            include=include,
            matcher=matcher,
            path=(*path, (key, type(value))),
        )
        kept.append((key, child))
    if isinstance(data, Mapping):
        return dict(kept)
    return [value for _, value in kept]


class AgentsimSnapshotExtension(AmberSnapshotExtension):
    """Amber container, YAML bodies, ``.agentsim`` files (see the module docs).

    Usable from Python too: ``assert agentsim.history ==
    snapshot(extension_class=AgentsimSnapshotExtension)``.
    """

    file_extension = SNAPSHOT_FILE_EXTENSION

    def serialize(
        self,
        data: SerializableData,
        *,
        exclude: PropertyFilter | None = None,
        include: PropertyFilter | None = None,
        matcher: PropertyMatcher | None = None,
        **kwargs: Any,
    ) -> str:
        prepared = _apply_filters(data, exclude=exclude, include=include, matcher=matcher)
        # Same newline normalization as amber: snapshots written on Windows must match on POSIX.
        return serialize_yaml(prepared).replace("\r\n", "\n").replace("\r", "\n")


# ---------------------------------------------------------------------------------------------
# Assertion helper for the scenario runner (and Python tests)
# ---------------------------------------------------------------------------------------------


class HistorySnapshotMismatch(AgentsimError, AssertionError):
    """The normalized history differs from (or has no) stored snapshot.

    ``diff`` is the uncoloured syrupy diff (``-`` snapshot, ``+`` received), for reports.
    """

    def __init__(self, message: str, *, diff: str, snapshot_name: str, location: str) -> None:
        super().__init__(message)
        self.diff = diff
        self.snapshot_name = snapshot_name
        self.location = location


# One derived assertion per ``snapshot`` fixture value, so repeated calls in one test get
# syrupy's usual ``name``, ``name.1``, ... indexes instead of overwriting one entry. Keyed by the
# item (fixture values are unhashable) and checked by identity, so a rerun starts afresh.
_DERIVED_KEY = pytest.StashKey[tuple[SnapshotAssertion, SnapshotAssertion]]()


def _history_assertion(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    # syrupy 7 exposes the item as ``test_location.item``; without it (other syrupy lines),
    # fall back to one derived assertion per call, which only loses the automatic ``.1`` index.
    item: pytest.Item | None = getattr(snapshot.test_location, "item", None)
    stash: pytest.Stash | None = getattr(item, "stash", None)
    cached = stash.get(_DERIVED_KEY, None) if stash is not None else None
    if cached is not None and cached[0] is snapshot:
        return cached[1]
    # ``use_extension`` builds a new assertion that registers itself with syrupy's session.
    # That registration is what makes syrupy discover ``.agentsim`` files with this extension,
    # so stale entries are reported and deleted one by one, like amber's. A one-off
    # ``snapshot(extension_class=...)`` would compare fine but leave unused detection blind.
    derived = snapshot.use_extension(AgentsimSnapshotExtension)
    if stash is not None:
        stash[_DERIVED_KEY] = (snapshot, derived)
    return derived


def _colors_disabled(snapshot: SnapshotAssertion) -> bool:
    session = getattr(snapshot.session, "pytest_session", None)
    option = getattr(getattr(session, "config", None), "option", None)
    return bool(getattr(option, "no_colors", True))


def assert_history_snapshot(
    snapshot: SnapshotAssertion,
    history: Sequence[Mapping[str, Any]],
    *,
    name: str | None = None,
) -> None:
    """Compare ``history`` with the test's stored snapshot (write it with ``--snapshot-update``).

    ``snapshot`` is the item's syrupy ``snapshot`` fixture value. Without ``name`` the entry is
    named after the test (``<label>``, then ``<label>.1`` for a second call in the same test);
    ``name="after_handoff"`` stores ``<label>[after_handoff]``.

    Raises :class:`HistorySnapshotMismatch` with syrupy's diff. The message is built here rather
    than left to syrupy's ``pytest_assertrepr_compare`` because that hook only explains an
    ``assert snapshot == x`` written in assertion-rewritten test code, and the runner needs the
    diff text for its own report anyway.
    """
    __tracebackhide__ = True
    assertion = _history_assertion(snapshot)
    if name:
        assertion = assertion(name=name)
    data = [dict(item) for item in history]
    if assertion == data:
        return
    result = assertion.executions[assertion.num_executions - 1]
    with disable_color():
        plain = "\n".join(assertion.get_assert_diff())
    # The terminal copy follows --snapshot-no-colors like syrupy's own assertion output.
    shown = plain if _colors_disabled(snapshot) else "\n".join(assertion.get_assert_diff())
    relative = _display_path(result.snapshot_location, snapshot)
    if result.recalled_data is None:
        headline = (
            f"no stored history snapshot {result.snapshot_name!r} in {relative}; "
            "run pytest with --snapshot-update to record it"
        )
    else:
        headline = (
            f"chat history differs from snapshot {result.snapshot_name!r} in {relative} "
            "(- snapshot, + this run); run pytest with --snapshot-update to accept"
        )
    raise HistorySnapshotMismatch(
        f"{headline}\n{shown}",
        diff=plain,
        snapshot_name=result.snapshot_name,
        location=result.snapshot_location,
    )


def _display_path(location: str, snapshot: SnapshotAssertion) -> str:
    session = getattr(snapshot.session, "pytest_session", None)
    rootpath = getattr(getattr(session, "config", None), "rootpath", None)
    if rootpath is not None:
        try:
            return str(Path(location).relative_to(rootpath))
        except ValueError:
            pass
    return location


# ---------------------------------------------------------------------------------------------
# Keeping syrupy away from scenario snapshots when YAML is not collected
# ---------------------------------------------------------------------------------------------


def ignore_scenario_snapshots(option: argparse.Namespace) -> None:
    """Make syrupy skip ``.agentsim`` files. Call from ``pytest_configure`` when YAML is off.

    syrupy treats every file under a collected test's ``__snapshots__/`` directory as belonging
    to a test that ran in this session. A plain ``pytest`` (no ``--agentsim``) in a directory
    holding both ``test_*.py`` and ``scenarios.yaml`` would therefore report every scenario
    snapshot as unused and fail the run, and ``pytest --snapshot-update`` would delete them.
    syrupy's own ``--snapshot-ignore-file-extensions`` is the escape hatch; this appends our
    suffix to it (keeping any the user gave). Do not call it when scenarios are collected, or
    stale scenario snapshots would no longer be reported.
    """
    current = list(getattr(option, "ignore_file_extensions", None) or [])
    if SNAPSHOT_FILE_EXTENSION not in current:
        current.append(SNAPSHOT_FILE_EXTENSION)
    option.ignore_file_extensions = current
