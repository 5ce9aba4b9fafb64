"""Queries on notification rules and their targets.

A rule's targets are rows of their own, shared by every rule that names the same address; a
target's secret is kept sealed (``conveyor:sealed:…``) when the installation has a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from conveyor.domain.declaration import SEALED
from conveyor.store import fast
from conveyor.store.pipelines import SecretBox
from conveyor.store.rows import dumps, insert_many, loads
from conveyor.store.tables import (
    notification_cursor,
    notification_deliveries,
    notification_rule_targets,
    notification_rules,
    notification_targets,
)


@dataclass(frozen=True, slots=True)
class TargetRecord:
    address: str
    type: str
    status: str
    created: float
    # Sealed (``conveyor:sealed:…``) when the store has a key; None when the target has none.
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class RuleRecord:
    arn: str
    name: str
    resource: str
    # EventTypeIds, DetailType, Status, Tags and CreatedBy, as accepted.
    definition: dict[str, Any]
    created: float
    updated: float
    # The addresses of the rule's targets, in the order the rule lists them.
    targets: tuple[str, ...] = field(default=())

    @property
    def enabled(self) -> bool:
        return bool(self.definition.get("Status", "ENABLED") == "ENABLED")


def _target(row: Mapping[Any, Any]) -> TargetRecord:
    return TargetRecord(
        address=row["address"],
        type=row["type"],
        status=row["status"],
        created=row["created"],
        secret=row["secret"],
    )


class NotificationRules:
    def __init__(self, conn: sa.Connection, box: SecretBox | None = None) -> None:
        self._conn = conn
        self._box = box

    # Rules -----------------------------------------------------------------------------

    def _targets_of(self, arns: list[str]) -> dict[str, tuple[str, ...]]:
        table = notification_rule_targets
        rows = self._conn.execute(
            sa.select(table.c.rule_arn, table.c.address)
            .where(table.c.rule_arn.in_(arns))
            .order_by(table.c.rule_arn, table.c.position)
        )
        found: dict[str, list[str]] = {}
        for arn, address in rows:
            found.setdefault(arn, []).append(address)
        return {arn: tuple(addresses) for arn, addresses in found.items()}

    def _rules(self, query: sa.Select[Any]) -> list[RuleRecord]:
        rows = [row._mapping for row in self._conn.execute(query)]
        targets = self._targets_of([row["arn"] for row in rows]) if rows else {}
        return [
            RuleRecord(
                arn=row["arn"],
                name=row["name"],
                resource=row["resource"],
                definition=loads(row["definition"]),
                created=row["created"],
                updated=row["updated"],
                targets=targets.get(row["arn"], ()),
            )
            for row in rows
        ]

    def get(self, arn: str) -> RuleRecord | None:
        found = self._rules(sa.select(notification_rules).where(notification_rules.c.arn == arn))
        return found[0] if found else None

    def by_name(self, name: str) -> RuleRecord | None:
        table = notification_rules
        found = self._rules(sa.select(table).where(table.c.name == name))
        return found[0] if found else None

    def all(self) -> list[RuleRecord]:
        """Every rule, by ARN."""
        return self._rules(sa.select(notification_rules).order_by(notification_rules.c.arn))

    def of_resource(self, resource: str) -> list[RuleRecord]:
        table = notification_rules
        return self._rules(
            sa.select(table).where(table.c.resource == resource).order_by(table.c.arn)
        )

    def count(self) -> int:
        return int(
            self._conn.execute(
                sa.select(sa.func.count()).select_from(notification_rules)
            ).scalar_one()
        )

    def insert(self, record: RuleRecord) -> None:
        self._conn.execute(
            sa.insert(notification_rules).values(
                arn=record.arn,
                name=record.name,
                resource=record.resource,
                definition=dumps(record.definition),
                created=record.created,
                updated=record.updated,
            )
        )
        self.set_targets(record.arn, record.targets)

    def redefine(self, arn: str, name: str, definition: dict[str, Any], now: float) -> None:
        self._conn.execute(
            sa.update(notification_rules)
            .where(notification_rules.c.arn == arn)
            .values(name=name, definition=dumps(definition), updated=now)
        )

    def set_targets(self, arn: str, addresses: tuple[str, ...]) -> None:
        table = notification_rule_targets
        self._conn.execute(sa.delete(table).where(table.c.rule_arn == arn))
        if addresses:
            self._conn.execute(
                sa.insert(table),
                [
                    {"rule_arn": arn, "address": address, "position": position}
                    for position, address in enumerate(addresses)
                ],
            )

    def delete(self, arn: str) -> None:
        table = notification_rule_targets
        self._conn.execute(sa.delete(table).where(table.c.rule_arn == arn))
        self._conn.execute(sa.delete(notification_rules).where(notification_rules.c.arn == arn))

    def rules_sending_to(self, address: str) -> list[str]:
        table = notification_rule_targets
        rows = self._conn.execute(
            sa.select(table.c.rule_arn).where(table.c.address == address).order_by(table.c.rule_arn)
        )
        return [arn for (arn,) in rows]

    # Targets ---------------------------------------------------------------------------

    def target(self, address: str) -> TargetRecord | None:
        table = notification_targets
        row = self._conn.execute(sa.select(table).where(table.c.address == address)).first()
        return None if row is None else _target(row._mapping)

    def targets(self) -> list[TargetRecord]:
        table = notification_targets
        return [
            _target(row._mapping)
            for row in self._conn.execute(sa.select(table).order_by(table.c.address))
        ]

    def add_target(self, record: TargetRecord) -> None:
        """Keep the target, unless one with its address is kept already."""
        if self.target(record.address) is not None:
            return
        secret = record.secret
        if secret is not None and self._box is not None and not secret.startswith(SEALED):
            secret = SEALED + self._box.seal(secret)
        self._conn.execute(
            sa.insert(notification_targets).values(
                address=record.address,
                type=record.type,
                status=record.status,
                secret=secret,
                created=record.created,
            )
        )

    def open_secret(self, record: TargetRecord) -> str | None:
        """The target's secret in the clear (a secret kept before sealing, as it is)."""
        secret = record.secret
        if secret is None or not secret.startswith(SEALED) or self._box is None:
            return secret
        return self._box.open(secret.removeprefix(SEALED))

    def set_status(self, address: str, status: str) -> None:
        table = notification_targets
        self._conn.execute(sa.update(table).where(table.c.address == address).values(status=status))

    def delete_target(self, address: str) -> None:
        table = notification_rule_targets
        self._conn.execute(sa.delete(table).where(table.c.address == address))
        self._conn.execute(
            sa.delete(notification_targets).where(notification_targets.c.address == address)
        )


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
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
_deliveries = notification_deliveries
_DUE = (
    sa.select(
        _deliveries.c.id,
        _deliveries.c.pipeline_name,
        _deliveries.c.address,
        _deliveries.c.next_attempt,
    )
    .where(_deliveries.c.status == "PENDING")
    .order_by(_deliveries.c.id)
    .limit(sa.bindparam("limit"))
)
_QUEUE = (
    sa.select(_deliveries)
    .where(
        _deliveries.c.status == "PENDING",
        _deliveries.c.pipeline_name == sa.bindparam("pipeline_name"),
        _deliveries.c.address == sa.bindparam("address"),
        _deliveries.c.id > sa.bindparam("after"),
    )
    .order_by(_deliveries.c.id)
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
