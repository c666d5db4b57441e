"""Record modes: when a cassette is replayed, when requests go to the real models, and
how a recording reaches the disk.

The modes are vcrpy's (and pytest-recording's ``rewrite``):

========== ============================== ====================================
mode       cassette exists                no cassette
========== ============================== ====================================
none       replay; a new request fails    nothing to replay (the plugin skips)
once       replay; a new request fails    record
new_epis.  replay what matches, record    record
           the rest, append it
rewrite    record from scratch            record
all        record every request (nothing  record
           replayed); earlier exchanges
           this run did not make are kept
========== ============================== ====================================

A cassette is written only by :func:`save_cassette`, to a temporary file beside it that
is renamed over it: a recording that failed, was cut short or was interrupted never
leaves an empty or partial file, and the cassette already there stays byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Literal

from .cassette import Cassette

__all__ = ["RECORD_MODES", "RecordMode", "open_cassette", "record_plan", "save_cassette"]

RecordMode = Literal["none", "once", "new_episodes", "rewrite", "all"]
RECORD_MODES: tuple[RecordMode, ...] = ("none", "once", "new_episodes", "rewrite", "all")


def record_plan(mode: RecordMode, exists: bool) -> tuple[bool, bool]:
    """``(replay, record)`` for a cassette in ``mode``: answer requests from it, and send
    what it does not answer to the real models (recording the exchange)."""
    if mode == "none":
        return True, False
    if mode == "once":
        return (True, False) if exists else (False, True)
    if mode == "new_episodes":
        return exists, True
    return False, True  # rewrite, all


def open_cassette(path: Path, name: str, mode: RecordMode) -> Cassette:
    """The cassette of one scenario or test, ready for ``mode``. Replaying a cassette that
    does not exist raises ``FileNotFoundError`` (the plugin skips or fails before)."""
    replay, record = record_plan(mode, path.is_file())
    if replay:
        cassette = Cassette.load(path)
    else:
        cassette = Cassette(path=path, scenario=name)
        if mode == "all" and path.is_file():
            cassette.kept = Cassette.load(path).interactions
    cassette.replay, cassette.record = replay, record
    return cassette


def save_cassette(cassette: Cassette) -> bool:
    """Write what this run recorded, atomically; True when written.

    Nothing is written when the run recorded nothing new, or when recording failed
    (``cassette.failed``): the cassette already there (if any) is left as it was.
    """
    if not cassette.record or cassette.failed is not None or not cassette.added:
        return False
    fresh = {(i.role, i.sha) for i in cassette.interactions}
    cassette.interactions.extend(i for i in cassette.kept if (i.role, i.sha) not in fresh)
    cassette.kept = []
    write_atomically(cassette.path, cassette.dump())
    return True


def write_atomically(path: Path, text: str) -> None:
    """``path`` holds ``text`` in full, or is unchanged (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes it private; a cassette is a project file, readable like the old one
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
