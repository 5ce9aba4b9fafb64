"""Small named facts about the installation (such as the page-token signing key)."""

from __future__ import annotations

import sqlalchemy as sa

from conveyor.store.tables import meta


class Meta:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def get(self, key: str) -> str | None:
        return self._conn.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()

    def setdefault(self, key: str, value: str) -> str:
        """The stored value for ``key``, storing ``value`` first when there is none."""
        current = self.get(key)
        if current is not None:
            return current
        self._conn.execute(sa.insert(meta).values(key=key, value=value))
        return value
