"""Wake-ups across servers on PostgreSQL (LISTEN/NOTIFY): jobs queued by one server wake the
workers of the others, not its own a second time, jobs cancelled by one are cancelled by the
others, and a listener whose connection is cut
listens again and wakes its workers for what it may have missed."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa

from conveyor.store import wakeups
from conveyor.store.database import normalize_url
from conveyor.store.wakeups import IDS_PER_NOTE, CrossWakeups, channel_of
from tests.conftest import POSTGRES_URL, fresh_schema

pytestmark = pytest.mark.postgres


@pytest.fixture
def url(postgres_url: str) -> sa.URL:
    return sa.engine.make_url(normalize_url(postgres_url))


@pytest.fixture
def pair(url: sa.URL) -> Iterator[tuple[CrossWakeups, CrossWakeups, queue.Queue[object]]]:
    heard: queue.Queue[object] = queue.Queue()
    one = CrossWakeups(
        url, lambda count: heard.put(("one", count)), lambda ids: heard.put(("one", ids))
    )
    two = CrossWakeups(
        url, lambda count: heard.put(("two", count)), lambda ids: heard.put(("two", ids))
    )
    for side in (one, two):
        side.start()
    try:
        for side in (one, two):
            assert side.listening.wait(10)
        yield one, two, heard
    finally:
        one.stop()
        two.stop()


def test_jobs_queued_on_one_server_wake_the_other(
    pair: tuple[CrossWakeups, CrossWakeups, queue.Queue[object]],
) -> None:
    one, two, heard = pair
    one.queued(3)
    assert heard.get(timeout=10) == ("two", 3)
    two.queued(1)
    assert heard.get(timeout=10) == ("one", 1)
    # Nobody hears itself.
    with pytest.raises(queue.Empty):
        heard.get(timeout=0.3)


def test_jobs_cancelled_on_one_server_are_cancelled_on_the_others(
    pair: tuple[CrossWakeups, CrossWakeups, queue.Queue[object]],
) -> None:
    one, _, heard = pair
    one.cancelled(["job-1", "job-2"])
    assert heard.get(timeout=10) == ("two", ["job-1", "job-2"])
    # More than one notification carries: in several, none lost.
    many = [f"{n:036d}" for n in range(IDS_PER_NOTE * 2 + 1)]
    one.cancelled(many)
    got: list[str] = []
    while len(got) < len(many):
        side, ids = heard.get(timeout=10)  # type: ignore[misc]
        assert side == "two"
        got += ids
    assert got == many
    with pytest.raises(queue.Empty):
        heard.get(timeout=0.3)


def test_a_listener_cut_off_listens_again_and_wakes_everyone(
    pair: tuple[CrossWakeups, CrossWakeups, queue.Queue[object]],
) -> None:
    one, two, heard = pair
    assert POSTGRES_URL is not None
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        # The listening sessions of this test's pair (a LISTEN shows as its last query).
        names = [side.application_name("listener") for side in (one, two)]
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = ANY(%s)",
            (names,),
        )
    woken = {heard.get(timeout=15), heard.get(timeout=15)}
    assert woken == {("one", None), ("two", None)}
    one.queued(2)
    assert heard.get(timeout=10) == ("two", 2)


def test_a_listener_stops_at_once_and_its_stop_wakes_nobody(
    url: sa.URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A wait for notifications longer than `stop` waits for its threads: the listener must be
    # woken to end, not left to notice at its next tick.
    monkeypatch.setattr(wakeups, "LISTEN_TICK", 600.0)
    heard: queue.Queue[object] = queue.Queue()
    other = CrossWakeups(url, heard.put)
    stopping = CrossWakeups(url, heard.put)
    for side in (other, stopping):
        side.start()
    try:
        for side in (other, stopping):
            assert side.listening.wait(10)
        stopping.stop()
        assert not [thread.name for thread in stopping._threads if thread.is_alive()]
        with pytest.raises(queue.Empty):
            heard.get(timeout=0.3)
    finally:
        other.stop()
        stopping.stop()


def test_servers_of_another_schema_are_not_woken(url: sa.URL) -> None:
    """Notifications reach the whole database; the channel is the schema's."""
    with fresh_schema() as elsewhere:
        heard: queue.Queue[object] = queue.Queue()
        ours = CrossWakeups(url, lambda count: heard.put(("ours", count)))
        theirs = CrossWakeups(
            sa.engine.make_url(normalize_url(elsewhere)), lambda count: heard.put(("theirs", count))
        )
        sender = CrossWakeups(url, lambda count: heard.put(("sender", count)))
        for side in (ours, theirs, sender):
            side.start()
        try:
            for side in (ours, theirs):
                assert side.listening.wait(10)
            sender.queued(2)
            assert heard.get(timeout=10) == ("ours", 2)
            with pytest.raises(queue.Empty):
                heard.get(timeout=0.3)
        finally:
            for side in (ours, theirs, sender):
                side.stop()


def test_a_channel_name_is_kept_whole_by_postgresql() -> None:
    assert channel_of("public") == "conveyor_jobs.public"
    long = channel_of("s" * 63)
    assert len(long.encode()) <= 63
    assert long != channel_of("s" * 62 + "t")
