"""Delivering notifications: at least once, in order per pipeline and target, never in the
engine's way.

One thread in each server's deliverer, a process of the server's own
(`conveyor.notify.deliverer`), and on one server only (a PostgreSQL advisory lock of its own,
as change detection holds one). A pass comes when events commit (at most every 100 ms) and every
half second anyway; each pass

1. reads the events after the outbox's cursor, in a read transaction, with the bodies only of
   those that may make a delivery (pipelines with rules, approval actions, and with commit
   statuses on, pipelines' and sources' events), and makes the deliveries each makes
   (`conveyor.notify.fanout`: notifications, approval notices, commit statuses). Deliveries
   are written with the cursor in one short write; events that make none move the cursor in
   memory only (written every few seconds, and when the outbox stops): reading them again
   makes none, so a server with no rules costs the engine's database no write. An event
   whose sequence number leaves a gap behind it waits a few seconds for the transaction
   still writing the missing one; a gap older than that was rolled back.
2. records, in one write, what the senders delivered since the last pass, then hands the due
   deliveries, grouped by pipeline and target, to a small pool of senders (their payloads
   read only for the groups handed out): a group is sent in order, and stops at its first
   failure; a group already being sent is not handed out again, so a target that hangs holds
   up only itself. A sender keeps its connection to a target alive while it has
   notifications for it (`conveyor.notify.posting`).

The work shares the machine with the engine, so it is kept small: a notification's JSON is
made once for all the targets of its rule and sent as kept, a POST is one write on a kept
connection, and the store sees a few statements a pass, whatever the number of
notifications. A failed
attempt is tried again after 1 s, 2 s, 4 s, … (at most an hour) until the retry time is over,
then kept as ``FAILED``; `conveyor notifications retry` sends it again. A server that stops
mid-send leaves its deliveries pending, and those delivered but not yet recorded: the next
pass sends them again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from conveyor.domain.events import PIPELINE
from conveyor.engine.clock import Clock
from conveyor.metrics import Recorder
from conveyor.notify.fanout import APPROVAL, calls_for_notice, deliveries_of
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
# Seconds between passes at the least: events committing many times a second are taken a
# batch a pass, not one write transaction each.
QUIET = 0.1
# Pending notifications read a pass, for all the senders.
PENDING_READ = 2000
# Senders, each sending to one target (for one pipeline) at a time.
SENDERS = 16
# Seconds at most between writes of the cursor when the events read make no delivery.
CURSOR_EVERY = 5.0
# Seconds a target's kind and secret are used as read (a changed or deleted target is seen
# that much later).
TARGET_CACHE = 5.0


def back_off(attempts: int, first: float = 1.0, most: float = 3600.0) -> float:
    """Seconds before the next attempt, after ``attempts`` failed ones."""
    return float(min(first * 2 ** max(attempts - 1, 0), most))


def worth_waking(events: list[tuple[str, dict[str, Any]]], statuses: bool, any_rule: bool) -> bool:
    """Whether committed events may make a delivery: any may with commit statuses on or a
    rule enabled; otherwise only an approval's start (its notice)."""
    return statuses or any_rule or calls_for_notice(events)


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
        concurrency: int = SENDERS,
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
        # Queues handed out whose sender has not started (all the senders busy).
        self._waiting = 0
        # When each queue's last sender finished.
        self._finished: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        # Set when the outbox stops: senders finish the request under way and send no more.
        self._stopping = threading.Event()
        # Set when events commit: the next pass comes at once.
        self._news = threading.Event()
        # Targets as last read (with their opened secrets), by address, until when.
        self._targets: dict[str, tuple[Destination | None, float]] = {}
        # How far the events were read (None: as the store says), and when the cursor was
        # last written (`fan_out`).
        self._cursor: int | None = None
        self._cursor_written = time.monotonic()
        # Whether this server delivered at its last pass, and whether any rule was enabled
        # (until a pass has read them: as if one was).
        self._leading = False
        self._any_rule = True
        # Notifications delivered and not yet recorded (each pass records them in one
        # write), by queue and id.
        self._sent: dict[tuple[str, str], dict[int, DeliveryRecord]] = {}

    # -- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event, tick: float = 0.5) -> None:
        failing: str | None = None
        try:
            while not stop.is_set():
                try:
                    self._leading = self._leadership.hold()
                    if self._leading:
                        self.tick()
                    else:
                        self._cursor = None  # another server's now: read it again
                    failing = None
                except Exception as exc:  # keep delivering: one bad pass must not end it
                    if str(exc) != failing:
                        log.exception("notification delivery pass failed")
                    failing = str(exc)
                # Passes at most every QUIET seconds, and at least every ``tick``: sooner
                # when events commit (`wake`).
                stop.wait(QUIET)
                self._news.wait(max(tick - QUIET, 0.0))
                self.woken()
        finally:
            # Every sender ends (a request under way within its time-out) before the store
            # may close: none is left holding a connection.
            self._stopping.set()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._keep_cursor()
            try:
                self.record_sent()
            except Exception:  # the database away: sent again at the next start
                log.warning("cannot record the notifications delivered", exc_info=True)
            self._leadership.release()

    def _keep_cursor(self) -> None:
        """Write the cursor as far as it was read (it saves the next start reading again)."""
        if self._cursor is None or not self._leading:
            return
        try:
            self._write_cursor(self._cursor)
        except Exception:  # the database away: the next start reads a little more
            log.warning("cannot keep how far notifications were read", exc_info=True)

    def wake(self, events: list[tuple[str, dict[str, Any]]] | None = None) -> None:
        """Events committed (a store's ``on_events``): pass now rather than at the tick, when
        they may make a delivery (with no rule, only an approval's start does). Costs the
        committing thread a look at each event's kind and an event's set; no argument: a pass
        now, whatever."""
        if events is None or worth_waking(events, bool(self._hosts), self._any_rule):
            self._news.set()

    @property
    def any_rule(self) -> bool:
        """Whether a rule was enabled at the last pass (until a pass has read them: True)."""
        return self._any_rule

    def woken(self) -> bool:
        """Whether the next pass comes now (events that may make a delivery committed), and
        no longer: the pass takes it."""
        found = self._news.is_set()
        self._news.clear()
        return found

    def prime(self) -> None:
        prime(self._store)

    def tick(self) -> None:
        while self.fan_out() == BATCH:
            pass
        self.send_due()

    # -- 1. events to deliveries ---------------------------------------------------------

    def fan_out(self) -> int:
        """Turn the events after the cursor into deliveries; how many events were taken (those
        behind a gap wait for the next pass).

        The events are read, and their deliveries made, in a read transaction; a write
        follows only when there are deliveries to keep (with the cursor moved in the same
        transaction). Otherwise the cursor moves in memory, and is written now and then:
        the events between the written cursor and this one made no delivery, so reading
        them again (after a restart, or on the server that takes delivery over) makes none.
        """
        now = self._clock.now()
        with self._store.read() as tx:
            written = tx.deliveries.cursor()
            if written is None:
                return self._first_cursor()
            cursor = written if self._cursor is None else max(self._cursor, written)
            if tx.events.last_seq() <= cursor:
                self._cursor = cursor
                return 0  # nothing new
            rules = _by_resource(tx.notifications.all())
            self._any_rule = bool(rules)
            events = tx.events.after_reading(cursor, BATCH, **self._wanted(rules))
            rows: list[dict[str, Any]] = []
            known: dict[str, list[Any]] = {}
            reached, taken = cursor, 0
            for event in events:
                if event.seq != reached + 1 and time.time() - event.time < GAP_WAIT:
                    break
                reached, taken = event.seq, taken + 1
                if not event.body:
                    continue  # nothing asks for it
                resource = (event.body.get("resources") or [""])[0]
                rows.extend(
                    deliveries_of(
                        tx, event, rules.get(resource, ()), now, self._hosts, self._console, known
                    )
                )
        if rows:
            with self._store.write() as tx:
                if tx.deliveries.cursor() != written:
                    self._cursor = None  # another server moved it: read from there
                    return 0
                tx.deliveries.add(rows)
                tx.deliveries.move_cursor(reached, first=False)
            self._cursor_written = time.monotonic()
        elif reached != written and time.monotonic() - self._cursor_written >= CURSOR_EVERY:
            self._write_cursor(reached)
        self._cursor = reached
        return taken

    def _wanted(self, rules: Mapping[str, list[RuleRecord]]) -> dict[str, Any]:
        """Which events' bodies a pass reads: those of pipelines with rules, those of
        approval actions, and (with commit statuses on) pipelines' and sources' events."""
        pipelines = {arn.rsplit(":", 1)[-1] for arn in rules}
        containing = ["Approval"]
        kinds: list[str] = []
        if self._hosts:
            kinds.append(PIPELINE)
            containing.append("Source")
        return {"pipelines": pipelines, "kinds": kinds, "containing": containing}

    def _first_cursor(self) -> int:
        with self._store.write() as tx:
            if tx.deliveries.cursor() is None:
                tx.deliveries.move_cursor(tx.events.last_seq(), first=True)
        return 0

    def _write_cursor(self, seq: int) -> None:
        """Write the cursor read in memory, unless another server moved it past."""
        with self._store.write() as tx:
            written = tx.deliveries.cursor()
            if written is not None and written < seq:
                tx.deliveries.move_cursor(seq, first=False)
        self._cursor_written = time.monotonic()

    # -- 2. deliveries to targets --------------------------------------------------------

    def send_due(self) -> list[Any]:
        """Hand every pipeline and target whose oldest notification is due to the senders,
        with the notifications read for it (the payloads only of those handed out); the
        futures of those handed out."""
        self.record_sent()
        now = self._clock.now()
        read_at = time.monotonic()
        with self._store.read() as tx:
            due = tx.deliveries.due(limit=PENDING_READ)
            # Not all of them were read: the head of every queue is, so that a long queue
            # (a target retried for hours) keeps no other waiting.
            complete = len(due) < PENDING_READ
            heads = [] if complete else tx.deliveries.heads()
        queues: dict[tuple[str, str], list[int]] = {}
        firsts: dict[tuple[str, str], float] = {}
        with self._lock:
            due = [d for d in due if d[0] not in self._sent.get((d[1], d[2]), ())]
        for delivery_id, pipeline, address, next_attempt in due:
            queues.setdefault((pipeline, address), []).append(delivery_id)
            firsts.setdefault((pipeline, address), next_attempt)
        for head in heads:
            key = (head.pipeline_name, head.address)
            if key not in queues:
                queues[key] = [head.id]
                firsts[key] = head.next_attempt
        chosen = []
        for key in queues:
            with self._lock:
                # A sender that finished with this queue after it was read: what was read
                # may have been sent since, and is left to the next pass.
                stale = self._finished.get(key, float("-inf")) >= read_at
                if firsts[key] > now or key in self._busy or stale:
                    continue
                self._busy.add(key)
            chosen.append(key)
        if not chosen:
            return []
        try:
            with self._store.read() as tx:
                found = tx.deliveries.with_ids([i for key in chosen for i in queues[key]])
        except BaseException:
            with self._lock:
                self._busy.difference_update(chosen)
            raise
        read: dict[tuple[str, str], list[DeliveryRecord]] = {key: [] for key in chosen}
        for delivery in self._unsent(found, set()):
            read[(delivery.pipeline_name, delivery.address)].append(delivery)
        with self._lock:
            self._waiting += len(read)
        return [self._pool.submit(self._send_queue, key, queue) for key, queue in read.items()]

    def _send_queue(self, key: tuple[str, str], queue: list[DeliveryRecord] | None = None) -> None:
        """Send one pipeline's notifications to one target in order (``queue``, then what
        the store holds, made since), until one fails or is not due yet, or none is left:
        a target that is sent to all the time keeps its sender (unless another queue waits
        for one), and its notifications wait for no pass. Those delivered are recorded at
        the next pass: a server that stops before then sends them again (at least once)."""
        with self._lock:
            self._waiting -= 1
        last = 0
        try:
            while not self._stopping.is_set():
                if queue is None:
                    with self._lock:
                        if self._waiting:
                            return  # another queue waits for a sender: its turn
                        # Those sent before the read: a pass may record them while it reads.
                        before = set(self._sent.get(key, ()))
                    # Only those made after the last one sent: the ones before it are sent
                    # and not yet recorded, and would fill the read.
                    with self._store.read() as tx:
                        read = tx.deliveries.queue(*key, after=last)
                    queue = self._unsent(read, before)
                if not queue or not self._send_batch(queue):
                    return
                last = queue[-1].id
                queue = None
        except Exception:
            log.exception("sending notifications to %s failed", key[1])
        finally:
            close_connections()
            with self._lock:
                self._busy.discard(key)
                self._finished[key] = time.monotonic()

    def _unsent(self, read: list[DeliveryRecord], before: set[int]) -> list[DeliveryRecord]:
        """Those of ``read`` not delivered already: delivered but not recorded when the read
        began (``before``), or now."""
        with self._lock:
            return [
                delivery
                for delivery in read
                if delivery.id not in before
                and delivery.id
                not in self._sent.get((delivery.pipeline_name, delivery.address), ())
            ]

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
            self._sender.send(destination, delivery.text)
        except SendFailed as failure:
            return str(failure)
        return None

    def _delivered(self, sent: list[tuple[DeliveryRecord, Destination]]) -> None:
        """Note notifications as delivered: the next pass records them (a server that stops
        before then sends them again: at least once)."""
        if not sent:
            return
        with self._lock:
            for delivery, _ in sent:
                key = (delivery.pipeline_name, delivery.address)
                self._sent.setdefault(key, {})[delivery.id] = delivery
        if self._recorder is not None:
            now = self._clock.now()
            for delivery, destination in sent:
                self._recorder.delivered(destination.type, now - delivery.created)

    def record_sent(self) -> None:
        """Record the notifications delivered since the last pass, in one write."""
        with self._lock:
            sent = [d for queue in self._sent.values() for d in queue.values()]
        if not sent:
            return
        with self._store.write() as tx:
            tx.deliveries.delivered([delivery.id for delivery in sent])
            for address in {d.address for d in sent if d.attempts and _kept(d)}:
                tx.notifications.set_status(address, "ACTIVE")
        with self._lock:
            for delivery in sent:
                key = (delivery.pipeline_name, delivery.address)
                queue = self._sent[key]
                del queue[delivery.id]
                if not queue:
                    del self._sent[key]

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


def prime(store: Store) -> None:
    """Put the cursor after the last event, unless it is somewhere already: what happened
    before delivery first ran is history, not news."""
    try:
        with store.write() as tx:
            if tx.deliveries.cursor() is None:
                tx.deliveries.move_cursor(tx.events.last_seq(), first=True)
    except DuplicateKey:
        pass  # another server put it there first


def _kept(delivery: DeliveryRecord) -> bool:
    """Whether the delivery's address is a kept target (whose status it tells)."""
    return delivery.rule_arn not in (APPROVAL, COMMIT_STATUS)
