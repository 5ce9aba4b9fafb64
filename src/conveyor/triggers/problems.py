"""Why change detection cannot follow a source: kept per source action in the database (for
GetPipelineState) and logged once per location and problem, however often it is met.

A location is what several sources may share (a git folder, a remote URL, an S3 object), so a
remote that many pipelines follow and that cannot be reached makes one log line, and one more
when it can be reached again.
"""

from __future__ import annotations

import logging

from conveyor.engine.clock import Clock
from conveyor.store import Store

log = logging.getLogger("conveyor.triggers")


class Problems:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._logged: dict[str, str] = {}  # location → the problem last logged for it
        self._current: dict[tuple[int, str], str] = {}

    def load(self) -> None:
        """Take up what the database says (another server may have written it)."""
        with self._store.read() as tx:
            self._current = tx.heads.all_problems()

    def report(self, key: tuple[int, str], message: str, where: str) -> None:
        if self._logged.get(where) != message:
            self._logged[where] = message
            log.warning("change detection cannot follow %s: %s", where, message)
        if self._current.get(key) == message:
            return
        self._current[key] = message
        with self._store.write() as tx:
            tx.heads.set_problem(*key, message, self._clock.now())

    def clear(self, key: tuple[int, str], where: str) -> None:
        if self._logged.pop(where, None) is not None:
            log.warning("change detection follows %s again", where)
        if self._current.pop(key, None) is None:
            return
        with self._store.write() as tx:
            tx.heads.set_problem(*key, None, 0.0)

    def forget(self, keys: set[tuple[int, str]]) -> None:
        for key in keys:
            self._current.pop(key, None)
