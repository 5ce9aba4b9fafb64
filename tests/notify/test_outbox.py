"""The outbox's senders on a real store and a local receiver: passes that come while senders
are still at work send nothing twice, a stopped outbox leaves no sender running, and a
webhook goes through the environment's proxy."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.engine.clock import SystemClock
from conveyor.notify.outbox import Outbox
from conveyor.notify.targets import Destination, Sender
from conveyor.store import Store
from conveyor.store.notifications import TargetRecord
from tests.notify.receiver import receiving
from tests.support.engine import wait_for

NOTES = 100


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'outbox.db'}")
    try:
        yield opened
    finally:
        opened.close()


def _pending(store: Store, url: str, count: int) -> None:
    clock = SystemClock()
    now = clock.now()
    with store.write() as tx:
        tx.notifications.add_target(TargetRecord(url, "Webhook", "ACTIVE", now))
        tx.deliveries.add(
            [
                {
                    "event_seq": n,
                    "pipeline_name": "app",
                    "rule_arn": "arn:aws:codestar-notifications:us-east-1:000000000000:r/x",
                    "address": url,
                    "payload": {"n": n},
                    "status": "PENDING",
                    "attempts": 0,
                    "created": now,
                    "next_attempt": now,
                }
                for n in range(count)
            ]
        )


def test_passes_while_a_sender_works_send_nothing_twice(store: Store) -> None:
    with receiving() as receiver:
        _pending(store, receiver.url, NOTES)
        outbox = Outbox(store, SystemClock(), Sender("http://localhost", {}, "us-east-1"), 60.0)
        stop = threading.Event()
        try:
            # Passes as fast as they come, as a server whose events commit all the time.
            def passes() -> None:
                while not stop.is_set():
                    outbox.send_due()

            thread = threading.Thread(target=passes)
            thread.start()

            def all_sent() -> bool:
                with store.read() as tx:
                    return not tx.deliveries.pending()

            wait_for(all_sent, what="every notification delivered")
        finally:
            stop.set()
            thread.join()
            outbox.run(_stopped())
        numbers = [json.loads(r.body)["n"] for r in receiver.got]
    assert sorted(numbers) == list(range(NOTES))
    assert numbers == list(range(NOTES))  # in order


def _stopped() -> threading.Event:
    """A stop already set: `Outbox.run` makes no pass and shuts its senders down."""
    event = threading.Event()
    event.set()
    return event


def test_a_stopped_outbox_has_no_sender_left(store: Store) -> None:
    with receiving() as receiver:
        receiver.hanging.set()
        _pending(store, receiver.url, 3)
        sender = Sender("http://localhost", {}, "us-east-1", timeout=30)
        outbox = Outbox(store, SystemClock(), sender, 60.0)
        futures: list[Any] = outbox.send_due()
        wait_for(lambda: receiver.got, what="the first attempt")
        receiver.released.set()  # the receiver lets go without answering
        outbox.run(_stopped())
        # run() returned only once the sender had ended: nothing holds a connection.
        assert all(f.done() for f in futures)
        assert not [t for t in threading.enumerate() if t.name.startswith("conveyor-notify")]


def test_a_webhook_goes_through_the_environments_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    with receiving() as proxy:
        for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("http_proxy", proxy.url.removesuffix("/hook"))
        sender = Sender("http://localhost", {}, "us-east-1", timeout=10)
        sender.send(Destination("Webhook", "http://hooks.example.invalid/x"), {"n": 1})
    assert [(r.path, json.loads(r.body)) for r in proxy.got] == [
        ("http://hooks.example.invalid/x", {"n": 1})
    ]
