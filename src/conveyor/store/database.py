"""Opening the database: SQLite (WAL) or PostgreSQL, and bringing its schema up to date.

SQLite gets one writer at a time through ``BEGIN IMMEDIATE``, so two writers never deadlock on
a lock upgrade; readers use plain ``BEGIN`` and run beside the writer thanks to WAL.
PostgreSQL migrations run under an advisory lock, so several servers may start together.
A database with no tables yet (a fresh home, each `conveyor run`) gets the declared schema in
one go, stamped with the latest migration, without loading Alembic at all: the migrations
build exactly that schema (tests/store/test_migrations.py), and this takes a few milliseconds
where Alembic takes hundreds. On SQLite the statements `create_all` would run are compiled
and handed to the driver directly, without SQLAlchemy's DDL machinery. A database already
stamped with the latest migration (a home used before) is left as it is, also without
loading Alembic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateIndex, CreateTable

from conveyor.store import fast
from conveyor.store.tables import metadata

MIGRATIONS = Path(__file__).parent / "migrations"
# The latest migration's revision: what a fresh database is stamped with (a test checks it).
HEAD = "0022"
# Alembic's own bookkeeping table, as Alembic creates it.
_VERSIONS = sa.Table(
    "alembic_version",
    sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
# An arbitrary key for pg_advisory_lock, shared by every Conveyor server.
_MIGRATION_LOCK = 847_001
WRITE = "conveyor_write"
# SQLite copies its write-ahead log into the database in the commit that finds the log past
# this many pages, fsyncs included. The engine's sweeper does it beside the writers every
# second (`checkpoint`), so a commit on the hot path does it only if that falls behind
# (SQLite's own default is 1,000 pages: every hundred job results or so).
AUTOCHECKPOINT_PAGES = 10_000


def normalize_url(url: str) -> str:
    """Pick the psycopg 3 driver for plain ``postgresql://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def describe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return sa.engine.make_url(normalize_url(url)).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(an unreadable URL)"


def create_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    engine = sa.create_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800)
    # Writes kept for the next round trip go before any statement run through SQLAlchemy.
    sa.event.listen(engine, "before_cursor_execute", fast.flush_before)
    # BEGIN travels with a transaction's first statement: the driver, left to itself, sends
    # it on a round trip of its own, even in a pipeline. COMMIT and ROLLBACK go as usual.
    sa.event.listen(engine, "connect", _autocommit)
    sa.event.listen(engine, "begin", fast.begin)
    sa.event.listen(engine, "commit", fast.ending)
    sa.event.listen(engine, "rollback", fast.forget)
    return engine


def _autocommit(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.autocommit = True


def _sqlite_engine(url: str) -> Engine:
    path = sa.engine.make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=10
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event, not the driver, decide how transactions start.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "busy_timeout=30000",
            f"wal_autocheckpoint={AUTOCHECKPOINT_PAGES}",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # Straight to the driver: this runs for every transaction, so it skips SQLAlchemy's
        # statement machinery; COMMIT and ROLLBACK go through the driver as usual.
        write = conn.get_execution_options().get(WRITE, False)
        conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            "BEGIN IMMEDIATE" if write else "BEGIN"
        )

    return engine


def checkpoint(engine: Engine) -> None:
    """SQLite: copy what the write-ahead log holds into the database file, beside the writers
    and readers (``PASSIVE``: it waits for none of them). Nothing to do on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()
    try:
        # On the driver, outside any transaction (a checkpoint cannot run inside one).
        raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").close()  # type: ignore[union-attr]
    finally:
        raw.close()


def migrate(engine: Engine) -> None:
    """Bring the schema up to date: declare it on an empty database, else apply every
    migration not yet applied (none when it is stamped with the latest)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        tables = _table_names(conn)
        if not tables:
            _declare(conn)
        elif _stamped(conn, tables) != HEAD:
            upgrade(conn)


def _declare(conn: sa.Connection) -> None:
    """Declare the schema on an empty database and stamp it with the latest migration."""
    if conn.dialect.name != "sqlite":
        metadata.create_all(conn, checkfirst=False)  # none to look for
        _VERSIONS.create(conn)
        conn.execute(_VERSIONS.insert().values(version_num=HEAD))
        return
    # The statements `create_all` would run, compiled the same way, but run straight on the
    # driver: a few milliseconds, where SQLAlchemy's DDL machinery takes tens (a fresh home,
    # each `conveyor run`, waits on it before its first action).
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for statement in sqlite_schema(conn.dialect):
            cursor.execute(statement)
        cursor.execute(f"INSERT INTO {_VERSIONS.name} (version_num) VALUES (?)", (HEAD,))
    finally:
        cursor.close()


# (dialect, SQLite's version) → the statements that declare the schema there.
_sqlite_schemas: dict[tuple[str, Any], tuple[str, ...]] = {}


def sqlite_schema(dialect: sa.Dialect) -> tuple[str, ...]:
    """The statements `create_all` would run on this SQLite dialect, compiled the first time
    a process asks (about 20 ms): a warm process (`conveyor.cli.warmhost`) asks before it
    forks, when it rehearses a run, and so its commands' fresh homes do not pay for it."""
    key = (dialect.name, dialect.server_version_info)
    statements = _sqlite_schemas.get(key)
    if statements is None:
        compiled = []
        for table in [*metadata.sorted_tables, _VERSIONS]:
            compiled.append(str(CreateTable(table).compile(dialect=dialect)))
            compiled.extend(str(CreateIndex(i).compile(dialect=dialect)) for i in table.indexes)
        statements = _sqlite_schemas[key] = tuple(compiled)
    return statements


def _table_names(conn: sa.Connection) -> list[str]:
    """The tables of the connection's schema: a plain query, where SQLAlchemy's reflection
    costs tens of milliseconds on PostgreSQL the first time a process asks."""
    if conn.dialect.name == "postgresql":
        query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    return list(conn.execute(sa.text(query)).scalars())


def _stamped(conn: sa.Connection, tables: list[str]) -> str | None:
    """The one revision the database is stamped with, if it has exactly one."""
    if _VERSIONS.name not in tables:
        return None
    found = conn.execute(sa.select(_VERSIONS.c.version_num)).scalars().all()
    return found[0] if len(found) == 1 else None


def upgrade(conn: sa.Connection) -> None:
    """Apply, on ``conn``, every migration not yet applied."""
    from alembic import command  # here: Alembic takes a while to import
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
