"""Only one server delivers: the outbox's lock is held by one of those sharing a database,
apart from change detection's."""

from __future__ import annotations

from conveyor.notify.outbox import LOCK
from conveyor.store import Store


def test_one_holder_of_the_delivery_lock_apart_from_detection(postgres_url: str) -> None:
    first, second = Store.open(postgres_url), Store.open(postgres_url)
    try:
        mine, theirs = first.leadership(LOCK), second.leadership(LOCK)
        detection = second.leadership()
        assert mine.hold()
        assert not theirs.hold()
        # Change detection's lock is another one: whoever delivers may also detect, or not.
        assert detection.hold()
        mine.release()
        assert theirs.hold()
        theirs.release()
        detection.release()
    finally:
        first.close()
        second.close()
