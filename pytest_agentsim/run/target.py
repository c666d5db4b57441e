"""Resolve what a scenario runs: ``"package.module:Attr"`` into an agent target.

A target is an ``Agent`` subclass, a factory ``(scenario) -> Agent`` (or one taking no
arguments), or an ``AgentServer`` (entrypoint mode, see
:mod:`pytest_agentsim.run.drivers.entrypoint`).
Modules named by a path relative to the scenario file are loaded from that file under a
name derived from their path, so two example folders that both hold an ``agent.py`` never
shadow each other, and their helper modules are kept apart too (:mod:`.siblings`). Never
imports pytest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import sys
import traceback
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from livekit.agents import Agent, AgentServer

from ..errors import ScenarioError, did_you_mean
from ..load.model import Scenario
from . import siblings

# livekit-agents 2 keeps an agent's per-session state on its activity, so one module-level
# `Agent(name=...)` serves every session; 1.x agents hold their state themselves
STATELESS_AGENTS = "name" in inspect.signature(Agent.__init__).parameters

__all__ = ["AgentTarget", "import_target", "locate_agent_file", "resolve_target"]


@dataclasses.dataclass(frozen=True)
class AgentTarget:
    kind: Literal["agent", "factory", "server", "instance"]
    obj: Any
    description: str

    def build(self, scenario: Scenario | None) -> tuple[Agent, dict[str, Any]]:
        """A fresh agent for one scenario (agents hold state, so never reuse one), and the
        ``AgentSession`` arguments to run it with: a factory may return ``(agent,
        {"userdata": ...})``; the scenario's ``agentsim: {session: ...}`` comes first."""
        session: dict[str, Any] = dict(scenario.config.session or {}) if scenario else {}
        if self.kind == "server":
            # a server has no Agent to hand out: its entrypoint builds the session and the
            # agent itself, so scenarios run it whole (runner.run_scenario -> entrypoint.py)
            raise ScenarioError(
                f"{self.description} is an AgentServer: it runs in entrypoint mode (its "
                "rtc_session entrypoint builds the agent), so there is no Agent to build",
                fix="pass the AgentTarget itself to run_scenario, or point at the Agent class "
                "for a session built by the plugin",
            )
        if self.kind == "instance":
            return self.obj, session  # livekit 2: a stateless agent serves every session
        fn: Callable[..., Any] = self.obj
        try:
            agent = fn(scenario) if self.kind == "factory" and _takes_argument(fn) else fn()
        except TypeError as e:
            if self.kind == "agent" and "argument" in str(e):
                raise ScenarioError(
                    f"cannot build {self.description}: {e}",
                    fix="give its __init__ defaults, or point agentsim.agent at a factory "
                    "function `def make_agent(scenario) -> Agent`",
                ) from None
            raise
        if (
            self.kind == "factory"
            and isinstance(agent, tuple)
            and len(agent) == 2
            and isinstance(agent[1], dict)
        ):
            agent, extra = agent
            session.update(extra)
        if not isinstance(agent, Agent):
            raise ScenarioError(
                f"{self.description} returned {type(agent).__name__}, not a livekit Agent",
                fix="return an Agent instance from the factory (or `(agent, {'userdata': ...})` "
                "to give its session arguments)",
            )
        return agent, session


def _check_server(server: AgentServer, where: str) -> None:
    """livekit-agents 2 servers the plugin cannot run as the cloud would: say so."""
    endpoints = getattr(server, "_a2a_endpoints", None) or {}
    if endpoints and getattr(server, "_entrypoint_fnc", None) is None:
        raise ScenarioError(
            f"{where}: this AgentServer has only A2A text doors ({', '.join(sorted(endpoints))}) "
            "and no rtc_session: scenarios run an rtc_session entrypoint, and A2A sessions "
            "are not supported yet",
            fix="point agentsim.agent at the Agent the door runs (`module:Agent`), which "
            "scenarios run in a session of their own",
        )
    if getattr(server, "storage", None) is not None:
        raise ScenarioError(
            f"{where}: this AgentServer has session storage (storage=...): the cloud loads "
            "and saves each call's history and state through it, which a scenario does not "
            "do (each starts fresh), so its verdict would not be the cloud's",
            fix="test the agent without storage: point agentsim.agent at the Agent "
            "(`module:Agent`, with `session: {state: ...}` for its state), or at a server "
            "built without storage= for tests",
        )


