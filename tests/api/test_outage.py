"""A database outage: the server says it is degraded, its workers survive it, and once the
database is back a new execution runs.

The outage is the server's schema renamed away under it (its connections then find no
tables), with a job running: the worker's report of its result fails, and so does every
claim, until the schema is back.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
            lambda: any("failed in the worker" in r.getMessage() for r in caplog.records),
            what="the worker to fail to report its job",
        )
    finally:
        rename(away, schema)
    wait_for(lambda: health(server) == (200, {"status": "ok"}), what="/health to say ok")
    client.create_pipeline(
        pipeline=declaration("next", repo, stage("Build", commands("Ok", "true")))
    )
    execution_id = latest_execution_id(client, "next")
    assert (
        wait_status(client, "next", execution_id, "Succeeded", "Failed", timeout=60) == "Succeeded"
    )
