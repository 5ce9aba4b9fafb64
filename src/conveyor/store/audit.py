"""Queries on the audit trail: CloudTrail records appended in batches, read newest first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conveyor.store.tables import audit_events

# LookupEvents' attribute keys → the column each filters on.
COLUMNS: Mapping[str, sa.Column[Any]] = {
    "EventId": audit_events.c.event_id,
    "EventName": audit_events.c.event_name,
    "EventSource": audit_events.c.event_source,
    "Username": audit_events.c.username,
    "AccessKeyId": audit_events.c.access_key,
    "ResourceType": audit_events.c.resource_type,
    "ResourceName": audit_events.c.resource_name,
    "ReadOnly": audit_events.c.read_only,
}


@dataclass(frozen=True, slots=True)
class AuditRecord:
    event_id: str
    event_time: float
    event_name: str
    event_source: str
    username: str | None
    access_key: str | None
    read_only: bool
    resource_type: str | None
    resource_name: str | None
    # The CloudTrail event, as JSON text.
    record: str


class Audit:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def append(self, records: Sequence[AuditRecord]) -> None:
        if records:
            self._conn.execute(
                sa.insert(audit_events),
                [
                    {
                        "event_id": r.event_id,
                        "event_time": r.event_time,
                        "event_name": r.event_name,
                        "event_source": r.event_source,
                        "username": r.username,
                        "access_key": r.access_key,
                        "read_only": r.read_only,
                        "resource_type": r.resource_type,
                        "resource_name": r.resource_name,
                        "record": r.record,
                    }
                    for r in records
                ],
            )

    def lookup(
        self,
        equal: Mapping[str, Any],
        start: float | None,
        end: float | None,
        limit: int,
        before: tuple[float, str] | None = None,
    ) -> list[AuditRecord]:
        """Records matching every ``equal`` attribute (keys of `COLUMNS`), newest first,
        from strictly before the ``(event_time, event_id)`` where the last page stopped."""
        query = sa.select(audit_events)
        for key, value in equal.items():
            query = query.where(COLUMNS[key] == value)
        if start is not None:
            query = query.where(audit_events.c.event_time >= start)
        if end is not None:
            query = query.where(audit_events.c.event_time <= end)
        if before is not None:
            when, event_id = before
            query = query.where(
                sa.or_(
                    audit_events.c.event_time < when,
                    sa.and_(audit_events.c.event_time == when, audit_events.c.event_id < event_id),
                )
            )
        query = query.order_by(audit_events.c.event_time.desc(), audit_events.c.event_id.desc())
        rows = self._conn.execute(query.limit(limit))
        return [AuditRecord(**row._mapping) for row in rows]

    def prune(self, before: float) -> int:
        result = self._conn.execute(
            sa.delete(audit_events).where(audit_events.c.event_time < before)
        )
        return result.rowcount
