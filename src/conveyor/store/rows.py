"""Helpers shared by the repositories: JSON columns and guarded updates."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def guarded_update(
    conn: sa.Connection,
    table: sa.Table,
    key: sa.ColumnElement[bool],
    expected: str | None,
    values: dict[str, Any],
) -> bool:
    """Update the row at ``key`` if its status is ``expected`` (any, when None): True if it was."""
    condition = key if expected is None else sa.and_(key, table.c.status == expected)
    return conn.execute(sa.update(table).where(condition).values(**values)).rowcount == 1
