"""Queries on the audit trail: CloudTrail records appended in batches, read newest first.

A record is stored without what it shares with other calls or what its columns already say.
Its context (the caller, its address and client, the Region, the account, the constant fields
and the order of the record's fields) is kept once in ``audit_contexts`` and named by the row.
The time, name, source, event id and read-only flag come from the row's columns; the request
id follows from the event id when the trail made one from the other (`event_id_for`), and the
one resource from the row's resource columns. What is left is stored as a JSON array, in the
order of the record's fields. A pipeline, the resource of most calls, is stored with its name
and no type (the type column is NULL), which lookups and reads take as the pipeline type.
Reading puts the record's text back exactly as it was given; a record that would not come
back exactly, and those written before this encoding, are stored whole.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from conveyor.store.tables import audit_contexts, audit_events

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

# The resource type of a row whose type column is NULL and whose name is not.
PIPELINE_TYPE = "AWS::CodePipeline::Pipeline"
# Fields that the calls of one client share, kept in the context.
_SHARED = (
    "eventVersion",
    "userIdentity",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "eventType",
    "managementEvent",
    "recipientAccountId",
    "eventCategory",
)
# Fields rebuilt from the row's columns (and the context), when they match.
_DERIVED = (
    "eventTime",
    "eventSource",
    "eventName",
    "eventID",
    "readOnly",
    "requestID",
    "resources",
)
# Turns a request id into its call's event id and back (the same operation both ways).
_MASK = 0x5EC0_0DE5_A0D1_7000_8000_0000_0000_0000


def event_id_for(request_id: str) -> str:
    """The event id of the call with this request id: a UUID that gives the request id back,
    so that a record need not keep both. A request id that is no UUID gets a random one."""
    try:
        number = uuid.UUID(request_id).int
    except ValueError:
        return str(uuid.uuid4())
    return str(uuid.UUID(int=number ^ _MASK))


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


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _arn(resource_type: str | None, name: str | None, region: Any, account: Any) -> str | None:
    if name is None:
        return None
    prefix = f"arn:aws:codepipeline:{region}:{account}:"
    if resource_type == "AWS::CodeBuild::Project":
        return f"arn:aws:codebuild:{region}:{account}:project/{name}"
    if resource_type == "AWS::CodePipeline::Webhook":
        return f"{prefix}webhook:{name}"
    if resource_type == "AWS::CodePipeline::CustomActionType":
        return f"{prefix}actiontype:{name}"
    return prefix + name


def _derive(key: str, row: AuditRecord, shared: Mapping[str, Any]) -> Any:
    if key == "eventTime":
        return datetime.fromtimestamp(row.event_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if key == "eventSource":
        return row.event_source
    if key == "eventName":
        return row.event_name
    if key == "eventID":
        return row.event_id
    if key == "readOnly":
        return row.read_only
    if key == "requestID":
        return event_id_for(row.event_id)
    account = shared.get("recipientAccountId")
    arn = _arn(row.resource_type, row.resource_name, shared.get("awsRegion"), account)
    return None if arn is None else [{"ARN": arn, "accountId": account}]


def _rebuild(row: AuditRecord, context: Mapping[str, Any], stored: list[Any]) -> str:
    shared, derived = context["shared"], context["derived"]
    left = iter(stored)
    event = {
        key: shared[key]
        if key in shared
        else _derive(key, row, shared)
        if key in derived
        else next(left)
        for key in context["keys"]
    }
    return _dumps(event)


def split(row: AuditRecord) -> tuple[dict[str, Any], list[Any]] | None:
    """The record as (its context, what it has of its own), or None if it must be kept whole."""
    try:
        event = json.loads(row.record)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    shared = {key: event[key] for key in _SHARED if key in event}
    derived = [key for key in _DERIVED if key in event and _derive(key, row, shared) == event[key]]
    context = {"keys": list(event), "shared": shared, "derived": derived}
    stored = [event[key] for key in event if key not in shared and key not in derived]
    if _rebuild(row, context, stored) != row.record:
        return None
    return context, stored


def _matches(key: str, value: Any) -> sa.ColumnElement[bool]:
    """The condition of one LookupEvents attribute."""
    if key == "ResourceType" and value == PIPELINE_TYPE:
        kept_short = sa.and_(
            audit_events.c.resource_type.is_(None), audit_events.c.resource_name.is_not(None)
        )
        return sa.or_(audit_events.c.resource_type == value, kept_short)
    condition: sa.ColumnElement[bool] = COLUMNS[key] == value
    return condition


def _context_ids(conn: sa.Connection, bodies: set[str]) -> dict[str, int]:
    """The id of each context body, stored now if it was not yet."""
    digests = {hashlib.sha256(body.encode()).hexdigest(): body for body in bodies}
    query = sa.select(audit_contexts.c.digest, audit_contexts.c.id).where(
        audit_contexts.c.digest.in_(digests)
    )
    found = {digest: ident for digest, ident in conn.execute(query)}
    missing = [{"digest": d, "body": b} for d, b in digests.items() if d not in found]
    if missing:
        insert = _insert_new(conn.dialect.name)
        conn.execute(insert, missing)
        found = {digest: ident for digest, ident in conn.execute(query)}
    return {digests[digest]: ident for digest, ident in found.items()}


def _insert_new(dialect: str) -> sa.Insert:
    """An insert of contexts that leaves alone one another server stored meanwhile."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(audit_contexts).on_conflict_do_nothing(index_elements=["digest"])
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(audit_contexts).on_conflict_do_nothing(index_elements=["digest"])


