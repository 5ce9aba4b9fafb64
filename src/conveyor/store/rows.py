"""Helpers shared by the repositories: JSON columns, and statements built once.

Building a SQLAlchemy statement and its cache key costs several times what SQLite takes to
run it, so the statements the engine runs for every action (guarded updates, inserts) are
built once per shape and run with bound parameters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

import sqlalchemy as sa

from conveyor.store import fast
from conveyor.store.errors import StoreError


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@cache
def _update(
    table: sa.Table, keys: tuple[str, ...], guarded: bool, columns: tuple[str, ...]
) -> sa.Update:
    condition = [table.c[k] == sa.bindparam(f"key_{k}") for k in keys]
    if guarded:
        condition.append(table.c.status == sa.bindparam("expected_status"))
    return sa.update(table).where(*condition).values({c: sa.bindparam(f"new_{c}") for c in columns})


@cache
def insert_statement(table: sa.Table, columns: tuple[str, ...]) -> sa.Insert:
    return sa.insert(table).values({c: sa.bindparam(c) for c in columns})


def insert(conn: sa.Connection, table: sa.Table, values: Mapping[str, Any]) -> None:
    """Insert a row; on PostgreSQL it goes with the next statement (see `fast.later`)."""
    fast.later(conn, insert_statement(table, tuple(values)), values)


@cache
def _upsert(
    table: sa.Table, dialect: str, keys: tuple[str, ...], columns: tuple[str, ...]
) -> sa.Insert:
    # Imported here: the PostgreSQL dialect takes a while to load, and `conveyor run` never
    # needs it.
    values: dict[str, Any] = {c: sa.bindparam(c) for c in keys + columns}
    index = [table.c[k] for k in keys]
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        pg = postgresql.insert(table).values(values)
        return pg.on_conflict_do_update(
            index_elements=index, set_={c: pg.excluded[c] for c in columns}
        )
    from sqlalchemy.dialects import sqlite

    lite = sqlite.insert(table).values(values)
    return lite.on_conflict_do_update(
        index_elements=index, set_={c: lite.excluded[c] for c in columns}
    )


def upsert(
    conn: sa.Connection, table: sa.Table, key: Mapping[str, Any], values: Mapping[str, Any]
) -> None:
    """Insert the row at ``key``, or set ``values`` on the one there; kept for the next
    round trip on PostgreSQL, as `insert`."""
    statement = _upsert(table, conn.dialect.name, tuple(key), tuple(values))
    fast.later(conn, statement, {**key, **values})


def insert_many(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        fast.execute_many(conn, insert_statement(table, tuple(rows[0])), rows)


def _prepared(
    table: sa.Table, key: Mapping[str, Any], expected: str | None, values: Mapping[str, Any]
) -> tuple[sa.Update, dict[str, Any]]:
    """The built-once guarded update of this shape, and its parameters."""
    statement = _update(table, tuple(key), expected is not None, tuple(sorted(values)))
    params = {f"key_{k}": v for k, v in key.items()}
    params.update({f"new_{c}": v for c, v in values.items()})
    if expected is not None:
        params["expected_status"] = expected
    return statement, params


def guarded_update(
    conn: sa.Connection,
    table: sa.Table,
    key: Mapping[str, Any],
    expected: str | None,
    values: Mapping[str, Any],
) -> bool:
    """Update the row at ``key`` if its status is ``expected`` (any, when None): True if it was.

    Values are plain values; a SQL expression (such as ``column + 1``) takes the slower path
    of a statement built for the call.
    """
    if any(isinstance(v, sa.ClauseElement) for v in values.values()):
        condition = [table.c[k] == v for k, v in key.items()]
        if expected is not None:
            condition.append(table.c.status == expected)
        statement = sa.update(table).where(*condition).values(**values)
        return conn.execute(statement).rowcount == 1
    return fast.execute(conn, *_prepared(table, key, expected, values)) == 1


def _one_row(count: int) -> None:
    if count != 1:
        raise StoreError("a guarded write found the row in an unexpected state")


def required_update(
    conn: sa.Connection,
    table: sa.Table,
    key: Mapping[str, Any],
    expected: str | None,
    values: Mapping[str, Any],
) -> None:
    """Update the row at ``key``, which must be there and (unless ``expected`` is None) in
    status ``expected``: a guard that fails raises `StoreError`, which rolls the transaction
    back. On PostgreSQL the update goes with the next statement (see `fast.later`), and so
    may the error. Plain values only."""
    fast.later(conn, *_prepared(table, key, expected, values), _one_row)
