"""Process mode's warm server: the agent file imported (and prewarmed) once, one fork per job.

Run as ``python -m pytest_agentsim.run.drivers.warm <agent file>`` with the environment a
cold child (:mod:`.shim`) would get, minus the per-job variables. It does what the cold
child does up to the job: retry waits made instant, the offline guard on while the agent
file is imported, the file's ``AgentServer`` found as livekit's CLI finds it, and its
``setup_fnc`` (prewarm) run on a :class:`JobProcess`. Then it waits, single-threaded with
no event loop, for requests on stdin (JSON lines), and answers on its original stdout:

- ``{"op": "fork", "env": {...}, "connect": "H:P", "log": path}``: fork a job. The child
  leads its own session, dies with this server, writes to ``log``, takes ``env`` as its
  whole environment, replays the network attempts the guard blocked during the import (a
  cold child would have logged them itself), and runs livekit's TCP console as the cold
  child does. Answer ``{"pid": N}`` or ``{"refused": why}``.
- ``{"op": "reap", "pid": N}``: forget an ended job. Exits are reported as
  ``{"exit": N, "code": C}``, and the zombie is kept until reaped so that its pid (and
  process group) cannot be reused while pytest may still signal it.

End of stdin (pytest gone or done) kills every job left and exits. The first answer is
``{"ready": pid, ...}``, or ``{"unfit": why}`` when forking would not be safe or the file
does not import: the parent then starts cold children, or, when it was the prewarm that
left threads behind, a server that leaves the prewarm to each job (``$AGENTSIM_WARM_PREWARM
= 0``). Never imports pytest.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import select
import signal
import sys
import threading
import time
import traceback
from typing import Any, NoReturn

from livekit.agents import AgentServer, JobExecutorType, JobProcess

from ...transport.offline import block_network, register_guarded_child
from . import shim

__all__ = ["PREWARM_ENV", "main"]

PREWARM_ENV = "AGENTSIM_WARM_PREWARM"
"""``0``: do not prewarm here (each job runs ``setup_fnc`` itself, as a cold child does)."""

_PR_SET_PDEATHSIG = 1  # linux/prctl.h

JOB_MODULES = (
    "livekit.agents.cli.tcp_console",
    "livekit.agents.ipc.mock_room",
    "livekit.agents.llm.async_toolset",
    "livekit.agents.voice.report",
    "multiprocessing.connection",
    "multiprocessing.forkserver",
    "anyio._backends._asyncio",
    "openai.resources.chat",
    "openai.resources.models",
    "openai.lib.streaming.chat",
)
"""Framework modules every console job imports lazily (measured on 1.8.9): imported here
once, as livekit's ``_preload`` does for its own forkserver. Library code only, never the
agent's; a name missing in the installed release is skipped."""

register_guarded_child(__spec__.name, unless_env=shim.ALLOW_NETWORK_ENV)


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when ``parent`` dies (Linux), and exit now if it already did."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def native_threads() -> int:
    """Threads of this process, the ones Python does not know of included (Linux)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _fork_unsafe(baseline: int) -> str | None:
    """Why forking now would not be safe (None: it is)."""
    if threading.active_count() != 1:
        names = ", ".join(t.name for t in threading.enumerate())
        return f"{threading.active_count()} Python threads are running ({names})"
    # threads of native libraries (a runtime a prewarm started) do not survive a fork;
    # the ones the imports before the agent file start (numpy's BLAS pool) are fork-aware
    extra = native_threads() - baseline
    if extra > 0:
        return f"{extra} native thread(s) started while importing or prewarming the agent"
    return None


def _discover(agent_file: str) -> AgentServer:
    """The file's ``AgentServer``, found as ``python -m livekit.agents console`` finds it."""
    from livekit.agents import __main__ as lk_main

    return lk_main._discover_server(agent_file)


def _tcp_console() -> Any:
    """livekit's ``console --connect-addr`` runner (what its CLI's ``main()`` calls)."""
    from livekit.agents.cli import cli

    return cli._run_tcp_console


def _preload() -> None:
    """livekit's own one-time warm-up and its gc freeze, as its forkserver runs them for
    the job processes it forks (a cold child's job imports the warm-up itself), plus the
    TLS context livekit builds once per process for every job's HTTP session (parsing the
    CA bundle, ~0.1 s of each job otherwise)."""
    import importlib

    for name in ("livekit.agents.ipc._preload", *JOB_MODULES):
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    with contextlib.suppress(Exception):
        from livekit.agents.utils import http_context

        http_context._create_ssl_context()
    with contextlib.suppress(ImportError):
        importlib.import_module("livekit.agents.ipc._preload_freeze")


class _Replies:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, **message: Any) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(self.fd, data) :]