def _takes_argument(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params
    )


def resolve_target(
    spec: Any,
    *,
    origin: Path | None = None,
    rootdir: Path | None = None,
    where: str = "agentsim.agent",
    env: Mapping[str, str | None] | None = None,
) -> AgentTarget:
    """Turn a spec (string, class, factory, server or module) into an :class:`AgentTarget`."""
    description = spec if isinstance(spec, str) else getattr(spec, "__qualname__", repr(spec))
    obj = (
        import_target(spec, origin=origin, rootdir=rootdir, where=where, env=env)
        if isinstance(spec, str)
        else spec
    )
    if isinstance(obj, types.ModuleType):
        servers = [v for v in vars(obj).values() if isinstance(v, AgentServer)]
        if len(servers) == 1:
            _check_server(servers[0], where)
            return AgentTarget("server", servers[0], f"{description} (AgentServer)")
        raise ScenarioError(
            f"{where}: module {obj.__name__!r} holds no single AgentServer",
            fix="name the agent as 'module:AgentClass' or 'module:factory'",
        )
    if isinstance(obj, AgentServer):
        _check_server(obj, where)
        return AgentTarget("server", obj, str(description))
    if isinstance(obj, type) and issubclass(obj, Agent):
        return AgentTarget("agent", obj, str(description))
    if isinstance(obj, Agent):
        if STATELESS_AGENTS:
            return AgentTarget("instance", obj, str(description))
        raise ScenarioError(
            f"{where}: {description} is an Agent instance; on livekit-agents 1.x agents keep "
            "state, so each scenario needs a fresh one (2.x agents are stateless instances)",
            fix="point it at the Agent class or at a factory function returning a new agent",
        )
    if callable(obj):
        return AgentTarget("factory", obj, str(description))
    raise ScenarioError(
        f"{where}: {description} is {type(obj).__name__}, not an Agent class, "
        "factory or AgentServer",
        fix="name an Agent subclass, a factory function or an AgentServer",
    )


def import_target(
    spec: str,
    *,
    origin: Path | None,
    rootdir: Path | None,
    where: str,
    env: Mapping[str, str | None] | None = None,
) -> Any:
    """Import ``module:attr`` (module dotted or a .py path, relative to ``origin``'s folder);
    ``env`` is the scenario's ``env:``, already set in ``os.environ`` by the caller."""
    module_part, _, attr = spec.partition(":")
    module_part = module_part.strip()
    if not module_part:
        raise ScenarioError(
            f"{where}: {spec!r} names no module", fix="write it as 'package.module:AgentClass'"
        )
    module = _load_module(module_part, origin=origin, rootdir=rootdir, where=where, env=env or {})
    if not attr:
        return module
    obj: Any = module
    for part in attr.strip().split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            names = sorted(n for n in dir(module) if not n.startswith("_"))
            guess = did_you_mean(part, names)
            raise ScenarioError(
                f"{where}: module {module.__name__!r} has no attribute {part!r}",
                fix=f"did you mean {guess!r}?" if guess else f"it defines: {', '.join(names[:12])}",
            ) from None
    return obj


def candidate_files(module_part: str, origin: Path | None, rootdir: Path | None) -> list[Path]:
    rel = (
        Path(module_part)
        if module_part.endswith(".py")
        else Path(*module_part.split(".")).with_suffix(".py")
    )
    bases = [b for b in (origin.parent if origin else None, rootdir) if b is not None]
    return [b / rel for b in bases] + ([rel] if rel.is_absolute() else [])


