"""Queries on jobs: the queue job workers claim work from.

A claim moves ``Queued`` jobs to ``Dispatched`` with a new nonce and a lease. On PostgreSQL
it skips rows another server is claiming (``FOR UPDATE SKIP LOCKED``); on SQLite the single
writer makes the select-then-update atomic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import sqlalchemy as sa

from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.declaration import SEALED
from conveyor.domain.labels import satisfiable
from conveyor.store import fast
from conveyor.store.pipelines import SecretBox
from conveyor.store.rows import dumps, guarded_update, insert, loads
from conveyor.store.tables import jobs

_BY_ID = sa.select(jobs).where(jobs.c.id == sa.bindparam("id"))
# Under the job data's "conveyor" key: the configuration properties whose values are sealed.
# Rows written without it (before secrets were sealed in jobs) hold their values in the clear.
SEALED_KEY = "sealed"


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: str
    action_execution_id: str
    pipeline_id: int
    type_id: ActionTypeId
    status: str
    nonce: str
    owner: str | None
    lease_until: float | None
    query_value: str | None
    data: dict[str, Any]
    created: float
    updated: float
    claimed: float | None = None  # when a worker claimed it
    # The worker labels the job requires, canonical (`conveyor.domain.labels.canonical`).
    labels: str | None = None


def _record(row: Mapping[Any, Any]) -> JobRecord:
    return JobRecord(
        id=row["id"],
        action_execution_id=row["action_execution_id"],
        pipeline_id=row["pipeline_id"],
        type_id=ActionTypeId(
            row["type_category"], row["type_owner"], row["type_provider"], row["type_version"]
        ),
        status=row["status"],
        nonce=row["nonce"],
        owner=row["owner"],
        lease_until=row["lease_until"],
        query_value=row["query_value"],
        data=loads(row["data"]),
        created=row["created"],
        updated=row["updated"],
        claimed=row["claimed"],
        labels=row["labels"],
    )


def _label_filter(labels: frozenset[str]) -> sa.ColumnElement[bool]:
    """Jobs a worker with these labels may take: those requiring none, or some of them."""
    return sa.or_(jobs.c.labels.is_(None), *(jobs.c.labels == text for text in satisfiable(labels)))


def _type_filter(types: Sequence[ActionTypeId]) -> sa.ColumnElement[bool]:
    return sa.or_(
        *(
            sa.and_(
                jobs.c.type_provider == t.provider,
                jobs.c.type_category == t.category,
                jobs.c.type_owner == t.owner,
                jobs.c.type_version == t.version,
            )
            for t in types
        )
    )


@cache
def _claimable(
    types: tuple[ActionTypeId, ...], by_query: bool, skip_locked: bool, labels: frozenset[str]
) -> sa.Select[Any]:
    query = sa.select(jobs).where(
        jobs.c.status == "Queued", _type_filter(types), _label_filter(labels)
    )
    if by_query:
        query = query.where(jobs.c.query_value == sa.bindparam("query_value"))
    query = query.order_by(jobs.c.created).limit(sa.bindparam("limit"))
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    return query


@cache
def _take_next(
    types: tuple[ActionTypeId, ...], skip_locked: bool, labels: frozenset[str]
) -> sa.Update:
    """Move the oldest queued job of these types (that a worker with these labels may take)
    to a new status, returning its row."""
    oldest = (
        sa.select(jobs.c.id)
        .where(jobs.c.status == "Queued", _type_filter(types), _label_filter(labels))
        .order_by(jobs.c.created)
        .limit(1)
    )
    if skip_locked:
        oldest = oldest.with_for_update(skip_locked=True)
    return (
        sa.update(jobs)
        .where(jobs.c.id == oldest.scalar_subquery(), jobs.c.status == "Queued")
        .values({c: sa.bindparam(f"new_{c}") for c in _TAKEN})
        .returning(*jobs.c)
    )


_TAKEN = ("status", "nonce", "owner", "lease_until", "updated", "claimed")
_ACTIVE = ("Dispatched", "InProgress")


@cache
def _finish(trim: bool) -> sa.Update:
    values: dict[str, Any] = {
        "status": sa.bindparam("new_status"),
        "lease_until": sa.null(),
        "updated": sa.bindparam("new_updated"),
    }
    if trim:
        values["data"] = "{}"
    return (
        sa.update(jobs)
        .where(
            jobs.c.id == sa.bindparam("key_id"),
            sa.or_(*(jobs.c.status == status for status in _ACTIVE)),
        )
        .values(values)
    )


def sealed_data(
    data: dict[str, Any], secret: frozenset[str], seal: Callable[[str], str]
) -> dict[str, Any]:
    """A copy of job data with the values of the ``secret`` configuration properties sealed,
    and their names listed for `opened_job`; ``data`` itself when it has none of them."""
    action = data.get("actionConfiguration") or {}
    configuration = dict(action.get("configuration") or {})
    names = sorted(n for n in secret & configuration.keys() if isinstance(configuration[n], str))
    if not names:
        return data
    for name in names:
        configuration[name] = SEALED + seal(configuration[name])
    own = {**(data.get("conveyor") or {}), SEALED_KEY: names}
    action = {**action, "configuration": configuration}
    return {**data, "actionConfiguration": action, "conveyor": own}


def opened_job(job: JobRecord, open_: Callable[[str], str]) -> JobRecord:
    """The job as its worker gets it: the values `sealed_data` sealed, opened."""
    own = job.data.get("conveyor") or {}
    names = own.get(SEALED_KEY)
    if not names:
        return job
    action = job.data["actionConfiguration"]
    configuration = dict(action["configuration"])
    for name in names:
        value = configuration.get(name)
        if isinstance(value, str) and value.startswith(SEALED):
            configuration[name] = open_(value.removeprefix(SEALED))
    rest = {k: v for k, v in own.items() if k != SEALED_KEY}
    action = {**action, "configuration": configuration}
    return replace(job, data={**job.data, "actionConfiguration": action, "conveyor": rest})


class Jobs:
    def __init__(self, conn: sa.Connection, box: SecretBox | None = None) -> None:
        self._conn = conn
        self._box = box

    def insert(self, record: JobRecord, secret: frozenset[str] = frozenset()) -> None:
        """Queue the job; with a key, the values of its ``secret`` configuration properties
        are kept sealed (`opened_job` opens them for the worker)."""
        t = record.type_id
        data = (
            record.data if self._box is None else sealed_data(record.data, secret, self._box.seal)
        )
        insert(
            self._conn,
            jobs,
            dict(
                id=record.id,
                action_execution_id=record.action_execution_id,
                pipeline_id=record.pipeline_id,
                type_category=t.category,
                type_owner=t.owner,
                type_provider=t.provider,
                type_version=t.version,
                status=record.status,
                nonce=record.nonce,
                owner=record.owner,
                lease_until=record.lease_until,
                query_value=record.query_value,
                data=dumps(data),
                created=record.created,
                updated=record.updated,
                claimed=record.claimed,
                labels=record.labels,
            ),
        )

    def get(self, job_id: str) -> JobRecord | None:
        rows = fast.fetch(self._conn, _BY_ID, {"id": job_id})
        return _record(rows[0]) if rows else None

    def claimable(
        self,
        types: Sequence[ActionTypeId],
        limit: int,
        query_value: str | None = None,
        labels: frozenset[str] = frozenset(),
    ) -> list[JobRecord]:
        """Queued jobs of these types that a worker with ``labels`` may take, oldest first,
        locked for this transaction."""
        if not types:
            return []
        query = _claimable(
            tuple(types), query_value is not None, self._conn.dialect.name == "postgresql", labels
        )
        params: dict[str, Any] = {"limit": limit}
        if query_value is not None:
            params["query_value"] = query_value
        return [_record(row) for row in fast.fetch(self._conn, query, params)]

    def take_next(
        self,
        types: Sequence[ActionTypeId],
        status: str,
        nonce: str,
        owner: str,
        lease_until: float,
        now: float,
        labels: frozenset[str] = frozenset(),
    ) -> JobRecord | None:
        """Claim the oldest queued job of these types that a worker with ``labels`` may take,
        in one statement: ``status``, a fresh nonce, ``owner`` and its lease; None when there
        is none (or, on PostgreSQL, when the queued ones are being claimed by other
        transactions)."""
        if not types:
            return None
        statement = _take_next(tuple(types), self._conn.dialect.name == "postgresql", labels)
        values = (status, nonce, owner, lease_until, now, now)
        params = {f"new_{c}": v for c, v in zip(_TAKEN, values, strict=True)}
        rows = fast.fetch(self._conn, statement, params)
        return _record(rows[0]) if rows else None

    def finish(
        self, job_id: str, status: str, now: float, *, trim: bool, missed: Callable[[], None]
    ) -> None:
        """Move a job still active (dispatched or in progress) to ``status``, ending its
        lease; ``trim`` also drops its data. ``missed`` is called (to raise) when the job
        was no longer active: on PostgreSQL at the next statement, which this one goes with
        (see `fast.later`)."""

        def check(count: int) -> None:
            if count != 1:
                missed()

        params = {"key_id": job_id, "new_status": status, "new_updated": now}
        fast.later(self._conn, _finish(trim), params, check)

    def prune(self, before: float, statuses: Sequence[str], limit: int | None = None) -> int:
        """Remove the jobs in one of ``statuses`` last changed before ``before`` (at most
        ``limit`` of them); how many."""
        condition = sa.and_(jobs.c.status.in_(list(statuses)), jobs.c.updated < before)
        if limit is not None:
            chosen = sa.select(jobs.c.id).where(condition).limit(limit)
            condition = jobs.c.id.in_(chosen.scalar_subquery())
        return int(self._conn.execute(sa.delete(jobs).where(condition)).rowcount)

    def update(self, job_id: str, expected: str | None, **values: Any) -> bool:
        if "data" in values:
            values["data"] = dumps(values["data"])
        return guarded_update(self._conn, jobs, {"id": job_id}, expected, values)

    def renew(self, job_id: str, owner: str, lease_until: float, now: float) -> bool:
        """Extend the lease of a job this owner still holds."""
        result = self._conn.execute(
            sa.update(jobs)
            .where(
                jobs.c.id == job_id,
                jobs.c.owner == owner,
                jobs.c.status.in_(["Dispatched", "InProgress"]),
            )
            .values(lease_until=lease_until, updated=now)
        )
        return result.rowcount == 1

    def claimed_at(self, action_execution_ids: Sequence[str]) -> dict[str, float]:
        """When a worker claimed the job of each of these action executions (those whose job
        is kept and was claimed)."""
        if not action_execution_ids:
            return {}
        query = sa.select(jobs.c.action_execution_id, sa.func.min(jobs.c.claimed)).where(
            jobs.c.action_execution_id.in_(list(action_execution_ids)),
            jobs.c.claimed.is_not(None),
        )
        rows = self._conn.execute(query.group_by(jobs.c.action_execution_id))
        return {row[0]: row[1] for row in rows}

    def active_for(self, action_execution_id: str) -> list[JobRecord]:
        query = sa.select(jobs).where(
            jobs.c.action_execution_id == action_execution_id,
            jobs.c.status.in_(["Queued", "Dispatched", "InProgress"]),
        )
        return [_record(row._mapping) for row in self._conn.execute(query)]

    def expired(self, now: float, limit: int = 100) -> list[JobRecord]:
        query = (
            sa.select(jobs)
            .where(
                jobs.c.status.in_(["Dispatched", "InProgress"]),
                jobs.c.lease_until < now,
            )
            .limit(limit)
        )
        return [_record(row._mapping) for row in self._conn.execute(query)]

    def queued_before(
        self, types: Sequence[ActionTypeId], before: float, limit: int = 100
    ) -> list[JobRecord]:
        """Jobs of these types queued since before ``before`` and still waiting, oldest first."""
        query = (
            sa.select(jobs)
            .where(jobs.c.status == "Queued", _type_filter(types), jobs.c.created <= before)
            .order_by(jobs.c.created)
            .limit(limit)
        )
        return [_record(row._mapping) for row in self._conn.execute(query)]

    def held_by(self, owner_prefix: str, limit: int = 1000) -> list[JobRecord]:
        """Jobs in the hands of workers whose identity starts with ``owner_prefix``."""
        query = (
            sa.select(jobs)
            .where(
                jobs.c.status.in_(["Dispatched", "InProgress"]),
                jobs.c.owner.startswith(owner_prefix, autoescape=True),
            )
            .limit(limit)
        )
        return [_record(row._mapping) for row in self._conn.execute(query)]

    def count_queued(self, types: Sequence[ActionTypeId]) -> int:
        if not types:
            return 0
        query = sa.select(sa.func.count()).where(jobs.c.status == "Queued", _type_filter(types))
        return int(self._conn.execute(query).scalar_one())

    def active_of_pipeline(self, pipeline_id: int) -> list[str]:
        query = sa.select(jobs.c.id).where(
            jobs.c.pipeline_id == pipeline_id,
            jobs.c.status.in_(["Queued", "Dispatched", "InProgress"]),
        )
        return [row.id for row in self._conn.execute(query)]

    def count_queued_any(self) -> int:
        query = sa.select(sa.func.count()).where(jobs.c.status == "Queued")
        return int(self._conn.execute(query).scalar_one())

    def holders(self, owner_prefix: str) -> int:
        """How many owners whose names start with ``owner_prefix`` hold a job."""
        query = sa.select(sa.func.count(sa.distinct(jobs.c.owner))).where(
            jobs.c.status.in_(["Dispatched", "InProgress"]),
            jobs.c.owner.startswith(owner_prefix, autoescape=True),
        )
        return int(self._conn.execute(query).scalar_one())

    def next_lease_end(self) -> float | None:
        query = sa.select(sa.func.min(jobs.c.lease_until)).where(
            jobs.c.status.in_(["Dispatched", "InProgress"])
        )
        value = self._conn.execute(query).scalar()
        return None if value is None else float(value)
