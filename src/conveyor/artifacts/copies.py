"""A copy of an unpacked artifact lent to an action: what is known of it, and whether a
process still works in it once the action is over; and the clean-up of copies and folders
off the callers' path (`conveyor.artifacts.unpacked` lends them).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import threading
import weakref
from pathlib import Path

from conveyor.artifacts.trees import Marks

__all__ = ["LOCK", "Copy", "in_background", "in_use", "remove_stale"]

LOCK = ".lock"  # the suffix of the file that shows an instance's folder is in use


class Copy:
    """A copy of an unpacked tree: where it is, its folder's mode, its marks, and while it is
    lent, its folder held open (so that no other folder can take its inode number)."""

    def __init__(self, folder: str, mode: int, marks: Marks) -> None:
        self.folder = folder
        self.mode = mode
        self.marks = marks
        self._held = -1
        self._closer: weakref.finalize[[int], Copy] | None = None

    @classmethod
    def at(cls, folder: str, marks: Marks) -> Copy:
        """The copy just made (or moved) at ``folder``, with its marks."""
        return cls(folder, stat.S_IMODE(os.lstat(folder).st_mode), marks)

    def hold(self) -> None:
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


def in_use(folder: str) -> bool:
    """Whether a process works in ``folder`` (its working directory or root is in it): one
    that the action left running, having escaped its process group, could change the copy
    after it is lent again. (A process that only holds a file of it open is not seen.)"""
    inside = os.path.realpath(folder)
    try:
        with os.scandir("/proc") as scan:
            pids = [entry.name for entry in scan if entry.name.isdigit()]
    except OSError:
        return False
    for pid in pids:
        for link in ("cwd", "root"):
            try:
                where = os.readlink(f"/proc/{pid}/{link}")
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
