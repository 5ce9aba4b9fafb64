"""The outbox's senders on a real store and a local receiver: passes that come while senders
are still at work send nothing twice, a stopped outbox leaves no sender running, and a
webhook goes through the environment's proxy; events that make no notification cost no write."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.domain.events import ACTION, PIPELINE, envelope
from conveyor.engine.clock import SystemClock
from conveyor.notify import fresh
from conveyor.notify.fanout import calls_for_notice
from conveyor.notify.outbox import Outbox
from conveyor.notify.targets import Destination, Sender
from conveyor.store import Store
from conveyor.store.actions import Actions
from conveyor.store.deliveries import Deliveries
from conveyor.store.notifications import RuleRecord, TargetRecord
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


def test_a_busy_sender_sends_what_was_made_meanwhile_without_waiting_for_a_pass(
    store: Store,
) -> None:
    with receiving() as receiver:
        receiver.answering.clear()  # holds the first notification
        _pending(store, receiver.url, 1)
        outbox = Outbox(store, SystemClock(), Sender("http://localhost", {}, "us-east-1"), 60.0)
        try:
            outbox.send_due()  # the only pass
            wait_for(receiver.arrived.is_set, what="the first notification at the receiver")
            _pending(store, receiver.url, 20)  # made while it waits for the answer
            receiver.answering.set()
            wait_for(lambda: len(receiver.got) == 21, what="every notification delivered")
        finally:
            outbox.run(_stopped())
    assert [json.loads(r.body)["n"] for r in receiver.got] == [0, *range(20)]


def test_a_busy_sender_goes_on_past_a_read_of_those_sent_and_not_yet_recorded(
    store: Store,
) -> None:
    with receiving() as receiver:
        receiver.answering.clear()
        _pending(store, receiver.url, 1)
        outbox = Outbox(store, SystemClock(), Sender("http://localhost", {}, "us-east-1"), 60.0)
        try:
            outbox.send_due()  # the only pass: nothing sent is recorded until the next
            wait_for(receiver.arrived.is_set, what="the first notification at the receiver")
            _pending(store, receiver.url, 3 * NOTES)  # more than one read of the queue
            receiver.answering.set()
            wait_for(lambda: len(receiver.got) == 3 * NOTES + 1, what="every notification")
        finally:
            outbox.run(_stopped())
    assert [json.loads(r.body)["n"] for r in receiver.got] == [0, *range(3 * NOTES)]


def _steps_to_read_queue(store: Store, url: str) -> int:
    """SQLite's virtual machine steps for a read of one pipeline's queue to ``url``."""
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0

    with store.engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.set_progress_handler(step, 1)
        try:
            assert len(Deliveries(conn).queue("app", url)) == 1
        finally:
            driver.set_progress_handler(None, 1)
    return steps


def test_a_queue_is_read_without_going_through_every_pending_notification(
    store: Store,
) -> None:
    _pending(store, "http://127.0.0.1:9/mine", 1)
    _pending(store, "http://127.0.0.1:9/others", 10)
    few = _steps_to_read_queue(store, "http://127.0.0.1:9/mine")
    _pending(store, "http://127.0.0.1:9/others", 2000)
    many = _steps_to_read_queue(store, "http://127.0.0.1:9/mine")
    assert many <= 2 * few


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


RULE = "arn:aws:codestar-notifications:us-east-1:000000000000:notificationrule/r"
TARGET = "http://127.0.0.1:9/hook"


def _rule_for(
    store: Store,
    pipeline: str,
    state: str = "started",
    detail_type: str = "BASIC",
    target: str = TARGET,
) -> None:
    now = SystemClock().now()
    definition = {
        "EventTypeIds": [f"codepipeline-pipeline-pipeline-execution-{state}"],
        "DetailType": detail_type,
        "Status": "ENABLED",
    }
    with store.write() as tx:
        tx.notifications.add_target(TargetRecord(target, "Webhook", "ACTIVE", now))
        resource = f"arn:aws:codepipeline:us-east-1:000000000000:{pipeline}"
        tx.notifications.insert(RuleRecord(RULE, "r", resource, definition, now, now, (target,)))


def _started(
    store: Store, pipeline: str, count: int = 1, state: str = "STARTED", execution: str = ""
) -> None:
    """``count`` executions of ``pipeline`` started (or in ``state``): an event each, of
    ``execution`` when given."""
    now = SystemClock().now()
    with store.write() as tx:
        for _ in range(count):
            detail = {
                "pipeline": pipeline,
                "execution-id": execution or str(uuid.uuid4()),
                "state": state,
            }
            resources = [f"arn:aws:codepipeline:us-east-1:000000000000:{pipeline}"]
            body = envelope(
                str(uuid.uuid4()), PIPELINE, now, "000000000000", "us-east-1", resources, detail
            )
            tx.events.append(pipeline, now, PIPELINE, body)


def _kept(store: Store) -> tuple[int | None, int]:
    """The cursor as written, and how many notifications are kept."""
    with store.read() as tx:
        return tx.deliveries.cursor(), sum(tx.deliveries.counts().values())


def test_events_that_make_no_notification_are_read_without_a_write(store: Store) -> None:
    with receiving() as receiver:
        receiver.answering.clear()  # the notification stays in memory, being sent
        _rule_for(store, "app", target=receiver.url)
        outbox = Outbox(store, SystemClock(), Sender("http://localhost", {}, "us-east-1"), 60.0)
        outbox.prime()
        primed = _kept(store)
        _started(store, "other", 5)  # no rule names it
        assert outbox.fan_out() == 5
        assert _kept(store) == primed  # nothing written: the cursor moved in memory only
        _started(store, "app")
        assert outbox.fan_out() == 1
        assert receiver.arrived.wait(10)  # sent from memory: no row
        _started(store, "other", 2)
        assert outbox.fan_out() == 2
        assert _kept(store) == primed and outbox.held() == 1
        # The next outbox (a restart, another server) starts from the cursor written, and
        # makes the notification left in memory again: at least once.
        again = Outbox(store, SystemClock(), Sender("http://localhost", {}, "us-east-1"), 60.0)
        assert again.fan_out() == 8
        assert again.held() == 1
        receiver.answering.set()
        wait_for(lambda: len(receiver.got) == 2)
        for each in (outbox, again):
            each.run(_stopped())


def _action_event(category: str, state: str) -> tuple[str, dict[str, Any]]:
    kind = {"owner": "AWS", "category": category, "provider": "Manual", "version": "1"}
    if category != "Approval":
        kind["provider"] = "Commands"
    detail = {"pipeline": "app", "stage": "S", "action": "A", "state": state, "type": kind}
    return ACTION, {"detail-type": ACTION, "detail": detail}


def test_without_rules_only_an_approvals_start_wakes_the_outbox(store: Store) -> None:
    assert calls_for_notice(
        [_action_event("Build", "STARTED"), _action_event("Approval", "STARTED")]
    )
    assert not calls_for_notice([_action_event("Approval", "SUCCEEDED")])
    outbox = Outbox(store, SystemClock(), Sender("http://localhost", {}, "us-east-1"), 60.0)
    outbox.fan_out()  # reads that there is no rule
    _started(store, "app")
    outbox.fan_out()
    outbox.wake([_action_event("Build", "STARTED")])
    assert not outbox.woken()  # the pass waits for the tick
    outbox.wake([_action_event("Approval", "STARTED")])
    assert outbox.woken()
    _rule_for(store, "app")
    _started(store, "app")
    outbox.fan_out()  # reads the rule
    outbox.wake([_action_event("Build", "STARTED")])
    assert outbox.woken()


def test_a_delivered_notification_leaves_no_row_behind(store: Store) -> None:
    with receiving() as receiver:
        _pending(store, receiver.url, 5)
        outbox = Outbox(store, SystemClock(), Sender("http://localhost", {}, "us-east-1"), 60.0)
        try:
            for future in outbox.send_due():
                future.result(timeout=60)
            outbox.send_due()  # the next pass records what was delivered
        finally:
            outbox.run(_stopped())
        assert len(receiver.got) == 5
    with store.read() as tx:
        assert tx.deliveries.counts() == {}


def test_a_pass_reads_each_executions_actions_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    _rule_for(store, "app", state="failed", detail_type="FULL")
    outbox = Outbox(store, SystemClock(), Sender("http://localhost", {}, "us-east-1"), 60.0)
    outbox.prime()
    read: list[str] = []
    real = Actions.of_execution

    def counted(self: Actions, execution_id: str) -> Any:
        read.append(execution_id)
        return real(self, execution_id)

    monkeypatch.setattr(Actions, "of_execution", counted)
    for _ in range(3):
        _started(store, "app", 4, state="FAILED", execution=str(uuid.uuid4()))
    assert outbox.fan_out() == 12
    assert len(read) == 3 and len(set(read)) == 3
    assert outbox.held() == 12  # a target that refuses: none delivered


def test_a_rule_tells_only_of_events_after_its_creation(store: Store) -> None:
    outbox = Outbox(store, SystemClock(), Sender("http://localhost", {}, "us-east-1"), 60.0)
    outbox.prime()
    _started(store, "app", 3)  # before the rule: a deliverer that reads them late sends none
    time.sleep(0.01)  # the clock tells milliseconds: the rule's comes after the events'
    _rule_for(store, "app")
    time.sleep(0.01)
    _started(store, "app")
    assert outbox.fan_out() == 4
    assert outbox.held() == 1


def _running(outbox: Outbox) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=outbox.run, args=(stop, 0.05), daemon=True)
    thread.start()
    return stop, thread


def _executions(receiver: Any) -> list[str]:
    return [r.json()["detail"]["execution-id"] for r in receiver.got]


def _started_ids(store: Store, pipeline: str, count: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    for execution in ids:
        _started(store, pipeline, execution=execution)
    return ids


def test_notifications_delivered_from_memory_leave_no_row_and_move_the_cursor(
    store: Store,
) -> None:
    with receiving() as receiver:
        _rule_for(store, "app", target=receiver.url)
        outbox = Outbox(store, SystemClock(), Sender("http://localhost", {}, "us-east-1"), 60.0)
        outbox.prime()
        stop, thread = _running(outbox)
        try:
            sent = _started_ids(store, "app", 5)
            outbox.wake()
            wait_for(lambda: len(receiver.got) == 5)
            assert _executions(receiver) == sent
            assert outbox.held() == 0
        finally:
            stop.set()
            thread.join(30)
    with store.read() as tx:
        assert tx.deliveries.counts() == {}  # not one row written
        assert tx.deliveries.cursor() == tx.events.last_seq()


def test_the_cursor_is_written_once_what_was_in_memory_is_delivered_with_no_more_events(
    store: Store,
) -> None:
    with receiving() as receiver:
        receiver.answering.clear()  # the notifications stay in memory, being sent
        _rule_for(store, "app", target=receiver.url)
        outbox = Outbox(store, SystemClock(), Sender("http://localhost", {}, "us-east-1"), 60.0)
        outbox.prime()
        stop, thread = _running(outbox)
        try:
            primed, _ = _kept(store)
            _started_ids(store, "app", 3)
            outbox.wake()
            assert receiver.arrived.wait(10)
            time.sleep(1.2)  # past the cursor's interval, the first still being sent
            assert _kept(store) == (primed, 0)  # not written past what is in memory
            receiver.answering.set()
            wait_for(lambda: len(receiver.got) == 3)
            # No event came since: the passes write the cursor all the same.
            with store.read() as tx:
                last = tx.events.last_seq()
            wait_for(lambda: _kept(store) == (last, 0))
        finally:
            stop.set()
            thread.join(30)


def test_a_queue_that_fails_is_kept_in_order_then_sent_from_memory_again(
    store: Store,
) -> None:
    with receiving(failures=1) as receiver:
        receiver.answering.clear()  # the first one fails once the others are in memory
        _rule_for(store, "app", target=receiver.url)
        outbox = Outbox(
            store,
            SystemClock(),
            Sender("http://localhost", {}, "us-east-1"),
            60.0,
            first_delay=0.3,
        )
        outbox.prime()
        stop, thread = _running(outbox)
        try:
            sent = _started_ids(store, "app", 3)
            outbox.wake()
            assert receiver.arrived.wait(10)
            receiver.answering.set()

            def kept() -> list[Any]:
                with store.read() as tx:
                    return tx.deliveries.pending()

            # The failed one and those behind it are kept, in order, the failed one noted.
            wait_for(lambda: len(kept()) == 3)
            rows = kept()
            assert [row.payload["detail"]["execution-id"] for row in rows] == sent
            assert [row.attempts for row in rows] == [1, 0, 0]
            more = _started_ids(store, "app", 1)  # joins the kept queue
            outbox.wake()
            wait_for(lambda: len(receiver.got) == 5 and not kept())
            assert _executions(receiver) == [sent[0], *sent, *more]
            # Its rows sent, the queue is sent from memory again.
            last = _started_ids(store, "app", 2)
            outbox.wake()
            wait_for(lambda: len(receiver.got) == 7)
            assert _executions(receiver)[5:] == last
            assert not kept()
        finally:
            stop.set()
            thread.join(30)


def test_a_queue_that_falls_behind_is_kept(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fresh, "SPILL", 3)
    with receiving() as receiver:
        receiver.answering.clear()  # a slow target
        _rule_for(store, "app", target=receiver.url)
        outbox = Outbox(store, SystemClock(), Sender("http://localhost", {}, "us-east-1"), 60.0)
        outbox.prime()
        sent = _started_ids(store, "app", 1)
        assert outbox.fan_out() == 1
        assert receiver.arrived.wait(10)
        sent += _started_ids(store, "app", 5)  # more than 3 wait behind the one being sent
        assert outbox.fan_out() == 5
        outbox.tick()  # the first one still being sent: nothing kept yet
        with store.read() as tx:
            assert tx.deliveries.counts() == {}
        receiver.answering.set()
        wait_for(lambda: len(receiver.got) == 1)

        def kept() -> int:
            outbox.tick()
            with store.read() as tx:
                return tx.deliveries.counts().get("PENDING", 0)

        wait_for(lambda: kept() == 5)
        assert outbox.held() == 0
        wait_for(lambda: len(receiver.got) == 6 and not kept())
        outbox.run(_stopped())
        assert _executions(receiver) == sent
