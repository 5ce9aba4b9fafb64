"""Built-in action types with no executor here: they fail at once saying how to run them, or,
listed in ``worker_action_types``, wait for a job worker that polls for them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conveyor.config import Settings, SettingsError
from conveyor.server import Running, running
from conveyor.worker.embedded import assemble
from tests.api.test_tags import code
from tests.conftest import make_client
from tests.support.engine import (
    action_state,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_for,
    wait_status,
)

BEANSTALK = {"category": "Deploy", "owner": "AWS", "provider": "ElasticBeanstalk", "version": "1"}


def _deploy(type_id: dict[str, str], configuration: dict[str, str]) -> dict[str, Any]:
    return {
        "name": "Deploy",
        "actionTypeId": type_id,
        "configuration": configuration,
        "inputArtifacts": [{"name": "Src"}],
        "namespace": "DEPLOY",
    }


def test_a_type_without_an_endpoint_fails_at_once_naming_both_ways(
    client: Any, tmp_path: Path
) -> None:
    repo = tmp_path / "app"
    make_repo(repo, {"template.yaml": "Resources: {}\n"})
    cloudformation = {**BEANSTALK, "provider": "CloudFormation"}
    action = _deploy(
        cloudformation,
        {"ActionMode": "CREATE_UPDATE", "StackName": "app", "TemplatePath": "Src::template.yaml"},
    )
    client.create_pipeline(pipeline=declaration("cfn", repo, stage("Deploy", action)))
    status = wait_status(client, "cfn", latest_execution_id(client, "cfn"), "Succeeded", "Failed")
    assert status == "Failed"
    message = action_state(client, "cfn", "Deploy", "Deploy")["errorDetails"]["message"]
    assert "AWS/Deploy/CloudFormation/1" in message
    assert "aws_endpoints.cloudformation" in message
    assert "job worker" in message and "worker_action_types" in message


@pytest.fixture
def worker_server(settings: Settings) -> Iterator[Running]:
    with running(replace(settings, worker_action_types=("AWS/Deploy/ElasticBeanstalk/1",))) as live:
        yield live


def test_a_listed_type_waits_for_a_job_worker_that_finishes_it(
    worker_server: Running, tmp_path: Path
) -> None:
    client = make_client(worker_server.endpoint)
    repo = tmp_path / "app"
    make_repo(repo, {"app.py": "print('hi')\n"})
    action = _deploy(BEANSTALK, {"ApplicationName": "web", "EnvironmentName": "web-prod"})
    client.create_pipeline(pipeline=declaration("eb", repo, stage("Deploy", action)))

    def polled() -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = client.poll_for_jobs(actionTypeId=BEANSTALK)["jobs"]
        return jobs

    [job] = wait_for(polled, what="a job of AWS/Deploy/ElasticBeanstalk/1")
    data = job["data"]
    assert data["actionConfiguration"]["configuration"]["EnvironmentName"] == "web-prod"
    assert [a["name"] for a in data["inputArtifacts"]] == ["Src"]
    client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    assert client.get_job_details(jobId=job["id"])["jobDetails"]["id"] == job["id"]
    client.put_job_success_result(
        jobId=job["id"],
        executionDetails={"summary": "deployed by the worker", "externalExecutionId": "v-42"},
        outputVariables={"Version": "v-42"},
    )
    status = wait_status(client, "eb", latest_execution_id(client, "eb"), "Succeeded", "Failed")
    assert status == "Succeeded"
    state = action_state(client, "eb", "Deploy", "Deploy")
    assert state["summary"] == "deployed by the worker"


def test_an_unlisted_aws_type_cannot_be_polled(worker_server: Running) -> None:
    client = make_client(worker_server.endpoint)
    with pytest.raises(ClientError) as excinfo:
        client.poll_for_jobs(actionTypeId={**BEANSTALK, "provider": "CodeDeploy"})
    assert code(excinfo) == "ActionTypeNotFoundException"
    assert "worker_action_types" in str(excinfo.value)


@pytest.mark.parametrize(
    ("listed", "message"),
    [
        ("AWS/Deploy/Nope/1", "is not a built-in action type"),
        ("Deploy/ECS", "is not a built-in action type"),
        ("AWS/Source/Git/1", "Conveyor runs AWS/Source/Git/1 itself here"),
    ],
)
def test_worker_action_types_must_be_built_in_types_not_run_here(
    tmp_path: Path, listed: str, message: str
) -> None:
    settings = Settings(home=tmp_path / "home", worker_action_types=(listed,))
    settings.home.mkdir()
    with pytest.raises(SettingsError, match=message):
        assemble(settings)
    # The home was given back: the next start finds it free.
    assemble(replace(settings, worker_action_types=())).close()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"aws_endpoints": {"cloudformations": "http://x"}}, "Conveyor calls no service"),
        ({"aws_endpoints": {"ecs": "localhost:4566"}}, "must be an http(s) URL or aws"),
        ({"lambda_functions": {"f": {"handler": "module.function"}}}, "module:function"),
        ({"lambda_functions": {"f": "module:function"}}, "module:function"),
    ],
)
def test_aws_settings_are_checked_at_start(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    settings = Settings(home=tmp_path / "home", **changes)
    settings.home.mkdir()
    with pytest.raises(SettingsError, match=re.escape(message)):
        assemble(settings)


def _execution(client: Any, owner: str, provider: str) -> dict[str, Any]:
    """ListActionTypes' extension member of the type, read from the raw answer (boto3 drops
    members its model lacks)."""
    seen: dict[str, Any] = {}

    def keep(http_response: Any, **_: Any) -> None:
        seen["body"] = http_response.content

    client.meta.events.register("after-call.codepipeline.ListActionTypes", keep)
    client.list_action_types()
    client.meta.events.unregister("after-call.codepipeline.ListActionTypes", keep)
    for listed in json.loads(seen["body"])["actionTypes"]:
        if listed["id"]["owner"] == owner and listed["id"]["provider"] == provider:
            return dict(listed["conveyorExecution"])
    raise AssertionError(f"no type {owner}/{provider}")


def test_list_action_types_says_what_runs_each_type(worker_server: Running) -> None:
    client = make_client(worker_server.endpoint)
    commands = _execution(client, "AWS", "Commands")
    assert commands == {
        "executor": "Conveyor",
        "jobWorkersMayPoll": False,
        "note": "Runs in Conveyor.",
    }
    assert _execution(client, "AWS", "Manual")["executor"] == "Conveyor"
    # Left to job workers by the settings: they may poll for it.
    beanstalk = _execution(client, "AWS", "ElasticBeanstalk")
    assert beanstalk["executor"] == "JobWorker" and beanstalk["jobWorkersMayPoll"] is True
    assert "worker_action_types" in beanstalk["note"]
    # No endpoint set and not left to workers: nothing runs it, and the note says both ways.
    stack = _execution(client, "AWS", "CloudFormation")
    assert stack["executor"] == "None" and stack["jobWorkersMayPoll"] is False
    assert stack["setting"] == "aws_endpoints.cloudformation"
    assert (
        "worker_action_types" in stack["note"] and "aws_endpoints.cloudformation" in stack["note"]
    )
    client.create_custom_action_type(
        category="Build",
        provider="Jenkins",
        version="1",
        inputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
    )
    jenkins = _execution(client, "Custom", "Jenkins")
    assert jenkins["executor"] == "JobWorker" and jenkins["jobWorkersMayPoll"] is True
