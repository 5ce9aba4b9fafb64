"""Queries on resource tags, keyed by the resource's ARN."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import sqlalchemy as sa

from conveyor.store.tables import tags


class Tags:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def of(self, arn: str) -> dict[str, str]:
        """The resource's tags in key order."""
        query = sa.select(tags.c.key, tags.c.value).where(tags.c.resource_arn == arn)
        return {row.key: row.value for row in self._conn.execute(query.order_by(tags.c.key))}

    def put(self, arn: str, values: Mapping[str, str]) -> None:
        """Add tags, replacing the value of keys the resource has already."""
        if not values:
            return
        self.remove(arn, values.keys())
        self._conn.execute(
            sa.insert(tags),
            [{"resource_arn": arn, "key": k, "value": v} for k, v in values.items()],
        )

    def remove(self, arn: str, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            self._conn.execute(
                sa.delete(tags).where(tags.c.resource_arn == arn, tags.c.key.in_(keys))
            )

    def clear(self, arn: str) -> None:
        self._conn.execute(sa.delete(tags).where(tags.c.resource_arn == arn))
