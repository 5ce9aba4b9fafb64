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
from conveyor.store.pipelines import SecretBox
from conveyor.store.rows import dumps, loads
from conveyor.store.tables import (
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
