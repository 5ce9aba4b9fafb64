"""The home lock: one process at a time owns a home folder.

A server (or ``conveyor run --home``) ends the process groups its home's earlier run left and
fails the jobs its node held; done by a second process while the first still runs, that would
kill the first one's actions. So a process takes an exclusive ``flock`` on ``<home>/lock``
before it touches anything else in the home, and writes who it is into the file; a second
process is refused with that description. The kernel releases the lock when its holder exits,
however it exits, so a killed server never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import IO

LOCK_FILE = "lock"


class HomeInUse(RuntimeError):
    """Another process holds the home."""


class HomeLock:
    """The held lock on a home; `release` (or process exit) gives it up."""

    def __init__(self, path: Path, file: IO[str]) -> None:
        self.path = path
        self._file: IO[str] | None = file

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def lock_home(home: Path, holder: str) -> HomeLock:
    """Take the home for this process, or raise `HomeInUse` naming the process that has it.

    ``holder`` says what this process is (``conveyor server on http://…``), for the message
    another process will show.
    """
    home.mkdir(parents=True, exist_ok=True)
    path = home / LOCK_FILE
    file = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open while the lock is
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.seek(0)
        who = file.read().strip() or "another process"
        file.close()
        raise HomeInUse(
            f"the home {home} is in use by {who}; stop that process or use another home"
        ) from None
    except BaseException:
        file.close()
        raise
    with contextlib.suppress(OSError):
        file.seek(0)
        file.truncate()
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        file.write(f"{holder} (pid {os.getpid()}, started {started})\n")
        file.flush()
    return HomeLock(path, file)
