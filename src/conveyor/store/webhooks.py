"""Queries on webhooks, by name or by the token of their URL.

With a key, a definition's ``SecretToken`` is kept sealed (``conveyor:sealed:…``); records
read back carry it sealed, and only a delivery's check opens it (`opened_definition`).
Definitions written before tokens were sealed keep theirs in the clear, and work as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conveyor.domain.declaration import SEALED
from conveyor.domain.webhooks import SECRET_TOKEN
from conveyor.store.pipelines import SecretBox
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


def _with_token(
    definition: Mapping[str, Any], change: Callable[[str], str | None]
) -> dict[str, Any]:
    """A copy of ``definition`` whose secret token is ``change(token)``, when that is not None."""
    configuration = definition.get("authenticationConfiguration") or {}
    token = configuration.get(SECRET_TOKEN)
    changed = change(token) if isinstance(token, str) else None
    if changed is None:
        return dict(definition)
    return {**definition, "authenticationConfiguration": {**configuration, SECRET_TOKEN: changed}}


def sealed_definition(definition: Mapping[str, Any], seal: Callable[[str], str]) -> dict[str, Any]:
    """The definition as it is stored: its secret token sealed (once)."""
    return _with_token(definition, lambda t: None if t.startswith(SEALED) else SEALED + seal(t))


def opened_definition(definition: Mapping[str, Any], open_: Callable[[str], str]) -> dict[str, Any]:
    """The definition with a sealed secret token opened; a clear one is kept as it is."""
    return _with_token(
        definition, lambda t: open_(t.removeprefix(SEALED)) if t.startswith(SEALED) else None
    )


class Webhooks:
    def __init__(self, conn: sa.Connection, box: SecretBox | None = None) -> None:
        self._conn = conn
        self._box = box

    def _at_rest(self, definition: Mapping[str, Any]) -> str:
        return dumps(
            dict(definition) if self._box is None else sealed_definition(definition, self._box.seal)
        )

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
                definition=self._at_rest(record.definition),
                created=record.created,
                updated=record.updated,
            )
        )

    def redefine(self, name: str, definition: dict[str, Any], now: float) -> bool:
        """Give the webhook a new definition, forgetting the error the old one met."""
        result = self._conn.execute(
            sa.update(webhooks)
            .where(webhooks.c.name == name)
            .values(
                definition=self._at_rest(definition),
                updated=now,
                error_code=None,
                error_message=None,
            )
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
