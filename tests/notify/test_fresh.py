"""Which queues of notifications in memory are kept in the store for falling behind."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conveyor.notify import fresh
from conveyor.notify.fresh import FreshQueues, Key
from conveyor.store.deliveries import DeliveryRecord

SPILL = 5
NOW = datetime(2026, 12, 3, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _small_spill(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fresh, "SPILL", SPILL)


def _delivery(seq: int, pipeline: str, address: str) -> DeliveryRecord:
    row = {
        "event_seq": seq,
        "pipeline_name": pipeline,
        "rule_arn": "arn:rule",
        "address": address,
        "payload": "{}",
        "created": NOW,
        "next_attempt": NOW,
    }
    return fresh.fresh(row)


def _events(queues: FreshQueues, keys: list[Key], first: int, count: int) -> None:
    """``count`` events, each with a notification for every one of ``keys``."""
    for seq in range(first, first + count):
        for key in keys:
            queues.add(key, _delivery(seq, *key))


def _kept(queues: FreshQueues) -> set[Key]:
    return set(queues.to_keep(busy=set()))


def test_a_queue_alone_is_kept_once_more_than_spill_wait() -> None:
    queues = FreshQueues()
    alone = ("app", "http://one")

    _events(queues, [alone], 1, SPILL)
    assert _kept(queues) == set()
    _events(queues, [alone], SPILL + 1, 1)

    assert _kept(queues) == {alone}
    assert not queues.has_next(alone)


def test_queues_behind_together_stay_in_memory() -> None:
    queues = FreshQueues()
    targets = [("app", f"http://{n}") for n in range(10)]

    _events(queues, targets, 1, 4 * SPILL)  # a backlog met at start: every target behind

    assert _kept(queues) == set()
    assert queues.held() == 40 * SPILL
    assert all(queues.has_next(key) for key in targets)


def test_a_queue_far_behind_its_peers_is_kept_and_they_are_not() -> None:
    queues = FreshQueues()
    slow, fast = ("app", "http://slow"), ("app", "http://fast")
    other = ("other", "http://slow")  # another pipeline's queue is no peer
    for seq in range(1, 3 * SPILL):
        _events(queues, [slow, fast, other], seq, 1)
        assert queues.next(fast) is not None  # the fast target keeps up
        queues.delivered(_delivery(seq, *fast))

    assert _kept(queues) == {slow, other}


def test_a_queue_whose_peers_have_drained_is_kept_when_behind() -> None:
    queues = FreshQueues()
    slow, fast = ("app", "http://slow"), ("app", "http://fast")
    _events(queues, [slow, fast], 1, SPILL)
    while (sent := queues.next(fast)) is not None:
        queues.delivered(sent)
    queues.idle(fast)  # forgotten: nothing waits in it

    _events(queues, [slow], SPILL + 1, 1)

    assert _kept(queues) == {slow}
