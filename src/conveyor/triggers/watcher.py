"""File events on the git folders of local repositories, told as the folders whose refs moved.

One watchfiles watch covers every folder; it is started again when the set of folders changes.
Only what moves a ref counts: ``refs/``, ``packed-refs``, ``HEAD`` (a commit, a push into
the folder, a ``git fetch`` into a mirror); objects, logs, the index and lock files do not.
Events are grouped for a few milliseconds, so one commit is read once.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import watchfiles

log = logging.getLogger("conveyor.triggers")
STEP_MS = 10  # how long to wait for more events once one came
DEBOUNCE_MS = 60  # the most events are held back to group them
_TOP = ("packed-refs", "HEAD")


def _belongs(path: str, folders: list[str]) -> str | None:
    """The watched git folder ``path`` moves a ref of, or None."""
    for folder in folders:
        if path.startswith(folder + os.sep):
            rest = path[len(folder) + 1 :]
            if rest.endswith(".lock"):
                return None
            if rest in _TOP or rest.startswith("refs" + os.sep):
                return folder
            return None
    return None


class Watcher:
    def __init__(self, changed: Callable[[set[str]], None]) -> None:
        self._changed = changed
        self._lock = threading.Lock()
        self._folders: frozenset[str] = frozenset()
        self._moved = threading.Event()

    def set_folders(self, folders: set[str]) -> None:
        with self._lock:
            chosen = frozenset(f for f in folders if os.path.isdir(f))
            if chosen != self._folders:
                self._folders = chosen
                self._moved.set()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            with self._lock:
                folders = sorted(self._folders, key=len, reverse=True)
                self._moved.clear()
            if not folders:
                self._moved.wait(0.5)
                continue
            try:
                self._watch(folders, stop)
            except Exception as exc:  # a folder removed under the watch; start it again
                log.debug("watch of %d folders ended: %s", len(folders), exc)
                stop.wait(0.5)

    def _watch(self, folders: list[str], stop: threading.Event) -> None:
        interesting = set(folders)

        def wanted(_: watchfiles.Change, path: str) -> bool:
            return _belongs(path, folders) is not None

        for changes in watchfiles.watch(
            *interesting,
            watch_filter=wanted,
            debounce=DEBOUNCE_MS,
            step=STEP_MS,
            stop_event=stop,
            rust_timeout=500,
            yield_on_timeout=True,
            raise_interrupt=False,
        ):
            if self._moved.is_set():
                return
            moved = {f for _, path in changes if (f := _belongs(path, folders)) is not None}
            if moved:
                self._changed(moved)
