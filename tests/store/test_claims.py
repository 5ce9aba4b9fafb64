"""Claiming jobs from the queue: what is claimable, and that a job is claimed exactly once
however many pollers claim at the same moment.

A claim is ``claimable`` then a guarded move from ``Queued`` to ``Dispatched``, in one
transaction. On PostgreSQL ``claimable`` locks the rows it returns and skips rows another
transaction holds (``FOR UPDATE SKIP LOCKED``), so pollers claiming side by side get disjoint
jobs instead of waiting on each other; SQLite's single writer claims one poller at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from conveyor.store import JobRecord, Store, Tx
from tests.store.records import (
    OTHER,
    ROLLOUT,
    job,
    queued_jobs,
    read,
    running_action,
    stores,
)

POLLERS = 4


def _claim(tx: Tx, owner: str, limit: int) -> list[str]:
    claimed = []
    for record in tx.jobs.claimable([ROLLOUT], limit):
        if tx.jobs.update(record.id, "Queued", status="Dispatched", owner=owner):
            claimed.append(record.id)
    return claimed


def test_claimable_jobs_are_queued_of_the_types_asked_oldest_first(store: Store) -> None:
    with store.write() as tx:
        _, attempt = running_action(tx)
        newer = job(attempt, created=3.0)
        older = job(attempt, created=1.0)
        other = job(attempt, created=0.5, type_id=OTHER)
        keyed = job(attempt, created=2.0, query_value="prod")
        for record in (newer, older, other, keyed):
            tx.jobs.insert(record)
    with store.write() as tx:
        assert [j.id for j in tx.jobs.claimable([ROLLOUT], 10)] == [older.id, keyed.id, newer.id]
        assert [j.id for j in tx.jobs.claimable([ROLLOUT], 1)] == [older.id]
        assert [j.id for j in tx.jobs.claimable([ROLLOUT, OTHER], 1)] == [other.id]
        assert [j.id for j in tx.jobs.claimable([ROLLOUT], 10, "prod")] == [keyed.id]
        assert tx.jobs.claimable([ROLLOUT], 10, "test") == []
        assert tx.jobs.claimable([], 10) == []
        assert tx.jobs.count_queued([ROLLOUT]) == 3
        assert _claim(tx, "w1", 1) == [older.id]
    with store.read() as tx:
        assert [j.id for j in tx.jobs.claimable([ROLLOUT], 10)] == [keyed.id, newer.id]
        assert tx.jobs.count_queued([ROLLOUT]) == 2


def _run(target: Callable[[int], None], count: int) -> list[BaseException]:
    failures: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            target(index)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def _owners(store: Store, made: list[JobRecord]) -> dict[str, str | None]:
    def owners(tx: Tx) -> dict[str, str | None]:
        found = {record.id: tx.jobs.get(record.id) for record in made}
        return {key: (record.owner if record else None) for key, record in found.items()}

    return read(store, owners)


@pytest.mark.postgres
def test_two_pollers_claiming_at_once_skip_each_others_jobs(postgres_url: str) -> None:
    """Both pollers hold their locked rows while the other selects: with ``SKIP LOCKED`` each
    gets jobs of its own; a plain ``FOR UPDATE`` would keep the second waiting on the first,
    which waits for it in turn, and the barrier would give up."""
    opened = stores(postgres_url, 2)
    try:
        made = queued_jobs(opened[0], 6)
        meet = threading.Barrier(2, timeout=15)
        claimed: dict[int, list[str]] = {}

        def poller(index: int) -> None:
            with opened[index].write() as tx:
                meet.wait()
                claimed[index] = _claim(tx, f"w{index}", 3)
                meet.wait()  # both claims made, neither committed

        assert _run(poller, 2) == []
        assert len(claimed[0]) == len(claimed[1]) == 3
        assert set(claimed[0]).isdisjoint(claimed[1])
        owners = _owners(opened[0], made)
        assert owners == {key: f"w{n}" for n in (0, 1) for key in claimed[n]}
    finally:
        for store in opened:
            store.close()


def test_pollers_claim_each_job_exactly_once(database_url: str) -> None:
    """Pollers on connections of their own claim until the queue is empty."""
    opened = stores(database_url, POLLERS)
    try:
        made = queued_jobs(opened[0], 20)
        start = threading.Barrier(POLLERS, timeout=30)
        claimed: dict[int, list[str]] = {n: [] for n in range(POLLERS)}

        def poller(index: int) -> None:
            start.wait()
            while True:
                with opened[index].write() as tx:
                    taken = _claim(tx, f"w{index}", 2)
                if not taken:
                    return
                claimed[index].extend(taken)

        assert _run(poller, POLLERS) == []
        every = [key for keys in claimed.values() for key in keys]
        assert sorted(every) == sorted(record.id for record in made)
        owners = _owners(opened[0], made)
        assert owners == {key: f"w{n}" for n, keys in claimed.items() for key in keys}
        assert read(opened[0], lambda tx: tx.jobs.count_queued([ROLLOUT])) == 0
    finally:
        for store in opened:
            store.close()


def test_taking_a_job_records_when_it_was_claimed(store: Store) -> None:
    with store.write() as tx:
        _, attempt = running_action(tx)
        record = job(attempt, created=1.0)
        tx.jobs.insert(record)
        assert tx.jobs.claimed_at([attempt.id]) == {}
    with store.write() as tx:
        taken = tx.jobs.take_next([ROLLOUT], "InProgress", "n", "w1", 100.0, 42.0)
        assert taken is not None and taken.claimed == 42.0
    with store.read() as tx:
        assert tx.jobs.claimed_at([attempt.id]) == {attempt.id: 42.0}
        assert tx.jobs.claimed_at([]) == {}
