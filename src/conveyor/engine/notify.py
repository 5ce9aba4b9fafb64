"""Wake-ups inside one process: new jobs for idle workers, cancellations for busy ones, and
changes for whoever watches executions (`conveyor run` redraws on them instead of polling).

The engine calls these after its transaction commits. With several servers on PostgreSQL,
``forward`` tells the others of the jobs queued here (`conveyor.store.wakeups`), whose
listeners `wake` their own workers; a wake-up that is lost anyway only delays the work until
the next sweep, which wakes the workers too. Likewise ``forward_cancelled`` tells them of the
jobs stopped here, whose listeners `cancel_here` them, so that a stop reaches an action at
once whichever server runs it; one that is lost reaches it at its next lease renewal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Notifier:
    def __init__(self) -> None:
        self._jobs = threading.Condition()
        self._generation = 0
        self._cancel_listeners: list[Callable[[str], None]] = []
        # A tuple, replaced whole: `changed` runs after every commit and reads it unlocked.
        self._change_listeners: tuple[Callable[[], None], ...] = ()
        self._lock = threading.Lock()
        # Told of every count of jobs queued here, for the other servers' workers.
        self.forward: Callable[[int], None] | None = None
        # Told of the jobs cancelled here, for the other servers' workers.
        self.forward_cancelled: Callable[[list[str]], None] | None = None

    def jobs_queued(self, count: int | None = None) -> None:
        """Wake ``count`` idle workers (one per new job), or all of them when None; counted
        jobs are forwarded to the other servers too."""
        forward = self.forward
        if count is not None and forward is not None:
            forward(count)
        self.wake(count)

    def wake(self, count: int | None = None) -> None:
        """Wake ``count`` idle workers of this process (all when None), forwarding nothing."""
        with self._jobs:
            self._generation += 1
            if count is None:
                self._jobs.notify_all()
            else:
                self._jobs.notify(count)

    def wait_for_jobs(self, seen: int, timeout: float) -> int:
        """Block until jobs were queued after generation ``seen`` (or ``timeout``); the
        generation now, to pass next time."""
        with self._jobs:
            if self._generation == seen:
                self._jobs.wait(timeout)
            return self._generation

    @property
    def generation(self) -> int:
        with self._jobs:
            return self._generation

    def on_cancel(self, listener: Callable[[str], None]) -> None:
        with self._lock:
            self._cancel_listeners.append(listener)

    def jobs_cancelled(self, job_ids: list[str]) -> None:
        """Stop the actions of these jobs, whichever server's workers run them."""
        forward = self.forward_cancelled
        if job_ids and forward is not None:
            forward(job_ids)
        self.cancel_here(job_ids)

    def cancel_here(self, job_ids: list[str]) -> None:
        """Stop the actions of these jobs that this process runs, forwarding nothing."""
        with self._lock:
            listeners = list(self._cancel_listeners)
        for job_id in job_ids:
            for listener in listeners:
                listener(job_id)

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (quickly, it runs on the committing thread) after every change."""
        with self._lock:
            self._change_listeners = (*self._change_listeners, listener)

    def changed(self) -> None:
        """An execution, stage or action changed: tell the listeners."""
        for listener in self._change_listeners:
            listener()
