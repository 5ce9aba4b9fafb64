"""The notifications the outbox sends from memory (`conveyor.notify.senders`): those whose
queue, a pipeline and a target, has nothing kept in the store waiting before them.

Most notifications are delivered at the first attempt, within a second of their event: for
those, a row written, read back and removed would be three writes for nothing. So the outbox
hands a pass's new notifications to the senders in memory, and keeps a row only for a queue
that needs one: one whose notification failed (the failed one and those behind it, to be tried
again in order), one that falls behind its peers (more waiting than ``SPILL`` beyond the
shortest queue of the same pipeline: a target that is slow or hangs), and one with rows still
waiting (whatever comes after them joins them). Queues all behind together (a backlog met at
start, or a machine short of CPU) stay in memory: keeping them all would double the cost of
each notification just when delivery is behind, while the fan-out's limit on what is held
already bounds the memory.

At-least-once without the rows: the outbox's cursor, as written, moves only up to the first
event with a notification neither delivered nor kept (`settled`). A server that stops or dies
reads the events after it again, and makes their notifications again.

A plain structure: its owner holds a lock around every call.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from conveyor.store.deliveries import DeliveryRecord
from conveyor.store.rows import dumps

# How many more notifications than its shortest peer (the same pipeline's queue to another
# target; none: 0) a queue may have waiting before it is kept in the store instead (its target
# is slow, or hangs): a queue that far behind has no use for the speed of memory.
SPILL = 1000

Key = tuple[str, str]  # a pipeline, an address


@dataclass
class _Queue:
    waiting: deque[DeliveryRecord] = field(default_factory=deque)
    # The failed notification (with its attempt noted) that heads the queue: the queue is
    # sent no more from memory, and is kept at the next pass.
    failed: DeliveryRecord | None = None
    # Too many waiting: kept at the next pass, once the notification being sent is sent.
    spilled: bool = False


class FreshQueues:
    """The queues sent from memory, and which events have a notification still in memory."""

    def __init__(self) -> None:
        self._queues: dict[Key, _Queue] = {}
        # Each pipeline's queues, by address: a queue's peers.
        self._pipelines: dict[str, dict[str, _Queue]] = {}
        # The notifications in memory (waiting, being sent, failed), by their event.
        self._held: Counter[int] = Counter()

    def add(self, key: Key, delivery: DeliveryRecord) -> None:
        queue = self._queues.get(key) or self._new(key)
        queue.waiting.append(delivery)
        self._held[delivery.event_seq] += 1
        if len(queue.waiting) > SPILL and not queue.spilled:
            queue.spilled = len(queue.waiting) - self._shortest_peer(key) > SPILL

    def _new(self, key: Key) -> _Queue:
        queue = self._queues[key] = _Queue()
        self._pipelines.setdefault(key[0], {})[key[1]] = queue
        return queue

    def _drop(self, key: Key) -> _Queue:
        queue = self._queues.pop(key)
        peers = self._pipelines[key[0]]
        del peers[key[1]]
        if not peers:
            del self._pipelines[key[0]]
        return queue

    def _shortest_peer(self, key: Key) -> int:
        """How many wait in the shortest other queue of the pipeline (0 when it has none in
        memory: the others have nothing waiting)."""
        pipeline, address = key
        waiting = (len(q.waiting) for a, q in self._pipelines[pipeline].items() if a != address)
        return min(waiting, default=0)

    def next(self, key: Key) -> DeliveryRecord | None:
        """The next notification to send of this queue; None when there is none, or the
        queue is to be kept (failed, spilled)."""
        return self._queues[key].waiting.popleft() if self.has_next(key) else None

    def has_next(self, key: Key) -> bool:
        queue = self._queues.get(key)
        return bool(queue and queue.failed is None and not queue.spilled and queue.waiting)

    def delivered(self, delivery: DeliveryRecord) -> None:
        self._release(delivery.event_seq)

    def failed(self, key: Key, delivery: DeliveryRecord) -> None:
        """``delivery`` failed (as noted in it): it heads its queue, which is kept next."""
        (self._queues.get(key) or self._new(key)).failed = delivery

    def to_keep(self, busy: set[Key]) -> dict[Key, list[DeliveryRecord]]:
        """The queues to keep in the store now, in order (a failed one first): those that
        failed, and those spilled whose sender is done (``busy``: the queues being sent)."""
        found: dict[Key, list[DeliveryRecord]] = {}
        for key, queue in self._queues.items():
            if queue.failed is not None:
                found[key] = [queue.failed, *queue.waiting]
            elif queue.spilled and key not in busy:
                found[key] = list(queue.waiting)
        return found

    def kept(self, key: Key) -> None:
        """The queue ``to_keep`` gave is in the store now: it leaves memory."""
        queue = self._drop(key)
        if queue.failed is not None:
            self._release(queue.failed.event_seq)
        for delivery in queue.waiting:
            self._release(delivery.event_seq)

    def idle(self, key: Key) -> None:
        """The queue's sender is done: an empty queue is forgotten."""
        queue = self._queues.get(key)
        if queue is not None and not queue.waiting and queue.failed is None:
            self._drop(key)

    def settled(self, cursor: int) -> int:
        """How far the cursor may be written, read up to ``cursor``: to before the first
        event with a notification still in memory."""
        return min(cursor, min(self._held) - 1) if self._held else cursor

    def held(self) -> int:
        """How many notifications are in memory."""
        return self._held.total()

    def forget(self) -> None:
        """Drop everything (delivery goes to another server, which reads the events again)."""
        self._queues.clear()
        self._pipelines.clear()
        self._held.clear()

    def _release(self, seq: int) -> None:
        left = self._held[seq] - 1
        if left > 0:
            self._held[seq] = left
        else:
            del self._held[seq]


def fresh(row: dict[str, Any]) -> DeliveryRecord:
    """A delivery as the fan-out made it (a row not written), to send from memory."""
    payload = row["payload"]
    return DeliveryRecord(
        id=0,
        event_seq=row["event_seq"],
        pipeline_name=row["pipeline_name"],
        rule_arn=row["rule_arn"],
        address=row["address"],
        text=payload if isinstance(payload, str) else dumps(payload),
        status="PENDING",
        attempts=0,
        created=row["created"],
        next_attempt=row["next_attempt"],
    )


def row_of(delivery: DeliveryRecord) -> dict[str, Any]:
    """The row that keeps a delivery from memory."""
    return {
        "event_seq": delivery.event_seq,
        "pipeline_name": delivery.pipeline_name,
        "rule_arn": delivery.rule_arn,
        "address": delivery.address,
        "payload": delivery.text,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "created": delivery.created,
        "next_attempt": delivery.next_attempt,
        "last_error": delivery.last_error,
    }
