"""Queries on webhooks, by name or by the token of their URL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conveyor.store.rows import dumps, loads
from conveyor.store.tables import webhooks

# Statements a delivery runs, built once.
_BY_TOKEN = sa.select(webhooks).where(webhooks.c.token == sa.bindparam("token"))
_TRIGGERED = (
    sa.update(webhooks)
    .where(webhooks.c.name == sa.bindparam("key"))
    .values(last_triggered=sa.bindparam("when"), error_code=None, error_message=None)
)


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    name: str
    token: str
    # The wire WebhookDefinition as accepted, secret token included.
    definition: dict[str, Any]
    created: float
    updated: float
    last_triggered: float | None = None
    error_code: str | None = None
    error_message: str | None = None


def _record(row: Mapping[Any, Any]) -> WebhookRecord:
    return WebhookRecord(
        name=row["name"],
        token=row["token"],
        definition=loads(row["definition"]),
        created=row["created"],
        updated=row["updated"],
        last_triggered=row["last_triggered"],
        error_code=row["error_code"],
        error_message=row["error_message"],
    )


class Webhooks:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def get(self, name: str) -> WebhookRecord | None:
        row = self._conn.execute(sa.select(webhooks).where(webhooks.c.name == name)).first()
        return None if row is None else _record(row._mapping)

    def by_token(self, token: str) -> WebhookRecord | None:
        row = self._conn.execute(_BY_TOKEN, {"token": token}).first()
        return None if row is None else _record(row._mapping)

    def insert(self, record: WebhookRecord) -> None:
        self._conn.execute(
            sa.insert(webhooks).values(
                name=record.name,
                token=record.token,
                definition=dumps(record.definition),
                created=record.created,
                updated=record.updated,
            )
        )

    def redefine(self, name: str, definition: dict[str, Any], now: float) -> bool:
        """Give the webhook a new definition, forgetting the error the old one met."""
        result = self._conn.execute(
            sa.update(webhooks)
            .where(webhooks.c.name == name)
            .values(definition=dumps(definition), updated=now, error_code=None, error_message=None)
        )
        return result.rowcount == 1

    def delete(self, name: str) -> bool:
        return self._conn.execute(sa.delete(webhooks).where(webhooks.c.name == name)).rowcount == 1

    def page(self, after: str | None, limit: int) -> list[WebhookRecord]:
        """Up to ``limit`` webhooks in name order, starting after the name ``after``."""
        query = sa.select(webhooks).order_by(webhooks.c.name).limit(limit)
        if after is not None:
            query = query.where(webhooks.c.name > after)
        return [_record(row._mapping) for row in self._conn.execute(query)]

    def triggered(self, name: str, when: float) -> None:
        """A delivery started the webhook's pipeline at ``when``."""
        self._conn.execute(_TRIGGERED, {"key": name, "when": when})

    def failed(self, name: str, code: str, message: str) -> None:
        """A delivery that passed its checks could not start the pipeline, for this reason."""
        self._conn.execute(
            sa.update(webhooks)
            .where(webhooks.c.name == name)
            .values(error_code=code[:50], error_message=message)
        )
