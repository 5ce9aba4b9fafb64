"""The senders of the outbox (`conveyor.notify.outbox`): the second half of its pass, from
the deliveries kept to their targets.

A pass records, in one write, what was delivered since the last (a delivered notification's
row goes), then hands the due deliveries, grouped by pipeline and target, to a small pool of
senders (their payloads read only for the groups handed out): a group is sent in order, and
stops at its first failure; a group already being sent is not handed out again, so a target
that hangs holds up only itself. A sender that has sent its group reads what was made since
and goes on without waiting for a pass. It keeps its connection to a target alive while it
has notifications for it (`conveyor.notify.posting`). A failed attempt is tried again after
1 s, 2 s, 4 s, … (at most an hour) until the retry time is over, then kept as ``FAILED``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from conveyor.engine.clock import Clock
from conveyor.metrics import Recorder
from conveyor.notify.fanout import APPROVAL
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
        self._busy: set[tuple[str, str]] = set()
        # Queues handed out whose sender has not started (all the senders busy).
        self._waiting = 0
        # When each queue's last sender finished.
        self._finished: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        # Set when the outbox stops: senders finish the request under way and send no more.
        self._stopping = threading.Event()
        # Targets as last read (with their opened secrets), by address, until when.
        self._targets: dict[str, tuple[Destination | None, float]] = {}
        # Notifications delivered and not yet recorded (each pass records them in one
        # write), by queue and id.
        self._sent: dict[tuple[str, str], dict[int, DeliveryRecord]] = {}

    def stop(self) -> None:
        """Let every sender finish the request under way (within its time-out) and send no
        more; return once all have ended, none left holding a connection."""
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

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


def _kept(delivery: DeliveryRecord) -> bool:
    """Whether the delivery's address is a kept target (whose status it tells)."""
    return delivery.rule_arn not in (APPROVAL, COMMIT_STATUS)
