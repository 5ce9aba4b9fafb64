"""Whether this server can reach its database, as ``/health`` reports it.

A watcher thread reads one row a second and keeps the answer; ``/health`` reports the kept
answer and never waits on the database itself, so it answers at once even when the database
hangs or every connection is busy. While the database is away the server is ``degraded`` and
says why; the workers and the sweeper keep trying, and the first good read makes it ``ok``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from conveyor.store import Store

log = logging.getLogger("conveyor.health")
INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    reason: str | None = None

    def body(self) -> dict[str, str]:
        if self.ok:
            return {"status": "ok"}
        return {"status": "degraded", "reason": self.reason or "unknown"}


class DatabaseWatch:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.current = Health(True)

    def check(self) -> Health:
        """Read from the database once and keep the outcome."""
        try:
            with self._store.read() as tx:
                tx.meta.get("page_token_key")
            health = Health(True)
        except Exception as exc:  # any failure to read is the database being away
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            health = Health(
                False, f"the database cannot be reached: {reason[0] if reason else exc!r}"
            )
        if health.ok != self.current.ok:
            if health.ok:
                log.warning("the database is back")
            else:
                log.error("%s", health.reason)
        self.current = health
        return health

    def run(self, stop: threading.Event, interval: float = INTERVAL) -> None:
        while not stop.wait(interval):
            self.check()
