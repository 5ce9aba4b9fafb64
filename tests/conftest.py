"""Fixtures shared by every suite: databases of both kinds, a live server, a boto3 client."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.config import Config

from conveyor.config import Settings
from conveyor.server import Running, running
from conveyor.store import Store

POSTGRES_URL = os.environ.get("CONVEYOR_TEST_DATABASE_URL")


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


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A URL whose connections see only a fresh schema of their own, dropped afterwards."""
    if POSTGRES_URL is None:
        pytest.skip("CONVEYOR_TEST_DATABASE_URL is not set")
    if not HAVE_POSTGRES:
        pytest.fail(f"PostgreSQL is not reachable at CONVEYOR_TEST_DATABASE_URL={POSTGRES_URL}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_schema() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'conveyor.db'}"
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
