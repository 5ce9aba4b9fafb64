"""The senders of the outbox (`conveyor.notify.outbox`): the second half of its pass, from
the deliveries made to their targets.

A pass's new notifications are sent from memory (`conveyor.notify.fresh`), a queue (a pipeline
and a target) at a time, in order, by a small pool of senders: a sender keeps its queue, and
its connection to the target (`conveyor.notify.posting`), while the passes bring more. A queue
whose notification fails, or that falls behind, is kept in the store, with whatever comes
after it until it is sent; then its queue is sent from memory again.

For the queues kept, a pass records, in one write, what was delivered since the last (a
delivered notification's row goes), then hands those due to the senders (their payloads read
only for the queues handed out): a queue is sent in order, and stops at its first failure; a
queue already being sent is not handed out again, so a target that hangs holds up only itself.
A sender that has sent its queue reads what was kept since and goes on without waiting for a
pass. A failed attempt is tried again after 1 s, 2 s, 4 s, … (at most an hour) until the retry
time is over, then kept as ``FAILED``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from conveyor.engine.clock import Clock
from conveyor.metrics import Recorder
from conveyor.notify.fanout import APPROVAL
from conveyor.notify.fresh import FreshQueues, Key, fresh, row_of
from conveyor.notify.statuses import COMMIT_STATUS, StatusHost
from conveyor.notify.targets import Destination, Sender, SendFailed, close_connections
from conveyor.store import Store
from conveyor.store.deliveries import DeliveryRecord

log = logging.getLogger("conveyor.notify")
# Pending notifications read a pass, for all the senders.
PENDING_READ = 2000
# Senders, each sending to one target (for one pipeline) at a time.
SENDERS = 16
# Seconds a target's kind and secret are used as read (a changed or deleted target is seen
# that much later).
TARGET_CACHE = 5.0
# Seconds a sender from memory waits for the next pass's notifications of its queue before it
# gives its thread and connection up (the passes come at least every half second).
LINGER = 0.6
# Notifications a sender from memory sends before it lets a queue waiting for a sender go
# first.
TURN = 200


def back_off(attempts: int, first: float = 1.0, most: float = 3600.0) -> float:
    """Seconds before the next attempt, after ``attempts`` failed ones."""
    return float(min(first * 2 ** max(attempts - 1, 0), most))


class Senders:
    """The outbox's pool of senders, the queues they hold, and what they delivered that the
    next pass records."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        sender: Sender,
        retry_for: float,
        concurrency: int = SENDERS,
        first_delay: float = 1.0,
        hosts: Mapping[str, StatusHost] | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._sender = sender
        self._retry_for = retry_for
        self._first_delay = first_delay
        self._hosts = dict(hosts or {})
        self._recorder = recorder
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="conveyor-notify")
        self._busy: set[Key] = set()
        # Queues handed out whose sender has not started (all the senders busy).
        self._waiting = 0
        # When each queue's last sender finished.
        self._finished: dict[Key, float] = {}
        self._lock = threading.Lock()
        # Notified when notifications join a queue in memory, or a queue waits for a sender.
        self._more = threading.Condition(self._lock)
        self._fresh = FreshQueues()
        # The queues with rows kept: what joins them is kept too (None: not read yet).
        self._kept: set[Key] | None = None
        # Set when the outbox stops: senders finish the request under way and send no more.
        self._stopping = threading.Event()
        # Targets as last read (with their opened secrets), by address, until when.
        self._targets: dict[str, tuple[Destination | None, float]] = {}
        # Notifications delivered and not yet recorded (each pass records them in one
        # write), by queue and id.
        self._sent: dict[Key, dict[int, DeliveryRecord]] = {}

    def stop(self) -> None:
        """Let every sender finish the request under way (within its time-out) and send no
        more; return once all have ended, none left holding a connection."""
        self._stopping.set()
        with self._more:
            self._more.notify_all()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- from memory ---------------------------------------------------------------------

    def hand(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send a pass's new deliveries from memory, in order, but for the queues with rows
        kept; the rows to keep (they join those)."""
        if self._kept is None:
            with self._store.read() as tx:
                self._kept = {(h.pipeline_name, h.address) for h in tx.deliveries.heads()}
        kept: list[dict[str, Any]] = []
        with self._more:
            for row in rows:
                key = (row["pipeline_name"], row["address"])
                if key in self._kept:
                    kept.append(row)
                else:
                    self._fresh.add(key, fresh(row))
                    self._start_fresh(key)
            self._more.notify_all()
        return kept

    def _start_fresh(self, key: Key) -> None:
        """Hand a queue with notifications in memory to a sender, unless one has it (the
        lock held)."""
        if key not in self._busy and self._fresh.has_next(key):
            self._busy.add(key)
            self._waiting += 1
            self._pool.submit(self._send_fresh, key)

    def held(self) -> int:
        """How many notifications are in memory, neither delivered nor kept."""
        with self._lock:
            return self._fresh.held()

    def settled(self, cursor: int) -> int:
        """How far the outbox's cursor may be written, read up to ``cursor``: to before the
        first event with a notification in memory (a restart makes it again)."""
        with self._lock:
            return self._fresh.settled(cursor)

    def keep_fresh(self) -> None:
        """Keep in the store, in one write, the queues in memory that failed (the failed
        notification first, noted as failed) or fell behind."""
        with self._lock:
            found = self._fresh.to_keep(self._busy)
        if not found:
            return
        with self._store.write() as tx:
            tx.deliveries.add([row_of(delivery) for queue in found.values() for delivery in queue])
            for key, queue in found.items():
                if queue[0].status == "FAILED" and _kept(queue[0]):
                    tx.notifications.set_status(key[1], "UNREACHABLE")
        with self._lock:
            for key in found:
                self._fresh.kept(key)
            if self._kept is not None:
                self._kept.update(found)

    def forget(self) -> None:
        """Drop what is in memory: another server delivers now, from the cursor written."""
        with self._lock:
            self._fresh.forget()
            self._kept = None

    def _send_fresh(self, key: Key) -> None:
        """Send a queue from memory in order, while it has notifications (and for a moment
        after: the next pass's), until one fails; a queue waiting for a sender goes first
        after ``TURN`` notifications."""
        with self._lock:
            self._waiting -= 1
        turn = 0
        try:
            while not self._stopping.is_set():
                with self._more:
                    if not self._fresh.has_next(key) and not self._waiting:
                        self._more.wait(LINGER)
                    if self._stopping.is_set() or not self._fresh.has_next(key):
                        return
                    turn += 1
                    if turn > TURN and self._waiting:
                        return  # to the back of the line
                    delivery = self._fresh.next(key)
                assert delivery is not None
                destination = self._destination(delivery)
                error = self._send(delivery, destination)
                if error is None and destination is not None:
                    with self._lock:
                        self._fresh.delivered(delivery)
                    self._note_delivered([(delivery, destination)])
                    continue
                failed = self._judged(delivery, destination, error or "")
                with self._lock:
                    self._fresh.failed(key, failed)
                return
        except Exception:
            log.exception("sending notifications to %s failed", key[1])
        finally:
            close_connections()
            with self._more:
                self._finished[key] = time.monotonic()
                self._busy.discard(key)
                self._fresh.idle(key)
                # What came as it stopped, or its turn again (unless the queue failed or is
                # to be kept).
                self._start_fresh(key)

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
        queues: dict[Key, list[int]] = {}
        firsts: dict[Key, float] = {}
        # Every queue with rows (those delivered and not yet recorded too): what the next
        # passes make for them is kept behind those, in order; the others' is sent from memory.
        self._kept = {(d[1], d[2]) for d in due} | {(h.pipeline_name, h.address) for h in heads}
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
        read: dict[Key, list[DeliveryRecord]] = {key: [] for key in chosen}
        for delivery in self._unsent(found, set()):
            read[(delivery.pipeline_name, delivery.address)].append(delivery)
        with self._more:
            self._waiting += len(read)
            self._more.notify_all()  # a sender lingering on a queue in memory makes way
        return [self._pool.submit(self._send_queue, key, queue) for key, queue in read.items()]

    def _send_queue(self, key: Key, queue: list[DeliveryRecord] | None = None) -> None:
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
                # Its rows all sent, the queue's new notifications came in memory.
                self._start_fresh(key)

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
        """Note kept notifications as delivered: the next pass records them (a server that
        stops before then sends them again: at least once)."""
        if not sent:
            return
        with self._lock:
            for delivery, _ in sent:
                key = (delivery.pipeline_name, delivery.address)
                self._sent.setdefault(key, {})[delivery.id] = delivery
        self._note_delivered(sent)

    def _note_delivered(self, sent: list[tuple[DeliveryRecord, Destination]]) -> None:
        """Count notifications delivered, with their lag (for ``/metrics``)."""
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
        """A kept notification failed: noted in its row."""
        failed = self._judged(delivery, destination, error)
        with self._store.write() as tx:
            tx.deliveries.settle(
                delivery.id, failed.status, failed.attempts, failed.next_attempt, error
            )
            if failed.status == "FAILED" and destination is not None and _kept(delivery):
                tx.notifications.set_status(delivery.address, "UNREACHABLE")

    def _judged(
        self, delivery: DeliveryRecord, destination: Destination | None, error: str
    ) -> DeliveryRecord:
        """The delivery after a failed attempt: to be tried again after its back-off, or
        given up (``FAILED``: its retry time over, or its target gone)."""
        now = self._clock.now()
        attempts = delivery.attempts + 1
        following = now + back_off(attempts, self._first_delay)
        gave_up = destination is None or following - delivery.created > self._retry_for
        if self._recorder is not None:
            kind = destination.type if destination is not None else "Deleted"
            self._recorder.delivery_failed(kind)
        log.warning(
            "notification %s to %s failed: %s",
            delivery.id or f"of event {delivery.event_seq}",
            delivery.address,
            error,
        )
        return replace(
            delivery,
            status="FAILED" if gave_up else "PENDING",
            attempts=attempts,
            next_attempt=following,
            last_error=error,
        )


def _kept(delivery: DeliveryRecord) -> bool:
    """Whether the delivery's address is a kept target (whose status it tells)."""
    return delivery.rule_arn not in (APPROVAL, COMMIT_STATUS)
