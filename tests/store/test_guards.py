"""Guarded writes: an update names the status it expects, and changes nothing when the row has
moved on. Zero rows is how the engine learns it lost a race, so the guard must hold on both
databases, for one writer after another and for writers at the same moment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from conveyor.store import Store, Tx
from tests.store.records import job, read, running_action, stores

WRITERS = 4


def test_execution_update_is_guarded_by_its_status(store: Store) -> None:
    with store.write() as tx:
        run, _ = running_action(tx)
    with store.write() as tx:
        assert tx.executions.update(run.id, "Stopping", status="Stopped") is False
        assert tx.executions.update(run.id, "InProgress", status="Stopping", stop_reason="now")
        assert tx.executions.update(run.id, "InProgress", status="Failed") is False
        assert tx.executions.update("missing", None, status="Failed") is False
    found = read(store, lambda tx: tx.executions.get(run.id))
    assert found is not None
    assert (found.status, found.stop_reason) == ("Stopping", "now")
    with store.write() as tx:
        # No expectation: the write goes through whatever the status.
        assert tx.executions.update(run.id, None, summary="done", outputs={"NS": {"k": "v"}})
    found = read(store, lambda tx: tx.executions.get(run.id))
    assert found is not None
    assert (found.status, found.summary, found.outputs) == ("Stopping", "done", {"NS": {"k": "v"}})


def test_stage_status_and_retry_are_guarded(store: Store) -> None:
    with store.write() as tx:
        run, _ = running_action(tx)
    with store.write() as tx:
        assert tx.executions.set_stage_status(run.id, "Deploy", "Failed", "Succeeded", 2.0) is False
        assert tx.executions.retry_stage(run.id, "Deploy", "Failed", 2, 1, 2.0) is False
        assert tx.executions.set_stage_status(run.id, "Deploy", "InProgress", "Failed", 2.0)
        assert (
            tx.executions.set_stage_status(run.id, "Missing", "InProgress", "Failed", 2.0) is False
        )
    with store.write() as tx:
        assert tx.executions.retry_stage(run.id, "Deploy", "Failed", 2, 1, 3.0)
        assert tx.executions.retry_stage(run.id, "Deploy", "Failed", 3, 1, 4.0) is False
    stage = read(store, lambda tx: tx.executions.stage(run.id, "Deploy"))
    assert stage is not None
    assert (stage.status, stage.attempt, stage.manual_retries, stage.entered) == (
        "InProgress",
        2,
        1,
        3.0,
    )


def test_action_update_is_guarded_by_its_status(store: Store) -> None:
    with store.write() as tx:
        _, attempt = running_action(tx)
    with store.write() as tx:
        assert tx.actions.update(attempt.id, "Failed", status="Succeeded") is False
        assert tx.actions.update(
            attempt.id,
            "InProgress",
            status="Succeeded",
            summary="rolled out",
            output_variables={"url": "https://prod"},
        )
        assert tx.actions.update(attempt.id, "InProgress", status="Failed") is False
    found = read(store, lambda tx: tx.actions.get(attempt.id))
    assert found is not None
    assert (found.status, found.summary, found.output_variables) == (
        "Succeeded",
        "rolled out",
        {"url": "https://prod"},
    )


def test_job_update_and_renewal_are_guarded(store: Store) -> None:
    with store.write() as tx:
        _, attempt = running_action(tx)
        queued = job(attempt)
        tx.jobs.insert(queued)
    with store.write() as tx:
        assert tx.jobs.update(queued.id, "Dispatched", status="InProgress") is False
        assert tx.jobs.renew(queued.id, "w1", 50.0, 2.0) is False  # not claimed yet
        assert tx.jobs.update(
            queued.id, "Queued", status="Dispatched", owner="w1", lease_until=40.0, data={"a": 1}
        )
        assert tx.jobs.update(queued.id, "Queued", status="Dispatched", owner="w2") is False
    with store.write() as tx:
        assert tx.jobs.renew(queued.id, "w2", 90.0, 3.0) is False
        assert tx.jobs.renew(queued.id, "w1", 60.0, 3.0)
        assert tx.jobs.update(queued.id, "Dispatched", status="Succeeded")
        assert tx.jobs.renew(queued.id, "w1", 90.0, 4.0) is False  # no longer active
    found = read(store, lambda tx: tx.jobs.get(queued.id))
    assert found is not None
    assert (found.status, found.owner, found.lease_until, found.data) == (
        "Succeeded",
        "w1",
        60.0,
        {"a": 1},
    )


Write = Callable[[Tx, str, float], bool]
KINDS: dict[str, tuple[Write, Callable[[Tx, str], float | None]]] = {
    "execution": (
        lambda tx, key, mark: tx.executions.update(
            key, "InProgress", status="Succeeded", updated=mark
        ),
        lambda tx, key: getattr(tx.executions.get(key), "updated", None),
    ),
    "stage": (
        lambda tx, key, mark: tx.executions.set_stage_status(
            key, "Deploy", "InProgress", "Succeeded", mark
        ),
        lambda tx, key: getattr(tx.executions.stage(key, "Deploy"), "updated", None),
    ),
    "action": (
        lambda tx, key, mark: tx.actions.update(key, "InProgress", status="Failed", updated=mark),
        lambda tx, key: getattr(tx.actions.get(key), "updated", None),
    ),
    "job": (
        lambda tx, key, mark: tx.jobs.update(
            key, "Queued", status="Dispatched", owner=f"w{mark:.0f}", updated=mark
        ),
        lambda tx, key: getattr(tx.jobs.get(key), "updated", None),
    ),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_racing_guarded_writes_have_one_winner(database_url: str, kind: str) -> None:
    """Writers on connections of their own move the same row from the same status at once:
    exactly one changes it, and the row holds the winner's values.

    PostgreSQL runs the transactions side by side, so the writers meet inside them and the
    losers wait on the winner's row lock, then find the status changed. SQLite admits one
    writer at a time, so there they meet just before their transactions."""
    write, marked = KINDS[kind]
    opened = stores(database_url, WRITERS)
    try:
        with opened[0].write() as tx:
            run, attempt = running_action(tx)
            queued = job(attempt)
            tx.jobs.insert(queued)
        key = {"execution": run.id, "stage": run.id, "action": attempt.id, "job": queued.id}[kind]
        side_by_side = opened[0].dialect == "postgresql"
        meet = threading.Barrier(WRITERS, timeout=30)
        won: dict[int, bool] = {}
        failures: list[BaseException] = []

        def writer(index: int) -> None:
            try:
                if not side_by_side:
                    meet.wait()
                with opened[index].write() as tx:
                    if side_by_side:
                        # A read first, so that each transaction has begun before any writes.
                        marked(tx, key)
                        meet.wait()
                    won[index] = write(tx, key, float(10 + index))
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        winners = [index for index, result in won.items() if result]
        assert len(won) == WRITERS
        assert len(winners) == 1, won
        assert read(opened[0], lambda tx: marked(tx, key)) == float(10 + winners[0])
    finally:
        for store in opened:
            store.close()