class Audit:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def append(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        parts = [split(r) for r in records]
        bodies = {_dumps(p[0]) for p in parts if p is not None}
        ids = _context_ids(self._conn, bodies) if bodies else {}
        rows = []
        for r, part in zip(records, parts, strict=True):
            if part is None:
                record, context = r.record, None
            else:
                record, context = _dumps(part[1]), ids[_dumps(part[0])]
            rows.append(
                {
                    "event_id": r.event_id,
                    "event_time": r.event_time,
                    "event_name": r.event_name,
                    "event_source": r.event_source,
                    "username": r.username,
                    "access_key": r.access_key,
                    "read_only": r.read_only,
                    "resource_type": None
                    if r.resource_type == PIPELINE_TYPE and r.resource_name is not None
                    else r.resource_type,
                    "resource_name": r.resource_name,
                    "record": record,
                    "context": context,
                }
            )
        self._conn.execute(sa.insert(audit_events), rows)

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
        query = sa.select(audit_events, audit_contexts.c.body.label("context_body")).outerjoin(
            audit_contexts, audit_contexts.c.id == audit_events.c.context
        )
        for key, value in equal.items():
            query = query.where(_matches(key, value))
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
        found = []
        for row in self._conn.execute(query.limit(limit)):
            values = dict(row._mapping)
            context, body = values.pop("context"), values.pop("context_body")
            if values["resource_type"] is None and values["resource_name"] is not None:
                values["resource_type"] = PIPELINE_TYPE
            record = AuditRecord(**values)
            if context is not None:
                record = replace(
                    record, record=_rebuild(record, json.loads(body), json.loads(record.record))
                )
            found.append(record)
        return found

    def prune(self, before: float, batch: int | None = None) -> int:
        """Remove the records older than ``before`` (at most ``batch`` of the oldest); how many."""
        condition = audit_events.c.event_time < before
        if batch is not None:
            oldest = (
                sa.select(audit_events.c.event_id)
                .where(condition)
                .order_by(audit_events.c.event_time)
                .limit(batch)
            )
            condition = audit_events.c.event_id.in_(oldest.scalar_subquery())
        return int(self._conn.execute(sa.delete(audit_events).where(condition)).rowcount)
