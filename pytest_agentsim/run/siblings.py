"""Each agent file's own helper modules, kept apart inside one pytest process.

LiveKit's examples put their folder on ``sys.path`` and import helpers by bare name
(``import ui_view``, ``from common import Userdata``). Two such agents in one test run would
share ``sys.modules``: whichever is imported second gets the first one's ``ui_view``. Run
directly, each agent is alone in its interpreter, so the plugin gives each agent folder its
own view of those names: before an agent file is imported (or run again), the sibling
modules another agent folder left in ``sys.modules`` are put aside, this folder's are put
back, and the folder goes first on ``sys.path``. Only modules whose files live in an agent
folder are ever moved; stdlib and installed packages are left alone.

A folder's view is also keyed by the scenario's ``env:``, because helpers often compute
values at import (a pinned "today"): another ``env`` imports the folder afresh.
"""

from __future__ import annotations

import sys
import sysconfig
import types
from collections.abc import Mapping
from pathlib import Path

__all__ = ["FolderScope", "activate", "scope_for"]


class FolderScope:
    """The helper modules one agent folder imported, under one ``env``."""

    def __init__(self, folder: Path, env: tuple[tuple[str, str | None], ...]) -> None:
        self.folder = folder
        self.env = env
        self.modules: dict[str, types.ModuleType] = {}
        self.baseline: set[str] = set()  # sys.modules when it became active

    def owns(self, module: types.ModuleType) -> bool:
        file = getattr(module, "__file__", None)
        if file:
            return Path(file).resolve().parent.is_relative_to(self.folder)
        paths = getattr(module, "__path__", None) or ()  # namespace packages have no file
        return any(Path(p).resolve().is_relative_to(self.folder) for p in paths)

    def names(self) -> set[str]:
        """Top-level names a bare import finds in the folder (modules and packages)."""
        found: set[str] = set()
        try:
            entries = list(self.folder.iterdir())
        except OSError:
            return found
        for entry in entries:
            if entry.stem == "conftest" or entry.stem.startswith("test_"):
                continue  # pytest's modules, not the agent's
            if entry.suffix == ".py" and entry.stem.isidentifier():
                found.add(entry.stem)
            elif (
                entry.is_dir()
                and entry.name.isidentifier()
                and entry.name != "__pycache__"
                and any(entry.glob("*.py"))
            ):
                found.add(entry.name)
        return found


_scopes: dict[tuple[Path, tuple[tuple[str, str | None], ...]], FolderScope] = {}
_current: FolderScope | None = None


def scope_for(folder: Path, env: Mapping[str, str | None]) -> FolderScope:
    key = (folder.resolve(), tuple(sorted(env.items())))
    scope = _scopes.get(key)
    if scope is None:
        scope = _scopes[key] = FolderScope(*key)
    return scope


def _top(name: str) -> str:
    return name.partition(".")[0]


_INSTALLED = tuple(
    Path(p).resolve()
    for key in ("stdlib", "platstdlib", "purelib", "platlib")
    if (p := sysconfig.get_paths().get(key))
)
_displaced: dict[str, types.ModuleType] = {}  # a user's own module under a sibling's name


def _installed(module: types.ModuleType) -> bool:
    file = getattr(module, "__file__", None)
    if not file:
        return True  # builtins and namespace packages outside any agent folder
    path = Path(file).resolve()
    return any(path.is_relative_to(root) for root in _INSTALLED)


def activate(scope: FolderScope) -> None:
    """Make ``scope`` the agent folder that bare imports resolve to."""
    global _current
    if _current is not None and _current is not scope:
        _put_aside(_current)
    names = scope.names()
    # e.g. the tests' own `common.py` imported by a conftest: the agent gets its sibling, as
    # when it runs alone, and the tests' module comes back when this scope is put aside
    for name, module in list(sys.modules.items()):
        if _top(name) in names and not scope.owns(module) and not _installed(module):
            _displaced[name] = module
            del sys.modules[name]
    sys.modules.update(scope.modules)
    folder = str(scope.folder)
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)
    scope.baseline = set(sys.modules)
    _current = scope


def _put_aside(scope: FolderScope) -> None:
    """Remember and remove the sibling modules ``scope`` imported."""
    names = scope.names()
    for name, module in list(sys.modules.items()):
        if (
            _top(name) in names
            and (name in scope.modules or name not in scope.baseline)
            and scope.owns(module)
        ):
            scope.modules[name] = module
            del sys.modules[name]
    sys.modules.update(_displaced)
    _displaced.clear()
