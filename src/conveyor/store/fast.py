"""Statements the engine runs for every action, run on the driver's cursor directly.

SQLAlchemy's execution machinery costs 60 to 100 µs a statement, several times what SQLite
takes to run one, and an action needs about ten. A statement here is compiled once per
dialect (to its SQL text and the order of its parameters) and then executed on the DBAPI
cursor of the same connection, inside the same transaction. Only statements whose parameters
and columns need no type conversion go this way: plain strings, numbers and booleans.

On PostgreSQL every statement is a round trip to the server: a wake-up of its process, which
on a busy machine or across a network costs more than running the statement. A write whose
answer nobody needs at once (an insert, an update that must change its row) can wait:
`later` keeps it on the connection, and the next statement, or `flush` before commit, sends
everything kept in one round trip (psycopg's pipeline mode), then checks each kept write's
row count. Pipeline mode has a cost of its own (tens of microseconds), more than a round
trip to an idle local server: it pays where several statements travel together, so a
statement with nothing kept goes alone. Reads that do not depend on each other's answers can
go together as well (`fetch_together`). Any statement run through SQLAlchemy flushes first
(`flush_before`), so nothing ever reads around a kept write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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


# Where a connection keeps its writes that wait: (SQL, arguments, many, check of the count).
_KEPT = "conveyor_kept_writes"
Check = Callable[[int], None]
_Kept = tuple[str, Any, bool, Check | None]


def _run(conn: sa.Connection, sql: str | None, arguments: Any = ()) -> Any:
    """A cursor that has run ``sql`` after the kept writes, all in one round trip (or None,
    with no ``sql``, once the kept writes are done)."""
    if sql is None:
        _run_all(conn, [])
        return None
    return _run_all(conn, [(sql, arguments)])[0]


def _run_all(conn: sa.Connection, statements: Sequence[tuple[str, Any]]) -> list[Any]:
    """Cursors that have run ``statements`` in order after the kept writes, all in one round
    trip; a statement alone, with nothing kept, goes outside a pipeline."""
    kept: list[_Kept] = conn.info.pop(_KEPT, None) or []
    if not kept and len(statements) < 2:
        cursors = []
        for sql, arguments in statements:
            cursor = _cursor(conn)
            cursor.execute(sql, arguments)
            cursors.append(cursor)
        return cursors
    if conn.dialect.name != "postgresql":  # nothing is kept there: one after the other
        return [_run_all(conn, [statement])[0] for statement in statements]
    driver = conn.connection.driver_connection
    sent = []
    cursors = []
    with driver.pipeline():  # type: ignore[union-attr]
        for kept_sql, kept_arguments, many, check in kept:
            kept_cursor = _cursor(conn)
            run = kept_cursor.executemany if many else kept_cursor.execute
            run(kept_sql, kept_arguments)
            sent.append((kept_cursor, check))
        for sql, arguments in statements:
            cursor = _cursor(conn)
            cursor.execute(sql, arguments)
            cursors.append(cursor)
    for kept_cursor, check in sent:
        count = int(kept_cursor.rowcount)
        kept_cursor.close()
        if check is not None:
            check(count)
    return cursors


# SQL text → the names of its result's columns, read from the first cursor that ran it: a
# driver builds its description afresh each time it is asked (psycopg, an object a column).
_names: dict[str, tuple[str, ...]] = {}


def _rows(cursor: Any, sql: str) -> list[dict[str, Any]]:
    try:
        names = _names.get(sql)
        if names is None:
            names = _names[sql] = tuple(column[0] for column in cursor.description)
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        cursor.close()


def fetch(
    conn: sa.Connection, statement: sa.Executable, params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Rows as dicts of column name → value."""
    compiled = _compile(statement, conn.dialect)
    return _rows(_run(conn, compiled.sql, compiled.arguments(params)), compiled.sql)


def fetch_together(
    conn: sa.Connection, queries: Sequence[tuple[sa.Executable, Mapping[str, Any]]]
) -> list[list[dict[str, Any]]]:
    """The rows of each query, as `fetch` gives them; on PostgreSQL the queries (and the
    kept writes) travel in one round trip."""
    statements = []
    for statement, params in queries:
        compiled = _compile(statement, conn.dialect)
        statements.append((compiled.sql, compiled.arguments(params)))
    cursors = _run_all(conn, statements)
    return [_rows(cursor, sql) for cursor, (sql, _) in zip(cursors, statements, strict=True)]


def execute(conn: sa.Connection, statement: sa.Executable, params: Mapping[str, Any]) -> int:
    """Run a statement; the number of rows it changed."""
    compiled = _compile(statement, conn.dialect)
    cursor = _run(conn, compiled.sql, compiled.arguments(params))
    try:
        return int(cursor.rowcount)
    finally:
        cursor.close()


def execute_many(
    conn: sa.Connection, statement: sa.Executable, rows: Sequence[Mapping[str, Any]]
) -> None:
    later(conn, statement, rows)


def later(
    conn: sa.Connection,
    statement: sa.Executable,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    check: Check | None = None,
) -> None:
    """Run a write whose answer can wait: on PostgreSQL, with the next statement; elsewhere
    now. ``params``: one row's, or a sequence of rows' for an ``executemany``. ``check`` gets
    the number of rows changed, and raises if that is wrong."""
    compiled = _compile(statement, conn.dialect)
    many = not isinstance(params, Mapping)
    if isinstance(params, Mapping):
        arguments: Any = compiled.arguments(params)
    else:
        arguments = [compiled.arguments(row) for row in params]
    if conn.dialect.name == "postgresql":
        conn.info.setdefault(_KEPT, []).append((compiled.sql, arguments, many, check))
        return
    cursor = _cursor(conn)
    try:
        (cursor.executemany if many else cursor.execute)(compiled.sql, arguments)
        count = int(cursor.rowcount)
    finally:
        cursor.close()
    if check is not None:
        check(count)


_BEGIN: _Kept = ("BEGIN", None, False, None)


def begin(conn: sa.Connection) -> None:
    """Open the transaction with the next statement, one round trip sooner (a ``begin``
    listener on PostgreSQL, whose driver connections are in autocommit so that they do not
    send BEGIN on a round trip of their own); anything still kept is stale and dropped."""
    conn.info[_KEPT] = [_BEGIN]


def ending(conn: sa.Connection, *_: Any) -> None:
    """A ``commit`` listener: a BEGIN never sent opened nothing; kept writes go now."""
    if conn.info.get(_KEPT) == [_BEGIN]:
        forget(conn)
    else:
        flush(conn)


def flush(conn: sa.Connection) -> None:
    """Send the kept writes now (before a commit, or a statement run another way)."""
    _run(conn, None)


def forget(conn: sa.Connection, *_: Any) -> None:
    """Drop the kept writes of a transaction that is rolled back (a ``rollback`` listener)."""
    conn.info.pop(_KEPT, None)


def flush_before(conn: sa.Connection, *_: Any) -> None:
    """A ``before_cursor_execute`` listener: kept writes go before any other statement."""
    if conn.info.get(_KEPT):
        flush(conn)
