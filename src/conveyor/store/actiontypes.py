"""Queries on the action types that arrive through the API (custom and third-party)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conveyor.domain.actiontype import ActionTypeId
from conveyor.store.tables import action_types


@dataclass(frozen=True, slots=True)
class ActionTypeRecord:
    id: ActionTypeId
    # The type as its owner declared it, in the wire shape it arrived in.
    definition: dict[str, Any]
    deleted: bool
    created: float
    updated: float


def _record(row: sa.Row[Any]) -> ActionTypeRecord:
    type_id = ActionTypeId(row.category, row.owner, row.provider, row.version)
    return ActionTypeRecord(
        type_id, dict(json.loads(row.definition)), bool(row.deleted), row.created, row.updated
    )


def _key(type_id: ActionTypeId) -> sa.ColumnElement[bool]:
    return sa.and_(
        action_types.c.owner == type_id.owner,
        action_types.c.category == type_id.category,
        action_types.c.provider == type_id.provider,
        action_types.c.version == type_id.version,
    )


class ActionTypes:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def get(self, type_id: ActionTypeId) -> ActionTypeRecord | None:
        row = self._conn.execute(sa.select(action_types).where(_key(type_id))).first()
        return None if row is None else _record(row)

    def all(self, owner: str | None = None, *, deleted: bool = False) -> list[ActionTypeRecord]:
        query = sa.select(action_types).order_by(
            action_types.c.owner,
            action_types.c.category,
            action_types.c.provider,
            action_types.c.version,
        )
        if owner is not None:
            query = query.where(action_types.c.owner == owner)
        if not deleted:
            query = query.where(action_types.c.deleted == sa.false())
        return [_record(row) for row in self._conn.execute(query)]

    def count(self, owner: str) -> int:
        query = sa.select(sa.func.count()).where(
            action_types.c.owner == owner, action_types.c.deleted == sa.false()
        )
        return int(self._conn.execute(query).scalar_one())

    def put(self, type_id: ActionTypeId, definition: dict[str, Any], now: float) -> None:
        """Store the type, replacing a previous definition (and undeleting it)."""
        text = json.dumps(definition, separators=(",", ":"))
        updated = self._conn.execute(
            sa.update(action_types)
            .where(_key(type_id))
            .values(definition=text, deleted=False, updated=now)
        )
        if updated.rowcount == 0:
            self._conn.execute(
                sa.insert(action_types).values(
                    owner=type_id.owner,
                    category=type_id.category,
                    provider=type_id.provider,
                    version=type_id.version,
                    definition=text,
                    deleted=False,
                    created=now,
                    updated=now,
                )
            )

    def mark_deleted(self, type_id: ActionTypeId, now: float) -> bool:
        result = self._conn.execute(
            sa.update(action_types)
            .where(_key(type_id), action_types.c.deleted == sa.false())
            .values(deleted=True, updated=now)
        )
        return result.rowcount == 1
