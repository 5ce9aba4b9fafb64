"""Statements the engine runs for every action, run on the driver's cursor directly.

SQLAlchemy's execution machinery costs 60 to 100 µs a statement, several times what SQLite
takes to run one, and an action needs about twenty. A statement here is compiled once per
dialect (to its SQL text and the order of its parameters) and then executed on the DBAPI
cursor of the same connection, inside the same transaction. Only statements whose parameters
and columns need no type conversion go this way: plain strings, numbers and booleans.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from threading import Lock
from typing import Any

import sqlalchemy as sa


@dataclass(frozen=True, slots=True)
class _Compiled:
    statement: sa.Executable
    sql: str
    # Parameter names in order, for positional styles (SQLite's ``?``); None for named ones.
    positions: tuple[str, ...] | None
    # Values of the literals written into the statement (``status == 'Queued'``).
    literals: Mapping[str, Any]

    def arguments(self, params: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        merged = {**self.literals, **params} if self.literals else params
        if self.positions is None:
            return merged
        return tuple(merged[name] for name in self.positions)


# Up to this many keys are looked up one fast statement each rather than in one IN query
# through SQLAlchemy, which costs more than several lookups on an index.
FEW_KEYS = 8

# (id of the statement, dialect name) → its compiled form; the statement is kept alive there.
_compiled: dict[tuple[int, str], _Compiled] = {}
_lock = Lock()


def _compile(statement: sa.Executable, dialect: sa.Dialect) -> _Compiled:
    key = (id(statement), dialect.name)
    found = _compiled.get(key)
    if found is not None and found.statement is statement:
        return found
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    if "POSTCOMPILE" in str(compiled):
        raise ValueError("statements with IN lists cannot run on the fast path")
    positions = tuple(compiled.positiontup) if dialect.paramstyle in ("qmark", "format") else None
    literals = {k: v for k, v in compiled.params.items() if v is not None}
    result = _Compiled(statement, str(compiled), positions, literals)
    with _lock:
        _compiled[key] = result
    return result


def _cursor(conn: sa.Connection) -> Any:
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]


def fetch(
    conn: sa.Connection, statement: sa.Executable, params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Rows as dicts of column name → value."""
    compiled = _compile(statement, conn.dialect)
    cursor = _cursor(conn)
    try:
        cursor.execute(compiled.sql, compiled.arguments(params))
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        cursor.close()


def execute(conn: sa.Connection, statement: sa.Executable, params: Mapping[str, Any]) -> int:
    """Run a statement; the number of rows it changed."""
    compiled = _compile(statement, conn.dialect)
    cursor = _cursor(conn)
    try:
        cursor.execute(compiled.sql, compiled.arguments(params))
        return int(cursor.rowcount)
    finally:
        cursor.close()


def execute_many(
    conn: sa.Connection, statement: sa.Executable, rows: Sequence[Mapping[str, Any]]
) -> None:
    compiled = _compile(statement, conn.dialect)
    cursor = _cursor(conn)
    try:
        cursor.executemany(compiled.sql, [compiled.arguments(row) for row in rows])
    finally:
        cursor.close()
