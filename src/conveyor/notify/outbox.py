"""Delivering notifications: at least once, in order per pipeline and target, never in the
engine's way.

One thread per server, and on one server only (a PostgreSQL advisory lock of its own, as
change detection holds one). A pass comes when events commit (at most every 100 ms) and every
half second anyway; each pass

1. reads the events after the outbox's cursor (through the store's event reading) and, in the
   same transaction that moves the cursor, writes the deliveries each event makes
   (`conveyor.notify.fanout`: notifications, approval notices, commit statuses). An event
   whose sequence number leaves a gap behind it waits a few seconds for the transaction
   still writing the missing one; a gap older than that was rolled back.
2. hands the due deliveries, grouped by pipeline and target, to a small pool of senders: a
   group is sent in order, and stops at its first failure; a group already being sent is not
   handed out again, so a target that hangs holds up only itself. A sender keeps its
   connection to a target alive while it has notifications for it, and records those
   delivered a batch at a time.

A failed attempt is tried again after 1 s, 2 s, 4 s, … (at most an hour) until the retry time
is over, then kept as ``FAILED``; `conveyor notifications retry` sends it again. A server
that stops mid-send leaves its deliveries pending: the next pass sends them again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from conveyor.engine.clock import Clock
from conveyor.metrics import Recorder, chained
from conveyor.notify.fanout import APPROVAL, deliveries_of
from conveyor.notify.statuses import COMMIT_STATUS, StatusHost
from conveyor.notify.targets import Destination, Sender, SendFailed, close_connections
from conveyor.store import Store
from conveyor.store.errors import DuplicateKey
from conveyor.store.notifications import DeliveryRecord, RuleRecord

log = logging.getLogger("conveyor.notify")
LOCK = "notification_lock_key"
# Seconds an event waits behind a gap in the sequence numbers before the gap is taken as a
# rolled-back transaction.
GAP_WAIT = 5.0
BATCH = 500
# Delivered notifications are kept a day (for a look at what was sent), then removed.
KEEP_DELIVERED = 24 * 3600.0
PRUNE_EVERY = 300.0
# Seconds between passes at the least: events committing many times a second are taken a
# batch a pass, not one write transaction each.
QUIET = 0.1
# Pending notifications read a pass, for all the senders.
PENDING_READ = 2000
# Seconds a target's kind and secret are used as read (a changed or deleted target is seen
# that much later).
TARGET_CACHE = 5.0


def back_off(attempts: int, first: float = 1.0, most: float = 3600.0) -> float:
    """Seconds before the next attempt, after ``attempts`` failed ones."""
    return float(min(first * 2 ** max(attempts - 1, 0), most))


def _by_resource(rules: list[RuleRecord]) -> dict[str, list[RuleRecord]]:
    found: dict[str, list[RuleRecord]] = {}
    for rule in rules:
        if rule.definition.get("Status", "ENABLED") == "ENABLED":
            found.setdefault(rule.resource, []).append(rule)
    return found


class Outbox:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        sender: Sender,
        retry_for: float = 24 * 3600.0,
        concurrency: int = 8,
        first_delay: float = 1.0,
        console: str = "",
        hosts: Mapping[str, StatusHost] | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self._store = store
        self._recorder = recorder
        self._hosts = dict(hosts or {})
        self._clock = clock
        self._sender = sender
        self._retry_for = retry_for
        self._first_delay = first_delay
        self._console = console
        self._leadership = store.leadership(LOCK)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="conveyor-notify")
        self._busy: set[tuple[str, str]] = set()
        # When each queue's last sender finished.
        self._finished: dict[tuple[str, str], float] = {}
        self._pruned = float("-inf")
        self._lock = threading.Lock()
        # Set when the outbox stops: senders finish the request under way and send no more.
        self._stopping = threading.Event()
        # Set when events commit: the next pass comes at once.
        self._news = threading.Event()
        # Targets as last read (with their opened secrets), by address, until when.
        self._targets: dict[str, tuple[Destination | None, float]] = {}

    # -- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event, tick: float = 0.5) -> None:
        failing: str | None = None
        try:
            while not stop.is_set():
                try:
                    if self._leadership.hold():
                        self.tick()
                    failing = None
                except Exception as exc:  # keep delivering: one bad pass must not end it
                    if str(exc) != failing:
                        log.exception("notification delivery pass failed")
                    failing = str(exc)
                # Passes at most every QUIET seconds, and at least every ``tick``: sooner
                # when events commit (`wake`).
                stop.wait(QUIET)
                self._news.wait(max(tick - QUIET, 0.0))
                self._news.clear()
        finally:
            # Every sender ends (a request under way within its time-out) before the store
            # may close: none is left holding a connection.
            self._stopping.set()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._leadership.release()

    def wake(self, _: object = None) -> None:
        """Events committed (a store's ``on_events``): pass now rather than at the tick. Costs
        the committing thread an event's set."""
        self._news.set()

    def prime(self) -> None:
        """Put the cursor after the last event, unless it is somewhere already: what
        happened before the outbox first ran is history, not news."""
        try:
            with self._store.write() as tx:
                if tx.deliveries.cursor() is None:
                    tx.deliveries.move_cursor(tx.events.last_seq(), first=True)
        except DuplicateKey:
            pass  # another server put it there first

    def tick(self) -> None:
        while self.fan_out() == BATCH:
            pass
        self.send_due()
        now = self._clock.now()
        if now - self._pruned >= PRUNE_EVERY:
            self._pruned = now
            with self._store.write() as tx:
                tx.deliveries.prune(now - KEEP_DELIVERED)

    # -- 1. events to deliveries ---------------------------------------------------------

    def fan_out(self) -> int:
        """Turn the events after the cursor into deliveries; how many events were read."""
        with self._store.read() as tx:
            cursor = tx.deliveries.cursor()
            if cursor is not None and tx.events.last_seq() <= cursor:
                return 0  # nothing new: no write transaction in the engine's way
        now = self._clock.now()
        with self._store.write() as tx:
            cursor = tx.deliveries.cursor()
            if cursor is None:
                tx.deliveries.move_cursor(tx.events.last_seq(), first=True)
                return 0
            events = tx.events.after(cursor, limit=BATCH)
            rules = _by_resource(tx.notifications.all()) if events else {}
            rows: list[dict[str, Any]] = []
            reached = cursor
            for event in events:
                if event.seq != reached + 1 and time.time() - event.time < GAP_WAIT:
                    break
                reached = event.seq
                resource = (event.body.get("resources") or [""])[0]
                rows.extend(
                    deliveries_of(
                        tx, event, rules.get(resource, ()), now, self._hosts, self._console
                    )
                )
            tx.deliveries.add(rows)
            if reached != cursor:
                tx.deliveries.move_cursor(reached, first=False)
        return len(events)

    # -- 2. deliveries to targets --------------------------------------------------------

    def send_due(self) -> list[Any]:
        """Hand every pipeline and target whose oldest notification is due to the senders,
        with the notifications read for it (one read for all of them); the futures of those
        handed out."""
        now = self._clock.now()
        read_at = time.monotonic()
        with self._store.read() as tx:
            pending = tx.deliveries.pending(limit=PENDING_READ)
            # Not all of them were read: the head of every queue is, so that a long queue
            # (a target retried for hours) keeps no other waiting.
            complete = len(pending) < PENDING_READ
            heads = [] if complete else tx.deliveries.heads()
        queues: dict[tuple[str, str], list[DeliveryRecord]] = {}
        for delivery in pending:
            queues.setdefault((delivery.pipeline_name, delivery.address), []).append(delivery)
        for head in heads:
            queues.setdefault((head.pipeline_name, head.address), [head])
        futures = []
        for key, queue in queues.items():
            with self._lock:
                # A sender that finished with this queue after it was read: what was read
                # may have been sent since, and is left to the next pass.
                stale = self._finished.get(key, float("-inf")) >= read_at
                if queue[0].next_attempt > now or key in self._busy or stale:
                    continue
                self._busy.add(key)
            futures.append(self._pool.submit(self._send_queue, key, queue, complete))
        return futures

    def _send_queue(
        self,
        key: tuple[str, str],
        queue: list[DeliveryRecord] | None = None,
        complete: bool = False,
    ) -> None:
        """Send one pipeline's notifications to one target in order (``queue``, then what
        the store holds, unless ``queue`` was ``complete``), until one fails or is not due
        yet. Those delivered are recorded together, a batch at a time: a server that stops
        before recording them sends them again (at least once)."""
        try:
            while not self._stopping.is_set():
                if queue is None:
                    with self._store.read() as tx:
                        queue = tx.deliveries.queue(*key)
                if not queue or not self._send_batch(queue) or complete:
                    return
                queue = None
        except Exception:
            log.exception("sending notifications to %s failed", key[1])
        finally:
            close_connections()
            with self._lock:
                self._busy.discard(key)
                self._finished[key] = time.monotonic()

    def _send_batch(self, queue: list[DeliveryRecord]) -> bool:
        """Send ``queue`` in order; whether all of it was delivered."""
        destinations: dict[str, Destination | None] = {}
        delivered: list[tuple[DeliveryRecord, Destination]] = []
        try:
            for delivery in queue:
                if self._stopping.is_set() or delivery.next_attempt > self._clock.now():
                    return False
                kind = delivery.rule_arn if delivery.rule_arn in (APPROVAL, COMMIT_STATUS) else ""
                if kind not in destinations:
                    destinations[kind] = self._destination(delivery)
                destination = destinations[kind]
                error = self._send(delivery, destination)
                if error is None and destination is not None:
                    delivered.append((delivery, destination))
                    continue
                self._delivered(delivered)
                delivered = []
                self._failed(delivery, destination, error or "")
                return False
            return True
        finally:
            self._delivered(delivered)

    def _destination(self, delivery: DeliveryRecord) -> Destination | None:
        if delivery.rule_arn == APPROVAL:
            return Destination("SNS", delivery.address)
        if delivery.rule_arn == COMMIT_STATUS:
            host = self._hosts.get(delivery.payload.get("connection", ""))
            if host is None:
                return None
            return Destination("CommitStatus", delivery.address, host=host)
        now = time.monotonic()
        cached = self._targets.get(delivery.address)
        if cached is not None and cached[1] > now:
            return cached[0]
        with self._store.read() as tx:
            target = tx.notifications.target(delivery.address)
            found = (
                None
                if target is None
                else Destination(target.type, target.address, tx.notifications.open_secret(target))
            )
        self._targets[delivery.address] = (found, now + TARGET_CACHE)
        return found

    def _send(self, delivery: DeliveryRecord, destination: Destination | None) -> str | None:
        """Send one delivery; why it failed, or None."""
        if destination is None:
            if delivery.rule_arn == COMMIT_STATUS:
                return "the connection no longer posts commit statuses"
            return "the target was deleted"
        try:
            self._sender.send(destination, delivery.payload)
        except SendFailed as failure:
            return str(failure)
        return None

    def _delivered(self, sent: list[tuple[DeliveryRecord, Destination]]) -> None:
        if not sent:
            return
        now = self._clock.now()
        with self._store.write() as tx:
            for delivery, _ in sent:
                tx.deliveries.settle(delivery.id, "DELIVERED", delivery.attempts + 1, now, None)
                if delivery.attempts and _kept(delivery):
                    tx.notifications.set_status(delivery.address, "ACTIVE")
        if self._recorder is not None:
            for delivery, destination in sent:
                self._recorder.delivered(destination.type, now - delivery.created)

    def _failed(
        self, delivery: DeliveryRecord, destination: Destination | None, error: str
    ) -> None:
        now = self._clock.now()
        attempts = delivery.attempts + 1
        following = now + back_off(attempts, self._first_delay)
        gave_up = destination is None or following - delivery.created > self._retry_for
        with self._store.write() as tx:
            status = "FAILED" if gave_up else "PENDING"
            tx.deliveries.settle(delivery.id, status, attempts, following, error)
            if gave_up and destination is not None and _kept(delivery):
                tx.notifications.set_status(delivery.address, "UNREACHABLE")
        if self._recorder is not None:
            kind = destination.type if destination is not None else "Deleted"
            self._recorder.delivery_failed(kind)
        log.warning("notification %s to %s failed: %s", delivery.id, delivery.address, error)


def _kept(delivery: DeliveryRecord) -> bool:
    """Whether the delivery's address is a kept target (whose status it tells)."""
    return delivery.rule_arn not in (APPROVAL, COMMIT_STATUS)


def start(
    store: Store,
    clock: Clock,
    sender: Sender,
    retry_for: float,
    console: str = "",
    hosts: Mapping[str, StatusHost] | None = None,
    timeout: float = 10.0,
    recorder: Recorder | None = None,
) -> Callable[[], None]:
    """Run an outbox on a thread of its own; the function that stops it, which returns once
    the outbox and its senders have ended (within ``timeout``, the senders' time-out)."""
    stop = threading.Event()
    outbox = Outbox(
        store, clock, sender, retry_for, console=console, hosts=hosts, recorder=recorder
    )
    outbox.prime()
    store.on_events = chained(store.on_events, outbox.wake)
    thread = threading.Thread(target=outbox.run, args=(stop,), name="conveyor-notify", daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        outbox.wake()
        thread.join(timeout + 5.0)
        if thread.is_alive():
            log.warning("notification delivery did not stop in time")

    return halt
