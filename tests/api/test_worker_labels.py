"""An action that requires worker labels (``ConveyorLabels``) waits for a worker that has them:
the server's own workers have none, a remote worker declares its own."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conveyor.config import Settings
from conveyor.server import running
from tests.api.test_remote_worker_routes import call
from tests.conftest import make_client
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

COMMANDS = "AWS/Compute/Commands/1"


def test_a_labelled_action_waits_for_a_worker_with_its_labels(
    settings: Settings, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    labelled = commands("Gpu", "echo on a gpu", configuration={"ConveyorLabels": "gpu, linux"})
    with running(replace(settings, remote_workers=True)) as live:
        client = make_client(live.endpoint)
        client.create_pipeline(pipeline=declaration("labels", repo, stage("Run", labelled)))
        execution = wait_for(lambda: latest_execution_id(client, "labels"), what="an execution")
        # The source ran on the server's workers; the labelled action's job waits for one
        # that has both labels, which none of the server's own have.
        wait_for(
            lambda: action_state(client, "labels", "Run", "Gpu"),
            what="the labelled action to start",
        )
        for labels in ([], ["gpu"], ["linux", "arm"]):
            body = {"types": [COMMANDS], "owner": "w/1", "wait": 0, "labels": labels}
            status, answer = call(live.endpoint, "poll", body)
            assert status == 200 and answer["job"] is None, (labels, answer)
        body = {"types": [COMMANDS], "owner": "w/1", "wait": 5, "labels": ["linux", "gpu", "arm"]}
        status, answer = call(live.endpoint, "poll", body)
        job = answer["job"]
        assert job is not None and job["type"] == COMMANDS
        result = {"jobId": job["id"], "owner": "w/1", "succeeded": True, "summary": "ran"}
        status, answer = call(live.endpoint, "result", result)
        assert status == 200, answer
        assert wait_status(client, "labels", execution, "Succeeded")


def test_a_server_with_labels_runs_a_labelled_action_itself(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    labelled = commands("Gpu", "echo on a gpu", configuration={"ConveyorLabels": "gpu"})
    settings = Settings(home=tmp_path / "home", detect_changes=False, worker_labels=("gpu",))
    with running(settings) as live:
        client = make_client(live.endpoint)
        client.create_pipeline(pipeline=declaration("mine", repo, stage("Run", labelled)))
        execution = wait_for(lambda: latest_execution_id(client, "mine"), what="an execution")
        assert wait_status(client, "mine", execution, "Succeeded")


def test_labels_written_wrong_are_refused_naming_the_action(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    bad = commands("Gpu", "true", configuration={"ConveyorLabels": "a gpu"})
    with running(Settings(home=tmp_path / "home", detect_changes=False)) as live:
        client = make_client(live.endpoint)
        with pytest.raises(ClientError) as raised:
            client.create_pipeline(pipeline=declaration("bad", repo, stage("Run", bad)))
    error = raised.value.response["Error"]
    assert error["Code"] == "InvalidActionDeclarationException"
    assert "ConveyorLabels" in error["Message"] and "Gpu" in error["Message"]