def main(argv: list[str]) -> int:
    agent_file = argv[0]
    die_with_parent(int(os.environ.get(shim.PARENT_ENV) or os.getppid()))
    original_env = dict(os.environ)
    # answers get a private descriptor; what the agent prints goes to this server's log
    replies = _Replies(os.dup(1))
    os.dup2(2, 1)
    prewarm = os.environ.get(PREWARM_ENV) != "0"
    blocked: list[str] = []

    def on_blocked(entry: str) -> None:
        blocked.append(entry)
        shim.report_blocked(entry)

    baseline = native_threads()
    shim.prepare_process()
    guard = None if os.environ.get(shim.ALLOW_NETWORK_ENV) else block_network(on_blocked=on_blocked)
    started = time.monotonic()
    prewarmed: JobProcess | None = None
    try:
        if guard is not None:
            guard.__enter__()
        server = _discover(agent_file)
        _tcp_console()  # a release without it: unfit here, not a failed job later
        _preload()
        imported = time.monotonic()
        unsafe = _fork_unsafe(baseline)
        if unsafe is not None:
            replies.send(unfit=unsafe)
            return 1
        if prewarm:
            # as livekit's job runner prewarms a thread-executor job process
            prewarmed = JobProcess(
                executor_type=JobExecutorType.THREAD,
                user_arguments=None,
                http_proxy=getattr(server, "_http_proxy", None) or None,
            )
            if server.setup_fnc is not None:
                server.setup_fnc(prewarmed)
    except BaseException as e:
        traceback.print_exc()
        replies.send(unfit=f"the agent file did not import or prewarm here ({e!r})")
        return 1
    finally:
        if guard is not None:
            guard.__exit__(None, None, None)
    why = _fork_unsafe(baseline)
    if why is not None:  # the prewarm did it: a server that leaves it to each job may do
        replies.send(unfit=f"{why} (by setup_fnc)", retry_without_prewarm=True)
        return 1
    replies.send(
        ready=os.getpid(),
        import_seconds=imported - started,
        prewarm_seconds=time.monotonic() - imported,
    )
    return _serve(server, prewarmed, blocked, original_env, replies, baseline)


def _serve(
    server: AgentServer,
    prewarmed: JobProcess | None,
    blocked: list[str],
    original_env: dict[str, str],
    replies: _Replies,
    baseline: int,
) -> int:
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a job ended: select() wakes up
    signal.set_wakeup_fd(wake_w)
    inherited = (0, replies.fd, wake_r, wake_w)  # the job closes these
    jobs: dict[int, int | None] = {}  # pid -> exit code, None while it runs
    pending = b""
    try:
        while True:
            ready, _, _ = select.select([0, wake_r], [], [], 1.0)
            if wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
            _report_exits(jobs, replies)
            if 0 not in ready:
                continue
            chunk = os.read(0, 65536)
            if not chunk:
                return 0  # pytest is done (or gone)
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                if request.get("op") == "reap":
                    pid = int(request["pid"])
                    if jobs.pop(pid, 0) is not None:
                        with contextlib.suppress(ChildProcessError):
                            os.waitpid(pid, 0)
                    continue
                why = _fork_unsafe(baseline)
                if why is not None:
                    replies.send(refused=why)
                    continue
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _job(server, prewarmed, blocked, original_env, request, inherited)
                jobs[pid] = None
                replies.send(pid=pid)
    finally:
        for pid, code in jobs.items():
            if code is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        for pid in jobs:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _report_exits(jobs: dict[int, int | None], replies: _Replies) -> None:
    for pid, code in list(jobs.items()):
        if code is not None:
            continue
        code = _exit_code(pid)
        if code is not None:
            jobs[pid] = code
            replies.send(exit=pid, code=code)


def _exit_code(pid: int) -> int | None:
    """``pid``'s exit code as ``Popen.returncode`` has it, leaving the zombie in place."""
    waitid = getattr(os, "waitid", None)
    if waitid is None:  # no peeking here: reap at once
        done, status = os.waitpid(pid, os.WNOHANG)
        return os.waitstatus_to_exitcode(status) if done else None
    result = waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if result is None or result.si_pid == 0:
        return None
    if result.si_code in (os.CLD_KILLED, os.CLD_DUMPED):
        return -int(result.si_status)
    return int(result.si_status)


def _job_environment(original: dict[str, str], wanted: dict[str, str]) -> None:
    """The job's environment: ``wanted`` (the one a cold child would start with), over what
    the import and prewarm left in this process. A variable they set or changed keeps their
    value unless the job's own value differs from the server's start-up value, as it
    would be in a cold child that imported with ``wanted``."""
    for key in original.keys() - wanted.keys():
        os.environ.pop(key, None)
    for key, value in wanted.items():
        if original.get(key) != value:
            os.environ[key] = value


def _job(
    server: AgentServer,
    prewarmed: JobProcess | None,
    blocked: list[str],
    original_env: dict[str, str],
    request: dict[str, Any],
    inherited: tuple[int, ...],
) -> NoReturn:
    """The forked job: from here on, what the cold child does after its import."""
    code = 1
    try:
        # its own group, as the cold child's: pytest ends it with killpg; its server's
        # death is seen by the shim's parent watch (prepare_job), which also reaps what
        # the job detached, as a cold child's does (a PDEATHSIG kill would skip that)
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in inherited:
            os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        _job_environment(original_env, request["env"])
        os.environ[shim.PARENT_ENV] = str(os.getppid())
        # as `python -m pytest_agentsim.run.drivers.shim <file> --connect-addr H:P` has it
        sys.argv = [shim.__file__, *sys.argv[1:2], "--connect-addr", str(request["connect"])]
        for entry in blocked:
            shim.report_blocked(entry)
        shim.prepare_job()
        shim.guard_network()
        if prewarmed is not None:
            userdata = prewarmed.userdata

            def adopt(proc: JobProcess) -> None:  # the prewarm this server already ran
                proc.userdata.update(userdata)

            server.setup_fnc = adopt
        _tcp_console()(server=server, connect_addr=str(request["connect"]), record=False)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()  # what a cold child's interpreter runs at exit
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
