"""Invoke/Lambda with local handlers: the function gets CodePipeline's job event and ends the
job itself through this server's API, continuation tokens and output variables included."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.config import Settings
from conveyor.server import Running, running
from tests.conftest import make_client
from tests.support.engine import (
    action_state,
    commands,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_status,
)

FUNCTIONS = """\
import boto3

def handler(event, context):
    job = event["CodePipeline.job"]
    data = job["data"]
    assert job["accountId"] == "000000000000"
    assert data["inputArtifacts"][0]["name"] == "Src"
    assert data["artifactCredentials"]["accessKeyId"]
    assert context.get_remaining_time_in_millis() > 0
    parameters = data["actionConfiguration"]["configuration"]["UserParameters"]
    client = boto3.client("codepipeline")
    token = data.get("continuationToken")
    if token is None:
        print("first call: asking to be called again")
        client.put_job_success_result(
            jobId=job["id"],
            continuationToken="step-2",
            executionDetails={"summary": "half way", "percentComplete": 50},
        )
    else:
        client.put_job_success_result(
            jobId=job["id"],
            outputVariables={"Said": parameters, "Token": token},
            executionDetails={"summary": "done by " + context.function_name},
        )

def refuses(event, context):
    job = event["CodePipeline.job"]
    boto3.client("codepipeline").put_job_failure_result(
        jobId=job["id"], failureDetails={"type": "JobFailed", "message": "not today"}
    )

def forgets(event, context):
    return {"statusCode": 200}

def raises(event, context):
    raise RuntimeError("the function broke")
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Running]:
    folder = tmp_path / "functions"
    folder.mkdir()
    (folder / "pipeline_functions.py").write_text(FUNCTIONS)
    settings = Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'conveyor.db'}",
        lambda_functions={
            name: {"handler": f"pipeline_functions:{name}", "path": str(folder)}
            for name in ("handler", "refuses", "forgets", "raises")
        },
    )
    with running(settings) as live:
        yield live


@pytest.fixture
def client(server: Running) -> Any:
    return make_client(server.endpoint)


def invoke(function: str, parameters: str = "hello") -> dict[str, Any]:
    return {
        "name": "Invoke",
        "actionTypeId": {
            "category": "Invoke",
            "owner": "AWS",
            "provider": "Lambda",
            "version": "1",
        },
        "configuration": {"FunctionName": function, "UserParameters": parameters},
        "inputArtifacts": [{"name": "Src"}],
        "namespace": "FN",
    }


def _run(client: Any, tmp_path: Path, name: str, *stages: dict[str, Any]) -> str:
    repo = tmp_path / "repo"
    if not repo.exists():
        make_repo(repo)
    client.create_pipeline(pipeline=declaration(name, repo, *stages))
    return wait_status(
        client, name, latest_execution_id(client, name), "Succeeded", "Failed", timeout=60
    )


def test_a_local_function_finishes_its_job_with_a_continuation_token(
    client: Any, tmp_path: Path
) -> None:
    check = commands("Check", 'test "#{FN.Said}/#{FN.Token}" = "hello/step-2"')
    status = _run(client, tmp_path, "fn", stage("Invoke", invoke("handler")), stage("Check", check))
    assert status == "Succeeded", action_state(client, "fn", "Invoke", "Invoke")
    state = action_state(client, "fn", "Invoke", "Invoke")
    assert state["summary"] == "done by handler"


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("refuses", "not today"),
        ("forgets", "returned without calling PutJobSuccessResult or PutJobFailureResult"),
        ("raises", "the function broke"),
        ("missing", "Function missing is not in the lambda_functions setting"),
    ],
)
def test_a_function_that_fails_or_forgets_fails_the_action(
    client: Any, tmp_path: Path, function: str, message: str
) -> None:
    assert _run(client, tmp_path, function, stage("Invoke", invoke(function))) == "Failed"
    state = action_state(client, function, "Invoke", "Invoke")
    assert message in state["errorDetails"]["message"]


def test_an_unmapped_function_is_invoked_through_the_lambda_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.api.test_rule_lambda import create_function
    from tests.support.moto import configure, moto_server, server_calling

    with moto_server() as endpoint:
        configure(endpoint, {"lambda": {"use_docker": False}})
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with server_calling(tmp_path, monkeypatch, aws_endpoints={"lambda": endpoint}) as live:
            create_function(endpoint, "remote")
            client = make_client(live.endpoint)
            status = _run(client, tmp_path, "remote", stage("Invoke", invoke("remote")))
            assert status == "Failed"
            state = action_state(client, "remote", "Invoke", "Invoke")
            # moto's Lambda runs no code, so nothing reported the job's result here.
            assert state["errorDetails"]["message"] == (
                "Function remote returned without calling PutJobSuccessResult or "
                "PutJobFailureResult for its job on this server."
            )
            details = client.list_action_executions(pipelineName="remote")
            (invoked,) = [
                e for e in details["actionExecutionDetails"] if e["actionName"] == "Invoke"
            ]
            log_url = f"{live.endpoint}/logs/{invoked['actionExecutionId']}"
            with urllib.request.urlopen(log_url, timeout=30) as answer:
                assert "Invoking remote through the Lambda endpoint" in answer.read().decode()
