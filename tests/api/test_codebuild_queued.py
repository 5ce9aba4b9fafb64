"""A pipeline's CodeBuild action whose job no worker takes within the project's
``queuedTimeoutInMinutes`` fails, saying so; on both databases.

One worker, busy with the first of two builds of a stage: the second waits in the queue, and
its wait is moved into the past instead of waited for.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from conveyor.config import Settings
from conveyor.server import Running, running
from conveyor.store import JobRecord
from tests.api.test_codebuild_pipelines import codebuild, declaration
from tests.api.test_codebuild_projects import ROLE, codebuild_client
from tests.conftest import make_client
from tests.support.engine import (
    action_state,
    git_source,
    latest_execution_id,
    make_repo,
    wait_for,
    wait_status,
)


@pytest.fixture
def unserved(settings: Settings) -> Iterator[Running]:
    with running(replace(settings, workers=1)) as live:
        yield live


def test_a_codebuild_action_waiting_for_a_worker_fails_at_the_queued_timeout(
    unserved: Running, tmp_path: Path
) -> None:
    client = make_client(unserved.endpoint)
    codebuild_client(unserved.endpoint).create_project(
        name="build",
        source={"type": "CODEPIPELINE"},
        artifacts={"type": "CODEPIPELINE"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole=ROLE,
        queuedTimeoutInMinutes=5,
    )
    spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 600\n"
    make_repo(tmp_path / "app", {"buildspec.yml": spec})
    client.create_pipeline(
        pipeline=declaration(
            "app",
            [git_source(tmp_path / "app")],
            {
                "name": "Build",
                "actions": [
                    codebuild("First", ["Src"], [], ProjectName="build"),
                    {**codebuild("Second", ["Src"], [], ProjectName="build"), "namespace": "B2"},
                ],
            },
        )
    )
    execution_id = latest_execution_id(client, "app")

    services = unserved.application.services

    def one_waits() -> tuple[str, JobRecord] | None:
        jobs = {}
        for name in ("First", "Second"):
            state = action_state(client, "app", "Build", name)
            if state.get("status") != "InProgress":
                return None
            with services.store.read() as tx:
                [jobs[name]] = tx.jobs.active_for(state["actionExecutionId"])
        if sorted(j.status for j in jobs.values()) != ["InProgress", "Queued"]:
            return None
        return next((n, j) for n, j in jobs.items() if j.status == "Queued")

    name, job = wait_for(one_waits, 60, "one build to run and the other to wait")

    def waited(seconds: float) -> None:
        with services.store.write() as tx:
            tx.jobs.update(job.id, None, created=time.time() - seconds)
        services.sweeper.sweep()

    waited(4 * 60)
    assert action_state(client, "app", "Build", name)["status"] == "InProgress"
    waited(5 * 60 + 1)
    state = action_state(client, "app", "Build", name)
    assert state["status"] == "Failed"
    assert "queued timeout of 5 minutes" in state["errorDetails"]["message"]
    assert services.jobs.get(job.id).status == "TimedOut"
    client.stop_pipeline_execution(
        pipelineName="app", pipelineExecutionId=execution_id, abandon=True
    )
    assert wait_status(client, "app", execution_id, "Stopped", "Failed") in ("Stopped", "Failed")
