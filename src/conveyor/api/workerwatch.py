"""Telling remote workers at once that jobs they run were cancelled (`conveyor.api.workerjobs`,
``watch``).

An in-process worker hears of a cancellation from the engine's notifier the moment the stop
commits; a remote worker would only hear of it at its next lease renewal. So each worker keeps
one ``watch`` call waiting on the server it polls, and `Watches` answers it with the jobs of
that worker cancelled since: the server remembers to whom it handed each job (and what the job
was, so that its result needs no read of it: `Handed`), and the notifier tells it of every job
cancelled here or, through LISTEN/NOTIFY, on another server of the database. A cancellation
that comes while no watch of the worker waits is kept for its next watch (for `KEPT` seconds);
one the server never heard of (it restarted since) still reaches the worker at its next renewal.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from conveyor.domain.actiontype import ActionTypeId

# How long a cancellation waits for its worker's next watch, in seconds.
KEPT = 60.0
# The most jobs remembered as handed out: the oldest are forgotten first (a worker that
# vanished never reports its jobs).
MAX_HANDED = 100_000
# How often a waiting watch looks whether the server stops, in seconds.
TICK = 0.2


@dataclass(frozen=True, slots=True)
class Handed:
    """A job as this server handed it to a remote worker: enough to take its result
    without reading it again."""

    id: str
    owner: str
    type_id: ActionTypeId
    action_execution: str


@dataclass
class _Watch:
    prefix: str
    ended: list[str] = field(default_factory=list)
    woken: threading.Event = field(default_factory=threading.Event)


class Watches:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Job id → the job as handed out, oldest first.
        self._handed: OrderedDict[str, Handed] = OrderedDict()
        # Cancelled jobs no watch has taken yet: (owner, job id, when).
        self._unseen: list[tuple[str, str, float]] = []
        self._open: list[_Watch] = []

    def handed(self, job: Handed) -> None:
        with self._lock:
            self._handed[job.id] = job
            while len(self._handed) > MAX_HANDED:
                self._handed.popitem(last=False)

    def handed_job(self, job_id: str) -> Handed | None:
        with self._lock:
            return self._handed.get(job_id)

    def reported(self, job_id: str) -> None:
        with self._lock:
            self._handed.pop(job_id, None)

    def cancelled(self, job_id: str) -> None:
        """The engine cancelled the job: tell the watch of the worker it was handed to."""
        with self._lock:
            job = self._handed.pop(job_id, None)
            if job is None:
                return
            owner = job.owner
            watching = [w for w in self._open if owner.startswith(w.prefix)]
            for watch in watching:
                watch.ended.append(job_id)
                watch.woken.set()
            if not watching:
                now = time.monotonic()
                self._unseen = [u for u in self._unseen if now - u[2] < KEPT]
                self._unseen.append((owner, job_id, now))

    def wait(self, prefix: str, timeout: float, closing: threading.Event) -> list[str]:
        """The jobs of owners starting with ``prefix`` cancelled since the last watch, as soon
        as there are some, or none after ``timeout`` seconds (or when ``closing`` is set)."""
        watch = _Watch(prefix)
        with self._lock:
            now = time.monotonic()
            kept = []
            for owner, job_id, when in self._unseen:
                if owner.startswith(prefix):
                    watch.ended.append(job_id)
                elif now - when < KEPT:
                    kept.append((owner, job_id, when))
            self._unseen = kept
            if watch.ended:
                return watch.ended
            self._open.append(watch)
        try:
            deadline = time.monotonic() + timeout
            while not watch.woken.wait(min(TICK, max(0.0, deadline - time.monotonic()))):
                if closing.is_set() or time.monotonic() >= deadline:
                    break
        finally:
            with self._lock:
                self._open.remove(watch)
                ended = list(watch.ended)
        return ended
