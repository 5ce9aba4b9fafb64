"""A database outage: the server says it is degraded, its workers survive it, and once the
database is back a new execution runs.

The outage is the server's schema renamed away under it (its connections then find no
tables), with a job running: the worker's report of its result fails, and so does every
claim, until the schema is back; then the result is reported. The second outage is the real
kind, on a database of the test's own: every connection to it terminated
(``pg_terminate_backend``) and new ones refused (``ALLOW_CONNECTIONS false``) for 10 s.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import psycopg
import pytest

from conveyor.config import Settings
from conveyor.server import Running, running
from tests.conftest import POSTGRES_URL, make_client
from tests.support.engine import (
    action_state,
    commands,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_for,
    wait_status,
)

pytestmark = pytest.mark.postgres


def health(server: Running) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{server.endpoint}/health", timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def one_worker(tmp_path: Path, postgres_url: str) -> Iterator[tuple[Running, str]]:
    """A server with a single worker, so one dead worker would mean none; its schema's name."""
    settings = Settings(home=tmp_path / "home", database_url=postgres_url, workers=1)
    options = parse_qs(urlsplit(postgres_url).query)["options"][0]
    schema = options.partition("search_path=")[2]
    with running(settings) as live:
        yield live, schema


def rename(old: str, new: str) -> None:
    assert POSTGRES_URL is not None
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'ALTER SCHEMA "{old}" RENAME TO "{new}"')


def test_workers_survive_a_database_outage(
    one_worker: tuple[Running, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server, schema = one_worker
    client = make_client(server.endpoint)
    repo = tmp_path / "repo"
    make_repo(repo)
    release = tmp_path / "release"
    wait = f"while [ ! -e {release} ]; do sleep 0.05; done"
    client.create_pipeline(pipeline=declaration("held", repo, stage("Build", commands("W", wait))))
    wait_for(
        lambda: action_state(client, "held", "Build", "W").get("status") == "InProgress",
        what="the action to run",
    )
    assert health(server) == (200, {"status": "ok"})
    away = f"{schema}_away"
    rename(schema, away)
    try:
        _, body = wait_for(
            lambda: (h := health(server))[0] == 503 and h, what="/health to say degraded"
        )
        assert body["status"] == "degraded"
        assert "database" in body["reason"]
        release.touch()  # the worker finishes its job and cannot report it
        wait_for(
            lambda: any("cannot report its result" in r.getMessage() for r in caplog.records),
            what="the worker to fail to report its job",
        )
    finally:
        rename(away, schema)
    wait_for(lambda: health(server) == (200, {"status": "ok"}), what="/health to say ok")
    # The result the worker held on to is reported once the database is back.
    held = latest_execution_id(client, "held")
    assert wait_status(client, "held", held, "Succeeded", "Failed", timeout=60) == "Succeeded"
    client.create_pipeline(
        pipeline=declaration("next", repo, stage("Build", commands("Ok", "true")))
    )
    execution_id = latest_execution_id(client, "next")
    assert (
        wait_status(client, "next", execution_id, "Succeeded", "Failed", timeout=60) == "Succeeded"
    )


OUTAGE = 10.0  # seconds the database refuses every connection


@pytest.fixture
def own_database() -> Iterator[str]:
    """A database of this test's own (an outage must not touch anybody else's), dropped
    afterwards."""
    assert POSTGRES_URL is not None
    name = f"conveyor_outage_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cut_off(name: str, *, refuse: bool) -> None:
    """Refuse new connections to ``name`` (and end the ones it has), or take them again."""
    assert POSTGRES_URL is not None
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if refuse else "true"}')
        if refuse:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


def test_a_ten_second_outage_loses_nothing_and_runs_nothing_twice(
    own_database: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    name = urlsplit(own_database).path.lstrip("/")
    settings = Settings(
        home=tmp_path / "home", database_url=own_database, workers=2, detect_changes=False
    )
    repo = tmp_path / "repo"
    make_repo(repo)
    release, runs = tmp_path / "release", tmp_path / "runs"
    wait = f"echo ran >> {runs}; while [ ! -e {release} ]; do sleep 0.05; done"
    with running(settings) as server:
        client = make_client(server.endpoint)
        client.create_pipeline(
            pipeline=declaration(
                "held",
                repo,
                stage("Build", commands("W", wait)),
                stage("After", commands("Then", f"echo then >> {runs}")),
            )
        )
        wait_for(
            lambda: action_state(client, "held", "Build", "W").get("status") == "InProgress",
            what="the action to run",
        )
        held = latest_execution_id(client, "held")
        began = time.monotonic()
        cut_off(name, refuse=True)
        try:
            _, body = wait_for(
                lambda: (h := health(server))[0] == 503 and h, what="/health to say degraded"
            )
            assert body["status"] == "degraded" and "database" in body["reason"]
            release.touch()  # the action ends while the database is away
            wait_for(
                lambda: any("cannot report its result" in r.getMessage() for r in caplog.records),
                what="the worker to hold on to its result",
            )
            threading.Event().wait(max(0.0, OUTAGE - (time.monotonic() - began)))
            assert health(server)[0] == 503
        finally:
            cut_off(name, refuse=False)
        wait_for(lambda: health(server) == (200, {"status": "ok"}), what="/health to say ok")
        assert wait_status(client, "held", held, "Succeeded", "Failed", timeout=60) == "Succeeded"
        # Each action ran once: the one that ran through the outage was not run again.
        assert runs.read_text().split() == ["ran", "then"]
        # Every thread survived: a new execution runs from start to end.
        client.create_pipeline(
            pipeline=declaration("next", repo, stage("Build", commands("Ok", "true")))
        )
        later = latest_execution_id(client, "next")
        assert wait_status(client, "next", later, "Succeeded", "Failed", timeout=60) == "Succeeded"
