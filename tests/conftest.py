"""Fixtures shared by every suite: databases of both kinds, a live server, a boto3 client."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.config import Config
from psycopg import sql

from conveyor.config import Settings
from conveyor.server import Running, running
from conveyor.store import Store
from conveyor.store.database import HEAD, create_engine, migrate
from conveyor.store.tables import metadata

POSTGRES_URL = os.environ.get("CONVEYOR_TEST_DATABASE_URL")
# No `conveyor run` of the tests leaves a warm process behind (tests/e2e/test_warm.py
# starts its own, in a runtime folder of its own).
os.environ["CONVEYOR_WARM_START"] = "0"


def _postgres_available() -> bool:
    if not POSTGRES_URL:
        return False
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


HAVE_POSTGRES = _postgres_available()
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _checked() -> str:
    if POSTGRES_URL is None:
        pytest.skip("CONVEYOR_TEST_DATABASE_URL is not set")
    if not HAVE_POSTGRES:
        pytest.fail(f"PostgreSQL is not reachable at CONVEYOR_TEST_DATABASE_URL={POSTGRES_URL}")
    return POSTGRES_URL


def _schema_url(schema: str) -> str:
    base = _checked()
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{schema}"


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A URL whose connections see only a fresh, empty schema of their own, dropped afterwards."""
    base = _checked()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield _schema_url(schema)
    finally:
        _drop(schema)


def _drop(schema: str) -> None:
    with psycopg.connect(_checked(), autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")
        # Left in the test database if something of the test still holds it.
        with suppress(psycopg.errors.LockNotAvailable):
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


class _Schemas:
    """Schemas at the latest migration, emptied after each test and lent to the next: declaring
    the schema costs PostgreSQL a few hundred milliseconds, emptying its few rows a few."""

    def __init__(self) -> None:
        self._free: list[str] = []

    def take(self) -> str:
        if self._free:
            return self._free.pop()
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(_checked(), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        engine = create_engine(_schema_url(schema))
        try:
            migrate(engine)
        finally:
            engine.dispose()
        return schema

    def give_back(self, schema: str) -> None:
        """Empty the schema for the next test; drop it instead if the test changed its tables
        or something of the test still holds a lock on them."""
        if self._emptied(schema):
            self._free.append(schema)
        else:
            _drop(schema)

    @staticmethod
    def _emptied(schema: str) -> bool:
        declared = {table.name for table in metadata.sorted_tables} | {"alembic_version"}
        with psycopg.connect(_checked()) as conn:
            conn.execute("SET lock_timeout = '3s'")
            conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
            found = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            ).fetchall()
            stamped = conn.execute("SELECT version_num FROM alembic_version").fetchall()
            if {name for (name,) in found} != declared or stamped != [(HEAD,)]:
                return False
            try:
                for table in reversed(metadata.sorted_tables):
                    conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table.name)))
                sequences = conn.execute(
                    "SELECT sequence_name FROM information_schema.sequences"
                    " WHERE sequence_schema = %s",
                    (schema,),
                ).fetchall()
                for (sequence,) in sequences:
                    conn.execute(
                        sql.SQL("ALTER SEQUENCE {} RESTART").format(sql.Identifier(sequence))
                    )
            except psycopg.errors.LockNotAvailable:
                return False
        return True

    def close(self) -> None:
        for schema in self._free:
            _drop(schema)
        self._free.clear()


@pytest.fixture(scope="session")
def _schemas() -> Iterator[_Schemas]:
    schemas = _Schemas()
    try:
        yield schemas
    finally:
        schemas.close()


@pytest.fixture
def postgres_url(_schemas: _Schemas) -> Iterator[str]:
    """A schema of its own at the latest migration, with no rows."""
    _checked()
    schema = _schemas.take()
    try:
        yield _schema_url(schema)
    finally:
        _schemas.give_back(schema)


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all, for the tests of migrations."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'conveyor.db'}"
    else:
        with fresh_schema() as url:
            yield url


# For the tests of a client (the AWS CLI, the JS SDK, `conveyor`'s client commands): what the
# client does is the same whichever database the server keeps, and the API suites run every
# operation it calls on both.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database at the latest migration with no rows, declared once per test process
    and copied for each test: declaring one costs a hundred milliseconds or more."""
    template = tmp_path_factory.mktemp("template") / "conveyor.db"
    engine = create_engine(f"sqlite:///{template}")
    try:
        migrate(engine)
    finally:
        engine.dispose()  # the last connection's close checkpoints the WAL into the file
    return template


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "conveyor.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # Change detection has suites of its own; elsewhere it would start executions that tests
    # committing to their repositories do not expect.
    return Settings(home=tmp_path / "home", database_url=database_url, detect_changes=False)


@pytest.fixture
def server(settings: Settings) -> Iterator[Running]:
    with running(settings) as live:
        yield live


def make_client(endpoint: str, *, validate: bool = True, access_key: str = "conveyor") -> Any:
    """A boto3 client; ``validate=False`` sends what it is given, as the JS SDK does."""
    return boto3.client(
        "codepipeline",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key="conveyor",
        config=Config(
            parameter_validation=validate, retries={"mode": "standard", "max_attempts": 1}
        ),
    )


@pytest.fixture
def client(server: Running) -> Any:
    return make_client(server.endpoint)


@pytest.fixture
def unchecked_client(server: Running) -> Any:
    return make_client(server.endpoint, validate=False)


# The suites whose tests take seconds each (servers and clients in processes of their own, a
# browser, kills and restarts), in the order they are handed out: the test processes take
# them first, so that the last minute is not one process finishing a long test alone.
_LONG_FIRST = (
    "tests/e2e/test_crash.py",
    "tests/e2e/test_crash_conditions.py",
    "tests/e2e/test_readme.py",
    "tests/e2e/test_home.py",
    "tests/e2e/",
    "tests/console/test_browser.py",
)


def _rank(item: pytest.Item) -> int:
    where = item.nodeid
    for rank, prefix in enumerate(_LONG_FIRST):
        if where.startswith(prefix):
            return rank
    return len(_LONG_FIRST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: each suite keeps its own order
