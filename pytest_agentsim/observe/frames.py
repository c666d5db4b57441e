"""Errors told the way a report should tell them: one line, naming the agent's own code.

Library frames (the standard library, site-packages and this plugin) are left out, so a
failure points at the line of the user's agent that raised. Nothing here imports livekit:
livekit's error wrappers are read by their attributes.
"""

from __future__ import annotations

import contextlib
import sysconfig
import traceback
import types
from pathlib import Path

__all__ = [
    "code_location",
    "describe_error",
    "describe_exception",
    "innermost",
    "user_frame",
    "user_traceback",
]

_LIBRARY_DIRS = tuple(
    {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    | {str(Path(__file__).resolve().parents[1])}
)


def _is_user_frame(filename: str) -> bool:
    try:
        path = str(Path(filename).resolve())
    except OSError:  # pragma: no cover - odd frame filenames
        return False
    return not path.startswith(_LIBRARY_DIRS) and not filename.startswith("<")


def _display_path(filename: str) -> str:
    with contextlib.suppress(ValueError):
        return str(Path(filename).resolve().relative_to(Path.cwd()))
    return filename


def user_frame(frame: types.FrameType | None) -> str | None:
    """``file.py:12 in func`` of the innermost frame of the agent's code on a stack (from
    ``frame`` outward), or None."""
    while frame is not None:
        code = frame.f_code
        if _is_user_frame(code.co_filename):
            return f"{_display_path(code.co_filename)}:{frame.f_lineno} in {code.co_name}"
        frame = frame.f_back
    return None


def innermost(tb: types.TracebackType | None) -> types.FrameType | None:
    """The frame a traceback was raised in."""
    frame = None
    while tb is not None:
        frame, tb = tb.tb_frame, tb.tb_next
    return frame


def code_location(code: types.CodeType) -> str:
    """``file.py:12 in func`` where a function is defined."""
    return f"{_display_path(code.co_filename)}:{code.co_firstlineno} in {code.co_name}"


def describe_exception(exc: BaseException) -> str:
    """``Type: message (file.py:12 in func)``, naming the innermost frame of the agent's code."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_user_frame(f.filename)]
    if frames:
        f = frames[-1]
        text += f" ({_display_path(f.filename)}:{f.lineno} in {f.name})"
    return text


def user_traceback(exc: BaseException) -> str:
    """The agent's own frames of ``exc``'s traceback (library frames left out)."""
    lines = []
    for f in traceback.extract_tb(exc.__traceback__):
        if _is_user_frame(f.filename):
            lines.append(f"{_display_path(f.filename)}:{f.lineno} in {f.name}: {f.line or ''}")
    return "\n".join(lines)


def describe_error(err: BaseException | str | None) -> str:
    """One line for an error, looking through livekit's LLMError/TTSError wrappers
    (a string is an error already described, e.g. by an agent in another process)."""
    if err is None:
        return "unknown error"
    if isinstance(err, str):
        return err
    inner = getattr(err, "error", None)
    if isinstance(inner, BaseException):
        err = inner
    name = type(err).__name__
    status = getattr(err, "status_code", None)
    body = getattr(err, "body", None)
    msg = getattr(err, "message", None) or str(err)
    parts = [name]
    if isinstance(status, int) and status > 0:
        parts.append(str(status))
    if isinstance(body, dict) and body.get("type"):
        parts.append(str(body["type"]))
    text = " ".join(parts) + f": {msg}"
    if isinstance(body, str) and body and body not in msg:
        text += f" ({body})"
    flags = []
    if getattr(err, "retryable", None) is False:
        flags.append("not retryable")
    if getattr(err, "terminal", None):
        flags.append("terminal")
    return text + (f" ({', '.join(flags)})" if flags else "")
