"""The event log: EventBridge-shaped state changes, in the order they were committed.

An event is stored without what its row already says or what follows from it: the envelope's
constant ``version`` and ``source``, its ``detail-type`` and ``time`` (columns of the row),
its one resource (the pipeline's ARN, from the row's pipeline name, the account and the
Region), the detail's ``pipeline`` and an action's ``region`` when it is the event's; an
action's ``type`` is stored as one string. Reading puts them back; an event that does not have
exactly that shape is stored whole, as are the events written before this encoding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conveyor.domain.arn import Scope
from conveyor.domain.events import envelope
from conveyor.store.rows import dumps, insert_many
from conveyor.store.tables import events

# Sequence numbers per DELETE … IN (…): SQLite's limit on bound parameters is far above it.
_IN_LIST = 500


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
                "body": dumps(compact(pipeline_name, time, detail_type, body)),
            }
        )

    def flush(self) -> None:
        if self._pending:
            insert_many(self._conn, events, self._pending)
            self._pending = []

    def prune(
        self, before: float, after: int = 0, limit: int | None = None
    ) -> tuple[int, int | None]:
        """Remove the events older than ``before``: all of them, or (with ``limit``) those
        among the next ``limit`` after sequence number ``after``, oldest first. How many, and
        where the next batch starts (None when no event is left after these)."""
        self.flush()
        if limit is None:
            removed = self._conn.execute(sa.delete(events).where(events.c.time < before))
            return int(removed.rowcount), None
        head = sa.select(events.c.seq, events.c.time).where(events.c.seq > after)
        seen = self._conn.execute(head.order_by(events.c.seq).limit(limit)).all()
        old = [seq for seq, time in seen if time < before]
        for start in range(0, len(old), _IN_LIST):
            chunk = old[start : start + _IN_LIST]
            self._conn.execute(sa.delete(events).where(events.c.seq.in_(chunk)))
        return len(old), seen[-1][0] if len(seen) == limit else None

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
            EventRecord(
                row.seq,
                row.pipeline_name,
                row.time,
                row.detail_type,
                whole(row.pipeline_name, row.time, row.detail_type, json.loads(row.body)),
            )
            for row in self._conn.execute(query)
        ]


# An action's type, stored as one string "owner/category/provider/version".
_TYPE_PARTS = ("owner", "category", "provider", "version")


def _short_detail(detail: dict[str, Any], region: Any) -> dict[str, Any]:
    """The detail without its pipeline, with an action's type as one string and without
    the action's Region when it is the event's."""
    short: dict[str, Any] = {}
    for key, value in detail.items():
        if key == "pipeline" or (key == "region" and value == region and "type" in detail):
            continue
        if key == "type" and isinstance(value, dict) and tuple(value) == _TYPE_PARTS:
            short[key] = "/".join(str(part) for part in value.values())
        else:
            short[key] = value
    return short


def _full_detail(pipeline_name: str, region: Any, short: dict[str, Any]) -> dict[str, Any]:
    detail: dict[str, Any] = {"pipeline": pipeline_name}
    for key, value in short.items():
        if key == "type":
            if "region" not in short:
                detail["region"] = region
            if isinstance(value, str):
                detail[key] = dict(zip(_TYPE_PARTS, value.split("/"), strict=True))
                continue
        detail[key] = value
    return detail


def _rebuilt(
    pipeline_name: str, time: float, detail_type: str, stored: dict[str, Any]
) -> dict[str, Any]:
    account, region = stored["account"], stored["region"]
    resources = stored.get("resources") or [Scope(region, account).pipeline(pipeline_name)]
    detail = _full_detail(pipeline_name, region, stored["detail"])
    return envelope(stored["id"], detail_type, time, account, region, resources, detail)


def compact(
    pipeline_name: str, time: float, detail_type: str, body: dict[str, Any]
) -> dict[str, Any]:
    """What is stored of an event: the parts that cannot be derived, when the rest can."""
    detail = body.get("detail")
    if not isinstance(detail, dict) or detail.get("pipeline") != pipeline_name:
        return body
    stored = {
        "id": body.get("id"),
        "account": body.get("account"),
        "region": body.get("region"),
        "detail": _short_detail(detail, body.get("region")),
    }
    try:
        if _rebuilt(pipeline_name, time, detail_type, stored) == body:
            return stored
    except (TypeError, ValueError, AttributeError):
        pass
    stored["resources"] = body.get("resources")
    try:
        if _rebuilt(pipeline_name, time, detail_type, stored) == body:
            return stored
    except (TypeError, ValueError, AttributeError):
        pass
    return body


def whole(
    pipeline_name: str, time: float, detail_type: str, stored: dict[str, Any]
) -> dict[str, Any]:
    """The event as it was appended, from what `compact` stored."""
    if "source" in stored or "account" not in stored or "detail" not in stored:
        return stored
    return _rebuilt(pipeline_name, time, detail_type, stored)
