"""The event log: EventBridge-shaped state changes, in the order they were committed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conveyor.store.rows import dumps, insert_many
from conveyor.store.tables import events


@dataclass(frozen=True, slots=True)
class EventRecord:
    seq: int
    pipeline_name: str
    time: float
    detail_type: str
    body: dict[str, Any]


class Events:
    """Events are kept until the transaction is about to commit, then written in one insert."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn
        self._pending: list[dict[str, Any]] = []
        # Every event of this transaction as (detail-type, body), for `Store.on_events`.
        self.appended: list[tuple[str, dict[str, Any]]] = []

    def append(
        self, pipeline_name: str, time: float, detail_type: str, body: dict[str, Any]
    ) -> None:
        self.appended.append((detail_type, body))
        self._pending.append(
            {
                "pipeline_name": pipeline_name,
                "time": time,
                "detail_type": detail_type,
                "body": dumps(body),
            }
        )

    def flush(self) -> None:
        if self._pending:
            insert_many(self._conn, events, self._pending)
            self._pending = []

    def prune(self, before: float) -> int:
        """Remove the events older than ``before``; how many."""
        return int(self._conn.execute(sa.delete(events).where(events.c.time < before)).rowcount)

    def last_seq(self) -> int:
        """The sequence number of the newest event (0 when there is none)."""
        self.flush()
        return int(self._conn.execute(sa.select(sa.func.max(events.c.seq))).scalar() or 0)

    def after(
        self, seq: int, limit: int = 1000, pipeline_name: str | None = None
    ) -> list[EventRecord]:
        self.flush()
        query = sa.select(events).where(events.c.seq > seq)
        if pipeline_name is not None:
            query = query.where(events.c.pipeline_name == pipeline_name)
        query = query.order_by(events.c.seq).limit(limit)
        return [
            EventRecord(row.seq, row.pipeline_name, row.time, row.detail_type, json.loads(row.body))
            for row in self._conn.execute(query)
        ]