def _load_module(
    module_part: str,
    *,
    origin: Path | None,
    rootdir: Path | None,
    where: str,
    env: Mapping[str, str | None],
) -> types.ModuleType:
    for candidate in candidate_files(module_part, origin, rootdir):
        if candidate.is_file():
            return _load_file(candidate.resolve(), where, env)
    if module_part.endswith(".py") or "/" in module_part:
        raise ScenarioError(
            f"{where}: file {module_part!r} not found next to "
            f"{origin.name if origin else 'the scenario file'}",
            fix="give the path relative to the scenario file",
        )
    try:
        return importlib.import_module(module_part)
    except ModuleNotFoundError as e:
        if e.name and module_part.startswith(e.name):
            raise ScenarioError(
                f"{where}: cannot import {module_part!r} (no such module)",
                fix="put the agent module next to the scenario file, or make it importable "
                "(pytest's `pythonpath` ini option)",
            ) from None
        raise


def _load_file(path: Path, where: str, env: Mapping[str, str | None]) -> types.ModuleType:
    scope = siblings.scope_for(path.parent, env)
    name = "agentsim_user." + "_".join(
        "".join(c if c.isalnum() else "_" for c in part) for part in path.with_suffix("").parts[-4:]
    )
    if env:  # helpers compute at import (a pinned "today"): another env, another import
        name += "_" + hashlib.sha1(repr(scope.env).encode()).hexdigest()[:8]
    # the agent's own helpers (`import ui_view`) resolve in its folder, as when run alone
    siblings.activate(scope)
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) == str(path):
        return existing
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
        raise ScenarioError(f"{where}: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        del sys.modules[name]
        raise ScenarioError(
            f"the agent file does not compile: SyntaxError: {e.msg}",
            path=Path(e.filename) if e.filename else path,
            line=e.lineno,
            fix="fix the Python syntax there (python -m py_compile shows the same)",
        ) from None
    except ModuleNotFoundError as e:
        del sys.modules[name]
        missing = _missing_package(e, scope)
        if missing is None:
            raise
        raise missing from None
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _missing_package(e: ModuleNotFoundError, scope: siblings.FolderScope) -> ScenarioError | None:
    """A third-party import the agent needs and this environment lacks, named at the
    agent's import line (not the agent's bug: the test environment's)."""
    if not e.name or e.name.partition(".")[0] in scope.names():
        return None
    frames = [
        f
        for f in traceback.extract_tb(e.__traceback__)
        if Path(f.filename).resolve().is_relative_to(scope.folder)
    ]
    if not frames:
        return None
    where = frames[-1]
    top = e.name.partition(".")[0]
    return ScenarioError(
        f"the agent imports {top!r}, which is not installed in the environment pytest runs in "
        f"({sys.executable})",
        path=Path(where.filename),
        line=where.lineno,
        fix=f"install the package that provides {top!r} there "
        "(e.g. `pip install -r requirements.txt` of the agent, or add it to your test extras)",
    )


def locate_agent_file(
    spec: Any, *, origin: Path | None, rootdir: Path | None, where: str = "agentsim.agent"
) -> Path:
    """The ``.py`` file process mode runs for ``spec``, without importing it here."""
    import importlib.util
    import inspect

    if isinstance(spec, str):
        module_part = spec.partition(":")[0]
        module_part = module_part.strip()
        for candidate in candidate_files(module_part, origin, rootdir):
            if candidate.is_file():
                return candidate.resolve()
        if module_part and not module_part.endswith(".py") and "/" not in module_part:
            found = None
            with contextlib.suppress(ImportError, ValueError):
                found = importlib.util.find_spec(module_part)
            if found is not None and found.origin and found.origin.endswith(".py"):
                return Path(found.origin).resolve()
        raise ScenarioError(
            f"{where}: process mode runs an AgentServer file, and {spec!r} names no file "
            "it can find",
            fix="give the path of the agent file relative to the scenario file (`agent: agent.py`)",
        )
    module = inspect.getmodule(spec) if not hasattr(spec, "__file__") else spec
    if module is None:
        module = next(
            (
                m
                for m in list(sys.modules.values())
                if getattr(m, "__file__", None) and any(v is spec for v in vars(m).values())
            ),
            None,
        )
    path = getattr(module, "__file__", None)
    if not path:
        raise ScenarioError(
            f"{where}: process mode needs the file that defines the AgentServer; cannot tell "
            f"which file {spec!r} comes from",
            fix="name the agent file in `agentsim: {agent: agent.py}`",
        )
    return Path(path).resolve()
