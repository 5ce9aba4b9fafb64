"""Retention: removing what is older than the settings keep, a batch per transaction.

Events, finished jobs and audit records past their retention go in batches of at most `BATCH`
rows, each in a transaction of its own, so that the engine's writers (on SQLite, one at a time)
wait for one short batch at most, never for the whole removal. Events are walked oldest first
along their sequence numbers, which their times follow, so a removal reads the old end of the
log and one batch past it, never the whole log; the events left stay in order, and sequence
numbers are never reused, so a reader that keeps its place in the log keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.store import Store

BATCH = 500


def prune_events(store: Store, before: float, batch: int = BATCH) -> int:
    """Remove the events older than ``before``; how many."""
    total, after = 0, 0
    while True:
        with store.write() as tx:
            removed, following = tx.events.prune(before, after, batch)
        total += removed
        if following is None or removed == 0:
            return total
        after = following


def prune_jobs(store: Store, before: float, statuses: Sequence[str], batch: int = BATCH) -> int:
    """Remove the jobs in one of ``statuses`` (the finished ones) last changed before
    ``before``; how many."""
    total = 0
    while True:
        with store.write() as tx:
            removed = tx.jobs.prune(before, statuses, batch)
        total += removed
        if removed < batch:
            return total


def prune_audit(store: Store, before: float, batch: int = BATCH) -> int:
    """Remove the audit records older than ``before``; how many."""
    total = 0
    while True:
        with store.write() as tx:
            removed = tx.audit.prune(before, batch)
        total += removed
        if removed < batch:
            return total


def prune_history(
    store: Store,
    now: float,
    events_kept: float | None,
    jobs_kept: float | None,
    finished: Sequence[str],
) -> tuple[int, int]:
    """Remove the events, and the ``finished`` jobs, older than their retention (seconds;
    None keeps them for ever); how many of each."""
    events = 0 if events_kept is None else prune_events(store, now - events_kept)
    jobs = 0 if jobs_kept is None else prune_jobs(store, now - jobs_kept, finished)
    return events, jobs
