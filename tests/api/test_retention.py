"""Retention: events and finished jobs past their time go, executions and their history stay."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from conveyor.config import Settings
from conveyor.server import Running, running
from conveyor.store.tables import events, jobs
from tests.conftest import make_client
from tests.support.engine import (
    commands,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_status,
)


@pytest.fixture
def kept_an_hour(tmp_path: Path, database_url: str) -> Iterator[Running]:
    settings = Settings(
        home=tmp_path / "home",
        database_url=database_url,
        event_retention_days=1 / 24,
        job_retention_days=1 / 24,
    )
    with running(settings) as live:
        yield live


def _counts(server: Running) -> tuple[int, int]:
    with server.application.store.engine.connect() as conn:
        counted = [
            conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (events, jobs)
        ]
    return counted[0], counted[1]


def test_pruning_removes_old_events_and_finished_jobs_only(
    kept_an_hour: Running, tmp_path: Path
) -> None:
    client = make_client(kept_an_hour.endpoint)
    repo = tmp_path / "repo"
    make_repo(repo)
    client.create_pipeline(
        pipeline=declaration("kept", repo, stage("Build", commands("Run", "true")))
    )
    execution = latest_execution_id(client, "kept")
    wait_status(client, "kept", execution, "Succeeded")
    before = _counts(kept_an_hour)
    assert before[0] > 0 and before[1] == 2
    sweeper = kept_an_hour.application.services.sweeper
    assert sweeper.prune(time.time()) == (0, 0)  # nothing is an hour old yet
    assert sweeper.prune(time.time() + 7200) == before
    assert _counts(kept_an_hour) == (0, 0)
    found = client.get_pipeline_execution(pipelineName="kept", pipelineExecutionId=execution)
    assert found["pipelineExecution"]["status"] == "Succeeded"
    details = client.list_action_executions(
        pipelineName="kept", filter={"pipelineExecutionId": execution}
    )["actionExecutionDetails"]
    assert [d["status"] for d in details] == ["Succeeded", "Succeeded"]


def test_without_retention_nothing_is_pruned(server: Running, tmp_path: Path) -> None:
    client = make_client(server.endpoint)
    repo = tmp_path / "repo"
    make_repo(repo)
    client.create_pipeline(
        pipeline=declaration("forever", repo, stage("Build", commands("Run", "true")))
    )
    wait_status(client, "forever", latest_execution_id(client, "forever"), "Succeeded")
    before = _counts(server)
    assert server.application.services.sweeper.prune(time.time() + 10**9) == (0, 0)
    assert _counts(server) == before
