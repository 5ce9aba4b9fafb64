"""Queries on the outbox of notifications (`conveyor.notify.outbox`): the deliveries it keeps
until they are sent, and its cursor, how far into the events table it has read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conveyor.store import fast
from conveyor.store.rows import dumps, insert_many, loads
from conveyor.store.tables import notification_cursor, notification_deliveries


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    # 0 for one sent from memory, not kept (`conveyor.notify.fresh`).
    id: int
    event_seq: int
    pipeline_name: str
    rule_arn: str
    address: str
    # The payload as kept: compact JSON, what a Webhook sends as it is.
    text: str
    status: str
    attempts: int
    created: float
    next_attempt: float
    last_error: str | None = None

    @property
    def payload(self) -> dict[str, Any]:
        found: dict[str, Any] = loads(self.text)
        return found


def _delivery(row: Mapping[Any, Any]) -> DeliveryRecord:
    return DeliveryRecord(
        id=row["id"],
        event_seq=row["event_seq"],
        pipeline_name=row["pipeline_name"],
        rule_arn=row["rule_arn"],
        address=row["address"],
        text=row["payload"],
        status=row["status"],
        attempts=row["attempts"],
        created=row["created"],
        next_attempt=row["next_attempt"],
        last_error=row["last_error"],
    )


_CURSOR = "events"
# Ids per IN (…) list.
_IN_LIST = 500

# What a pass and a sender read many times a second, run on the driver's cursor (`fast`).
_DUE = (
    sa.select(
        notification_deliveries.c.id,
        notification_deliveries.c.pipeline_name,
        notification_deliveries.c.address,
        notification_deliveries.c.next_attempt,
    )
    .where(notification_deliveries.c.status == "PENDING")
    .order_by(notification_deliveries.c.id)
    .limit(sa.bindparam("limit"))
)
_QUEUE = (
    sa.select(notification_deliveries)
    .where(
        notification_deliveries.c.status == "PENDING",
        notification_deliveries.c.pipeline_name == sa.bindparam("pipeline_name"),
        notification_deliveries.c.address == sa.bindparam("address"),
        notification_deliveries.c.id > sa.bindparam("after"),
    )
    .order_by(notification_deliveries.c.id)
    .limit(sa.bindparam("limit"))
)


class Deliveries:
    """The outbox of notifications, and how far into the events table it has read."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def cursor(self) -> int | None:
        """The last event's sequence number read; None before the outbox first read any."""
        table = notification_cursor
        found = self._conn.execute(sa.select(table.c.seq).where(table.c.name == _CURSOR))
        value = found.scalar()
        return None if value is None else int(value)

    def move_cursor(self, seq: int, first: bool) -> None:
        table = notification_cursor
        if first:
            self._conn.execute(sa.insert(table).values(name=_CURSOR, seq=seq))
        else:
            self._conn.execute(sa.update(table).where(table.c.name == _CURSOR).values(seq=seq))

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Keep new deliveries; a row's payload is an object, or its JSON already made (one
        text for every target of a notification)."""
        insert_many(
            self._conn,
            notification_deliveries,
            [
                row
                if isinstance(row["payload"], str)
                else {**row, "payload": dumps(row["payload"])}
                for row in rows
            ],
        )

    def pending(self, limit: int = 1000) -> list[DeliveryRecord]:
        """The oldest notifications not yet sent, in the order they were made."""
        table = notification_deliveries
        query = (
            sa.select(table).where(table.c.status == "PENDING").order_by(table.c.id).limit(limit)
        )
        return [_delivery(row._mapping) for row in self._conn.execute(query)]

    def due(self, limit: int = 1000) -> list[tuple[int, str, str, float]]:
        """The oldest notifications not yet sent, as (id, pipeline, address, next attempt),
        in the order they were made: what a pass hands out, without the payloads."""
        rows = fast.fetch(self._conn, _DUE, {"limit": limit})
        return [
            (int(r["id"]), r["pipeline_name"], r["address"], float(r["next_attempt"])) for r in rows
        ]

    def with_ids(self, ids: list[int]) -> list[DeliveryRecord]:
        """The pending notifications among ``ids``, in the order they were made."""
        table = notification_deliveries
        found: list[DeliveryRecord] = []
        for start in range(0, len(ids), _IN_LIST):
            chunk = ids[start : start + _IN_LIST]
            query = sa.select(table).where(table.c.id.in_(chunk), table.c.status == "PENDING")
            found.extend(_delivery(row._mapping) for row in self._conn.execute(query))
        found.sort(key=lambda d: d.id)
        return found

    def counts(self) -> dict[str, int]:
        """How many notifications are in each status (for ``/metrics``)."""
        table = notification_deliveries
        query = sa.select(table.c.status, sa.func.count()).group_by(table.c.status)
        return {row[0]: int(row[1]) for row in self._conn.execute(query)}

    def heads(self) -> list[DeliveryRecord]:
        """The oldest pending notification of each pipeline and target."""
        table = notification_deliveries
        first = (
            sa.select(sa.func.min(table.c.id))
            .where(table.c.status == "PENDING")
            .group_by(table.c.pipeline_name, table.c.address)
        )
        query = sa.select(table).where(table.c.id.in_(first)).order_by(table.c.id)
        return [_delivery(row._mapping) for row in self._conn.execute(query)]

    def queue(
        self, pipeline_name: str, address: str, limit: int = 100, after: int = 0
    ) -> list[DeliveryRecord]:
        """The pending notifications of one pipeline to one target, oldest first; those made
        after the one numbered ``after``, when given."""
        keys = {"pipeline_name": pipeline_name, "address": address, "after": after, "limit": limit}
        return [_delivery(row) for row in fast.fetch(self._conn, _QUEUE, keys)]

    def any_pending(self) -> bool:
        """Whether a notification waits to be sent (through the index of statuses)."""
        table = notification_deliveries
        query = sa.select(table.c.id).where(table.c.status == "PENDING").limit(1)
        return self._conn.execute(query).first() is not None

    def with_status(self, status: str) -> list[DeliveryRecord]:
        table = notification_deliveries
        query = sa.select(table).where(table.c.status == status).order_by(table.c.id)
        return [_delivery(row._mapping) for row in self._conn.execute(query)]

    def get(self, delivery_id: int) -> DeliveryRecord | None:
        table = notification_deliveries
        row = self._conn.execute(sa.select(table).where(table.c.id == delivery_id)).first()
        return None if row is None else _delivery(row._mapping)

    def settle(
        self,
        delivery_id: int,
        status: str,
        attempts: int,
        next_attempt: float,
        error: str | None,
    ) -> None:
        table = notification_deliveries
        self._conn.execute(
            sa.update(table)
            .where(table.c.id == delivery_id)
            .values(status=status, attempts=attempts, next_attempt=next_attempt, last_error=error)
        )

    def delivered(self, ids: list[int]) -> None:
        """Remove notifications delivered: one write a row (an update to a delivered status
        would rewrite the row, payload and all, and its removal would be a second)."""
        table = notification_deliveries
        for start in range(0, len(ids), _IN_LIST):
            self._conn.execute(
                sa.delete(table).where(table.c.id.in_(ids[start : start + _IN_LIST]))
            )

    def retry(self, delivery_id: int, now: float) -> bool:
        """Send a failed notification again from now on; whether it was failed."""
        table = notification_deliveries
        result = self._conn.execute(
            sa.update(table)
            .where(table.c.id == delivery_id, table.c.status == "FAILED")
            .values(status="PENDING", attempts=0, created=now, next_attempt=now)
        )
        return bool(result.rowcount)
