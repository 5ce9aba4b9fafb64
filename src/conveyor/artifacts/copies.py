"""A copy of an unpacked artifact lent to an action: what is known of it, and whether a
process still works in it once the action is over; and the clean-up of copies and folders
off the callers' path (`conveyor.artifacts.unpacked` lends them).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import shutil
import stat
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

from conveyor.artifacts.trees import Marks

__all__ = ["LOCK", "Copy", "Processes", "in_background", "in_use", "processes", "remove_stale"]

LOCK = ".lock"  # the suffix of the file that shows an instance's folder is in use
_FEW = 64  # ids made since a copy was lent, up to which each is tried rather than listed


@dataclass(frozen=True, slots=True)
class Processes:
    """Where process creation stood at a moment: the newest process id (``/proc/loadavg``),
    the processes and threads created since boot (``/proc/stat``), and the largest id."""

    newest: int
    created: int
    pid_max: int


def processes() -> Processes | None:
    """Where process creation stands now; None where ``/proc`` does not tell."""
    try:
        with open("/proc/loadavg", "rb") as loadavg:
            newest = int(loadavg.read().rsplit(None, 1)[1])
        with open("/proc/stat", "rb") as stat_file:
            text = stat_file.read()
        start = text.index(b"\nprocesses ") + len(b"\nprocesses ")
        created = int(text[start : text.index(b"\n", start)])
        return Processes(newest, created, _pid_max())
    except (OSError, ValueError, IndexError):
        return None


@functools.cache
def _pid_max() -> int:
    with open("/proc/sys/kernel/pid_max", "rb") as limit:
        return int(limit.read())


def made_since(pid: int, then: Processes, now: Processes) -> bool:
    """Whether process ``pid`` may have been made between ``then`` and ``now``: ids are handed
    out in turn, going round past the largest, so the ones made since are those after
    ``then.newest`` up to ``now.newest``; if ids may have gone all the way round, any."""
    if now.created - then.created >= min(then.pid_max, now.pid_max) - 1:
        return True
    if then.newest <= now.newest:
        return then.newest < pid <= now.newest
    return pid > then.newest or pid <= now.newest


class Copy:
    """A copy of an unpacked tree: where it is, its folder's mode, its marks, and while it is
    lent, its folder held open (so that no other folder can take its inode number) and where
    process creation stood as it was lent (a process working in it since was made after)."""

    def __init__(self, folder: str, mode: int, marks: Marks) -> None:
        self.folder = folder
        self.mode = mode
        self.marks = marks
        self.lent_at: Processes | None = None
        self._held = -1
        self._closer: weakref.finalize[[int], Copy] | None = None

    @classmethod
    def at(cls, folder: str, marks: Marks) -> Copy:
        """The copy just made (or moved) at ``folder``, with its marks."""
        return cls(folder, stat.S_IMODE(os.lstat(folder).st_mode), marks)

    def hold(self) -> None:
        self.lent_at = processes()
        self._held = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._closer = weakref.finalize(self, os.close, self._held)  # once, whatever happens

    def is_at(self, path: Path) -> bool:
        """Whether ``path`` is still this copy's folder (an action may have put another)."""
        held, found = os.fstat(self._held), os.lstat(path)
        return (held.st_dev, held.st_ino) == (found.st_dev, found.st_ino)

    def release(self) -> None:
        if self._closer is not None:
            self._closer()
        self._held, self._closer = -1, None


def _few_since(then: Processes, now: Processes) -> bool:
    """Whether so few ids were handed out since ``then``, and without going round, that
    trying each is cheaper than listing every process."""
    return (
        then.newest <= now.newest <= then.newest + _FEW
        and now.created - then.created < min(then.pid_max, now.pid_max) - 1
    )


def in_use(folder: str, since: Processes | None = None) -> bool:
    """Whether a process works in ``folder`` (its working directory or root is in it): one
    that the action left running, having escaped its process group, could change the copy
    after it is lent again. (A process that only holds a file of it open is not seen.) With
    ``since`` (where process creation stood as the copy was lent), only processes made since
    are looked at, which are the only ones the action can have left: a few instead of every
    process on the machine."""
    inside = os.path.realpath(folder)
    now = None if since is None else processes()
    if since is not None and now is not None and _few_since(since, now):
        pids = [str(pid) for pid in range(since.newest + 1, now.newest + 1)]
    else:
        try:
            with os.scandir("/proc") as scan:
                pids = [entry.name for entry in scan if entry.name.isdigit()]
        except OSError:
            return False
        if since is not None and now is not None:
            pids = [pid for pid in pids if made_since(int(pid), since, now)]
    for pid in pids:
        for link in ("cwd", "root"):
            try:
                where = os.readlink(f"/proc/{pid}/{link}")
            except FileNotFoundError:
                break  # no such process (any more)
            except OSError:
                continue
            if where == inside or where.startswith(inside + "/"):
                return True
    return False


def remove_stale(root: Path) -> None:
    """Remove the folders of instances whose lock nobody holds any more (their process died)."""
    for lock in root.glob(f"*{LOCK}"):
        try:
            with open(lock, "a") as held:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(root / lock.name.removesuffix(LOCK), ignore_errors=True)
                lock.unlink()
        except OSError:
            continue


def in_background(function: object, *args: object) -> None:
    """Run a clean-up off the caller's path; it must not fail loudly."""

    def run() -> None:
        with contextlib.suppress(Exception):
            function(*args)  # type: ignore[operator]

    threading.Thread(target=run, name="conveyor-unpacked-cleaner", daemon=True).start()
